"""A million runs of the chapter's sweep on one machine: time, time spent writing, memory, disk.

Command:  python benchmarks/scale.py [--runs 1048576] [--record-every 8] --out benchmarks/NAME.json
Writes:   the JSON report (device, CPU model, in-run matmul peak, versions, date), one row per
          configuration: in memory (no ``out=``) and to a store (``out=``), each in a fresh
          process so its peak memory (max RSS) is its own.
Runtime:  about 2 x 90 s for 2^20 runs x 384 steps on a 2-core CPU.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def one(runs: int, record_every: int, out: str | None) -> dict:
    from jaxmom.cli import setup_devices

    setup_devices()
    import numpy as np

    import jaxmom

    n_lr = 4
    betas = np.linspace(0.0, 0.99, runs // n_lr)
    lrs = np.geomspace(0.003, 0.1, n_lr)
    t0 = time.perf_counter()
    res = jaxmom.sweep(betas, lrs, (0,), record_every=record_every, out=out, progress=False)
    total = time.perf_counter() - t0
    meta = res.metadata
    size = sum(f.stat().st_size for f in Path(out).rglob("*") if f.is_file()) if out else None
    return {
        "runs": int(res.diverged.size),
        "steps": meta["settings"]["steps"],
        "record_every": record_every,
        "store": out is not None,
        "seconds": total,
        "sweep_wall_seconds": meta["wall_seconds"],
        "write_wait_seconds": meta.get("write_wait_seconds", 0.0),
        "writer_busy_seconds": meta.get("writer_busy_seconds", 0.0),
        "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "store_bytes": size,
        "diverged": int(res.diverged.sum()),
        "model_steps_per_second": res.diverged.size
        * meta["settings"]["steps"]
        / meta["wall_seconds"],
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--runs", type=int, default=2**20, help="runs in all (default 2^20)")
    p.add_argument("--record-every", type=int, default=8, help="keep every k-th step's loss")
    p.add_argument("--out", required=True, help="the JSON report")
    p.add_argument("--one", default=None, help=argparse.SUPPRESS)  # a child: "memory" or a path
    args = p.parse_args(argv)
    if args.one is not None:
        row = one(args.runs, args.record_every, None if args.one == "memory" else args.one)
        print(json.dumps(row))
        return 0
    from jaxmom import bench
    from jaxmom.common import check_output_file, write_text

    check_output_file(args.out, "--out")
    rows = []
    with tempfile.TemporaryDirectory(dir=Path(args.out).absolute().parent) as tmp:
        for target in ("memory", str(Path(tmp) / "million.zarr")):
            cmd = [
                sys.executable,
                __file__,
                "--runs",
                str(args.runs),
                "--record-every",
                str(args.record_every),
                "--out",
                args.out,
                "--one",
                target,
            ]
            done = subprocess.run(cmd, capture_output=True, text=True, check=True)
            rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
            print(rows[-1], flush=True)
            shutil.rmtree(target, ignore_errors=True)
    import jax

    from jaxmom.bench import Peak
    from jaxmom.cli import setup_devices

    setup_devices()
    report = {
        "date": time.strftime("%Y-%m-%d"),
        "device": bench.device_info(),
        "peak_gflops": Peak(2048).gflops,
        "matmul_size": 2048,
        "versions": bench.versions(None),
        "jax_devices": jax.device_count(),
        "rows": rows,
    }
    mem, disk = rows
    report["store_overhead"] = disk["seconds"] / mem["seconds"] - 1
    report["write_wait_fraction"] = disk["write_wait_seconds"] / disk["sweep_wall_seconds"]
    write_text(args.out, json.dumps(report, indent=2) + "\n")
    print(f"store overhead {100 * report['store_overhead']:.1f}%; wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
