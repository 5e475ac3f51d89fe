"""Does the bench hold still? ``jaxmom bench`` three times in a row, in fresh processes: the
spread of their matmul peaks and of their ratios.

    python benchmarks/stability.py --out benchmarks/stability_cpu_2core.json \
        --keep benchmarks/cpu_2core.json

``--keep`` keeps the first run's report (and its PNG) as the recorded bench.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--keep", type=Path, default=None, help="where to keep the first report")
    parser.add_argument("bench_args", nargs="*", help="more flags for jaxmom bench")
    args = parser.parse_args()
    reports = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.runs):
            path = Path(tmp) / f"run{i}.json"
            subprocess.run(
                [sys.executable, "-m", "jaxmom", "bench", "--out", str(path), *args.bench_args],
                check=True,
            )
            reports.append(json.loads(path.read_text()))
            if i == 0 and args.keep is not None:
                shutil.copy(path, args.keep)
                shutil.copy(path.with_suffix(".png"), args.keep.with_suffix(".png"))
    peaks = [r["peak_gflops"] for r in reports]
    ratios = {k: [r["ratios"][k] for r in reports] for k in reports[0]["ratios"]}

    def spread(values):
        return (max(values) - min(values)) / max(values)

    summary = {
        "date": time.strftime("%Y-%m-%d"),
        "device": reports[0]["device"],
        "versions": reports[0]["versions"],
        "bench_args": args.bench_args,
        "peaks_gflops": peaks,
        "peak_spread": spread(peaks),
        "peak_sample_spreads": [r["peak"]["spread"] for r in reports],
        "theoretical": reports[0]["peak"]["theoretical"],
        "ratios": ratios,
        "ratio_spreads": {k: spread(v) for k, v in ratios.items()},
    }
    args.out.write_text(json.dumps(summary, indent=2) + "\n")
    print(
        f"peaks {[round(p, 1) for p in peaks]} (spread {100 * summary['peak_spread']:.1f}%); "
        f"largest ratio spread {100 * max(summary['ratio_spreads'].values()):.1f}%"
    )


if __name__ == "__main__":
    main()
