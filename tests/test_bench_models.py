"""jaxmom bench --task models at test sizes: Flax's tutorial loop, a hand-written vmap of a scan
and the engine under each plan train the same runs (their step losses agree), and the report,
its table and figure are written."""

import json

import pytest

from jaxmom.cli import main as cli_main

pytest.importorskip("sklearn")


def test_every_method_trains_the_same_runs_of_a_conv_net_with_batchnorm_and_dropout(tmp_path):
    out = tmp_path / "models.json"
    argv = ["bench", "--task", "models", "--nets", "cnn_bn_dropout", "--models", "2"]
    argv += ["--methods", "flax_loop,vmap_scan,jaxmom,jaxmom_scan", "--quick", "--out", str(out)]
    assert cli_main(argv) == 0
    report = json.loads(out.read_text())
    assert report["format"] == "jaxmom.bench_models/1" and report["task"]["steps"] == 4
    rows = {r["method"]: r for r in report["rows"]}
    assert set(rows) == {"flax_loop", "vmap_scan", "jaxmom", "jaxmom_scan"}
    for method, r in rows.items():
        assert r["max_relative_difference"] < 1e-5, method  # against flax_loop's losses
        assert r["model_steps_per_s"] > 0 and r["runs"] == 2 and r["model"] == "cnn_bn_dropout"
    assert rows["jaxmom"]["plan"]["form"] == "segments"  # a convolution on a CPU
    assert rows["jaxmom_scan"]["plan"]["form"] == "scan"
    assert rows["flax_loop"]["timed_runs"] == 2
    assert "cnn_bn_dropout 2 runs: jaxmom / flax_loop" in report["ratios"]
    assert (tmp_path / "models.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--task", "models", "--nets", "resnet"], "--nets: choose from"),
        (["--task", "search", "--nets", "cnn"], "--nets is for --task models"),
        (["--task", "models", "--methods", "jax_loop"], "unknown method 'jax_loop'"),
    ],
)
def test_bad_models_bench_flags_are_one_line(argv, message, capsys):
    with pytest.raises(SystemExit) as e:
        cli_main(["bench", *argv])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
