"""Bad input is refused before any compute, with a message that names it."""

import numpy as np
import optax
import pytest

import jaxmom

SPACE = {"b": jaxmom.Uniform(0.0, 1.0)}


def _f(hp, key):
    return {"loss": hp["beta"] * 2.0}


@pytest.mark.parametrize(
    "call, error, match",
    [
        (
            lambda: jaxmom.grid_sweep(_f, {"lr": [1.0]}, progress=False),
            ValueError,
            r"reads hparams\[.beta.\], which the sweep does not have: its axes or columns are "
            r"\[.lr.\]",
        ),
        (
            lambda: jaxmom.trial_sweep(_f, {"lr": [1.0]}, progress=False),
            ValueError,
            r"hparams\['beta'\]",
        ),
        (
            lambda: jaxmom.grid_sweep(
                lambda hp, k, d: {"x": hp["lr"]},
                {"lr": [1.0]},
                data=np.array([object(), 1]),
                progress=False,
            ),
            TypeError,
            r"data must be an array of numbers, got ndarray of dtype object",
        ),
        (
            lambda: jaxmom.grid_sweep(
                lambda hp, k: {"x": optax.warmup_cosine_decay_schedule(0.0, hp["lr"], 10, 100)(5)},
                {"lr": [1.0]},
                progress=False,
            ),
            TypeError,
            r"scale a unit schedule by it",
        ),
        (
            lambda: jaxmom.sample({"n": jaxmom.IntUniform(0, 2**70)}, 4),
            ValueError,
            r"'n': IntUniform's bounds must fit int64",
        ),
        (
            lambda: jaxmom.sample({"n": jaxmom.Choice(5)}, 4),
            TypeError,
            r"'n': Choice needs a sequence of numbers, got 5",
        ),
    ],
)
def test_bad_input_is_named_before_compute(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_optuna_sweep_refuses_what_is_no_study_or_has_two_objectives():
    optuna = pytest.importorskip("optuna")
    fn = lambda hp, key: {"loss": hp["b"]}  # noqa: E731
    with pytest.raises(TypeError, match=r"study must be an optuna\.Study.*got None"):
        jaxmom.optuna_sweep(None, fn, SPACE, 2, metric="loss")
    two = optuna.create_study(directions=["minimize", "maximize"])
    with pytest.raises(ValueError, match="study has 2 objectives"):
        jaxmom.optuna_sweep(two, fn, SPACE, 2, metric="loss", progress=False)
    assert not two.trials


def test_sobol_of_any_size_draws_without_a_warning_and_the_summary_counts_right(capsys):
    import warnings

    from jaxmom.cli import main as cli_main

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        trials = jaxmom.sample({"b": jaxmom.Uniform(0.0, 1.0)}, 729, method="sobol", seed=0)
    assert trials["b"].shape == (729,)
    argv = [
        "sweep",
        "--betas",
        "0.5",
        "--lrs",
        "0.01",
        "--seeds",
        "1",
        "--epochs",
        "1",
        "--no-progress",
    ]
    assert cli_main(argv) == 0
    assert "(1 beta x 1 learning rate x 1 seed)" in capsys.readouterr().out
