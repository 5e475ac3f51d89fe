"""Vectorized sweeps: equal to single runs, on any number of devices, resumable, divergence-safe."""

import json
import math
import os
import signal
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxmom
from jaxmom.cli import main as cli_main
from jaxmom.common import umask

BETAS = [0.0, 0.6, 0.9]
LRS = [0.01, 0.05]
SEEDS = [0, 3]
EPOCHS = 2  # 64 steps: enough to compare, quick to compile


@pytest.fixture(scope="module")
def small():
    return jaxmom.sweep(BETAS, LRS, SEEDS, epochs=EPOCHS, progress=False)


def test_each_run_equals_a_single_train(small):
    assert small.step_losses.shape == (3, 2, 2, 64)
    assert small.epoch_losses.shape == (3, 2, 2, EPOCHS)
    assert small.final_loss.shape == small.diverged.shape == (3, 2, 2)
    for i, b in enumerate(BETAS):
        for j, lr in enumerate(LRS):
            for k, s in enumerate(SEEDS):
                opt = jaxmom.sgd_momentum(jnp.float32(lr), jnp.float32(b))
                ref = jaxmom.train(opt, seed=s, epochs=EPOCHS)
                np.testing.assert_allclose(small.step_losses[i, j, k], ref.step_losses, rtol=1e-4)


def test_nesterov_sweep_equals_single_runs():
    res = jaxmom.sweep([0.9], [0.05], [1], epochs=1, nesterov=True, progress=False)
    ref = jaxmom.train(jaxmom.sgd_momentum(0.05, 0.9, nesterov=True), seed=1, epochs=1)
    np.testing.assert_allclose(res.step_losses[0, 0, 0], ref.step_losses, rtol=1e-4)


def test_chunks_give_the_same_numbers(small, tmp_path):
    out = tmp_path / "chunked.zarr"
    chunked = jaxmom.sweep(BETAS, LRS, SEEDS, epochs=EPOCHS, chunk_size=2, progress=False, out=out)
    assert json.loads((out / "zarr.json").read_text())["attributes"]["block"] == [2, 1]
    np.testing.assert_allclose(chunked.step_losses, small.step_losses, rtol=1e-5)


def test_fewer_recorded_steps_are_the_same_numbers(small):
    sparse = jaxmom.sweep(BETAS, LRS, SEEDS, epochs=EPOCHS, progress=False, record_every=8)
    np.testing.assert_array_equal(sparse.step_losses, small.step_losses[..., ::8])
    none = jaxmom.sweep(BETAS, LRS, SEEDS, epochs=EPOCHS, progress=False, record_every=0)
    assert "step_losses" not in none.outputs
    np.testing.assert_array_equal(none.final_loss, small.epoch_losses[..., -1])


def test_divergence_is_flagged_and_isolated():
    res = jaxmom.sweep([0.5, 0.99], [0.01, 50.0], [0], epochs=1, progress=False)
    assert res.diverged[:, 1].all() and not res.diverged[:, 0].any()
    assert not np.all(np.isfinite(res.step_losses[:, 1]))  # losses kept as they are
    alone = jaxmom.sweep([0.5, 0.99], [0.01], [0], epochs=1, progress=False)
    np.testing.assert_allclose(res.step_losses[:, :1], alone.step_losses, rtol=1e-6)
    assert "2 diverged" in res.summary()
    assert all(np.isfinite(r["final_loss"]) for r in res.best())


def test_save_load_round_trip(small, tmp_path):
    path = small.save(tmp_path / "s.zarr")
    back = jaxmom.SweepResult.load(path)
    np.testing.assert_array_equal(back.step_losses, small.step_losses)
    np.testing.assert_array_equal(back.axes["beta"], small.axes["beta"])
    assert back.axes["beta"].tolist() == BETAS  # as given: 0.6, not 0.6000000238418579
    assert back.metadata["settings"] == small.metadata["settings"]
    assert back.best(1)[0]["beta"] in BETAS
    rows = small.to_csv(tmp_path / "s.csv").read_text().splitlines()
    assert rows[0] == "beta,learning_rate,seed,final_loss,diverged" and len(rows) == 1 + 12
    assert rows[1].startswith("0.0,0.01,0,")
    small.plot(tmp_path / "s.png")
    assert (tmp_path / "s.png").stat().st_size > 10_000
    assert oct((tmp_path / "s.csv").stat().st_mode & 0o777) == oct(0o666 & ~umask())


def test_files_of_jaxmom_0_1_still_load(small, tmp_path):
    """The ``.npz`` that ``SweepResult.save`` wrote before the store (format jaxmom.sweep/1)."""
    meta = {"format": "jaxmom.sweep/1", "settings": {"chunk_runs": 6}}
    path = tmp_path / "old.npz"
    np.savez(
        path,
        betas=np.float32(BETAS),
        learning_rates=np.float32(LRS),
        seeds=np.int64(SEEDS),
        step_losses=small.step_losses,
        epoch_losses=small.epoch_losses,
        done=np.ones(1, bool),
        metadata=np.array(json.dumps(meta)),
    )
    old = jaxmom.SweepResult.load(path)
    np.testing.assert_array_equal(old.step_losses, small.step_losses)
    np.testing.assert_array_equal(old.final_loss, small.final_loss)
    assert old.complete and not old.diverged.any()


def test_corrupt_or_foreign_files_are_clear_errors(tmp_path):
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a zip file")
    with pytest.raises(ValueError, match=r"junk\.npz' is not a jaxmom sweep") as e:
        jaxmom.SweepResult.load(junk)
    assert "pickle" not in str(e.value)
    foreign = tmp_path / "foreign.npz"
    np.savez(foreign, metadata=np.array(json.dumps({"format": "other"})))
    with pytest.raises(ValueError, match="not a jaxmom sweep"):
        jaxmom.SweepResult.load(foreign)
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "zarr.json").write_text("{not json")
    with pytest.raises(ValueError, match="not a readable jaxmom sweep store"):
        jaxmom.SweepResult.load(folder)


def test_resume_with_other_settings_is_an_error(tmp_path):
    out = tmp_path / "s.zarr"
    jaxmom.sweep([0.5], [0.01], [0], epochs=1, progress=False, out=out)
    with pytest.raises(ValueError, match=r"other settings.*axes"):
        jaxmom.sweep([0.6], [0.01], [0], epochs=1, progress=False, out=out)
    with pytest.raises(ValueError, match=r"other settings.*settings"):
        jaxmom.sweep([0.5], [0.01], [0], epochs=1, nesterov=True, progress=False, out=out)


def test_resume_skips_finished_chunks(tmp_path):
    out = tmp_path / "s.zarr"
    first = jaxmom.sweep(BETAS, LRS, [0], epochs=1, chunk_size=2, progress=False, out=out)
    again = jaxmom.sweep(BETAS, LRS, [0], epochs=1, chunk_size=2, progress=False, out=out)
    np.testing.assert_array_equal(first.step_losses, again.step_losses)
    assert again.complete


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(betas=[0.5, 1.5]), "betas=1.5"),
        (dict(betas=[]), "betas must be a non-empty"),
        (dict(learning_rates=[0.01, -1.0]), "learning_rates=-1.0"),
        (dict(seeds=[0.5]), "seeds must be"),
        (dict(seeds=[0, 2**32]), r"seeds must lie in \[0, 2\*\*32\)"),
        (dict(seeds=[3, 3]), "seeds must be distinct"),
        (dict(learning_rates=[1e-50]), "learning_rates=1e-50 does not fit float32"),
        (dict(learning_rates=[0.1, -1.0]), "learning_rates must be finite and >= 0"),
        (dict(record_every=-1), "record_every=-1"),
        (dict(epochs=0), "epochs=0"),
        (dict(batch_size=0), "batch_size=0"),
        (dict(chunk_size=0), "chunk_size=0"),
    ],
)
def test_bad_arguments(kwargs, match):
    args = dict(betas=[0.5], progress=False) | kwargs
    with pytest.raises(ValueError, match=match):
        jaxmom.sweep(**args)


def test_generic_grid_sweep_with_nesterov_on_a_quadratic():
    h = jnp.array([1.0, 10.0])

    def train_fn(hp, key):
        opt = optax.chain(jaxmom.momentum(hp["beta"], nesterov=True), optax.scale(-hp["lr"]))
        x = jax.random.normal(key, (2,))

        def step(carry, _):
            x, s = carry
            u, s = opt.update(h * x, s)
            return (x + u, s), 0.5 * jnp.sum(h * x**2)

        return {"loss": jax.lax.scan(step, (x, opt.init(x)), length=20)[1]}

    grid = {"beta": [0.0, 0.5, 0.9], "lr": [0.01, 0.1]}
    out = jaxmom.grid_sweep(train_fn, grid, seeds=[0, 1], chunk_size=4, progress=False)
    assert out["loss"].shape == (3, 2, 2, 20)
    assert out.diverged.shape == (3, 2, 2) and not out.diverged.any()
    for i, b in enumerate(grid["beta"]):
        for j, lr in enumerate(grid["lr"]):
            for k, s in enumerate([0, 1]):
                ref = train_fn({"beta": jnp.float32(b), "lr": jnp.float32(lr)}, jax.random.key(s))
                np.testing.assert_allclose(out["loss"][i, j, k], ref["loss"], rtol=1e-5)


# -- the command line, devices and kills: separate processes ----------------------------------


def _jaxmom(args, env=None, **kw):
    env = dict(os.environ, **(env or {}))
    return subprocess.Popen(
        [sys.executable, "-m", "jaxmom", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kw,
    )


def test_four_host_devices_give_the_same_numbers(small, tmp_path):
    out = tmp_path / "four.zarr"
    args = [
        "sweep",
        "--betas",
        "0,0.6,0.9",
        "--lrs",
        "0.01,0.05",
        "--seeds",
        "4",
        "--epochs",
        str(EPOCHS),
        "--devices",
        "4",
        "--no-progress",
        "--out",
        str(out),
    ]
    proc = _jaxmom(args)
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 0, stderr
    assert "4 cpu device(s)" in stdout
    import zarr  # 24 runs on 4 devices: a block of 6 runs each, none recomputing another's

    assert zarr.open_group(out, mode="r").attrs["block"] == [6, 1]
    four = jaxmom.SweepResult.load(out)
    np.testing.assert_allclose(four.step_losses[:, :, SEEDS], small.step_losses, rtol=1e-5)


def test_killed_at_random_moments_resumes_on_other_device_counts_to_the_same_bits(tmp_path):
    """Killed three times (SIGKILL, at random moments: in a chunk or a write), on 2 devices and
    then 3, and finished on 1: the same bits as one uninterrupted run on 1 device."""
    common = [
        "sweep",
        "--betas",
        "0:0.99:300",
        "--lrs",
        "0.01,0.1",
        "--seeds",
        "2",
        "--epochs",
        "1",
        "--no-progress",
    ]
    whole = tmp_path / "whole.zarr"
    proc = _jaxmom([*common, "--chunk-size", "4", "--devices", "1", "--out", str(whole)])
    assert proc.wait(timeout=300) == 0, proc.stderr.read()

    killed = tmp_path / "killed.zarr"
    rng = np.random.default_rng(0)

    def blocks_done():
        return len(list((killed / "status" / "c").glob("*/*")))

    for devices in (2, 3, 3):  # a per-device block of 4 runs whatever the count: 8, 12 a call
        before = blocks_done() if killed.exists() else 0
        args = [*common, "--chunk-size", str(4 * devices), "--devices", str(devices)]
        proc = _jaxmom([*args, "--out", str(killed)])
        deadline = time.time() + 300
        while (not killed.exists() or blocks_done() <= before) and time.time() < deadline:
            time.sleep(0.002)  # until this process has written a block: it is in the loop
        time.sleep(rng.uniform(0.0, 0.3))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    partial = jaxmom.SweepResult.load(killed)
    assert not partial.complete, "the sweep finished before the kills"
    assert not partial.diverged.any()  # runs not yet done are not counted as diverged
    assert partial.done.any() and not partial.done.all()

    proc = _jaxmom([*common, "--chunk-size", "4", "--devices", "1", "--out", str(killed)])
    assert proc.wait(timeout=300) == 0, proc.stderr.read()
    a, b = jaxmom.SweepResult.load(whole), jaxmom.SweepResult.load(killed)
    assert b.complete
    assert not list(killed.rglob("*.partial"))  # a temporary file of a killed write is gone
    for name in a.outputs:
        np.testing.assert_array_equal(a[name], b[name])


def test_two_processes_store_the_single_process_bits(tmp_path):
    """Two processes on 127.0.0.1, one CPU device each, each writing its own blocks to one
    store, against one process with two devices: bit for bit."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    common = [
        "sweep",
        "--betas",
        "0:0.99:40",
        "--lrs",
        "0.01,0.1",
        "--seeds",
        "3",
        "--epochs",
        "1",
        "--chunk-size",
        "8",
        "--no-progress",
    ]
    multi = tmp_path / "multi.zarr"
    distributed = ["--distributed", "--coordinator", f"127.0.0.1:{port}", "--num-processes", "2"]
    procs = [
        _jaxmom(
            [*common, "--devices", "1", "--out", str(multi), *distributed, "--process-id", str(i)]
        )
        for i in range(2)
    ]
    for p in procs:
        assert p.wait(timeout=300) == 0, p.stderr.read()
    single = tmp_path / "single.zarr"
    proc = _jaxmom([*common, "--devices", "2", "--out", str(single)])
    assert proc.wait(timeout=300) == 0, proc.stderr.read()
    a, b = jaxmom.SweepResult.load(single), jaxmom.SweepResult.load(multi)
    assert b.metadata["processes"] == 2 and b.complete
    for name in a.outputs:
        np.testing.assert_array_equal(a[name], b[name])


# ``python -m jaxmom ARGS`` with Ctrl-C's usual handler, as from a terminal, also where the suite
# runs as a background job (a shell starts those with SIGINT ignored, and Python then installs
# no handler)
INTERRUPTIBLE = (
    "import runpy, signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
    "sys.argv[0] = 'jaxmom'; runpy.run_module('jaxmom', run_name='__main__')"
)


def test_ctrl_c_ends_with_one_line_saying_the_store_resumes(tmp_path):
    out = tmp_path / "s.zarr"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            INTERRUPTIBLE,
            "sweep",
            "--betas",
            "0:0.99:40000",
            "--seeds",
            "2",
            "--epochs",
            "200",  # 5e8 model-steps: seconds on any CPU, so Ctrl-C lands before the end
            "--record-every",
            "0",
            "--chunk-size",
            "64",
            "--devices",
            "1",
            "--no-progress",
            "--out",
            str(out),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.time() + 300
    while not (out / "status" / "c").exists() and time.time() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr and "the same command resumes it" in stderr
    assert not jaxmom.SweepResult.load(out).complete


@pytest.mark.parametrize(
    "argv, match",
    [
        (["sweep", "--betas", "0:1"], "START:STOP:NUM"),
        (["sweep", "--betas", "0:1.5:3"], "--betas must be finite and in"),
        (["sweep", "--lrs", "0.01,abc"], "comma-separated list"),
        (["sweep", "--lrs", "-0.1"], "--lrs must be finite and >= 0, got --lrs=-0.1"),
        (["sweep", "--lrs", "1e-50"], "--lrs=1e-50 does not fit float32"),
        (["sweep", "--lrs", "0.1,1e39"], "--lrs=1e+39 does not fit float32"),
        (["sweep", "--betas", "-inf"], "--betas must be finite and in [0, 1], got --betas=-inf"),
        (["sweep", "--betas", "-0.5:0.5:3"], "got --betas=-0.5"),
        (["sweep", "--plot", "x.pdf"], "--plot writes a PNG"),
        (["sweep", "--seeds", "0"], "expected a positive integer, got '0'"),
        (["sweep", "--chunk-size", "-3"], "expected a positive integer"),
        (["sweep", "--bogus"], "unrecognized arguments"),
        (["sweep", "--csv", "/no/such/folder/x.csv"], "--csv '/no/such/folder/x.csv': folder"),
        (["sweep", "--plot", "/no/such/folder/x.png"], "--plot"),
        (["sweep", "--out", "/no/such/folder/s.zarr"], "--out '/no/such/folder/s.zarr'"),
        (["sweep", "--distributed", "--process-id", "0"], "give all of --coordinator"),
        (["sweep", "--record-every", "-2"], "expected an integer >= 0"),
        (["bench", "--out", "/no/such/folder/b.json"], "--out '/no/such/folder/b.json'"),
        (["bench", "--methods", ""], "--methods is empty"),
        (["bench", "--out", "benchmarks/cpu_2core_epyc.json"], "exists: give a new file"),
        (["theory", "--mu", "-1", "--L", "2"], "need 0 < mu <= L"),
        (["theory", "--mu", "1e300", "--L", "1e308"], "beyond float64"),
        (["theory", "--mu", "1e-320", "--L", "1"], "beyond float64"),
    ],
)
def test_bad_flags_exit_2_with_a_message(argv, match, capsys):
    with pytest.raises(SystemExit) as e:
        cli_main([*argv, "--no-progress"] if argv[0] == "sweep" and argv[-1] != "--bogus" else argv)
    assert e.value.code == 2
    assert match in capsys.readouterr().err


def test_plot_without_a_suffix_writes_and_names_the_png(tmp_path, capsys):
    argv = ["sweep", "--betas", "0.5,0.9", "--epochs", "1", "--no-progress", "--devices", "1"]
    assert cli_main([*argv, "--plot", str(tmp_path / "x")]) == 0
    assert f"wrote {tmp_path / 'x.png'}" in capsys.readouterr().out
    assert (tmp_path / "x.png").read_bytes()[:4] == b"\x89PNG"
    assert not (tmp_path / "x").exists()


def test_version_and_theory_in_float64(capsys):
    with pytest.raises(SystemExit) as e:
        cli_main(["--version"])
    assert e.value.code == 0 and capsys.readouterr().out.strip() == f"jaxmom {jaxmom.__version__}"
    assert cli_main(["theory", "--mu", "1e-8", "--L", "1"]) == 0
    out = capsys.readouterr().out  # GD's rate is 1 - 2e-8: ln(1e6) / 2e-8 steps, not "inf"
    want = math.ceil(math.log(1e-6) / math.log1p(-2e-8 / (1 + 1e-8)))
    assert f"rate 1 - 2e-08, {want:,} steps" in out and 6.9e8 < want < 6.91e8
    assert cli_main(["theory", "--mu", "1e39", "--L", "1e40"]) == 0  # float32 would overflow
    assert "rate 0.519494, 22 steps" in capsys.readouterr().out
    assert cli_main(["theory", "--mu", "3", "--L", "3"]) == 0
    assert "1 step to 1e-6" in capsys.readouterr().out


def test_every_flag_has_help():
    import argparse

    from jaxmom.cli._main import _parser

    parser = _parser()
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name, sub in subparsers.choices.items():
        for action in sub._actions:
            assert action.help, f"jaxmom {name} {action.option_strings} has no help text"
