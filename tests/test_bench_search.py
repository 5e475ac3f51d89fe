"""jaxmom bench --task search at test sizes: every method finds a configuration of the space
whose test accuracy is measured; successive halving spends a fraction of the model-steps."""

import json

import numpy as np
import pytest

import jaxmom
from jaxmom.bench import _search as bench_search
from jaxmom.cli import main as cli_main

pytest.importorskip("sklearn")


def test_quick_search_bench_writes_a_report_of_every_method(tmp_path, capsys):
    out = tmp_path / "search.json"
    assert cli_main(["bench", "--task", "search", "--quick", "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["format"] == "jaxmom.bench_search/2" and report["task"]["configs"] == 27
    assert {r["space"] for r in report["rows"]} == {"digits", "hard"}
    for space in ("digits", "hard"):
        check_space(report, space)
    assert (tmp_path / "search.png").read_bytes()[:4] == b"\x89PNG"
    assert "| digits | halving |" in capsys.readouterr().out


def check_space(report, space):
    rows = {r["method"]: r for r in report["rows"] if r["space"] == space}
    expected = set(bench_search.METHODS) - set(report["skipped"])
    assert (
        set(rows) == expected and {"exhaustive", "halving", "hyperband", "asha", "pbt"} <= expected
    )
    dims = bench_search.SPACES[space]
    table = jaxmom.sample(dims, 27, method="random", seed=0)
    for method, r in rows.items():
        assert np.isfinite(r["val"]) and 0 < r["test"] <= 1, method
        for name, dim in dims.items():
            assert dim.low <= r["config"][name] <= dim.high
        if method in ("random", "halving", "hyperband", "asha"):  # from the shared table
            i = int(np.argmin(np.abs(table["beta"] - r["config"]["beta"])))
            assert r["config"]["learning_rate"] == pytest.approx(table["learning_rate"][i])
    steps = report["task"]["epochs"] * 34 * 2 * 27
    grid = max(2, round(27 ** (1 / len(dims)))) ** len(dims)  # 27 for 3 dims, 32 for 5
    assert rows["exhaustive"]["model_steps"] == steps // 27 * grid
    assert rows["random"]["model_steps"] == steps
    assert rows["halving"]["model_steps"] < steps / 4
    assert rows["halving"]["val"] <= rows["random"]["val"]  # it searched the same table
    assert rows["asha"]["val"] <= rows["random"]["val"]
    # the lane pool: at most one compiled program for asha's whole search (none where
    # halving compiled the same pool before it), lanes mostly busy
    assert rows["asha"]["compiles"] <= 1 and rows["asha"]["busy"] > 0.5
    assert rows["asha"]["model_steps"] < steps / 2
    # pbt: a population of 4 trained to the end, its best's schedule replayed on the test split
    assert rows["pbt"]["population"] == 4
    assert rows["pbt"]["model_steps"] == 4 * 2 * report["task"]["epochs"] * 34
    if "asha_tpe" in rows:  # the study's TPE chose asha's trials: its time is recorded
        assert rows["asha_tpe"]["sampler_seconds"] > 0
