"""Run every experiment of the chapter and write its figures and REPORT.md.

Command:  python -m experiments [--out results] [--only NAME[,NAME...]] [--quick]
          [--compare results]

``make experiments`` writes its run under ``runs/experiments`` (git ignores it) and compares it
with the recorded ``results/``; ``make results`` regenerates the recorded copy.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
from pathlib import Path

from experiments.compare import compare
from jaxmom.cli import setup_devices

#: In the chapter's order.
EXPERIMENTS = (
    "ravine",
    "ball_in_bowl",
    "convergence_rate",
    "phase_diagram",
    "oscillation_damping",
    "terminal_velocity",
    "gd_vs_momentum_2d",
    "mlp_regression",
    "sgd_vs_momentum",
    "beta_sweep",
    "effective_lr",
    "digits_sweep",
    "pbt_schedules",
    "family_ravine",
    "qhm_phase_diagram",
    "family_digits",
    "demon_pbt",
)


def write_report(out: Path, results: dict[str, dict]) -> Path:
    """``REPORT.md``: each claim of the chapter, its figures, and the number that checks it.
    No run times (they are in each experiment's JSON): a rerun on the same machine leaves it
    as it was."""
    import platform

    import jax

    from jaxmom.bench import device_info

    device = device_info()
    lines = ["# The momentum chapter, checked", ""]
    n_pass = sum(c["passed"] for r in results.values() for c in r["claims"])
    n_all = sum(len(r["claims"]) for r in results.values())
    lines += [f"{n_pass} of {n_all} claims pass.", ""]
    lines += [
        f"Made by `make results` on {device['cpu']} ({device['cores']} cores, "
        f"{jax.device_count()} JAX CPU devices), jax {jax.__version__}, Python "
        f"{platform.python_version()}. The closed forms and the chapter's toy runs give the "
        "same numbers anywhere; another CPU may move the sweeps' figures (digits above all) in "
        "their last digits, as XLA vectorises float32 sums to the machine.",
        "",
    ]
    lines += ["| section | claim | measured | result |", "| --- | --- | --- | --- |"]
    for r in results.values():
        for c in r["claims"]:
            mark = "pass" if c["passed"] else "**FAIL**"
            cells = (c["section"], c["claim"], c["measured"], mark)
            lines.append("| " + " | ".join(x.replace("|", "\\|") for x in cells) + " |")
    for name, r in results.items():
        doc = importlib.import_module(f"experiments.{name}").__doc__.strip().splitlines()[0]
        lines += [
            "",
            f"## {doc}",
            "",
            f"`python -m experiments.{name}`",
            "",
        ]
        for c in r["claims"]:
            mark = "pass" if c["passed"] else "**FAIL**"
            lines.append(f"- {c['claim']}: {c['measured']} ({mark})")
        lines += [""] + [f"![{f}]({f})" for f in r["figures"]]
    path = out / "REPORT.md"
    path.write_text("\n".join(lines) + "\n")
    return path


def _record_seconds(out: Path, name: str, seconds: float) -> None:
    """Adds the run's time to ``out/<name>.json``, so a later ``--only`` run can report it."""
    path = out / f"{name}.json"
    result = json.loads(path.read_text())
    result["seconds"] = seconds
    path.write_text(json.dumps(result, indent=2) + "\n")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m experiments", description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("results"), help="output folder")
    parser.add_argument("--only", default=None, help="comma-separated experiment names")
    parser.add_argument("--quick", action="store_true", help="tiny settings (for tests)")
    parser.add_argument(
        "--compare", type=Path, default=None, help="a recorded run to compare with (results)"
    )
    args = parser.parse_args(argv)
    setup_devices()
    args.out.mkdir(parents=True, exist_ok=True)
    names = EXPERIMENTS if args.only is None else tuple(args.only.split(","))
    unknown = [n for n in names if n not in EXPERIMENTS]
    if unknown:
        parser.error(f"unknown experiment {unknown[0]!r}; choose from {', '.join(EXPERIMENTS)}")
    results = {}
    for i, name in enumerate(names, 1):
        t0 = time.perf_counter()
        print(f"[{i}/{len(names)}] {name} ...", flush=True)
        results[name] = importlib.import_module(f"experiments.{name}").run(
            args.out, quick=args.quick
        )
        seconds = time.perf_counter() - t0
        _record_seconds(args.out, name, seconds)
        passed = sum(c["passed"] for c in results[name]["claims"])
        print(
            f"[{i}/{len(names)}] {name}: {passed}/{len(results[name]['claims'])} claims pass "
            f"({seconds:.1f} s)",
            flush=True,
        )
    for name in EXPERIMENTS:  # --only: keep the others' parts of the report as they were
        if name not in results and (args.out / f"{name}.json").exists():
            results[name] = json.loads((args.out / f"{name}.json").read_text())
    results = {n: results[n] for n in EXPERIMENTS if n in results}
    report = write_report(args.out, results)
    print(f"wrote {report}")
    if args.compare is not None and args.compare.resolve() != args.out.resolve():
        print("\n".join(compare(args.out, args.compare, results)))
    return 0 if all(c["passed"] for r in results.values() for c in r["claims"]) else 1


if __name__ == "__main__":
    sys.exit(main())
