"""jaxmom sweep --sample and --halving: the chapter's model over sampled trials, each run the
chapter's own; successive halving from the command line, resumed by the same command."""

import csv

import numpy as np
import pytest

import jaxmom
from jaxmom.cli import main as cli_main

SAMPLE = [
    "--sample",
    "sobol:8",
    "--betas",
    "0:0.99",
    "--lrs",
    "log:1e-3:0.3",
    "--seeds",
    "2",
    "--epochs",
    "2",
    "--no-progress",
    "--devices",
    "1",
]


def test_sampled_trials_are_the_chapters_runs_at_those_values(tmp_path, capsys):
    out = tmp_path / "t.csv"
    assert cli_main(["sweep", *SAMPLE, "--csv", str(out)]) == 0
    text = capsys.readouterr().out
    assert text.startswith("sweep: 16 runs (8 sobol trials x 2 seeds) of 64 steps")
    assert "trial           beta  learning_rate" in text
    rows = list(csv.DictReader(out.open()))
    trials = jaxmom.sample(
        {"beta": jaxmom.Uniform(0, 0.99), "learning_rate": jaxmom.LogUniform(1e-3, 0.3)},
        8,
        method="sobol",
    )
    assert [float(r["beta"]) for r in rows[::2]] == pytest.approx(trials["beta"], rel=1e-12)
    for i in (0, 5):  # a trial's run is the chapter's sweep at its values
        want = jaxmom.sweep(
            [trials["beta"][i]],
            [trials["learning_rate"][i]],
            seeds=[0, 1],
            epochs=2,
            progress=False,
        )
        got = [float(r["final_loss"]) for r in rows[2 * i : 2 * i + 2]]
        np.testing.assert_allclose(got, want["final_loss"].ravel(), rtol=1e-6)


def test_halving_from_the_command_line_resumes_its_store(tmp_path, capsys):
    argv = [
        "sweep",
        *SAMPLE[:-5],
        "--epochs",
        "3",
        "--halving",
        "3",
        "--min-epochs",
        "1",
        "--no-progress",
        "--devices",
        "1",
        "--out",
        str(tmp_path / "h"),
        "--plot",
        str(tmp_path / "h.png"),
    ]
    assert cli_main(argv) == 0
    first = capsys.readouterr().out
    assert "successive halving (eta 3) over 16 runs" in first
    assert sorted(p.name for p in (tmp_path / "h").iterdir()) == [
        "b0_r0.zarr",
        "b0_r1.zarr",
        "halving.json",
    ]
    assert (tmp_path / "h.png").read_bytes()[:4] == b"\x89PNG"
    assert cli_main(argv) == 0  # every rung's store complete: read, and the same summary
    again = capsys.readouterr().out
    table = slice(first.index("trial"), first.index("device(s)") - 14)
    assert again[table] == first[table]


@pytest.mark.parametrize(
    "argv, match",
    [
        (["--betas", "0:0.99"], "--betas is a range (LOW:HIGH): give --sample"),
        (["--sample", "sobol:8", "--lrs", "log:0:1"], "--lrs log:LOW:HIGH needs LOW > 0"),
        (["--sample", "sobol:8", "--betas", "0.9:0.1"], "--betas range must have LOW < HIGH"),
        (["--sample", "sobol:8", "--betas", "0:2"], "--betas must be finite and in [0, 1]"),
        (["--sample", "grid:8"], "expected METHOD:N with METHOD one of random, sobol, halton"),
        (["--sample", "sobol:0"], "expected METHOD:N"),
        (["--halving", "1"], "expected an integer >= 2"),
        (["--min-epochs", "2"], "--min-epochs needs --halving ETA"),
        (["--halving", "3", "--min-epochs", "20"], "--min-epochs 20 must be <= --epochs 12"),
    ],
)
def test_bad_search_flags_exit_2_before_any_compute(argv, match, capsys):
    with pytest.raises(SystemExit) as e:
        cli_main(["sweep", *argv, "--no-progress"])
    assert e.value.code == 2
    assert match in capsys.readouterr().err
