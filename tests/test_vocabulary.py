"""One vocabulary for the sweeps: the keywords every sweep shares are accepted in the same
place, with the same meaning, by grid_sweep, trial_sweep, halving_sweep, asha_sweep,
pbt_sweep, optuna_sweep and sweep; old spellings warn and still work; optuna_sweep writes and
resumes stores."""

import inspect
import json
import shutil

import numpy as np
import pytest

import jaxmom
from tests.test_engine import _data
from tests.test_halving import TASK

SWEEPS = {
    "grid_sweep": jaxmom.grid_sweep,
    "trial_sweep": jaxmom.trial_sweep,
    "halving_sweep": jaxmom.halving_sweep,
    "asha_sweep": jaxmom.asha_sweep,
    "pbt_sweep": jaxmom.pbt_sweep,
    "optuna_sweep": jaxmom.optuna_sweep,
    "sweep": jaxmom.sweep,
}
SHARED = {
    "data": None,
    "out": None,
    "chunk_size": None,
    "progress": True,
    "compiler_options": None,
    "check_finite": None,
    "settings": None,
    "plan": None,
}
SPACE = {"beta": jaxmom.Uniform(0.0, 0.95), "learning_rate": jaxmom.LogUniform(1e-2, 1.0)}


@pytest.mark.parametrize("name", SWEEPS)
def test_every_sweep_takes_the_shared_keywords_alike(name):
    params = inspect.signature(SWEEPS[name]).parameters
    seeds = params["seeds"]
    assert seeds.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD and seeds.default == (0,)
    for key, default in SHARED.items():
        assert params[key].kind is inspect.Parameter.KEYWORD_ONLY, (name, key)
        assert params[key].default == default, (name, key)
    assert "batch_size" not in params or name == "sweep"  # sweep's: examples per step


@pytest.fixture(scope="module")
def data():
    return _data(0, n=128)


def _study(seed=0):
    optuna = pytest.importorskip("optuna")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna.create_study(sampler=optuna.samplers.TPESampler(seed=seed, n_startup_trials=4))


def _values(study):
    return [t.value for t in study.trials]


def test_optuna_sweep_writes_its_batches_and_resumes_them(data, tmp_path):
    """With out=, each batch is a store; the same call with a fresh study of the same sampler
    asks the same trials and resumes (a block marked undone is computed again, to the same
    value); a study whose trials differ is refused, never mixed."""
    out = tmp_path / "search"
    kw = dict(data=data, metric="loss", steps=6, trials_per_batch=4, progress=False)
    first = jaxmom.optuna_sweep(_study(), TASK, SPACE, 8, (0, 1), out=out, **kw)
    assert sorted(p.name for p in out.iterdir()) == ["trials00000.zarr", "trials00004.zarr"]
    # an interruption before the second batch's first block was written
    shutil.rmtree(out / "trials00004.zarr" / "status" / "c" / "0")
    again = jaxmom.optuna_sweep(_study(), TASK, SPACE, 8, (0, 1), out=out, **kw)
    assert _values(again) == _values(first)
    assert (out / "trials00004.zarr" / "status" / "c" / "0").is_dir()
    # without out=, the same values
    plain = jaxmom.optuna_sweep(_study(), TASK, SPACE, 8, [0, 1], **kw)
    assert _values(plain) == _values(first)
    with pytest.raises(ValueError, match=r"trials00000\.zarr"):
        jaxmom.optuna_sweep(_study(seed=1), TASK, SPACE, 8, (0, 1), out=out, **kw)


def test_optuna_sweeps_old_batch_size_warns_and_means_trials_per_batch(data):
    kw = dict(data=data, metric="loss", steps=6, progress=False)
    with pytest.warns(
        DeprecationWarning,
        match=r"batch_size=\.\.\.\) is deprecated: use "
        r"trials_per_batch=",
    ):
        old = jaxmom.optuna_sweep(_study(), TASK, SPACE, 6, batch_size=3, **kw)
    new = jaxmom.optuna_sweep(_study(), TASK, SPACE, 6, trials_per_batch=3, **kw)
    assert _values(old) == _values(new)
    with pytest.raises(TypeError, match="unexpected keyword argument 'batchsize'"):
        jaxmom.optuna_sweep(_study(), TASK, SPACE, 6, batchsize=3, **kw)


def test_halving_takes_settings_and_check_finite(data, tmp_path):
    """settings are part of what a halving folder is: a resume with others is refused;
    check_finite names the metrics that mark a run diverged."""
    trials = jaxmom.sample(SPACE, 6, seed=1)
    trials["learning_rate"][0] = 3e38  # diverges: loss and w overflow
    kw = dict(data=data, min_steps=2, max_steps=6, metric="loss", progress=False)
    out = tmp_path / "h"
    res = jaxmom.halving_sweep(TASK, trials, (0,), out=out, settings={"model": "a"}, **kw)
    assert json.loads((out / "halving.json").read_text())["settings"] == {"model": "a"}
    assert res.diverged[0].all() and not res.diverged[1:].any()
    again = jaxmom.halving_sweep(TASK, trials, (0,), out=out, settings={"model": "a"}, **kw)
    np.testing.assert_array_equal(again["loss"], res["loss"])
    with pytest.raises(ValueError, match="other settings"):
        jaxmom.halving_sweep(TASK, trials, (0,), out=out, settings={"model": "b"}, **kw)
    only_accuracy = jaxmom.halving_sweep(TASK, trials, (0,), check_finite=["accuracy"], **kw)
    assert not only_accuracy.diverged.any()  # the accuracy of an overflowed run is finite
    with pytest.raises(ValueError, match="metrics/nope"):
        jaxmom.halving_sweep(TASK, trials, (0,), check_finite=["nope"], **kw)


def test_the_chapters_sweep_takes_settings_and_compiler_options(tmp_path):
    kw = dict(epochs=1, progress=False, out=tmp_path / "s.zarr")
    res = jaxmom.sweep([0.5, 0.9], settings={"note": "x"}, compiler_options={}, **kw)
    assert res.metadata["settings"]["user"] == {"note": "x"}
    with pytest.raises(ValueError, match="settings"):
        jaxmom.sweep([0.5, 0.9], settings={"note": "y"}, **kw)
    np.testing.assert_array_equal(
        jaxmom.sweep([0.5, 0.9], settings={"note": "x"}, **kw).final_loss, res.final_loss
    )
