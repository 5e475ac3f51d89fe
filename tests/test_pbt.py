"""pbt_sweep: population-based training on the lane pool. Every member's final run is replayed
as one Task run, jitted, with the hyperparameter schedule of its line of descent (so an exploit
copied its parent's state exactly); explore stays in the space and repeats with the seed; one
compiled program a search; a SIGKILL resumes to the same bits."""

import jax
import numpy as np
import pytest

import jaxmom
from jaxmom.engine._pbt_rule import exploit, lineage
from tests.helpers import run_killed
from tests.test_asha import DATA, SEEDS, SPACE, TASK

KW = dict(steps=30, interval=6, metric="test_accuracy", progress=False)
P = 8


@pytest.fixture(scope="module")
def trained():
    compiles = []
    jax.monitoring.register_event_duration_secs_listener(
        lambda name, secs, **kw: compiles.append(name) if "backend_compile" in name else None
    )
    res = jaxmom.pbt_sweep(TASK, SPACE, P, SEEDS, data=DATA, **KW)
    first = len(compiles)
    again = jaxmom.pbt_sweep(TASK, SPACE, P, SEEDS, data=DATA, **KW)
    return res, again, first, len(compiles) - first


def replay(res, member: int, seed_index: int) -> dict:
    """``member``'s run as one Task run: its line's hyperparameters, interval by interval."""
    h = res.history
    line = lineage(h["parent"], member)
    advance = jax.jit(TASK.advance, static_argnums=3)
    key = jax.random.key(SEEDS[seed_index])

    def hp(i):
        return {k: np.float32(v[line[i], i]) for k, v in h["hparams"].items()}

    state, before = jax.jit(TASK.init)(hp(0), key, DATA), 0
    for i, end in enumerate(h["steps"].tolist()):
        state, before = advance(state, hp(i), DATA, end - before), end
    return jax.jit(TASK.evaluate)(state, hp(len(line) - 1), DATA)


def test_every_member_replays_as_one_run_of_its_lines_schedule(trained):
    res, _, _, _ = trained
    parent = res.history["parent"]
    assert (parent >= 0).sum() >= P // 4 * 3  # members copied others, interval by interval
    for member in range(P):
        for s in range(len(SEEDS)):
            ref = replay(res, member, s)
            for name, v in ref.items():
                np.testing.assert_allclose(res[name][member, s], v, rtol=1e-5, atol=1e-6)


def test_explore_stays_in_the_space_and_repeats_with_the_seed(trained):
    res, again, _, _ = trained
    for name, dim in SPACE.items():
        v = res.history["hparams"][name]
        assert (v >= dim.low).all() and (v <= dim.high).all()
        np.testing.assert_array_equal(again.history["hparams"][name], v)
    np.testing.assert_array_equal(again.history["parent"], res.history["parent"])
    other = jaxmom.pbt_sweep(TASK, SPACE, P, SEEDS, data=DATA, seed=1, **KW)
    assert not np.array_equal(other.history["parent"], res.history["parent"])
    # a copied member explored from its parent's values: a factor of perturb, or a new draw
    h, steps = res.history, res.history["hparams"]["learning_rate"]
    for m, i in zip(*np.nonzero(h["parent"] >= 0), strict=True):
        ratio = steps[m, i] / steps[h["parent"][m, i], i - 1]
        assert np.isclose(ratio, [0.8, 1.2]).any() or not np.isclose(ratio, 1.0)


def test_one_program_a_search_and_none_repeated(trained):
    res, again, first, repeated = trained
    assert first <= 1 and repeated == 0
    for name in res.outputs:
        np.testing.assert_array_equal(again[name], res[name])
    best = res.history["best"]
    means = res["test_accuracy"].mean(-1)
    assert means[best] == means.max() and res.trace[-1, 3] == best


def test_exploit_copies_the_best_into_the_worst():
    rng = np.random.default_rng(0)
    scores = np.array([5.0, 1.0, np.nan, 3.0, 0.0, 4.0, 2.0, 6.0])
    copies = exploit(scores, 0.25, rng)
    assert set(copies) == {7, 2} and set(copies.values()) <= {4, 1}
    parent = np.full((3, 3), -1)
    parent[0, 2], parent[2, 1] = 2, 1
    assert lineage(parent, 0).tolist() == [1, 2, 0]


_KILLED = """
import os, signal, sys
sys.path.insert(0, "tests")
import jaxmom
from jaxmom.engine import _pbt
from test_asha import TASK, SPACE, SEEDS, DATA
from test_pbt import KW, P
_pbt.CHECKPOINT_SECONDS = 0.0
def kill(event):
    if event["interval"] == 2:
        os.kill(os.getpid(), signal.SIGKILL)
jaxmom.pbt_sweep(TASK, SPACE, P, SEEDS, data=DATA, out=sys.argv[1], callback=kill, **KW)
"""


def test_a_sigkill_mid_search_resumes_to_the_same_bits(tmp_path, trained):
    res, _, _, _ = trained
    out = tmp_path / "pbt"
    run_killed(_KILLED, str(out))
    resumed = jaxmom.pbt_sweep(TASK, SPACE, P, SEEDS, data=DATA, out=out, **KW)
    for name in res.outputs:
        np.testing.assert_array_equal(resumed[name], res[name])
    np.testing.assert_array_equal(resumed.history["parent"], res.history["parent"])
    with pytest.raises(ValueError, match="other settings"):
        jaxmom.pbt_sweep(TASK, SPACE, P, SEEDS, data=DATA, out=out, **dict(KW, interval=5))


@pytest.mark.parametrize(
    "change, message",
    [
        (dict(population=1), "population"),
        (dict(interval=31), "interval=31 must be <= steps=30"),
        (dict(fraction=0.6), "fraction must be a number in"),
        (dict(resample=2), "resample must be a number in"),
        (dict(perturb=(0.8, -1)), "perturb must be a sequence of positive factors"),
        (dict(metric="nope"), "metric must be a scalar output"),
        (dict(space={"beta": 3}), "space\\['beta'\\] must be"),
        (dict(chunk_size=2), r"hold 1 member\(s\) of 2 seeds, fewer than the population's 8"),
        (dict(seed=-1), "seed must be an integer"),
    ],
)
def test_bad_arguments_are_refused_before_any_compute(change, message):
    args = dict(task=TASK, space=SPACE, population=P, seeds=SEEDS, data=DATA, **KW)
    args.update(change)
    with pytest.raises((ValueError, TypeError), match=message):
        jaxmom.pbt_sweep(**args)


def test_the_plot_draws_the_schedules(trained, tmp_path):
    res, _, _, _ = trained
    path = res.plot(tmp_path / "pbt.png")
    assert path.read_bytes()[:4] == b"\x89PNG"


def test_a_population_larger_than_the_default_pool_gets_a_slot_each():
    """64 lanes a CPU device is the pools' default cap; a population of 40 x 2 seeds is 80."""
    kw = dict(KW, steps=12)
    res = jaxmom.pbt_sweep(TASK, SPACE, 40, SEEDS, data=DATA, **kw)
    assert len(res.trials["beta"]) == 40 and res.history["hparams"]["beta"].shape == (40, 2)


def test_an_optuna_study_chooses_the_redrawn_values_and_holds_them():
    """With sampler=study, each member that redraws asks the study; the trial is told the
    member's metric at the next decision; a killed search replays into a fresh study."""
    optuna = pytest.importorskip("optuna")
    optuna.logging.set_verbosity(optuna.logging.WARNING)

    def study():
        sampler = optuna.samplers.TPESampler(seed=0, n_startup_trials=2)
        return optuna.create_study(direction="maximize", sampler=sampler)

    s = study()
    kw = dict(KW, resample=0.5)
    res = jaxmom.pbt_sweep(TASK, SPACE, P, SEEDS, data=DATA, sampler=s, **kw)
    h, done = res.history, optuna.trial.TrialState.COMPLETE
    assert len(s.trials) > 0 and all(t.state == done for t in s.trials)
    # every trial's value is the metric, at the next decision, of a member that took its
    # values: found in the history where that member copied a parent
    mean = h["metric"].mean(-1)
    for t in s.trials:
        hits = [
            (m, i)
            for m, i in zip(*np.nonzero(h["parent"] >= 0), strict=True)
            if any(np.isclose(h["hparams"][k][m, i], v) for k, v in t.params.items())
        ]
        assert any(np.isclose(mean[m, i], t.value) for m, i in hits), t.number
    with pytest.raises(ValueError, match="direction is minimize"):
        other = optuna.create_study(direction="minimize")
        jaxmom.pbt_sweep(TASK, SPACE, P, SEEDS, data=DATA, sampler=other, **kw)


_KILLED_STUDY = """
import os, signal, sys
sys.path.insert(0, "tests")
import optuna, jaxmom
from jaxmom.engine import _pbt
from test_asha import TASK, SPACE, SEEDS, DATA
from test_pbt import KW, P
optuna.logging.set_verbosity(optuna.logging.WARNING)
_pbt.CHECKPOINT_SECONDS = 0.0
def kill(event):
    if event["interval"] == 2:
        os.kill(os.getpid(), signal.SIGKILL)
study = optuna.create_study(
    direction="maximize", sampler=optuna.samplers.TPESampler(seed=0, n_startup_trials=2)
)
jaxmom.pbt_sweep(TASK, SPACE, P, SEEDS, data=DATA, out=sys.argv[1], callback=kill,
                 sampler=study, **dict(KW, resample=0.5))
"""


def test_a_killed_search_with_a_study_resumes_into_a_fresh_one_to_the_same_bits(tmp_path):
    optuna = pytest.importorskip("optuna")

    def study():
        sampler = optuna.samplers.TPESampler(seed=0, n_startup_trials=2)
        return optuna.create_study(direction="maximize", sampler=sampler)

    kw = dict(KW, resample=0.5)
    first = study()
    whole = jaxmom.pbt_sweep(TASK, SPACE, P, SEEDS, data=DATA, sampler=first, **kw)
    out = tmp_path / "pbt"
    run_killed(_KILLED_STUDY, str(out))
    fresh = study()
    resumed = jaxmom.pbt_sweep(TASK, SPACE, P, SEEDS, data=DATA, out=out, sampler=fresh, **kw)
    for name in whole.outputs:
        np.testing.assert_array_equal(resumed[name], whole[name])
    assert [t.params for t in fresh.trials] == [t.params for t in first.trials]
    assert [t.value for t in fresh.trials] == [t.value for t in first.trials]
