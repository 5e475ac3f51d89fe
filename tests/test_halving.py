"""Task (a run that can be paused) and halving_sweep: a run advanced in pieces is the run
trained at once; every rung's decision is the ranking it claims; a survivor ends where
trial_sweep of the whole training ends; a killed halving resumes to the same bits."""

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
from tests.test_engine import _data
from tests.test_nnx_train import LOSS, Regularized


def _loss(w, x, y):
    return jnp.mean(optax.sigmoid_binary_cross_entropy(x @ w, y))


def _init(hp, key, data):
    w = 0.1 * jax.random.normal(key, (data[0].shape[1],))
    return {"w": w, "v": jnp.zeros_like(w), "key": key, "step": jnp.int32(0)}


def _advance(state, hp, data, steps):
    x, y = data

    def step(s, _):
        k = jax.random.fold_in(s["key"], s["step"])  # a batch of 32 drawn per step
        idx = jax.random.choice(k, x.shape[0], (32,), replace=False)
        g = jax.grad(_loss)(s["w"], x[idx], y[idx])
        v = hp["beta"] * s["v"] + g
        return dict(s, w=s["w"] - hp["learning_rate"] * v, v=v, step=s["step"] + 1), None

    return jax.lax.scan(step, state, None, length=steps)[0]


def _evaluate(state, hp, data):
    x, y = data
    accuracy = jnp.mean((x @ state["w"] > 0) == (y > 0.5))
    return {"loss": _loss(state["w"], x, y), "accuracy": accuracy, "w": state["w"]}


TASK = jaxmom.Task(_init, _advance, _evaluate)
TRIALS = jaxmom.sample(
    {"beta": jaxmom.Uniform(0.0, 0.95), "learning_rate": jaxmom.LogUniform(1e-3, 3.0)}, 27
)
TRIALS["learning_rate"][5] = 3e38  # overflows at once


@pytest.fixture(scope="module")
def data():
    return _data(0, n=256)


@pytest.fixture(scope="module")
def halved(data):
    return jaxmom.halving_sweep(
        TASK,
        TRIALS,
        seeds=[0, 1],
        data=data,
        min_steps=4,
        max_steps=36,
        metric="loss",
        progress=False,
    )


def test_a_run_advanced_in_pieces_is_the_run_trained_at_once(data):
    hp = {"beta": jnp.float32(0.9), "learning_rate": jnp.float32(0.3)}

    @jax.jit
    def pieces(key):
        s = TASK.init(hp, key, data)
        return TASK.advance(TASK.advance(s, hp, data, 5), hp, data, 10)

    whole = jax.jit(lambda key: TASK.advance(TASK.init(hp, key, data), hp, data, 15))
    a, b = pieces(jax.random.key(1)), whole(jax.random.key(1))
    np.testing.assert_allclose(a["w"], b["w"], rtol=1e-6)
    direct = jax.jit(TASK.train_fn(15))(hp, jax.random.key(1), data)
    np.testing.assert_allclose(direct["w"], b["w"], rtol=1e-6)
    assert TASK.train_fn(15) is TASK.train_fn(15)  # one program per steps


def test_an_nnx_run_advanced_in_pieces_across_epochs_is_the_run_at_once():
    """Dropout, BatchNorm and a partial last batch: 70 examples, batches of 16 (5 steps an
    epoch); 3 + 9 steps cross two epoch boundaries in the middle of a piece."""
    kx, kw = jax.random.split(jax.random.key(0))
    x = jax.random.normal(kx, (70, 6))
    data = (x, jnp.argmax(x @ jax.random.normal(kw, (6, 3)), axis=1), x[:20], jnp.zeros(20, int))
    task = jaxmom.nnx_task(
        Regularized,
        LOSS,
        lambda beta: jaxmom.sgd_momentum(0.05, beta),
        batch_size=16,
        metrics={"accuracy": jaxmom.accuracy},
    )
    hp = {"beta": jnp.float32(0.9)}

    @jax.jit
    def run(key):
        s = task.init(hp, key, data)
        one = task.advance(task.advance(s, hp, data, 3), hp, data, 9)
        return task.evaluate(one, hp, data), task.evaluate(task.advance(s, hp, data, 12), hp, data)

    pieces, whole = run(jax.random.key(4))
    for k in ("final_loss", "test_loss", "test_accuracy"):
        np.testing.assert_allclose(pieces[k], whole[k], rtol=1e-6)
    # final_loss is the mean loss of the last finished epoch, as nnx_train_fn's epoch_losses
    fn = jaxmom.nnx_train_fn(
        Regularized, LOSS, lambda beta: jaxmom.sgd_momentum(0.05, beta), epochs=2, batch_size=16
    )
    out = jax.jit(fn)(hp, jax.random.key(4), data)
    np.testing.assert_allclose(out["final_loss"], out["epoch_losses"][-1], rtol=1e-6)


def test_the_batch_window_of_pieces_is_the_window_of_the_whole():
    key = jax.random.key(3)
    whole = jaxmom.batch_window(key, 70, 16, 0, 20)
    for start, steps in [(0, 7), (7, 1), (8, 12)]:
        part = jaxmom.batch_window(key, 70, 16, jnp.int32(start), steps)
        np.testing.assert_array_equal(part.indices, whole.indices[start : start + steps])
        np.testing.assert_array_equal(part.mask, whole.mask[start : start + steps])
    for epoch in range(4):  # each epoch visits every example once; the padding is masked
        idx, mask = whole.indices[epoch * 5 : epoch * 5 + 5], whole.mask[epoch * 5 : epoch * 5 + 5]
        assert sorted(np.asarray(idx)[np.asarray(mask)].tolist()) == list(range(70))
        assert int(mask.sum()) == 70


def test_every_rung_keeps_the_best_third_of_its_trials_by_their_mean(halved):
    steps, record, reached = halved.rungs["steps"], halved.rungs["metric"], halved.rungs["reached"]
    assert steps.tolist() == [4, 12, 36]
    alive = np.arange(27)
    for rung in range(len(steps)):
        assert np.isnan(record[np.setdiff1d(np.arange(27), alive), rung]).all()
        mean = record[alive, rung].mean(-1)
        assert np.isfinite(mean).all() or rung == 0
        if rung < len(steps) - 1:
            order = alive[np.argsort(np.where(np.isfinite(mean), mean, np.inf), kind="stable")]
            alive = np.sort(order[: len(alive) // 3])
    assert len(alive) == 3 and set(np.flatnonzero(reached == 36)) == set(alive.tolist())
    assert reached[5] == 4 and halved.diverged[5].all()  # the diverged trial stopped at once
    assert np.isnan(halved["loss"][np.flatnonzero(reached < 36)]).all()


def test_survivors_end_where_trial_sweep_of_the_whole_training_ends(halved, data):
    full = jaxmom.trial_sweep(TASK.train_fn(36), TRIALS, seeds=[0, 1], data=data, progress=False)
    done = halved.rungs["reached"] == 36
    for name in ("loss", "w"):
        np.testing.assert_allclose(halved[name][done], full[name][done], rtol=1e-5, atol=1e-7)
    best = halved.best(1, "loss")[0]
    assert full.best(1, "loss")[0]["loss"] <= best["loss"] + 1e-6
    assert best["beta"] == TRIALS["beta"][best["trial"]]


def test_mode_max_keeps_the_highest_and_hyperband_shares_the_trials(data):
    res = jaxmom.halving_sweep(
        TASK,
        TRIALS,
        seeds=[0],
        data=data,
        min_steps=4,
        max_steps=36,
        brackets=3,
        metric="accuracy",
        progress=False,
    )
    bracket, reached = res.rungs["bracket"], res.rungs["reached"]
    sizes = jaxmom.engine._halving.bracket_sizes(27, 3, 3, 3)
    assert [int((bracket == b).sum()) for b in range(3)] == sizes and sum(sizes) == 27
    for b, first in enumerate([4, 12, 36]):
        assert (reached[bracket == b] >= first).all()
    rows = np.flatnonzero(bracket == 0)
    acc = res.rungs["metric"][rows, 0, 0]
    kept, finite = reached[rows] > 4, ~res.diverged[rows, 0]
    assert kept.sum() == sizes[0] // 3
    assert acc[kept].min() >= acc[~kept & finite].max()


_HALVING = """
import sys, numpy as np, jax
import jaxmom
from tests.test_halving import TASK, TRIALS
from tests.test_engine import _data
res = jaxmom.halving_sweep(TASK, TRIALS, seeds=[0, 1], data=_data(0, n=256), min_steps=4,
                           max_steps=36, metric="loss", progress=False, out=sys.argv[1],
                           chunk_size=2)
np.save(sys.argv[1] + "/w.npy", res["w"])
"""


def test_a_killed_halving_resumes_to_the_same_bits(tmp_path, halved):
    out = tmp_path / "h"
    proc = subprocess.Popen([sys.executable, "-c", _HALVING, str(out)])
    deadline = time.time() + 120
    while not (out / "b0_r1.zarr" / "status" / "c").exists() and time.time() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (out / "w.npy").exists()
    subprocess.run([sys.executable, "-c", _HALVING, str(out)], check=True, timeout=300)
    got = np.load(out / "w.npy")
    done = halved.rungs["reached"] == 36
    np.testing.assert_allclose(got[done], halved["w"][done], rtol=1e-6)
    assert np.isnan(got[~done]).all()


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(metric="w"), "metric must be a scalar output"),
        (dict(metric="nope"), "metric must be a scalar output"),
        (dict(brackets=4), "brackets=4 is more than the 3 rungs"),
        (dict(eta=1), "eta must be"),
        (dict(max_steps=2), "max_steps=2 must be >= min_steps=4"),
        (dict(mode="up"), "mode must be 'min' or 'max'"),
    ],
)
def test_bad_settings_are_refused_before_any_compute(kwargs, match, data):
    args = dict(data=data, min_steps=4, max_steps=36, metric="loss", progress=False) | kwargs
    with pytest.raises(ValueError, match=match):
        jaxmom.halving_sweep(TASK, TRIALS, **args)
    with pytest.raises(TypeError, match=r"task must be a jaxmom\.Task"):
        jaxmom.halving_sweep(
            TASK.train_fn(4), TRIALS, data=data, min_steps=4, max_steps=8, metric="loss"
        )


def test_a_halving_folder_with_other_settings_or_foreign_files_is_refused(tmp_path, data):
    args = dict(data=data, min_steps=4, max_steps=12, metric="loss", progress=False)
    jaxmom.halving_sweep(TASK, TRIALS, out=tmp_path / "h", **args)
    with pytest.raises(ValueError, match=r"other settings \(differing: steps, eta\)"):
        jaxmom.halving_sweep(TASK, TRIALS, out=tmp_path / "h", **dict(args, eta=2, max_steps=8))
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="exists and is not a halving sweep's folder"):
        jaxmom.halving_sweep(TASK, TRIALS, out=tmp_path / "x", **args)


def test_halving_an_nnx_model_from_within_its_first_epoch():
    """Dropout and BatchNorm; the first rung (2 steps) ends before an epoch (5 steps) does,
    so no run has an epoch loss yet: none counts as diverged, and the survivors end as the
    whole training does."""
    kx, kw = jax.random.split(jax.random.key(0))
    x = jax.random.normal(kx, (70, 6))
    y = jnp.argmax(x @ jax.random.normal(kw, (6, 3)), axis=1)
    data = (x, y, x[:30], y[:30])
    task = jaxmom.nnx_task(
        Regularized,
        LOSS,
        lambda beta, learning_rate: jaxmom.sgd_momentum(learning_rate, beta),
        batch_size=16,
        metrics={"accuracy": jaxmom.accuracy},
    )
    trials = jaxmom.sample(
        {"beta": jaxmom.Uniform(0.0, 0.9), "learning_rate": jaxmom.LogUniform(1e-3, 0.3)}, 9
    )
    res = jaxmom.halving_sweep(
        task,
        trials,
        seeds=[0, 1],
        data=data,
        min_steps=2,
        max_steps=18,
        metric="test_loss",
        progress=False,
    )
    assert not res.diverged.any()
    assert res.rungs["steps"].tolist() == [2, 6, 18] and (res.rungs["reached"] == 18).sum() == 1
    full = jaxmom.trial_sweep(task.train_fn(18), trials, seeds=[0, 1], data=data, progress=False)
    done = res.rungs["reached"] == 18
    for name in ("final_loss", "test_loss", "test_accuracy"):
        np.testing.assert_allclose(res[name][done], full[name][done], rtol=1e-5)


def test_halving_on_four_devices_gives_the_one_device_runs(tmp_path, halved):
    out = tmp_path / "h4"
    env = dict(__import__("os").environ, XLA_FLAGS="--xla_force_host_platform_device_count=4")
    subprocess.run([sys.executable, "-c", _HALVING, str(out)], check=True, timeout=300, env=env)
    got = np.load(out / "w.npy")
    done = halved.rungs["reached"] == 36
    np.testing.assert_allclose(got[done], halved["w"][done], rtol=1e-6)
    assert (np.isnan(got[~done])).all()


def test_halving_and_hyperband_run_on_one_pool_program(data, halved, tmp_path):
    """In memory, every rung and bracket runs the lane pool's one program: a repeated call
    compiles nothing, Hyperband's three brackets at most one program, and the decisions are
    those of the rung stores (out=), which run each rung as a sweep of its own."""
    compiles = []
    jax.monitoring.register_event_duration_secs_listener(
        lambda name, secs, **kw: compiles.append(name) if "backend_compile" in name else None
    )
    kw = dict(seeds=[0, 1], data=data, min_steps=4, max_steps=36, metric="loss", progress=False)
    again = jaxmom.halving_sweep(TASK, TRIALS, **kw)
    assert compiles == []
    for name in again.outputs:
        np.testing.assert_array_equal(again[name], halved[name])
    jaxmom.halving_sweep(TASK, TRIALS, brackets=3, **kw)
    assert len(compiles) <= 1
    stored = jaxmom.halving_sweep(TASK, TRIALS, out=tmp_path / "h", **kw)
    np.testing.assert_array_equal(stored.rungs["reached"], halved.rungs["reached"])
    np.testing.assert_array_equal(stored.diverged, halved.diverged)
    np.testing.assert_allclose(stored.rungs["metric"], halved.rungs["metric"], rtol=1e-6)
