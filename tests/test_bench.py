"""jaxmom bench: its peers do the same work as jaxmom, and a quick run writes a valid report."""

import importlib
import json

import numpy as np
import pytest

from jaxmom import cli
from jaxmom.bench import _chapter as bench

blocks = importlib.import_module("jaxmom.engine._blocks")
BETAS = np.array([0.5, 0.8, 0.95], np.float32)


@pytest.fixture(scope="module")
def inputs():
    return bench.task()


@pytest.fixture(scope="module")
def sweep_losses():
    return bench.jaxmom_sweep(BETAS)


def test_torch_func_vmap_computes_the_sweeps_losses(torch, inputs, sweep_losses):
    params, order, data = inputs
    got = bench.torch_func_vmap(params, order, data, BETAS)
    assert got.shape == sweep_losses.shape == (3, 384)
    np.testing.assert_allclose(got, sweep_losses, rtol=1e-4)


def test_single_run_peers_compute_the_same_losses(torch, inputs, sweep_losses):
    params, order, data = inputs
    want = bench.jaxmom_train(params, order, data)  # beta 0.8, lr 0.01
    np.testing.assert_allclose(want, sweep_losses[1], rtol=1e-4)
    np.testing.assert_allclose(bench.torch_loop(params, order, data), want, rtol=1e-4)
    np.testing.assert_allclose(bench.optax_loop(params, order, data), want, rtol=1e-4)


def test_autodiff_sweep_computes_the_same_losses_and_compiles_once(sweep_losses):
    got = bench.jaxmom_sweep_autodiff(BETAS)
    assert got.shape == (3, 384)
    np.testing.assert_allclose(got, sweep_losses, rtol=1e-4)
    compiled = len(blocks.COMPILED)
    np.testing.assert_array_equal(bench.jaxmom_sweep_autodiff(BETAS), got)
    assert len(blocks.COMPILED) == compiled  # grid_sweep reused its program


def test_quick_bench_writes_a_valid_report(tmp_path, capsys):
    out = tmp_path / "report.json"
    argv = ["bench", "--quick", "--models", "1,2", "--repeats", "1", "--out", str(out)]
    assert cli.main([*argv, "--methods", "torch_loop,jaxmom_train,jaxmom_sweep"]) == 0
    report = bench.load(out)
    assert report["format"] == bench.FORMAT
    assert {"platform", "kind", "count"} <= set(report["device"])
    assert report["versions"]["jax"] and report["peak_gflops"] > 0
    # the peak: sampled at the start and after each method, the best of them
    assert report["peak"]["samples"] == 1 + 3 and report["peak"]["gflops"] == report["peak_gflops"]
    assert report["flops_per_model_step"] > 1000  # a forward and backward pass of 32 points
    rows = report["rows"]
    assert [(r["method"], r["models"]) for r in rows if r["method"] == "jaxmom_sweep"] == [
        ("jaxmom_sweep", 1),
        ("jaxmom_sweep", 2),
    ]
    for r in rows:
        assert r["steps"] == 384 and r["seconds"] > 0
        np.testing.assert_allclose(r["model_steps_per_s"], r["models"] * 384 / r["seconds"])
        np.testing.assert_allclose(r["gflops"] / report["peak_gflops"], r["fraction_of_peak"])
    assert "jaxmom_sweep/jaxmom_train" not in report["ratios"]
    assert (tmp_path / "report.png").stat().st_size > 1000
    printed = capsys.readouterr().out
    assert "| jaxmom_sweep | 2 |" in printed


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--models", "0,4"], "positive integers"),
        (["--methods", "jaxmom_train,nope"], "unknown method 'nope'"),
        (["--out", "report.txt"], "must name a .json file"),
        (["--repeats", "-1"], "positive integer"),
    ],
)
def test_bad_flags_are_errors(argv, message, capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["bench", *argv])
    assert e.value.code == 2
    assert message in capsys.readouterr().err


def test_bad_arguments_and_files(tmp_path):
    with pytest.raises(ValueError, match="unknown method 'x'"):
        bench.run([1], ["x"])
    with pytest.raises(ValueError, match="models must be positive"):
        bench.run([0], ["jaxmom_train"])
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="cannot read a bench report"):
        bench.load(bad)
    bad.write_text(json.dumps({"format": "other"}))
    with pytest.raises(ValueError, match=r"is not a jaxmom\.bench/1 report"):
        bench.load(bad)
