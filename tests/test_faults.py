"""Faults end in one line that says what happened and how to resume, keep every finished block,
and are never reported as damage when they are not."""

import errno

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxmom
from jaxmom.cli import main as cli_main
from tests.test_store import _forget_half

GRID = {"beta": [0.1, 0.2, 0.3, 0.4]}


def _train_fn(hp, key):
    return {"loss": jnp.sum(jax.random.normal(key, (3,)) * hp["beta"])}


def _disk_full(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


def test_a_full_disk_at_resume_is_not_damage(tmp_path, monkeypatch):
    """A resume while the disk is full says so and that the same call resumes; once there is
    room, it does, to the same bits (it was never damage: deleting it would lose every block)."""
    import zarr

    out = tmp_path / "s.zarr"
    kw = dict(seeds=[0, 1], chunk_size=2, out=out, progress=False)
    whole = np.asarray(jaxmom.grid_sweep(_train_fn, GRID, **kw)["loss"])
    _forget_half(out)
    with monkeypatch.context() as m:
        m.setattr(zarr, "consolidate_metadata", _disk_full)
        with pytest.raises(OSError, match="nothing in it is damaged") as e:
            jaxmom.grid_sweep(_train_fn, GRID, **kw)
        assert "No space left" in str(e.value) and "the same call resumes" in str(e.value)
        assert "delete" not in str(e.value)
    np.testing.assert_array_equal(jaxmom.grid_sweep(_train_fn, GRID, **kw)["loss"], whole)


def test_a_full_disk_at_the_commands_resume_is_one_line(tmp_path, monkeypatch, capsys):
    import zarr

    out = tmp_path / "c.zarr"
    argv = ["sweep", "--betas", "0.5,0.9", "--epochs", "1", "--no-progress", "--out", str(out)]
    assert cli_main(argv) == 0
    _forget_half(out)
    capsys.readouterr()
    monkeypatch.setattr(zarr, "consolidate_metadata", _disk_full)
    assert cli_main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "No space left" in err and "resumes" in err, err
    assert "damaged metadata" not in err and "delete" not in err


KILL_AT_RENAME = """
import os, sys
target = sys.argv[2]

def hook(event, args):  # SIGKILL at the rename that would put `target` in place
    if event == "os.rename" and str(args[1]).endswith(target):
        os.kill(os.getpid(), 9)

sys.addaudithook(hook)
from tests.test_halving import TASK, TRIALS
from tests.test_engine import _data
import jaxmom
jaxmom.halving_sweep(TASK, TRIALS, seeds=[0], data=_data(0, n=64), min_steps=2, max_steps=6,
                     metric="loss", progress=False, out=sys.argv[1])
"""


def test_a_halving_killed_at_its_first_rename_resumes_and_a_damaged_mark_is_named(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    from tests.test_engine import _data
    from tests.test_halving import TASK, TRIALS

    out = tmp_path / "h"
    root = Path(__file__).parent.parent
    proc = subprocess.run(
        [sys.executable, "-c", KILL_AT_RENAME, str(out), "halving.json"],
        cwd=root,
        capture_output=True,
        timeout=300,
    )
    assert proc.returncode == -9 and not (out / "halving.json").exists()
    kw = dict(
        seeds=[0], data=_data(0, n=64), min_steps=2, max_steps=6, metric="loss", progress=False
    )
    res = jaxmom.halving_sweep(TASK, TRIALS, out=out, **kw)  # the same call
    # in memory the rungs run on the lane pool, another program: the same runs to rounding
    in_memory = jaxmom.halving_sweep(TASK, TRIALS, **kw)["loss"]
    np.testing.assert_allclose(res["loss"], in_memory, rtol=1e-6)
    (out / "halving.json").write_text('{"columns": ')
    with pytest.raises(ValueError, match=r"halving\.json' is damaged .*delete that file") as e:
        jaxmom.halving_sweep(TASK, TRIALS, out=out, **kw)
    assert "other settings" not in str(e.value)
    (out / "halving.json").unlink()
    again = jaxmom.halving_sweep(TASK, TRIALS, out=out, **kw)  # as the message says
    np.testing.assert_array_equal(again["loss"], res["loss"])


def test_a_garbage_status_chunk_is_run_again_before_anything_else(tmp_path):
    """A status chunk of the right size holding other bytes (its checksum fails) marks its block
    as not done when the store is opened: the resume runs it with the missing ones, and the
    result reads whole (before, the missing blocks ran first and the sweep then failed)."""
    out = tmp_path / "s.zarr"
    kw = dict(seeds=[0, 1], chunk_size=2, out=out, progress=False)
    whole = jaxmom.grid_sweep(_train_fn, GRID, **kw)
    want, diverged = np.asarray(whole["loss"]), whole.diverged
    chunk = out / "status" / "c" / "0" / "0"
    chunk.write_bytes(np.random.default_rng(0).bytes(chunk.stat().st_size))
    (out / "status" / "c" / "1" / "0").unlink()
    res = jaxmom.grid_sweep(_train_fn, GRID, **kw)
    np.testing.assert_array_equal(res["loss"], want)
    np.testing.assert_array_equal(res.diverged, diverged)
    assert cli_main(["verify", str(out)]) == 0


def _attrs_edit(store, **changes):
    import json

    meta = json.loads((store / "zarr.json").read_text())
    meta["attributes"].update(changes)
    (store / "zarr.json").write_text(json.dumps(meta))


def _one_line(capsys, argv, code=2):
    """``jaxmom ARGV`` exits ``code`` with one line on stderr (a flag's error exits as argparse
    does, by SystemExit)."""
    capsys.readouterr()
    try:
        status = cli_main(argv)
    except SystemExit as e:
        status = e.code
    assert status == code
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err


def test_verify_says_what_is_wrong_in_one_line_and_repairs_under_the_lock(tmp_path, capsys):
    import shutil

    from jaxmom.results import Lock

    assert "does not exist" in _one_line(capsys, ["verify", str(tmp_path / "nope.zarr")])
    out = tmp_path / "s.zarr"
    jaxmom.grid_sweep(_train_fn, GRID, seeds=[0, 1], chunk_size=2, out=out, progress=False)
    for name, edit in [("block", [0, 1]), ("outputs", {})]:
        copy = tmp_path / f"{name}.zarr"
        shutil.copytree(out, copy)
        _attrs_edit(copy, **{name: edit})
        assert f"damaged attribute {name!r}" in _one_line(capsys, ["verify", str(copy)])
        with pytest.raises(ValueError, match=f"damaged attribute {name!r}"):
            jaxmom.SweepResult.load(copy)
    gone = tmp_path / "gone.zarr"
    shutil.copytree(out, gone)
    (gone / "loss" / "zarr.json").unlink()
    assert "the metadata of its array 'loss' is missing" in _one_line(capsys, ["verify", str(gone)])
    # a damaged chunk: found, and marked under the store's lock, never while a sweep holds it
    chunk = out / "loss" / "c" / "0" / "0"
    chunk.write_bytes(np.random.default_rng(1).bytes(chunk.stat().st_size))
    assert cli_main(["verify", str(out)]) == 1
    held = Lock(out)
    try:
        assert "in use by another sweep" in _one_line(capsys, ["verify", "--repair", str(out)])
    finally:
        held.release()
    assert cli_main(["verify", "--repair", str(out)]) == 0
    assert not (out / "status" / "c" / "0" / "0").exists()


def test_verify_reads_the_folder_a_halving_command_writes(tmp_path, capsys):
    out = tmp_path / "halving"
    argv = [
        "sweep",
        "--sample",
        "sobol:8",
        "--betas",
        "0:0.99",
        "--lrs",
        "log:1e-3:0.3",
        "--halving",
        "2",
        "--epochs",
        "2",
        "--no-progress",
        "--out",
        str(out),
    ]
    assert cli_main(argv) == 0
    capsys.readouterr()
    assert cli_main(["verify", str(out)]) == 0
    said = capsys.readouterr().out
    assert said.count("every finished block is whole") == len(list(out.glob("b*_r*.zarr"))) >= 2
    chunk = next((out / "b0_r0.zarr" / "status" / "c").rglob("0"))
    if chunk.is_dir():
        chunk = next(p for p in chunk.rglob("*") if p.is_file())
    chunk.write_bytes(np.random.default_rng(2).bytes(chunk.stat().st_size))
    assert cli_main(["verify", str(out)]) == 1


def test_a_linked_folder_inside_a_store_is_refused_and_nothing_is_written_outside(tmp_path):
    out, outside = tmp_path / "s.zarr", tmp_path / "outside"
    kw = dict(seeds=[0, 1], chunk_size=2, out=out, progress=False)
    whole = np.asarray(jaxmom.grid_sweep(_train_fn, GRID, **kw)["loss"])
    _forget_half(out)
    block = out / "loss" / "c" / "1"
    block.rename(outside)
    block.symlink_to(outside, target_is_directory=True)
    before = sorted(p.name for p in outside.rglob("*"))
    with pytest.raises(ValueError, match=r"symbolic link, which jaxmom never writes through"):
        jaxmom.grid_sweep(_train_fn, GRID, **kw)
    assert sorted(p.name for p in outside.rglob("*")) == before
    block.unlink()  # as the message says: remove it, and the same call runs its blocks again
    np.testing.assert_array_equal(jaxmom.grid_sweep(_train_fn, GRID, **kw)["loss"], whole)


OPTUNA_KILLED = """
import os, sys
import optuna
import jaxmom
from tests.test_halving import TASK
from tests.test_engine import _data

def hook(event, args):  # SIGKILL as the second batch writes its first file
    if event == "os.rename" and "trials00004.zarr" in str(args[1]) and "/c/" in str(args[1]):
        os.kill(os.getpid(), 9)

if sys.argv[3] == "kill":
    sys.addaudithook(hook)
optuna.logging.set_verbosity(optuna.logging.WARNING)
space = {"beta": jaxmom.Uniform(0.0, 0.95), "learning_rate": jaxmom.LogUniform(1e-2, 1.0)}
study = optuna.create_study(study_name="s", storage=sys.argv[1], load_if_exists=True,
                            sampler=optuna.samplers.RandomSampler(seed=0))
jaxmom.optuna_sweep(study, TASK, space, 8, (0,), data=_data(0, n=64), metric="loss", steps=4,
                    trials_per_batch=4, out=sys.argv[2], progress=False)
"""


def test_an_optuna_sweep_killed_leaves_no_trial_running_after_the_rerun(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    optuna = pytest.importorskip("optuna")
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    run = [sys.executable, "-c", OPTUNA_KILLED, storage, str(tmp_path / "out")]
    root = Path(__file__).parent.parent
    killed = subprocess.run([*run, "kill"], cwd=root, capture_output=True, timeout=300)
    assert killed.returncode == -9, killed.stderr[-2000:]
    state = optuna.trial.TrialState
    study = optuna.load_study(study_name="s", storage=storage)
    running = study.get_trials(states=(state.RUNNING,))
    assert len(running) == 4 and len(study.get_trials(states=(state.COMPLETE,))) == 4
    subprocess.run([*run, "again"], cwd=root, check=True, capture_output=True, timeout=300)
    study = optuna.load_study(study_name="s", storage=storage)
    trials = study.get_trials()
    assert not [t for t in trials if t.state == state.RUNNING]
    failed = {t.number: t.params for t in trials if t.state == state.FAIL}
    assert sorted(failed) == sorted(t.number for t in running)
    retried = {t.user_attrs["retried_from"]: t for t in trials if "retried_from" in t.user_attrs}
    assert sorted(retried) == sorted(failed) and len(trials) == 16
    for number, t in retried.items():
        assert t.state == state.COMPLETE and t.params == failed[number]


def test_ctrl_c_in_an_optuna_sweep_fails_the_batch_and_the_next_call_retries_it(monkeypatch):
    optuna = pytest.importorskip("optuna")
    from jaxmom.engine import _optuna
    from tests.test_engine import _data
    from tests.test_halving import TASK

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space = {"beta": jaxmom.Uniform(0.0, 0.95), "learning_rate": jaxmom.LogUniform(1e-2, 1.0)}
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    kw = dict(data=_data(0, n=64), metric="loss", steps=4, trials_per_batch=3, progress=False)
    calls, real = [0], _optuna.trial_sweep

    def interrupted(*args, **kwargs):
        calls[0] += 1
        if calls[0] == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    with monkeypatch.context() as m:
        m.setattr(_optuna, "trial_sweep", interrupted)
        with pytest.raises(KeyboardInterrupt):
            jaxmom.optuna_sweep(study, TASK, space, 6, **kw)
    state = optuna.trial.TrialState
    assert [t.state for t in study.trials] == [state.COMPLETE] * 3 + [state.FAIL] * 3
    jaxmom.optuna_sweep(study, TASK, space, 3, **kw)
    assert [t.user_attrs.get("retried_from") for t in study.trials[6:]] == [3, 4, 5]
    assert [t.params for t in study.trials[6:]] == [t.params for t in study.trials[3:6]]
    assert all(t.state == state.COMPLETE for t in study.trials[6:])


def test_an_oversize_halving_search_is_refused_before_it_samples(capsys):
    import time

    argv = [
        "sweep",
        "--sample",
        "sobol:10000000",
        "--seeds",
        "10000",
        "--halving",
        "3",
        "--betas",
        "0:0.99",
        "--lrs",
        "log:1e-3:1",
        "--no-progress",
    ]
    t0 = time.perf_counter()
    err = _one_line(capsys, argv)
    assert time.perf_counter() - t0 < 5 and "100,000,000,000" not in err
    assert "10,000,000 trials x 10,000 seeds" in err and "free memory" in err
    err = _one_line(
        capsys,
        [
            "sweep",
            "--sample",
            "sobol:16",
            "--betas",
            "0:0.99",
            "--lrs",
            "log:1e-3:1",
            "--halving",
            "3",
            "--record-every",
            "4",
        ],
    )
    assert "--record-every does not apply to --halving" in err


@pytest.mark.parametrize(
    "argv",
    [["sweep", "--betas", "x"], ["sweep", "--seeds", "0"], ["bench", "--models", "a"], ["nope"]],
)
def test_a_bad_flag_is_one_line_not_the_usage(argv, capsys):
    err = _one_line(capsys, argv)
    assert "usage:" not in err and "--help" in err
