"""The digits bench: every peer computes the engine's final losses, on tiny sizes."""

import importlib.util

import numpy as np
import pytest

from jaxmom import cli
from jaxmom.bench import _digits as bd

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
    monkeypatch.setattr(bd, "METHODS", ("engine", "vmap", "hyperoptax"))  # the default methods
    out = tmp_path / "digits.json"
    argv = ["bench", "--task", "digits", "--quick", "--repeats", "1", "--out", str(out)]
    assert cli.main(argv) == 0  # a default peer that is not installed is skipped, and said
    printed = capsys.readouterr().out
    assert "skipping: hyperoptax" in printed and "| engine | 8 |" in printed
    report = __import__("json").loads(out.read_text())
    assert report["format"] == bd.FORMAT and report["skipped"] == ["hyperoptax"]
    assert {r["method"] for r in report["rows"]} == {"engine", "vmap"}
    for r in report["rows"]:
        np.testing.assert_allclose(r["runs_per_s"], r["runs"] / r["seconds"])
        assert 0 < r["fraction_of_peak"] < 1
    assert "engine/vmap at 8 runs" in report["ratios"]
    with pytest.raises(SystemExit):
        cli.main(["bench", "--task", "digits", "--models", "6"])
    with pytest.raises(SystemExit):
        cli.main(["bench", "--task", "digits", "--methods", "torch_loop"])


def test_a_missing_package_is_one_line_and_exit_2(tmp_path, capsys, monkeypatch):
    """Asked for by name, a peer that is not installed is an error naming the package and the
    extra, before any compute; so is the digits task without scikit-learn."""
    from jaxmom.bench import _chapter as bench
    from jaxmom.bench import _report as report

    monkeypatch.setitem(bench.OPTIONAL, "torch_loop", "no_such_module_here")
    out = tmp_path / "r.json"
    assert cli.main(["bench", "--quick", "--methods", "torch_loop", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert (
        err.count("\n") == 1
        and "--methods torch_loop needs no_such_module_here, which is not installed" in err
    )
    monkeypatch.setitem(report.INSTALL, "no_such_module_here", "pip install it")
    monkeypatch.setattr(bd, "TASK_REQUIRES", "no_such_module_here")
    assert cli.main(["bench", "--task", "digits", "--quick"]) == 2
    err = capsys.readouterr().err
    assert (
        err
        == "jaxmom bench: error: --task digits needs scikit-learn, which is not installed: "
        + report.INSTALL["sklearn"]
        + "\n"
    )
    assert not out.exists()
