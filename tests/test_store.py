"""A store that cannot be silently wrong: the computation is part of a sweep's identity, so a
resume with another train function is refused, while the same code in a new process resumes."""

import json
import os
import re
import shutil
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxmom
from jaxmom.cli import main as cli_main

SCRIPT = """
import sys
import jax, jax.numpy as jnp
import jaxmom

scale, kind = float(sys.argv[2]), sys.argv[3]


def make(scale):  # a new closure in every process
    def train_fn(hp, key):
        w = jax.random.normal(key, (3,)) * hp["beta"] * scale
        return {"loss": jnp.sum(w**2) if kind == "square" else jnp.sum(jnp.abs(w))}

    return train_fn


jaxmom.grid_sweep(make(scale), {"beta": [0.1, 0.2, 0.3, 0.4]}, seeds=[0, 1], chunk_size=2,
                  out=sys.argv[1], progress=False)
"""


#: Six betas, one seed, one epoch, blocks of two: a store of three blocks in a second.
SMALL_SWEEP = [
    "sweep",
    "--betas",
    "0:0.9:6",
    "--seeds",
    "1",
    "--epochs",
    "1",
    "--chunk-size",
    "2",
    "--no-progress",
    "--devices",
    "1",
]


def _sweep(path, scale=1.0, kind="square"):
    return subprocess.run(
        [sys.executable, "-c", SCRIPT, str(path), str(scale), kind],
        capture_output=True,
        text=True,
        timeout=300,
    )


def _forget_half(path):
    """As a kill would leave it: the status chunks of half the blocks gone."""
    for chunk in sorted((path / "status" / "c").iterdir())[::2]:
        shutil.rmtree(chunk)
    assert not jaxmom.SweepResult.load(path).complete


def test_a_resume_with_another_computation_is_refused_the_same_code_resumes(tmp_path):
    path = tmp_path / "s.zarr"
    assert _sweep(path).returncode == 0
    whole = jaxmom.SweepResult.load(path)["loss"]
    _forget_half(path)
    for scale, kind in ((2.0, "square"), (1.0, "abs")):  # another constant, another function
        proc = _sweep(path, scale, kind)
        assert proc.returncode != 0
        assert "holds the runs of another computation" in proc.stderr
        assert not jaxmom.SweepResult.load(path).complete  # nothing mixed in
    proc = _sweep(path)  # the same code, rebuilt in a new process
    assert proc.returncode == 0, proc.stderr[-2000:]
    res = jaxmom.SweepResult.load(path)
    assert res.complete
    np.testing.assert_array_equal(res["loss"], whole)


def _quick(hp, key):
    w = jax.random.normal(key, (3,)) * hp["beta"]
    return {"loss": jnp.sum(w**2), "w": w}


GRID = {"beta": [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]}


def _chunk(path, q, name="loss"):
    return path / name / "c" / str(q) / "0"


def test_damaged_chunks_are_found_said_and_recomputed(tmp_path, capsys):
    path = tmp_path / "s.zarr"
    whole = jaxmom.grid_sweep(_quick, GRID, [0], chunk_size=2, out=path, progress=False)
    want = {k: whole[k] for k in whole.outputs}
    (path / "status" / "c" / ".DS_Store").write_text("not the store's")  # ignored
    # same-size garbage: found when read, naming the output and the store
    good = _chunk(path, 1).read_bytes()
    _chunk(path, 1).write_bytes(bytes(b ^ 0xFF for b in good))
    with pytest.raises(
        ValueError,
        match=r"output 'loss' of the store .*damaged chunk of block "
        r"\(1, 0\).*verify --repair",
    ):
        jaxmom.SweepResult.load(path)["loss"]
    assert jaxmom.SweepResult.load(path).verify() == [(1, 0)]
    assert cli_main(["verify", str(path)]) == 1
    assert "1 damaged block(s)" in capsys.readouterr().out
    # a missing chunk and a truncated one: a resume finds them by their size and runs them again
    (_chunk(path, 0, "w") / "0").unlink()  # w is [point, seed, 3]: chunk c/0/0/0
    with pytest.raises(ValueError, match=r"output 'w' .* finished block \(0, 0\) is missing"):
        jaxmom.SweepResult.load(path).outputs["w"][0]  # read as NaN by zarr: not let through
    _chunk(path, 2).write_bytes(_chunk(path, 2).read_bytes()[:5])
    assert jaxmom.SweepResult.load(path).verify(repair=True) == [(0, 0), (1, 0), (2, 0)]
    again = jaxmom.grid_sweep(_quick, GRID, [0], chunk_size=2, out=path, progress=False)
    assert again.complete and again.verify() == []
    for k, v in want.items():
        np.testing.assert_array_equal(again[k], v)
    _chunk(path, 2).write_bytes(b"")  # a resume alone (no verify) recomputes a truncated chunk
    again = jaxmom.grid_sweep(_quick, GRID, [0], chunk_size=2, out=path, progress=False)
    np.testing.assert_array_equal(again["loss"], want["loss"])
    assert cli_main(["verify", str(path)]) == 0
    assert cli_main(["verify", str(tmp_path)]) == 2


KILL = """
import os, sys
import jax, jax.numpy as jnp
import jaxmom

n, renames = int(sys.argv[2]), [0]
jax.config.update("jax_num_cpu_devices", int(sys.argv[3]))  # the test's: the same blocks


def hook(event, args):  # SIGKILL just before the n-th rename (zarr's every write is one)
    if event in ("os.rename", "os.link"):
        renames[0] += 1
        if renames[0] == n:
            os.kill(os.getpid(), 9)


def train_fn(hp, key):
    w = jax.random.normal(key, (3,)) * hp["beta"]
    return {"loss": jnp.sum(w**2), "w": w}


sys.addaudithook(hook)
jaxmom.grid_sweep(train_fn, {"beta": [0.1, 0.2, 0.3, 0.4, 0.5]}, [0], chunk_size=2,
                  out=sys.argv[1], progress=False)
print("renames", renames[0])
"""


def _kill_train_fn(hp, key):
    w = jax.random.normal(key, (3,)) * hp["beta"]
    return {"loss": jnp.sum(w**2), "w": w}


def test_a_kill_at_any_rename_of_creation_or_writing_resumes_bit_for_bit(tmp_path):
    grid = {"beta": [0.1, 0.2, 0.3, 0.4, 0.5]}
    want = jaxmom.grid_sweep(_kill_train_fn, grid, [0], chunk_size=2, progress=False)
    n, kills = 1, 0
    while True:
        path = tmp_path / f"s{n}.zarr"
        proc = subprocess.run(
            [sys.executable, "-c", KILL, str(path), str(n), str(jax.device_count())],
            capture_output=True,
            text=True,
            timeout=300,
        )
        if proc.returncode == 0:  # the sweep made fewer than n renames: every point was hit
            assert f"renames {n - 1}" in proc.stdout
            break
        assert proc.returncode == -9, proc.stderr[-2000:]
        kills += 1
        res = jaxmom.grid_sweep(_kill_train_fn, grid, [0], chunk_size=2, out=path, progress=False)
        assert res.complete and res.verify() == [], f"killed at rename {n}"
        for k in ("loss", "w"):
            np.testing.assert_array_equal(res[k], want[k], err_msg=f"killed at rename {n}")
        n += 1
    assert kills >= 15  # creation (arrays, seeds, consolidation) and three blocks' writes


def test_links_are_not_followed_and_a_writable_store_resumes_in_a_locked_folder(
    tmp_path, monkeypatch
):
    path = tmp_path / "s.zarr"
    jaxmom.grid_sweep(_quick, GRID, [0], chunk_size=2, out=path, progress=False)
    victim = tmp_path / "victim.txt"
    victim.write_text("mine")
    (path / ".lock").unlink()
    (path / ".lock").symlink_to(victim)
    with pytest.raises(RuntimeError, match=r"\.lock' is a symbolic link.*remove it"):
        jaxmom.grid_sweep(_quick, GRID, [0], chunk_size=2, out=path, progress=False)
    assert victim.read_text() == "mine"
    (path / ".lock").unlink()
    # a parent folder the user cannot write: a new store is refused, an existing one resumes
    from jaxmom.common import _paths

    parent = str(tmp_path.absolute())
    real = os.access
    monkeypatch.setattr(_paths.os, "access", lambda p, m: str(p) != parent and real(p, m))
    with pytest.raises(ValueError, match="is not writable"):
        jaxmom.grid_sweep(_quick, GRID, [0], out=tmp_path / "new.zarr", progress=False)
    res = jaxmom.grid_sweep(_quick, GRID, [0], chunk_size=2, out=path, progress=False)
    assert res.complete


@pytest.mark.parametrize(
    "error", [(28, "No space left on device"), (13, "Permission denied")], ids=["disk", "perm"]
)
def test_a_full_disk_ends_in_one_line_and_the_same_command_resumes(
    tmp_path, monkeypatch, capsys, error
):
    from jaxmom.results import Store

    path = tmp_path / "s.zarr"
    argv = [*SMALL_SWEEP, "--out", str(path)]
    write, calls = Store.write_block, []

    def full_after_one(self, *args):
        calls.append(1)
        if len(calls) > 1:
            raise OSError(*error, str(self.path / "loss"))
        return write(self, *args)

    monkeypatch.setattr(Store, "write_block", full_after_one)
    assert cli_main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and error[1] in err
    assert "every finished block is kept, and the same call resumes" in err
    assert jaxmom.SweepResult.load(path).done.any()  # the first block was kept
    monkeypatch.setattr(Store, "write_block", write)
    assert cli_main(argv) == 0
    res = jaxmom.SweepResult.load(path)
    assert res.complete
    whole = jaxmom.sweep(np.linspace(0, 0.9, 6), seeds=[0], epochs=1, progress=False)
    np.testing.assert_array_equal(res["final_loss"], whole["final_loss"])


def test_the_space_check_counts_file_system_blocks(tmp_path, monkeypatch):
    from jaxmom.engine import _checks as _sweep_checks

    real, fs_block = _sweep_checks.shutil.disk_usage, os.statvfs(tmp_path).f_frsize
    monkeypatch.setattr(
        _sweep_checks.shutil, "disk_usage", lambda p: real(p)._replace(free=200 * fs_block)
    )
    # 60 blocks of 1 run, 2 outputs and a status: 180 files of a few bytes, 180 fs blocks + axes
    grid = {"beta": np.linspace(0, 1, 60)}
    with pytest.raises(ValueError, match=r"take .* on disk \(one file per output and block"):
        jaxmom.grid_sweep(_quick, grid, [0], chunk_size=1, out=tmp_path / "s.zarr", progress=False)
    jaxmom.grid_sweep(_quick, grid, [0], chunk_size=30, out=tmp_path / "t.zarr", progress=False)


def test_foreign_files_are_ignored_damaged_metadata_is_named(tmp_path):
    import json

    path = tmp_path / "s.zarr"
    jaxmom.grid_sweep(_quick, GRID, [0], chunk_size=2, out=path, progress=False)
    (path / "zarr.json~").write_text("an editor's backup")
    (path / ".DS_Store").write_text("")
    (path / "status" / "c" / ".DS_Store").write_text("")
    again = jaxmom.grid_sweep(_quick, GRID, [0], chunk_size=2, out=path, progress=False)
    assert again.complete and again.verify() == []
    meta = json.loads((path / "zarr.json").read_text())
    meta["attributes"]["block"] = [0, 1]  # crafted: would divide by zero
    (path / "zarr.json").write_text(json.dumps(meta))
    for call in (
        lambda: jaxmom.SweepResult.load(path),
        lambda: jaxmom.grid_sweep(_quick, GRID, [0], chunk_size=2, out=path, progress=False),
    ):
        with pytest.raises(ValueError, match=r"damaged attribute 'block' \(\[0, 1\]\)"):
            call()
    meta["attributes"]["block"] = [2, 1]
    (path / "zarr.json").write_text(json.dumps(meta))
    (path / "w" / "zarr.json").unlink()
    with pytest.raises(ValueError, match=r"array 'w'.*delete"):
        jaxmom.grid_sweep(_quick, GRID, [0], chunk_size=2, out=path, progress=False)


def test_arguments_are_named_as_given_and_the_api_agrees_with_the_cli(tmp_path, capsys):
    for betas, shown in (
        ([True, False], "betas=[True, False]"),
        ("abc", "betas='abc'"),
        (None, "betas=None"),
        ([0.1, None], "betas=[0.1, None]"),
    ):
        with pytest.raises(TypeError, match=re.escape(shown)):
            jaxmom.sweep(betas, progress=False)
    with pytest.raises(TypeError, match=r"seeds=3: pass range\(3\) for 3 seeds"):
        jaxmom.sweep([0.9], seeds=3, progress=False)
    with pytest.raises(TypeError, match=r"seeds=3: pass range\(3\)"):
        jaxmom.grid_sweep(_quick, GRID, 3, progress=False)
    with pytest.raises(ValueError, match="got 9223372036854775808"):
        jaxmom.grid_sweep(_quick, GRID, np.array([2**63], np.uint64), progress=False)
    for argv, message in (
        (["--betas", "0:0.99:1000000000"], "asks for 1,000,000,000 values; an axis holds at most"),
        (["--betas", "0.9", "--seeds", "4294967297"], "'4294967297' seeds: at most"),
    ):
        with pytest.raises(SystemExit) as e:
            cli_main(["sweep", *argv])
        assert e.value.code == 2 and message in capsys.readouterr().err
    out = tmp_path / "p.zarr"
    assert (
        cli_main(
            [
                "sweep",
                "--betas",
                "0.5,0.9",
                "--seeds",
                "2",
                "--epochs",
                "1",
                "--no-progress",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    first = capsys.readouterr().out.splitlines()[0]
    assert first == (
        f"sweep: 4 runs (2 betas x 1 learning rate x 2 seeds) of 32 steps; results 0.0 MiB on "
        f"disk in {out}"
    )


def test_a_garbage_status_chunk_is_found_by_verify_and_run_again_by_the_resume(tmp_path, capsys):
    path = tmp_path / "s.zarr"
    argv = [*SMALL_SWEEP, "--out", str(path)]
    assert cli_main(argv) == 0
    chunk = path / "status" / "c" / "1" / "0"
    chunk.write_bytes(bytes(b ^ 0x55 for b in chunk.read_bytes()))  # same size, other bytes
    assert cli_main(["verify", str(path)]) == 1  # its checksum fails
    capsys.readouterr()
    assert cli_main(argv) == 0  # the resume runs that block again
    assert capsys.readouterr().err == ""
    assert cli_main(["verify", str(path)]) == 0
    whole = jaxmom.sweep(np.linspace(0, 0.9, 6), seeds=[0], epochs=1, progress=False)
    np.testing.assert_array_equal(jaxmom.SweepResult.load(path)["final_loss"], whole["final_loss"])


def test_a_block_whose_runs_all_diverged_is_stored_and_never_run_again(tmp_path):
    """zarr skips a chunk that holds only its fill value (NaN) unless told not to: such a block
    would read as missing, and every resume would run it again."""
    from jaxmom.results import damaged_blocks

    def fn(hp, key):
        return {"loss": jnp.where(hp["a"] > 1, jnp.nan, hp["a"])}

    out = tmp_path / "nan.zarr"
    res = jaxmom.grid_sweep(fn, {"a": [2.0, 3.0, 0.5, 0.7]}, chunk_size=2, out=out, progress=False)
    assert np.isnan(res["loss"][:2]).all() and res.diverged[:2].all()
    np.testing.assert_array_equal(res["loss"][2:, 0], np.float32([0.5, 0.7]))
    attrs = json.loads((out / "zarr.json").read_text())["attributes"]
    assert damaged_blocks(out, attrs, read=True) == []
