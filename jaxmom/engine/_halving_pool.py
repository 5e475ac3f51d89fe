"""Successive halving's rungs on the lane pool: synchronous decisions, one compiled program.

A rung's trials run in waves of the pool's slots: a wave's lanes are loaded (a new trial
starts from ``task.init`` inside the program; a survivor's state is put back from the host),
advanced segment by segment to the rung's steps, evaluated, and their states kept on the host
until the rung is decided. Every rung and bracket, and every call with the same task and
shapes, runs the same program: a repeated ``halving_sweep`` compiles nothing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import jax
import numpy as np

from jaxmom.engine._blocks import diverged_runs
from jaxmom.engine._plans import check_plan
from jaxmom.engine._pool import Pool
from jaxmom.engine._pool_setup import Request, set_up


@dataclass(frozen=True)
class RungResult:
    """A rung's runs as the engine's sweeps give them: ``outputs`` ``{"metrics/name":
    [trials, seeds, ...]}`` and ``diverged`` ``[trials, seeds]``."""

    outputs: dict
    diverged: np.ndarray

    def __getitem__(self, name: str) -> np.ndarray:
        return self.outputs[name]


def survivors(res, metric: str, sign: float, eta: int) -> np.ndarray:
    """The best ``1/eta`` trials of a rung (at least one) among those with every seed finite
    and not diverged, ranked by the metric's mean over seeds (``sign`` -1 to maximise)."""
    value = sign * np.asarray(res[f"metrics/{metric}"], np.float64)
    score = value.mean(-1)
    score[~np.isfinite(score) | res.diverged.any(-1)] = np.inf
    k = max(1, len(score) // eta)
    best = np.argsort(score, kind="stable")[:k]
    return np.sort(best[np.isfinite(score[best])])


def fit_slots(sizes: list[int], segments: list[int], devices: int, cap: int) -> int:
    """Slots per device (a power of two, at most ``cap``) that compute a bracket's rungs
    (``sizes[i]`` trials for ``segments[i]`` segments) in the fewest slot-segments, a call
    counted as two slots of work (on a CPU a lane costs the same in any pool)."""
    best, pick = math.inf, 1
    per = 1
    while per <= cap:
        c = per * devices
        cost = sum(math.ceil(n / c) * s * (c + 2) for n, s in zip(sizes, segments, strict=True))
        if cost < best:
            best, pick = cost, per
        per *= 2
    return pick


def halving_pool(schedule, table, sizes, chunk_size, options) -> Pool:
    """The pool a halving sweep's rungs run on: ``schedule`` the sweep's (its ``task``,
    ``seeds``, ``data``, rung ``steps``, ``eta`` and ``plan``), ``sizes`` the trials each
    bracket starts with (the first's, halved at each rung, fits the pool's size);
    ``chunk_size`` (runs per call) sets its lanes; ``options``: XLA's."""
    task, seeds, data, steps, eta = (
        schedule.task,
        schedule.seeds,
        schedule.data,
        schedule.steps,
        schedule.eta,
    )
    n = sum(sizes)
    lanes = None if chunk_size is None else max(1, chunk_size // jax.device_count())

    def fit(seg: int, devices: int) -> int:
        alive = [sizes[0]]
        for _ in steps[1:]:
            alive.append(max(1, alive[-1] // eta))
        segments = [math.ceil((b - a) / seg) for a, b in zip([0, *steps], steps, strict=False)]
        cap = max(1, -(-n // devices))
        return fit_slots(alive, segments, devices, 1 << max(0, (cap - 1).bit_length()))

    plan = check_plan(schedule.plan)
    req = Request(task, seeds, data, schedule.metric, (), plan, lanes, options)
    return set_up(req, table, steps, fit).pool


def run_rung(pool: Pool, table: dict, start: int, end: int, parked, check, label=None) -> tuple:
    """Runs the trials of ``table`` (``{name: [n]}``) from ``start`` steps (new runs when
    ``parked`` is ``None``, else the host states ``[n, k, ...]`` it holds) to ``end``, with a
    progress bar of ``label`` (``None``: none).

    Returns ``(RungResult, states [n, k, ...] on the host)``."""
    n = len(next(iter(table.values())))
    c = pool.capacity
    outs, states = [], []
    tree = jax.tree.structure(pool.zeros(1))
    bar = None
    if label is not None:
        from tqdm.auto import tqdm

        bar = tqdm(total=n, unit="trial", desc=label, smoothing=0.1)
    for lo in range(0, n, c):
        rows = np.arange(lo, min(n, lo + c))
        host = pool.zeros(pool.slots)
        if parked is not None:
            d, s = np.divmod(np.arange(len(rows)), pool.slots)
            for a, b in zip(jax.tree.leaves(host), jax.tree.leaves(parked), strict=True):
                a[d, :, s] = b[rows]
        pool.load(host)
        hp = {k: np.resize(v[rows], c) for k, v in table.items()}
        live = np.arange(c) < len(rows)
        got = pool.run_to(hp, live, start, end, reset=live & (parked is None))
        outs.append({f"metrics/{k}": v[: len(rows)] for k, v in got.items()})
        kept = pool.host_state()
        d, s = np.divmod(np.arange(len(rows)), pool.slots)
        states.append([a[d, :, s] for a in jax.tree.leaves(kept)])
        if bar is not None:
            bar.update(len(rows))
    if bar is not None:
        bar.close()
    merged = {k: np.concatenate([o[k] for o in outs]) for k in outs[0]}
    checked = {name: merged[f"metrics/{name}"] for name in check}
    bad = diverged_runs(checked, check, n, len(pool.seeds))
    leaves = [np.concatenate(parts) for parts in zip(*states, strict=True)]
    return RungResult(merged, bad), jax.tree.unflatten(tree, leaves)
