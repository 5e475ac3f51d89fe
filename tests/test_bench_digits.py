"""The digits bench: every peer computes the engine's final losses, on tiny sizes."""

import importlib.util

import numpy as np
import pytest

from jaxmom import bench_digits as bd
from jaxmom import cli

RUNS = 8


@pytest.fixture(scope="module")
def engine_losses():
    return bd.engine(RUNS)


def test_hand_written_vmap_equals_the_engine(engine_losses):
    assert engine_losses.shape == (RUNS // 4, 2, 2)
    np.testing.assert_allclose(bd.vmap(RUNS), engine_losses, rtol=1e-5)


@pytest.mark.skipif(importlib.util.find_spec("optuna") is None, reason="optuna not installed")
def test_optuna_trials_equal_the_engine(engine_losses):
    g = bd.grid(RUNS)
    trials = bd.optuna_grid(RUNS)
    assert len(trials) == RUNS
    for (beta, lr, seed), value in trials.items():
        i, j = list(g["beta"]).index(beta), list(g["learning_rate"]).index(lr)
        np.testing.assert_allclose(value, engine_losses[i, j, seed], rtol=2e-5)


@pytest.mark.skipif(importlib.util.find_spec("hyperoptax") is None, reason="not installed")
def test_hyperoptax_grid_equals_the_engine(engine_losses):
    np.testing.assert_allclose(bd.hyperoptax_grid(RUNS), engine_losses, rtol=1e-5)


def test_quick_digits_bench_report(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(bd, "OPTIONAL", {**bd.OPTIONAL, "hyperoptax": "no_such_module_here"})
    out = tmp_path / "digits.json"
    argv = ["bench", "--task", "digits", "--quick", "--repeats", "1", "--out", str(out)]
    assert cli.main([*argv, "--methods", "engine,vmap,hyperoptax"]) == 0
    printed = capsys.readouterr().out
    assert "skipping: hyperoptax" in printed and "| engine | 8 |" in printed
    report = __import__("json").loads(out.read_text())
    assert report["format"] == bd.FORMAT and report["skipped"] == ["hyperoptax"]
    assert {r["method"] for r in report["rows"]} == {"engine", "vmap"}
    for r in report["rows"]:
        np.testing.assert_allclose(r["runs_per_s"], r["runs"] / r["seconds"])
        assert 0 < r["fraction_of_peak"] < 1
    assert "engine/vmap" in report["ratios"]
    with pytest.raises(SystemExit):
        cli.main(["bench", "--task", "digits", "--models", "6"])
    with pytest.raises(SystemExit):
        cli.main(["bench", "--task", "digits", "--methods", "torch_loop"])
