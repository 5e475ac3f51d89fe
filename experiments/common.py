"""What every experiment shares: its command line, its JSON of numbers, its claims."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

import jaxmom
from jaxmom import theory
from jaxmom.cli import setup_devices


def claim(section: str, text: str, measured: str, passed: bool) -> dict:
    """One claim of the chapter beside the number that checks it."""
    return {"section": section, "claim": text, "measured": measured, "passed": bool(passed)}


def _jsonable(v):
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_jsonable(x) for x in v]
    if isinstance(v, np.generic | np.ndarray) or hasattr(v, "__array__"):
        a = np.asarray(v)
        return a.item() if a.ndim == 0 else a.tolist()
    return v


def write_result(out: Path, name: str, result: dict) -> dict:
    """Writes ``out/<name>.json`` (numbers, claims, figures) and returns ``result``."""
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.json").write_text(json.dumps(_jsonable(result), indent=2) + "\n")
    return result


def save_figure(fig, out: Path, filename: str) -> str:
    out.mkdir(parents=True, exist_ok=True)
    fig.savefig(out / filename, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return filename


def heavy_ball_paths(alpha, beta, h: float, steps: int) -> np.ndarray:
    """``[len(alpha), steps + 1]``: real runs of ``jaxmom.sgd_momentum(alpha_i, beta_i)`` on
    ``h/2 x^2`` from x = 1, all in one vmapped program."""
    run = jax.vmap(
        lambda a, b: theory.quadratic_trajectory(
            jnp.array([h]), 1.0, jaxmom.sgd_momentum(a, b), steps
        )[:, 0]
    )
    return np.asarray(jax.jit(run)(jnp.asarray(alpha), jnp.asarray(beta)))


def main(run, description: str) -> None:
    """The command line of one experiment: ``python -m experiments.NAME [--out DIR] [--quick]``."""
    parser = argparse.ArgumentParser(description=description.strip().splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("results"), help="output folder")
    parser.add_argument("--quick", action="store_true", help="tiny settings, for tests")
    args = parser.parse_args()
    setup_devices()
    t0 = time.perf_counter()
    result = run(args.out, quick=args.quick)
    for c in result["claims"]:
        print(f"[{'PASS' if c['passed'] else 'FAIL'}] {c['claim']}: {c['measured']}")
    print(f"wrote {', '.join(result['figures'])} to {args.out} in {time.perf_counter() - t0:.1f}s")
