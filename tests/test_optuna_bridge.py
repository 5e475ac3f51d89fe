"""optuna_sweep: the study's own sampler, asked and told in batches, each batch one compiled
trial_sweep; the study sees every trial, its value the same as trial_sweep's."""

import sys

import numpy as np
import pytest

import jaxmom
from jaxmom.engine import _blocks as blocks
from tests.test_engine import _data
from tests.test_halving import TASK

optuna = pytest.importorskip("optuna")
optuna.logging.set_verbosity(optuna.logging.WARNING)

SPACE = {"beta": jaxmom.Uniform(0.0, 0.95), "learning_rate": jaxmom.Choice([0.01, 0.3, 3e38])}


@pytest.fixture(scope="module")
def data():
    return _data(0, n=256)


def test_every_trial_is_told_the_value_trial_sweep_gives(data):
    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=0, n_startup_trials=8))
    compiled = len(blocks.COMPILED)
    jaxmom.optuna_sweep(
        study,
        TASK,
        SPACE,
        20,
        trials_per_batch=8,
        seeds=[0, 1],
        data=data,
        metric="loss",
        steps=12,
        progress=False,
    )
    assert len(blocks.COMPILED) - compiled <= 1  # three batches (8, 8, 4 padded), one program
    trials = study.trials
    assert len(trials) == 20
    table = {n: np.array([t.params[n] for t in trials]) for n in SPACE}
    res = jaxmom.trial_sweep(TASK.train_fn(12), table, seeds=[0, 1], data=data, progress=False)
    diverged = res.diverged.any(-1)
    assert diverged.any() and (~diverged).any()
    for t, d, want in zip(trials, diverged, res["loss"].mean(-1), strict=True):
        if d:  # a diverged run is a failed trial, its values kept
            assert t.state == optuna.trial.TrialState.FAIL and t.params["learning_rate"] == 3e38
            assert len(t.user_attrs["values"]) == 2
        else:
            assert t.state == optuna.trial.TrialState.COMPLETE
            assert t.value == pytest.approx(float(want), rel=1e-6)
    df = study.trials_dataframe()
    assert len(df) == 20 and set(df["state"]) == {"COMPLETE", "FAIL"}


def test_a_study_to_maximise_gets_the_accuracy(data):
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(0))
    jaxmom.optuna_sweep(
        study,
        TASK.train_fn(12),
        SPACE,
        6,
        trials_per_batch=6,
        data=data,
        metric="accuracy",
        progress=False,
    )
    done = [t.value for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert study.best_value == max(done) and 0.5 < study.best_value <= 1.0


def test_bad_input_is_refused_before_any_trial_is_asked(data, monkeypatch):
    study = optuna.create_study()
    with pytest.raises(ValueError, match=r"metric must be a scalar output of the runs"):
        jaxmom.optuna_sweep(study, TASK, SPACE, 4, data=data, metric="w", steps=4)
    with pytest.raises(ValueError, match="a Task needs steps="):
        jaxmom.optuna_sweep(study, TASK, SPACE, 4, data=data, metric="loss")
    with pytest.raises(ValueError, match="low"):
        jaxmom.optuna_sweep(
            study, TASK, {"beta": jaxmom.Uniform(1.0, 0.0)}, 4, data=data, metric="loss", steps=4
        )
    assert len(study.trials) == 0
    monkeypatch.setitem(sys.modules, "optuna", None)
    with pytest.raises(ImportError, match=r"needs optuna, which is not installed: pip install"):
        jaxmom.optuna_sweep(study, TASK, SPACE, 4, data=data, metric="loss", steps=4)
