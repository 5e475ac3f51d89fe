"""asha_sweep: asynchronous successive halving on the lane pool, one compiled program a search.

Checked against peers: every finished trial against trial_sweep of task.train_fn(max_steps),
every decision against a plain-Python ASHA replayed over the recorded arrivals (and Optuna's
own promotion rule), compiles counted with JAX's events, a SIGKILL resumed to the same bits,
4 host devices against one.
"""

import os
import subprocess
import sys

import jax
import numpy as np
import optax
import pytest
from flax import nnx

import jaxmom
from jaxmom.engine import _asha, _lanes_store
from tests.helpers import run_killed

SPACE = {"beta": jaxmom.Uniform(0.0, 0.95), "learning_rate": jaxmom.LogUniform(1e-3, 3.0)}
SEEDS = (0, 1)
# rungs 4, 12, 30: 30 is not a multiple of the segment (4), so a last segment of 2 steps runs
KW = dict(min_steps=4, max_steps=30, eta=3, metric="test_accuracy", progress=False)
N = 24


class Net(nnx.Module):
    """A small MLP with BatchNorm and Dropout (their state and keys ride in the lanes)."""

    def __init__(self, rngs):
        self.a = nnx.Linear(64, 16, rngs=rngs)
        self.bn = nnx.BatchNorm(16, rngs=rngs)
        self.drop = nnx.Dropout(0.2, rngs=rngs)
        self.b = nnx.Linear(16, 10, rngs=rngs)

    def __call__(self, x):
        return self.b(self.drop(nnx.relu(self.bn(self.a(x)))))


def optimizer(beta, learning_rate):
    return jaxmom.sgd_momentum(learning_rate, beta)


TASK = jaxmom.nnx_task(
    Net,
    optax.softmax_cross_entropy_with_integer_labels,
    optimizer,
    batch_size=16,
    metrics={"accuracy": jaxmom.accuracy},
)


def digits():
    x, y, xt, yt = jaxmom.load_digits()
    return (x[:96], y[:96], xt[:64], yt[:64])


DATA = digits()


_COMPILES: list = []


@pytest.fixture(scope="module")
def compiles():
    def listen(event, seconds, **kw):
        if event == "/jax/core/compile/backend_compile_duration":
            _COMPILES.append(seconds)

    if not getattr(compiles, "registered", False):  # jax 0.8 cannot unregister a listener
        jax.monitoring.register_event_duration_secs_listener(listen)
        compiles.registered = True
    return _COMPILES


@pytest.fixture(scope="module")
def searched(compiles):
    """One search, with its compiles counted, and every decision seen by the callback."""
    events, data = [], digits()
    before = len(compiles)
    res = jaxmom.asha_sweep(TASK, SPACE, N, SEEDS, data=data, callback=events.append, **KW)
    return res, events, len(compiles) - before


def test_every_finished_trial_is_the_task_trained_to_the_end(searched):
    res, _, _ = searched
    done = np.flatnonzero(res.rungs["reached"] == 30)
    assert 0 < len(done) < N  # some pruned, some finished
    table = {k: v[done] for k, v in res.trials.items()}
    ref = jaxmom.trial_sweep(TASK.train_fn(30), table, SEEDS, data=digits(), progress=False)
    for name in ref.outputs:
        np.testing.assert_allclose(res[name][done], ref[name], rtol=1e-5, atol=1e-6)
    assert set(res.outputs) == {*ref.outputs, "steps_reached"}
    # the pruned hold NaN, as halving_sweep's do
    assert np.isnan(res["test_accuracy"][res.rungs["reached"] < 30]).all()


def replay(rungs: dict, eta: int) -> np.ndarray:
    """A plain-Python ASHA over the recorded arrivals: each rung's trials in arrival order,
    promoted if in the top len // eta (at least 1) of the finite means seen so far."""
    outcome = np.zeros_like(rungs["outcome"])
    n_rungs = len(rungs["steps"])
    for r in range(n_rungs):
        arrived = np.flatnonzero(rungs["order"][:, r] >= 0)
        seen = []
        for t in arrived[np.argsort(rungs["order"][arrived, r])]:
            value = -float(np.mean(rungs["metric"][t, r]))  # accuracy: maximised
            if not np.isfinite(value):
                outcome[t, r] = 4
                continue
            seen.append(value)
            k = max(len(seen) // eta, 1)
            if r == n_rungs - 1:
                outcome[t, r] = 3
            else:
                outcome[t, r] = 1 if value <= sorted(seen)[k - 1] else 2
    return outcome


def test_every_decision_is_recomputed_from_the_recorded_metrics(searched):
    res, events, _ = searched
    r = res.rungs
    np.testing.assert_array_equal(replay(r, 3), r["outcome"])
    # a promoted trial reached the next rung; every trial reached rung 0; steps add up
    promoted = r["outcome"][:, :-1] == 1
    assert (r["order"][:, 1:][promoted] >= 0).all()
    assert (r["order"][:, 0] >= 0).all()
    # the callback saw each decision once, in the order of the search's model-steps
    assert len(events) == int((r["outcome"] > 0).sum())
    assert [e["model_steps"] for e in events] == sorted(e["model_steps"] for e in events)
    spent = sum(e["steps"] for e in events if e["outcome"] != "promoted") * len(SEEDS)
    assert res.metadata["pool"]["model_steps"] == spent


def test_optunas_pruner_rule_agrees():
    """The promotion rule is Optuna's SuccessiveHalvingPruner's, value by value."""
    sh = pytest.importorskip("optuna.pruners._successive_halving")
    from optuna.study import StudyDirection

    from jaxmom.engine._asha_rule import promotable

    rng = np.random.default_rng(0)
    for _ in range(200):
        values = rng.normal(size=rng.integers(1, 12)).round(1).tolist()
        mine = promotable(values[-1], sorted(values), 3)
        theirs = sh._is_trial_promotable_to_next_rung(
            values[-1], list(values), 3, StudyDirection.MINIMIZE
        )
        assert mine == theirs


def test_the_trace_holds_the_best_so_far_after_every_segment(searched):
    res, _, _ = searched
    t = res.trace
    assert len(t) == res.metadata["pool"]["segments"]
    assert (np.diff(t[:, 0]) >= 0).all() and (np.diff(t[:, 1]) > 0).all()
    done = res.rungs["reached"] == 30
    final = np.where(done, res["test_accuracy"].mean(-1), -np.inf)
    assert t[-1, 2] == pytest.approx(final.max())
    assert int(t[-1, 3]) == int(np.argmax(final))


def test_a_search_is_one_program_and_a_repeated_one_compiles_none(searched, compiles):
    res, _, n = searched
    assert n == 1
    data = digits()
    before = len(compiles)
    again = jaxmom.asha_sweep(TASK, SPACE, N, SEEDS, data=data, **KW)
    assert len(compiles) == before
    for name in res.outputs:
        np.testing.assert_array_equal(again[name], res[name])
    np.testing.assert_array_equal(again.rungs["outcome"], res.rungs["outcome"])
    assert res.metadata["pool"]["busy"] > 0.5
    df = res.to_dataframe()
    assert len(df) == N * len(SEEDS) and "learning_rate" in df
    reached = df.groupby("trial")["steps_reached"].first().to_numpy()
    np.testing.assert_array_equal(reached, res.rungs["reached"])


_KILLED = """
import os, signal, sys
sys.path.insert(0, "tests")
import jaxmom
from jaxmom.engine import _asha
from test_asha import TASK, SPACE, SEEDS, KW, N, digits
_asha.CHECKPOINT_SECONDS = 0.0
seen = []
def kill(event):
    seen.append(event)
    if len(seen) == int(sys.argv[2]):
        os.kill(os.getpid(), signal.SIGKILL)
jaxmom.asha_sweep(TASK, SPACE, N, SEEDS, data=digits(), out=sys.argv[1], callback=kill, **KW)
"""


def test_a_sigkill_mid_search_resumes_to_the_same_bits(tmp_path, searched):
    res, _, _ = searched
    out = tmp_path / "search"
    run_killed(_KILLED, str(out), "20")
    assert (out / _lanes_store.CHECKPOINT).exists()
    resumed = jaxmom.asha_sweep(TASK, SPACE, N, SEEDS, data=digits(), out=out, **KW)
    for name in res.outputs:
        np.testing.assert_array_equal(resumed[name], res[name])
    for name in ("metric", "outcome", "order", "decided_at", "reached"):
        np.testing.assert_array_equal(resumed.rungs[name], res.rungs[name])
    # a finished search's folder gives its result again without computing
    again = jaxmom.asha_sweep(TASK, SPACE, N, SEEDS, data=digits(), out=out, **KW)
    np.testing.assert_array_equal(again.rungs["outcome"], res.rungs["outcome"])
    assert again.metadata["pool"]["segments"] == res.metadata["pool"]["segments"]
    # other settings are refused; a damaged newest checkpoint falls back to the one before
    with pytest.raises(ValueError, match=r"other settings .*eta"):
        jaxmom.asha_sweep(TASK, SPACE, N, SEEDS, data=digits(), out=out, **dict(KW, eta=2))
    (out / _lanes_store.CHECKPOINT).write_bytes(b"damaged")
    back = jaxmom.asha_sweep(TASK, SPACE, N, SEEDS, data=digits(), out=out, **KW)
    np.testing.assert_array_equal(back.rungs["outcome"], res.rungs["outcome"])
    (out / _lanes_store.CHECKPOINT).write_bytes(b"damaged")
    (out / _lanes_store.PREVIOUS).write_bytes(b"damaged")
    with pytest.raises(ValueError, match=r"checkpoints .* are damaged"):
        jaxmom.asha_sweep(TASK, SPACE, N, SEEDS, data=digits(), out=out, **KW)


_DEVICES = """
import sys
sys.path.insert(0, "tests")
import numpy as np, jax, jaxmom
from test_asha import TASK, SPACE, SEEDS, KW, N, digits
assert jax.device_count() == 4
res = jaxmom.asha_sweep(TASK, SPACE, N, SEEDS, data=digits(), lanes=len(SEEDS), **KW)
print(res.metadata["pool"]["devices"], res.metadata["pool"]["slots"])
np.save(sys.argv[1], res.rungs["outcome"]); np.save(sys.argv[2], res.rungs["metric"])
"""


def test_four_host_devices_make_the_one_device_decisions(tmp_path):
    one = jaxmom.asha_sweep(TASK, SPACE, N, SEEDS, data=digits(), lanes=4 * len(SEEDS), **KW)
    env = dict(os.environ, PYTHONPATH=".", XLA_FLAGS="--xla_force_host_platform_device_count=4")
    a, b = tmp_path / "o.npy", tmp_path / "m.npy"
    got = subprocess.run(
        [sys.executable, "-c", _DEVICES, str(a), str(b)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert got.returncode == 0, got.stderr[-2000:]
    assert got.stdout.split() == ["4", "1"]
    np.testing.assert_array_equal(np.load(a), one.rungs["outcome"])
    np.testing.assert_allclose(np.load(b), one.rungs["metric"], rtol=1e-5)


@pytest.mark.parametrize(
    "change, message",
    [
        (dict(n_trials=0), "n_trials"),
        (dict(min_steps=40), "max_steps=30 must be >= min_steps=40"),
        (dict(eta=1), "eta"),
        (dict(metric="nope"), "metric must be a scalar output"),
        (dict(sampler="grid"), "sampler must be one of"),
        (dict(space={"beta": (0, 1)}), "space\\['beta'\\] must be"),
        (dict(lanes=0), "lanes"),
        (dict(callback=3), "callback must be callable"),
        (dict(sampler={"beta": [0.5], "learning_rate": [0.1]}), "space=None"),
        (dict(space=None, sampler={"beta": [0.5]}, n_trials=2), "more than the sampler table"),
        (dict(seeds=3), "seeds must be a sequence"),
        (dict(plan={"segment_steps": 3}), "segment_steps=3 must divide min_steps=4"),
        (dict(task=TASK.train_fn(4)), "task must be a jaxmom.Task"),
    ],
)
def test_bad_arguments_are_refused_before_any_compute(change, message, compiles):
    args = dict(task=TASK, space=SPACE, n_trials=N, seeds=SEEDS, data=DATA, **KW)
    args.update(change)
    before = len(compiles)
    with pytest.raises((ValueError, TypeError), match=message):
        jaxmom.asha_sweep(**args)
    assert len(compiles) == before


def test_a_diverging_trial_is_stopped_at_once_and_is_data():
    """A learning rate that blows up: its trial stops at the first segment whose outputs are
    not finite, is recorded as diverged, and the search goes on."""
    table = {"beta": np.array([0.9, 0.5, 0.0]), "learning_rate": np.array([1e6, 0.1, 0.05])}
    res = jaxmom.asha_sweep(
        TASK, None, 3, SEEDS, data=digits(), sampler=table, **dict(KW, metric="test_loss")
    )
    assert res.rungs["outcome"][0].max() == 4  # diverged
    assert res.diverged[0].any() and not res.diverged[1:].any()
    assert res.rungs["reached"][0] <= 4
    assert _asha.OUTCOMES[4] == "diverged"
