"""Opening a 10^9-run store costs what is read: its metadata, not its runs.

A store of 1000 betas x 1000 learning rates x 1000 seeds (10^9 runs, the chapter's outputs with
``record_every=0``: ``final_loss`` and 12 epoch losses) is created with nothing computed; then,
in a fresh process, ``SweepResult.load`` opens it, ``res.outputs["final_loss"][3, 5]`` reads one
grid point's 1000 seeds (1000 chunks: a block is 512 points x 1 seed). ``res.done`` would read
the whole status (10^9 bytes): it is read only when asked for, not when the store is opened.

Command:  python benchmarks/open_store.py --out benchmarks/open_store_1e9.json
Writes:   the JSON report: seconds and peak memory (max RSS) of the fresh process for each step,
          the store's size on disk, device, CPU, versions and date.
Runtime:  a few seconds.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

AXIS, SEEDS, EPOCHS = 1000, 1000, 12


def create(path: str) -> None:
    from jaxmom.results import Store

    spec = dict(
        axes={
            "beta": [i / AXIS for i in range(AXIS)],
            "learning_rate": [10 ** (-3 + 3 * i / AXIS) for i in range(AXIS)],
        },
        seeds=list(range(SEEDS)),
        outputs={"final_loss": [[], "float32"], "epoch_losses": [[EPOCHS], "float32"]},
        settings={"epochs": EPOCHS},
        data=None,
        computation=None,
        block=[512, 1],
        metadata={},
    )
    Store.open(path, spec).close()


def open_and_read(path: str) -> dict:
    def rss_mb() -> float:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    t0 = time.perf_counter()
    import jaxmom

    imported, base = time.perf_counter() - t0, rss_mb()
    t0 = time.perf_counter()
    res = jaxmom.SweepResult.load(path)
    opened = time.perf_counter() - t0
    runs = int(res.run_shape[0] * res.run_shape[1] * res.run_shape[2])
    t0 = time.perf_counter()
    one = res.outputs["final_loss"][3, 5]  # one grid point, all seeds: NaN (not computed)
    read_one = time.perf_counter() - t0
    return {
        "runs": runs,
        "import_seconds": imported,
        "open_seconds": opened,
        "read_one_point_seconds": read_one,
        "values_read": int(one.size),
        "max_rss_mb_after_import": base,
        "max_rss_mb_after_open_and_read": rss_mb(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="FILE.json: the report")
    parser.add_argument("--step", choices=("create", "open"), help=argparse.SUPPRESS)
    parser.add_argument("--path", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.step == "create":
        return create(args.path)
    if args.step == "open":
        print(json.dumps(open_and_read(args.path)))
        return None
    tmp = Path(tempfile.mkdtemp())
    try:
        path = str(tmp / "big.zarr")
        t0 = time.perf_counter()
        me = [sys.executable, __file__, "--out", args.out, "--path", path, "--step"]
        subprocess.run([*me, "create"], check=True)
        created = time.perf_counter() - t0
        row = json.loads(
            subprocess.run([*me, "open"], check=True, capture_output=True, text=True).stdout
        )
        disk = sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file())
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    import jax
    import zarr

    import jaxmom

    report = {
        "what": "SweepResult.load of a 10^9-run store (1000 x 1000 points x 1000 seeds, nothing "
        "computed) in a fresh process, and one grid point's seeds read",
        "date": time.strftime("%Y-%m-%d"),
        "cpu": platform.processor() or _cpu(),
        "versions": {
            "python": platform.python_version(),
            "jaxmom": jaxmom.__version__,
            "jax": jax.__version__,
            "zarr": zarr.__version__,
        },
        "create_seconds_with_process_start": created,
        "store_bytes_on_disk": disk,
        **row,
    }
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.machine()


if __name__ == "__main__":
    main()
