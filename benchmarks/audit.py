"""Faults and bad input, tried as they happen, each in a fresh process of the ``jaxmom`` command.

    python benchmarks/audit.py --out benchmarks/audit.json

What it counts (every scenario on a small chapter sweep, or a halving search, with ``--out``):

- ``kill``: a SIGKILL at the k-th file renamed into a store (every one of them, by an audit
  hook), then the same command again: survived if it ends 0 and the result holds the bits of an
  uninterrupted run.
- ``full_disk``: from the k-th file a store opens for writing on, every write fails with
  ENOSPC (an audit hook): survived if the command ends in one line without a traceback that
  says nothing of deleting, and the same command, with room again, gives the same bits.
- ``crafted``: a finished store damaged one way (garbage of the right size in a status or an
  output chunk, a truncated chunk, a missing array's metadata, an attribute edited, a linked
  folder, a damaged ``halving.json``, ...): survived if ``jaxmom verify`` and the same command
  each end without a traceback, the command either in one line or with the same bits, and
  nothing was written outside the store.
- ``bad_flags``: a bad flag or value: refused cleanly if the command ends with status 2 and no
  traceback, in one line if its error is one line.

The same script runs against any version of jaxmom that has the ``jaxmom`` command (put it
first on ``PYTHONPATH``), so a report says what changed.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SWEEP = [
    "sweep",
    "--betas",
    "0:0.9:6",
    "--lrs",
    "0.01,0.1",
    "--seeds",
    "2",
    "--epochs",
    "1",
    "--chunk-size",
    "4",
    "--devices",
    "1",
    "--no-progress",
    "--out",
    "s.zarr",
]
HALVING = [
    "sweep",
    "--sample",
    "sobol:8",
    "--betas",
    "0:0.99",
    "--lrs",
    "log:1e-3:0.3",
    "--halving",
    "2",
    "--epochs",
    "2",
    "--devices",
    "1",
    "--no-progress",
    "--out",
    "h",
]

# Runs the command with an audit hook: "count" counts renames into the store; "kill K" kills at
# the K-th; "full K" fails every write-open from the K-th on with ENOSPC.
HOOKED = r"""
import errno, os, sys
mode, k, store = sys.argv[1], int(sys.argv[2]), os.path.abspath(sys.argv[3])
seen = [0]

def hook(event, args):
    if mode in ("count", "kill") and event == "os.rename":
        if os.path.abspath(str(args[1])).startswith(store):
            seen[0] += 1
            if mode == "kill" and seen[0] == k:
                os.kill(os.getpid(), 9)
    if mode == "full" and event == "open" and isinstance(args[0], str):
        writing = (isinstance(args[1], str) and any(c in args[1] for c in "wax+")) or (
            isinstance(args[2], int) and args[2] & (os.O_WRONLY | os.O_RDWR))
        if writing and os.path.abspath(args[0]).startswith(store):
            seen[0] += 1
            if seen[0] >= k:
                raise OSError(errno.ENOSPC, "No space left on device", args[0])

sys.addaudithook(hook)
from jaxmom.cli import main
status = main(sys.argv[4:])
if mode == "count":
    print("RENAMES", seen[0], file=sys.stderr)
sys.exit(status)
"""


def _run(cwd: Path, argv: list[str], hooked: tuple | None = None, timeout: int = 300):
    if hooked is None:
        cmd = [sys.executable, "-m", "jaxmom", *argv]
    else:
        cmd = [sys.executable, "-c", HOOKED, *map(str, hooked), *argv]
    t0 = time.perf_counter()
    p = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    return p.returncode, p.stderr, time.perf_counter() - t0


def _one_line(err: str) -> bool:
    lines = [ln for ln in err.strip().splitlines() if ln.strip() and "Warning" not in ln]
    return len(lines) == 1 and "Traceback" not in err


def _bits(cwd: Path, store: str) -> str | None:
    """A digest of the sweep's results (None if it cannot be read)."""
    code = (
        "import sys, hashlib, numpy as np, jaxmom\n"
        "r = jaxmom.SweepResult.load(sys.argv[1])\n"
        "h = hashlib.sha256()\n"
        "for k in sorted(r.outputs): h.update(np.ascontiguousarray(np.asarray(r[k])).tobytes())\n"
        "h.update(np.asarray(r.diverged).tobytes()); print(h.hexdigest())"
    )
    p = subprocess.run(
        [sys.executable, "-c", code, store], cwd=cwd, capture_output=True, text=True, timeout=300
    )
    return p.stdout.strip() if p.returncode == 0 else None


def kills(work: Path, say) -> list[dict]:
    ref = work / "ref"
    ref.mkdir()
    _run(ref, SWEEP)
    want = _bits(ref, "s.zarr")
    count = work / "count"
    count.mkdir()
    _, err, _ = _run(count, SWEEP, ("count", 0, "s.zarr"))
    n = int(err.split("RENAMES")[-1].split()[0])
    rows = []
    for k in range(1, n + 1):
        d = work / f"kill{k}"
        d.mkdir()
        code, _, _ = _run(d, SWEEP, ("kill", k, "s.zarr"))
        again, err, _ = _run(d, SWEEP)
        ok = code == -9 and again == 0 and _bits(d, "s.zarr") == want
        rows.append({"kind": "kill", "at_rename": k, "survived": bool(ok), "said": err[-300:]})
    say(f"kill: {sum(r['survived'] for r in rows)}/{len(rows)} survived")
    return rows


def full_disk(work: Path, say, points=(1, 2, 3, 5, 8, 13, 21, 34)) -> list[dict]:
    ref = work / "ref"
    want = _bits(ref, "s.zarr")
    rows = []
    for k in points:
        d = work / f"full{k}"
        d.mkdir()
        code, err, _ = _run(d, SWEEP, ("full", k, "s.zarr"))
        clean = code != 0 and _one_line(err) and "delete" not in err.lower()
        again, _, _ = _run(d, SWEEP)
        ok = clean and again == 0 and _bits(d, "s.zarr") == want
        rows.append(
            {"kind": "full_disk", "from_write": k, "survived": bool(ok), "said": err[-300:]}
        )
    say(f"full disk: {sum(r['survived'] for r in rows)}/{len(rows)} survived")
    return rows


def _garbage(path: Path) -> None:
    path.write_bytes(os.urandom(path.stat().st_size))


def _edit_attrs(store: Path, **changes) -> None:
    meta = json.loads((store / "zarr.json").read_text())
    meta["attributes"].update(changes)
    (store / "zarr.json").write_text(json.dumps(meta))


def _link_block(store: Path) -> None:
    """A block's folder moved out of the store and linked back, the block not done: a resume
    that follows the link writes out of the store."""
    block = store / "final_loss" / "c" / "1"
    outside = store.parent / "outside"
    block.rename(outside)
    block.symlink_to(outside, target_is_directory=True)
    shutil.rmtree(store / "status" / "c" / "1")


CRAFTED = {
    "garbage status chunk": lambda s: _garbage(s / "status" / "c" / "0" / "0"),
    "garbage output chunk": lambda s: _garbage(s / "final_loss" / "c" / "0" / "0"),
    "truncated output chunk": lambda s: (s / "final_loss" / "c" / "0" / "0").write_bytes(b"x"),
    "missing array metadata": lambda s: (s / "final_loss" / "zarr.json").unlink(),
    "garbage root metadata": lambda s: (s / "zarr.json").write_text("{not json"),
    "block attribute [0, 1]": lambda s: _edit_attrs(s, block=[0, 1]),
    "no outputs attribute": lambda s: _edit_attrs(s, outputs={}),
    "linked block folder": _link_block,
    "lock is a link": lambda s: (
        (s / ".lock").unlink(missing_ok=True),
        (s / ".lock").symlink_to(s.parent / "elsewhere"),
    ),
    "half the blocks forgotten": lambda s: shutil.rmtree(s / "status" / "c" / "1"),
}


def _outside(folder: Path) -> list:
    """Every file beside the store, with its size and time of last change: a write through a
    link out of the store changes them, even where a file is replaced by one of its name."""
    return sorted(
        (str(p), p.stat().st_size, p.stat().st_mtime_ns)
        for p in folder.rglob("*")
        if "s.zarr" not in p.parts and p.is_file()
    )


def crafted(work: Path, say) -> list[dict]:
    want = _bits(work / "ref", "s.zarr")
    rows = []
    for i, (what, damage) in enumerate(CRAFTED.items()):
        d = work / f"crafted{i}"
        shutil.copytree(work / "ref", d, symlinks=True)
        damage(d / "s.zarr")
        listing = _outside(d)
        v_code, v_err, _ = _run(d, ["verify", "s.zarr"])
        code, err, _ = _run(d, SWEEP)
        same = code == 0 and _bits(d, "s.zarr") == want
        clean = (
            "Traceback" not in v_err
            and v_code in (0, 1, 2)
            and (same or (code == 2 and _one_line(err)))
        )
        # nothing written outside the store (through a link, say)
        untouched = _outside(d) == listing
        ok = clean and untouched
        rows.append(
            {"kind": "crafted", "what": what, "survived": bool(ok), "said": (v_err + err)[-300:]}
        )
    # a halving folder: its mark damaged, then verified and resumed
    d = work / "halving"
    d.mkdir()
    _run(d, HALVING)
    (d / "h" / "halving.json").write_text('{"columns": ')
    v_code, v_err, _ = _run(d, ["verify", "h"])
    code, err, _ = _run(d, HALVING)
    ok = (
        "Traceback" not in v_err + err
        and v_code in (0, 1)
        and code in (0, 2)
        and (code == 0 or ("damaged" in err and _one_line(err)))
    )
    rows.append(
        {
            "kind": "crafted",
            "what": "damaged halving.json",
            "survived": bool(ok),
            "said": (v_err + err)[-300:],
        }
    )
    say(f"crafted: {sum(r['survived'] for r in rows)}/{len(rows)} survived")
    return rows


BAD_FLAGS = [
    ["sweep", "--betas", "x"],
    ["sweep", "--betas", "0:1:0"],
    ["sweep", "--betas", "1.5"],
    ["sweep", "--betas", "nan"],
    ["sweep", "--lrs", "-1"],
    ["sweep", "--seeds", "0"],
    ["sweep", "--seeds", "-3"],
    ["sweep", "--epochs", "0"],
    ["sweep", "--batch-size", "0"],
    ["sweep", "--batch-size", "5000"],
    ["sweep", "--chunk-size", "0"],
    ["sweep", "--record-every", "-1"],
    ["sweep", "--sample", "grid:10", "--betas", "0:1", "--lrs", "log:1e-3:1"],
    ["sweep", "--sample", "sobol:0", "--betas", "0:1", "--lrs", "log:1e-3:1"],
    ["sweep", "--betas", "0:1"],
    ["sweep", "--sample", "sobol:8", "--betas", "0:1", "--lrs", "log:-1:1"],
    ["sweep", "--halving", "1"],
    ["sweep", "--min-epochs", "2"],
    ["sweep", "--halving", "3", "--min-epochs", "5", "--epochs", "2"],
    [
        "sweep",
        "--sample",
        "sobol:16",
        "--betas",
        "0:0.99",
        "--lrs",
        "log:1e-3:1",
        "--halving",
        "3",
        "--record-every",
        "4",
    ],
    [
        "sweep",
        "--sample",
        "sobol:10000000",
        "--seeds",
        "10000",
        "--halving",
        "3",
        "--betas",
        "0:0.99",
        "--lrs",
        "log:1e-3:1",
    ],
    ["sweep", "--out", "/no/such/folder/s.zarr"],
    ["sweep", "--csv", "/no/such/folder/s.csv"],
    ["verify", "no-such-store.zarr"],
    ["bench", "--models", "a"],
    ["bench", "--task", "nope"],
    ["bench", "--methods", "nope"],
    ["theory", "--mu", "0", "--L", "1"],
    ["theory", "--mu", "3", "--L", "1"],
    ["nope"],
]


def bad_flags(work: Path, say) -> list[dict]:
    rows = []
    for argv in BAD_FLAGS:
        code, err, seconds = _run(work, argv, timeout=120)
        clean = code == 2 and "Traceback" not in err
        rows.append(
            {
                "kind": "bad_flags",
                "argv": argv,
                "refused": clean,
                "one_line": clean and _one_line(err),
                "seconds": round(seconds, 2),
                "said": err.strip().splitlines()[-1][:200] if err.strip() else "",
            }
        )
    say(
        f"bad flags: {sum(r['refused'] for r in rows)}/{len(rows)} refused cleanly, "
        f"{sum(r['one_line'] for r in rows)} in one line"
    )
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="the report (JSON)")
    args = parser.parse_args(argv)
    import jaxmom

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for part in (kills, full_disk, crafted, bad_flags):
            rows += part(work, print)
    faults = [r for r in rows if r["kind"] != "bad_flags"]
    flags = [r for r in rows if r["kind"] == "bad_flags"]
    report = {
        "format": "jaxmom.audit/1",
        "date": time.strftime("%Y-%m-%d"),
        "jaxmom": jaxmom.__version__,
        "faults": {"tried": len(faults), "survived": sum(r["survived"] for r in faults)},
        "bad_flags": {
            "tried": len(flags),
            "refused": sum(r["refused"] for r in flags),
            "one_line": sum(r["one_line"] for r in flags),
        },
        "rows": rows,
    }
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps({k: report[k] for k in ("jaxmom", "faults", "bad_flags")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
