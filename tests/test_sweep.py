"""Vectorized sweeps: equal to single runs, on any number of devices, resumable, divergence-safe."""

import json
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


def test_chunks_give_the_same_numbers(small):
    chunked = jaxmom.sweep(BETAS, LRS, SEEDS, epochs=EPOCHS, chunk_size=2, progress=False)
    assert chunked.metadata["settings"]["chunk_runs"] == 1
    np.testing.assert_allclose(chunked.step_losses, small.step_losses, rtol=1e-5)


def test_divergence_is_flagged_and_isolated():
    res = jaxmom.sweep([0.5, 0.99], [0.01, 50.0], [0], epochs=1, progress=False)
    assert res.diverged[:, 1].all() and not res.diverged[:, 0].any()
    assert not np.all(np.isfinite(res.step_losses[:, 1]))  # losses kept as they are
    alone = jaxmom.sweep([0.5, 0.99], [0.01], [0], epochs=1, progress=False)
    np.testing.assert_allclose(res.step_losses[:, :1], alone.step_losses, rtol=1e-6)
    assert "2 diverged" in res.summary()
    assert all(np.isfinite(r["final_loss"]) for r in res.best())


def test_save_load_round_trip_without_pickle(small, tmp_path):
    path = small.save(tmp_path / "s.npz")
    with np.load(path, allow_pickle=False) as z:
        assert json.loads(str(z["metadata"]))["format"] == "jaxmom.sweep/1"
    back = jaxmom.SweepResult.load(path)
    np.testing.assert_array_equal(back.step_losses, small.step_losses)
    np.testing.assert_array_equal(back.betas, small.betas)
    assert back.metadata["settings"] == small.metadata["settings"]
    rows = small.to_csv(tmp_path / "s.csv").read_text().splitlines()
    assert rows[0] == "beta,learning_rate,seed,final_loss,diverged" and len(rows) == 1 + 12
    small.plot(tmp_path / "s.png")
    assert (tmp_path / "s.png").stat().st_size > 10_000


def test_corrupt_or_foreign_files_are_clear_errors(tmp_path):
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a zip file")
    with pytest.raises(ValueError, match=r"junk\.npz is not a readable jaxmom sweep file"):
        jaxmom.SweepResult.load(junk)
    foreign = tmp_path / "foreign.npz"
    np.savez(foreign, metadata=np.array(json.dumps({"format": "other"})))
    with pytest.raises(ValueError, match="not a jaxmom sweep file"):
        jaxmom.SweepResult.load(foreign)


def test_resume_with_other_settings_is_an_error(tmp_path):
    out = tmp_path / "s.npz"
    jaxmom.sweep([0.5], [0.01], [0], epochs=1, progress=False, out=out)
    with pytest.raises(ValueError, match=r"other settings.*betas"):
        jaxmom.sweep([0.6], [0.01], [0], epochs=1, progress=False, out=out)


def test_resume_skips_finished_chunks(tmp_path):
    out = tmp_path / "s.npz"
    first = jaxmom.sweep(BETAS, LRS, [0], epochs=1, chunk_size=2, progress=False, out=out)
    again = jaxmom.sweep(BETAS, LRS, [0], epochs=1, chunk_size=2, progress=False, out=out)
    np.testing.assert_array_equal(first.step_losses, again.step_losses)
    assert again.metadata["complete"]


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(betas=[0.5, 1.5]), "betas=1.5"),
        (dict(betas=[]), "betas must be a non-empty"),
        (dict(learning_rates=[0.01, -1.0]), "learning_rates=-1.0"),
        (dict(seeds=[0.5]), "seeds must be"),
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
    for i, b in enumerate(grid["beta"]):
        for j, lr in enumerate(grid["lr"]):
            for k, s in enumerate([0, 1]):
                ref = train_fn({"beta": jnp.float32(b), "lr": jnp.float32(lr)}, jax.random.key(s))
                np.testing.assert_allclose(out["loss"][i, j, k], ref["loss"], rtol=1e-5)


# -- the command line, devices and kills: separate processes ----------------------------------


def _jaxmom(args, env=None, **kw):
    env = dict(os.environ, **(env or {}))
    return subprocess.Popen(
        [sys.executable, "-m", "jaxmom", *args], env=env, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, **kw,
    )  # fmt: skip


def test_four_host_devices_give_the_same_numbers(small, tmp_path):
    out = tmp_path / "four.npz"
    args = ["sweep", "--betas", "0,0.6,0.9", "--lrs", "0.01,0.05", "--seeds", "4", "--epochs",
            str(EPOCHS), "--devices", "4", "--no-progress", "--out", str(out)]  # fmt: skip
    proc = _jaxmom(args)
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 0, stderr
    assert "4 cpu device(s)" in stdout
    four = jaxmom.SweepResult.load(out)
    assert four.metadata["settings"]["n_devices"] == 4
    np.testing.assert_allclose(four.step_losses[:, :, SEEDS], small.step_losses, rtol=1e-5)


def test_killed_sweep_resumes_to_the_same_bits(tmp_path):
    common = ["sweep", "--betas", "0:0.99:200", "--seeds", "1", "--epochs", "1",
              "--chunk-size", "1", "--devices", "1", "--no-progress"]  # fmt: skip
    whole = tmp_path / "whole.npz"
    proc = _jaxmom([*common, "--out", str(whole)])
    assert proc.wait(timeout=300) == 0, proc.stderr.read()

    killed = tmp_path / "killed.npz"
    proc = _jaxmom([*common, "--out", str(killed)])
    deadline = time.time() + 300
    while not killed.exists() and time.time() < deadline:
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    partial = jaxmom.SweepResult.load(killed)
    assert not partial.metadata["complete"], "the sweep finished before the kill"

    proc = _jaxmom([*common, "--out", str(killed)])
    assert proc.wait(timeout=300) == 0, proc.stderr.read()
    a, b = jaxmom.SweepResult.load(whole), jaxmom.SweepResult.load(killed)
    assert b.metadata["complete"]
    assert not list(tmp_path.glob("*.tmp"))  # a temporary file of the killed save is gone
    np.testing.assert_array_equal(a.step_losses, b.step_losses)
    np.testing.assert_array_equal(a.epoch_losses, b.epoch_losses)


@pytest.mark.parametrize(
    "argv, match",
    [
        (["sweep", "--betas", "0:1"], "START:STOP:NUM"),
        (["sweep", "--betas", "0:1.5:3"], "betas must be finite and in"),
        (["sweep", "--lrs", "0.01,abc"], "comma-separated list"),
        (["sweep", "--lrs", "-0.1"], "learning_rates must be finite and > 0"),
        (["sweep", "--seeds", "0"], "expected a positive integer, got '0'"),
        (["sweep", "--chunk-size", "-3"], "expected a positive integer"),
        (["sweep", "--bogus"], "unrecognized arguments"),
    ],
)
def test_bad_flags_exit_2_with_a_message(argv, match, capsys):
    with pytest.raises(SystemExit) as e:
        cli_main([*argv, "--no-progress"] if argv[-1] != "--bogus" else argv)
    assert e.value.code == 2
    assert match in capsys.readouterr().err
