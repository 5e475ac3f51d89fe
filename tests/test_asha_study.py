"""asha_sweep(sampler=study): an Optuna study chooses each new trial as lanes free up, and
holds the whole search afterwards (every rung's value, pruned / complete / failed), so its
best is the search's best; a killed search resumes into a fresh study to the same bits."""

import jax
import numpy as np
import pytest

import jaxmom
from tests.helpers import run_killed
from tests.test_asha import DATA, KW, SEEDS, SPACE, TASK, N

optuna = pytest.importorskip("optuna")
optuna.logging.set_verbosity(optuna.logging.WARNING)


def study(seed=0):
    sampler = optuna.samplers.TPESampler(seed=seed, n_startup_trials=6, constant_liar=True)
    return optuna.create_study(direction="maximize", sampler=sampler)


@pytest.fixture(scope="module")
def asked():
    compiles = []
    jax.monitoring.register_event_duration_secs_listener(
        lambda name, secs, **kw: compiles.append(name) if "backend_compile" in name else None
    )
    s = study()
    res = jaxmom.asha_sweep(TASK, SPACE, N, SEEDS, data=DATA, sampler=s, **KW)
    res.compiles = len(compiles)  # one program, or none when test_asha's search compiled it
    return s, res


def test_the_study_holds_the_whole_search(asked):
    s, res = asked
    r = res.rungs
    assert len(s.trials) == N
    states = [t.state for t in s.trials]
    assert all(st != optuna.trial.TrialState.RUNNING for st in states)
    finished = r["reached"] == 30
    complete = [t.number for t in s.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert complete == np.flatnonzero(finished).tolist()  # trial i is the study's trial i
    for t in s.trials:
        # the table's trial is the study's, and every rung it reached was reported
        assert t.params["beta"] == res.trials["beta"][t.number]
        steps = r["steps"][r["order"][t.number] >= 0]
        means = r["metric"][t.number][r["order"][t.number] >= 0].mean(-1)
        assert sorted(t.intermediate_values) == steps.tolist()
        np.testing.assert_allclose(list(t.intermediate_values.values()), means)
    best = np.nanmax(np.where(finished, res["test_accuracy"].mean(-1), np.nan))
    assert s.best_value == pytest.approx(best)
    assert res.metadata["pool"]["sampler_seconds"] > 0
    df = s.trials_dataframe()
    assert len(df) == N
    assert res.compiles <= 1


def test_the_study_chose_trials_other_than_random(asked):
    _, res = asked
    random = jaxmom.sample(SPACE, N, seed=0)
    assert not np.allclose(res.trials["beta"], random["beta"])


_KILLED = """
import os, signal, sys
sys.path.insert(0, "tests")
import optuna, jaxmom
from jaxmom.engine import _asha
from test_asha import TASK, SPACE, SEEDS, KW, N, DATA
from test_asha_study import study
_asha.CHECKPOINT_SECONDS = 0.0
seen = []
def kill(event):
    seen.append(event)
    if len(seen) == 25:
        os.kill(os.getpid(), signal.SIGKILL)
jaxmom.asha_sweep(TASK, SPACE, N, SEEDS, data=DATA, sampler=study(), out=sys.argv[1],
                  callback=kill, **KW)
"""


def test_a_killed_search_resumes_into_a_fresh_study_to_the_same_bits(tmp_path, asked):
    s, res = asked
    out = tmp_path / "search"
    run_killed(_KILLED, str(out))
    fresh = study()
    resumed = jaxmom.asha_sweep(TASK, SPACE, N, SEEDS, data=DATA, sampler=fresh, out=out, **KW)
    for name in res.outputs:
        np.testing.assert_array_equal(resumed[name], res[name])
    np.testing.assert_array_equal(resumed.rungs["outcome"], res.rungs["outcome"])
    assert [t.params for t in fresh.trials] == [t.params for t in s.trials]
    assert [t.state for t in fresh.trials] == [t.state for t in s.trials]
    # a study that holds trials already cannot take the replay
    with pytest.raises(ValueError, match="needs a fresh study"):
        jaxmom.asha_sweep(TASK, SPACE, N, SEEDS, data=DATA, sampler=fresh, out=out, **KW)


def test_a_study_of_the_other_direction_is_refused_before_any_compute():
    s = optuna.create_study(direction="minimize")
    with pytest.raises(ValueError, match="direction is minimize"):
        jaxmom.asha_sweep(TASK, SPACE, N, SEEDS, data=DATA, sampler=s, **KW)
    assert len(s.trials) == 0
