"""Time to the first result: ``jaxmom.sweep`` over 16 betas in fresh processes, this checkout
against an older one, interleaved.

    git worktree add /tmp/old 2b92add        # the sweep before the engine
    python benchmarks/first_call.py --old /tmp/old --out benchmarks/first_call_cpu_2core.json

Each process imports jaxmom, then times one ``jaxmom.sweep(np.linspace(0, 0.99, 16))`` and the
read of its final losses: tracing, compiling and running, what a user waits for.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

CHILD = """
import time
t0 = time.perf_counter()
import numpy as np
import jaxmom
t1 = time.perf_counter()
res = jaxmom.sweep(np.linspace(0, 0.99, 16), progress=False)
np.asarray(res.final_loss)
print(t1 - t0, time.perf_counter() - t1)
"""


def _one(checkout: Path | None) -> tuple[float, float]:
    env = dict(os.environ)
    if checkout is not None:  # the older package first on the path
        env["PYTHONPATH"] = str(checkout)
    out = subprocess.run(
        [sys.executable, "-c", CHILD],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        cwd=checkout or Path.cwd(),
    )
    imp, first = (float(v) for v in out.stdout.split())
    return imp, first


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--old", type=Path, default=None, help="an older checkout to compare")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from jaxmom import bench

    rows = {"now": [], **({"old": []} if args.old else {})}
    for _ in range(args.repeats):
        rows["now"].append(_one(None))
        if args.old:
            rows["old"].append(_one(args.old))
    report = {
        "date": time.strftime("%Y-%m-%d"),
        "device": bench.device_info(),
        "versions": bench.versions(None),
        "old": args.old
        and subprocess.run(
            ["git", "-C", str(args.old), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
        ).stdout.strip(),
        "first_call_seconds": {k: [f for _, f in v] for k, v in rows.items()},
        "median_first_call_seconds": {
            k: statistics.median(f for _, f in v) for k, v in rows.items()
        },
        "median_import_seconds": {k: statistics.median(i for i, _ in v) for k, v in rows.items()},
    }
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report["median_first_call_seconds"]), "->", args.out)


if __name__ == "__main__":
    main()
