"""Every experiment runs on tiny settings and writes its figures, numbers and the report."""

import json

import pytest

from experiments.__main__ import EXPERIMENTS, main


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    out = tmp_path_factory.mktemp("results")
    main(["--out", str(out), "--quick"])
    return out


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_experiment_writes_figures_and_numbers(results, name):
    data = json.loads((results / f"{name}.json").read_text())
    assert data["claims"], name
    for fig in data["figures"]:
        assert (results / fig).stat().st_size > 1000
    for c in data["claims"]:
        assert {"section", "claim", "measured", "passed"} <= set(c)


def test_report_lists_every_claim(results):
    report = (results / "REPORT.md").read_text()
    for name in EXPERIMENTS:
        for c in json.loads((results / f"{name}.json").read_text())["claims"]:
            assert c["claim"] in report


def test_unknown_experiment_is_an_error(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--only", "nope"])
    assert e.value.code == 2
    assert "unknown experiment 'nope'" in capsys.readouterr().err


def test_only_one_experiment_keeps_the_others_in_the_report(results):
    before = (results / "REPORT.md").read_text()
    main(["--out", str(results), "--quick", "--only", "terminal_velocity"])
    after = (results / "REPORT.md").read_text()
    for name in EXPERIMENTS:
        assert f"`python -m experiments.{name}`" in after
    assert after.count("| 5.") == before.count("| 5.")  # every claim's row is still there


def test_a_run_is_compared_with_the_record_claim_by_claim_and_number_by_number(tmp_path):
    """make experiments writes where git ignores it and says how its run compares with the
    recorded results/: a claim that changed, and each number beyond its last digits."""
    import json
    import shutil
    from pathlib import Path

    from experiments.compare import compare

    recorded = Path(__file__).parent.parent / "results"
    run = tmp_path / "run"
    run.mkdir()
    for name in ("ravine", "terminal_velocity"):
        shutil.copy(recorded / f"{name}.json", run)
    lines = compare(run, recorded, ["ravine", "terminal_velocity"])
    assert lines[0].endswith("0 number(s) differ by more than 0.001 (relative)"), lines
    assert len(lines) == 1
    moved = json.loads((run / "ravine.json").read_text())
    moved["numbers"]["sign_changes_y"] = 29
    moved["numbers"]["x_fraction_left"]["zigzag"] *= 1 + 1e-5  # its last digits: the same
    moved["claims"][0]["passed"] = False
    (run / "ravine.json").write_text(json.dumps(moved))
    lines = compare(run, recorded, ["ravine", "terminal_velocity"])
    assert "1 number(s) differ" in lines[0]
    assert any("sign_changes_y = 29 (recorded 30)" in line for line in lines)
    assert any("FAILS here, not in the record" in line for line in lines)
