"""How a run of the experiments compares with the recorded one (``results/``): each claim's
pass or fail in both, and the numbers that differ beyond their last digits.

    python -m experiments --out runs/experiments --compare results   # what make experiments does
"""

from __future__ import annotations

import json
import math
from pathlib import Path

#: Numbers closer than this (relative) are the same up to their last digits: another CPU
#: vectorises float32 sums in another order.
RTOL = 1e-3


def _numbers(tree, path: str = ""):
    """``(path, float)`` for every number in a JSON tree, by its key path."""
    if isinstance(tree, dict):
        for k, v in tree.items():
            yield from _numbers(v, f"{path}.{k}" if path else str(k))
    elif isinstance(tree, list):
        for i, v in enumerate(tree):
            yield from _numbers(v, f"{path}[{i}]")
    elif isinstance(tree, int | float) and not isinstance(tree, bool):
        yield path, float(tree)


def _differs(a: float, b: float) -> bool:
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) != math.isnan(b)
    return abs(a - b) > RTOL * max(abs(a), abs(b), 1e-12)


def compare(run: Path, recorded: Path, names) -> list[str]:
    """Lines saying, experiment by experiment, how ``run`` compares with ``recorded``."""
    lines, claims_run, claims_rec, differ = [], 0, 0, 0
    for name in names:
        new_path, old_path = run / f"{name}.json", recorded / f"{name}.json"
        if not new_path.exists():
            continue
        new = json.loads(new_path.read_text())
        if not old_path.exists():
            lines.append(f"{name}: nothing recorded to compare with")
            continue
        old = json.loads(old_path.read_text())
        for c_new, c_old in zip(new["claims"], old["claims"], strict=False):
            claims_run += c_new["passed"]
            claims_rec += c_old["passed"]
            if c_new["passed"] != c_old["passed"]:
                now = "passes" if c_new["passed"] else "FAILS"
                lines.append(f"{name}: '{c_new['claim']}' {now} here, not in the record")
        old_numbers = dict(_numbers(old.get("numbers", {})))
        for path, value in _numbers(new.get("numbers", {})):
            if path in old_numbers and _differs(value, old_numbers[path]):
                differ += 1
                lines.append(f"{name}: {path} = {value:.6g} (recorded {old_numbers[path]:.6g})")
    head = (
        f"compared with {recorded}/: {claims_run} claims pass here, {claims_rec} in the record; "
        f"{differ} number(s) differ by more than {RTOL:g} (relative)"
    )
    return [head, *lines]
