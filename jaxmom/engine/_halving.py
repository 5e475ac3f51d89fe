"""Successive halving and Hyperband inside compiled programs, on the one sweep engine.

Every trial is trained, with all of its seeds, to a first rung of ``min_steps`` steps and
evaluated; the trials are ranked by the metric's mean over seeds (a diverged run or a
non-finite value ranks last and never goes on); the best ``1/eta`` go on to ``eta`` times the
steps, and so on up to ``max_steps``. A rung is one run of the engine over the trials still
running: the survivors' states are gathered into a dense table first, so a rung costs what its
survivors cost. ``brackets > 1`` is Hyperband: the trials are shared among
brackets that start at later rungs with fewer trials each (as Li et al. 2018 share a budget).

With ``out=PATH`` every rung is a store (``PATH/b{bracket}_r{rung}.zarr``) holding each run's
state and metrics: a kill at any moment resumes, by the same call, from the last stored block,
and a finished rung is read, not run again.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import jax
import numpy as np
from numpy.typing import ArrayLike

from jaxmom.common import check_positive_int, check_settings
from jaxmom.engine._checks import (
    SweepTooLarge,
    available_memory,
    check_finite_names,
    check_seeds,
    check_trials,
    gb,
)
from jaxmom.engine._halving_folder import check_halving_path, claim
from jaxmom.engine._halving_pool import halving_pool, run_rung, survivors
from jaxmom.engine._plans import Plan, check_plan
from jaxmom.engine._pool import Pool, restore, storable
from jaxmom.engine._pool_setup import traced_task
from jaxmom.engine._sweeps import Options, run_sweep
from jaxmom.results import Points, SweepResult, metric_mode
from jaxmom.training import Segments, Task


def rung_steps(min_steps: int, max_steps: int, eta: int) -> list[int]:
    """The steps of each rung: ``min_steps * eta**i`` below ``max_steps``, then ``max_steps``."""
    steps = [min_steps]
    while steps[-1] * eta < max_steps:
        steps.append(steps[-1] * eta)
    return steps if steps[-1] == max_steps else [*steps, max_steps]


def bracket_sizes(n: int, rungs: int, brackets: int, eta: int) -> list[int]:
    """How many of ``n`` trials each bracket starts with: bracket ``b`` starts at rung ``b``
    with Hyperband's share ``eta**s / (s + 1)`` (``s = rungs - 1 - b`` halvings to come)."""
    share = np.array([eta ** (rungs - 1 - b) / (rungs - b) for b in range(brackets)])
    sizes = np.maximum(1, np.floor(n * share / share.sum())).astype(int)
    sizes[0] += n - sizes.sum()
    return sizes.tolist()


def check_halving_size(n_trials: int, n_seeds: int, n_rungs: int, per_run: int = 0) -> None:
    """A :class:`jaxmom.SweepTooLarge` if the decisions of a halving sweep (each trial's metric
    at every rung, per seed) and its final outputs (``per_run`` bytes a run) would not fit in
    this machine's free memory: said before anything is sampled or trained."""
    need = n_trials * n_seeds * (8 * n_rungs + 1 + per_run) + 16 * n_trials
    avail = available_memory()
    if avail and need > 0.75 * avail:
        raise SweepTooLarge(
            f"a halving sweep of {n_trials:,} trials x {n_seeds:,} seeds keeps {gb(need)} of "
            f"decisions and results, more than this machine's {gb(avail)} of free memory can "
            "hold: sample fewer trials or use fewer seeds"
        )


def halving_sweep(
    task: Task,
    trials: Mapping[str, ArrayLike],
    seeds: Sequence[int] = (0,),
    *,
    data=None,
    min_steps: int,
    max_steps: int,
    eta: int = 3,
    brackets: int = 1,
    metric: str,
    mode: str | None = None,
    out: str | os.PathLike | None = None,
    chunk_size: int | None = None,
    progress: bool = True,
    compiler_options: Mapping | None = None,
    check_finite: Sequence[str] | None = None,
    settings: Mapping | None = None,
    plan: Plan | Mapping | str | None = None,
) -> SweepResult:
    """Successive halving (``brackets=1``) or Hyperband over a table of trials.

    Args:
      task: a :class:`jaxmom.Task` (e.g. :func:`jaxmom.nnx_task`).
      trials: a table (name -> 1-D values of one length), e.g. from :func:`jaxmom.sample`; a
        grid goes through :func:`jaxmom.product`.
      seeds: the seeds every trial runs with; a trial is ranked by its mean over them.
      data: passed to the task's functions.
      min_steps, max_steps: the first rung's steps and the last's.
      eta: each rung keeps the best ``1/eta`` of its trials (at least one) and trains them
        ``eta`` times as many steps.
      brackets: 1 for successive halving; more for Hyperband (at most the number of rungs).
      metric: an output of ``task.evaluate``, one scalar per run, that ranks the trials.
      mode: ``"min"`` or ``"max"``; ``None`` picks by the name (``"max"`` for an accuracy).
      out: a folder for the rungs' stores; the same call resumes it.
      chunk_size, progress, compiler_options, settings, plan: as :func:`jaxmom.grid_sweep`'s
        (a progress bar per rung; ``settings`` are recorded in every rung's store; a task with
        ``segment`` may run its rungs in segments).
      check_finite: the outputs of ``task.evaluate`` whose non-finite values mark a run
        diverged (it ranks last and never goes on); ``None``: all of them.

    Returns:
      A :class:`jaxmom.SweepResult` over ``trial`` (the table's columns as coordinates):
      ``res[name]`` holds ``evaluate``'s outputs at ``max_steps`` for the trials that got
      there and NaN for the pruned; ``res.rungs`` the decisions: ``steps`` [rungs],
      ``reached`` [trial] (the steps each trial trained), ``bracket`` [trial] and ``metric``
      [trial, rung, seed] (NaN where a trial did not reach a rung).
    """
    if not isinstance(task, Task):
        raise TypeError(f"task must be a jaxmom.Task (e.g. jaxmom.nnx_task), got {task!r}")
    table = check_trials(trials)
    seeds = check_seeds(seeds)
    min_steps = check_positive_int(min_steps, "min_steps")
    max_steps = check_positive_int(max_steps, "max_steps")
    eta = check_positive_int(eta, "eta", minimum=2)
    if max_steps < min_steps:
        raise ValueError(f"max_steps={max_steps} must be >= min_steps={min_steps}")
    steps = rung_steps(min_steps, max_steps, eta)
    brackets = check_positive_int(brackets, "brackets")
    if brackets > len(steps):
        raise ValueError(
            f"brackets={brackets} is more than the {len(steps)} rungs of {steps} steps"
        )
    mode = metric_mode(metric, mode)
    user = check_settings(settings)
    check_plan(plan)
    t0 = time.perf_counter()
    points = Points.table(table)
    n = points.n
    traced, like = traced_task(task, table, data, metric, steps[0])
    shapes = traced.shapes
    per_run = sum(int(np.prod(s.shape)) * 4 for s in shapes.values())
    check_halving_size(n, len(seeds), len(steps), per_run)
    if out is not None:
        record = dict(
            points.spec()["trials"],
            seeds=seeds.tolist(),
            steps=steps,
            eta=eta,
            brackets=brackets,
            metric=metric,
            mode=mode,
        )
        if user is not None:
            record["settings"] = user
        claim(check_halving_path(out), record)
    schedule = _Schedule(
        task,
        seeds,
        data,
        steps,
        eta,
        metric,
        sign=-1.0 if mode == "max" else 1.0,
        like=like,
        metrics=[f"metrics/{k}" for k in (shapes if check_finite is None else check_finite)],
        out=None if out is None else Path(out),
        progress=progress,
        chunk_size=chunk_size,
        compiler_options=compiler_options,
        user=user,
        plan=plan,
    )
    if out is None:  # the names check_finite gives, checked as the rung stores' sweeps would
        check_finite_names(schedule.metrics, {f"metrics/{k}": s for k, s in shapes.items()})
        sizes = bracket_sizes(n, len(steps), brackets, eta)
        schedule.pool = halving_pool(schedule, table, sizes, chunk_size, compiler_options)
    final = {k: np.full((n, len(seeds), *s.shape), np.nan, np.float32) for k, s in shapes.items()}
    record = np.full((n, len(steps), len(seeds)), np.nan)
    reached, bracket_of = np.zeros(n, np.int64), np.zeros(n, np.int64)
    diverged = np.zeros((n, len(seeds)), bool)
    start = 0
    for b, size in enumerate(bracket_sizes(n, len(steps), brackets, eta)):
        rows = np.arange(start, start + size)
        start += size
        bracket_of[rows] = b
        for rung, alive, res in schedule.run(b, {k: v[rows] for k, v in table.items()}):
            ids = rows[alive]
            record[ids, rung] = res[f"metrics/{metric}"]
            reached[ids] = steps[rung]
            diverged[ids] = res.diverged
            if rung == len(steps) - 1:
                for k in final:
                    final[k][ids] = res[f"metrics/{k}"]
    meta = {"settings": schedule.settings(brackets), "halving": True}
    if schedule.pool is not None:
        counts = schedule.pool.counts
        meta["pool"] = dict(label=schedule.pool.label, busy=counts["busy"] / counts["computed"])
    meta["wall_seconds"] = time.perf_counter() - t0
    result = SweepResult(
        points.axes,
        seeds,
        final,
        diverged,
        np.ones_like(diverged),
        meta,
        trials=table,
    )
    result.rungs = {"steps": np.array(steps), "reached": reached, "bracket": bracket_of}
    result.rungs["metric"] = record
    return result


@dataclass
class _Schedule:
    """The rungs of one bracket: which trials run, from which states, to how many steps.
    ``like``: the task state's types; ``metrics``: the outputs whose non-finite values mark a
    diverged run; ``sign``: -1 to maximise ``metric``."""

    task: Task
    seeds: np.ndarray
    data: object
    steps: list[int]
    eta: int
    metric: str
    sign: float
    like: object
    metrics: list[str]
    out: Path | None = None
    progress: bool = True
    chunk_size: int | None = None
    compiler_options: Mapping | None = None
    user: dict | None = None
    plan: object = None
    pool: Pool | None = None  # the lane pool the rungs run on, or None: a run_sweep a rung

    def settings(self, brackets: int) -> dict:
        out = dict(
            steps=self.steps, eta=self.eta, metric=self.metric, sign=self.sign, brackets=brackets
        )
        return out if self.user is None else dict(out, user=self.user)

    def run(self, bracket: int, table: dict):
        """Yields ``(rung, alive, result)`` for each rung of the bracket that runs: ``alive``
        the positions in ``table`` of the trials it ran."""
        alive = np.arange(len(next(iter(table.values()))))
        if self.pool is not None:
            yield from self._on_pool(bracket, table, alive)
            return
        carry, done = None, 0
        for rung in range(bracket, len(self.steps)):
            resume, has_data = carry is not None, self.data is not None
            fn = _rung_fn(self.task, self.steps[rung] - done, self.like, resume, has_data)
            options = Options(
                data=self.data,
                chunk_size=self.chunk_size,
                progress=self.progress,
                carry=carry,
                check_finite=self.metrics,
                compiler_options=self.compiler_options,
                plan=self.plan,
                out=None if self.out is None else self.out / f"b{bracket}_r{rung}.zarr",
                settings=dict(self.settings(0), bracket=bracket, rung=rung),
            )
            points = Points.table({k: v[alive] for k, v in table.items()})
            res = run_sweep(fn, points, self.seeds, options)
            yield rung, alive, res
            if rung == len(self.steps) - 1:
                return
            keep = survivors(res, self.metric, self.sign, self.eta)
            if not len(keep):
                return
            names = [k for k in res.outputs if k.startswith("state/")]
            tree = jax.tree.structure(self.like)
            carry = jax.tree.unflatten(tree, [np.asarray(res.outputs[k][keep]) for k in names])
            alive, done = alive[keep], self.steps[rung]

    def _on_pool(self, bracket: int, table: dict, alive: np.ndarray):
        """:meth:`run` on the lane pool (:mod:`jaxmom.engine._halving_pool`)."""
        pool, parked, done, last = self.pool, None, 0, len(self.steps) - 1
        assert pool is not None
        check = [m.removeprefix("metrics/") for m in self.metrics]
        for rung in range(bracket, len(self.steps)):
            sub = {k: v[alive] for k, v in table.items()}
            label = f"halving b{bracket} r{rung} ({pool.label})" if self.progress else None
            res, states = run_rung(pool, sub, done, self.steps[rung], parked, check, label)
            yield rung, alive, res
            if rung == last:
                return
            keep = survivors(res, self.metric, self.sign, self.eta)
            if not len(keep):
                return
            parked = jax.tree.map(lambda a, keep=keep: a[keep], states)
            alive, done = alive[keep], self.steps[rung]


def _rung_fn(task: Task, steps: int, like, resume: bool, has_data: bool):
    """``(hp, key[, data][, state]) -> {"state": state, "metrics": evaluate}``: a new run, or
    the stored ``state`` (of the types of ``like``), advanced ``steps`` steps. PRNG keys are
    stored as their key data, and every leaf goes back in its own dtype."""

    def init(hp, key, data, carry):
        return jax.tree.map(restore, like, carry) if resume else task.init(hp, key, data)

    def finish(state, hp, data):
        return {"state": jax.tree.map(storable, state), "metrics": task.evaluate(state, hp, data)}

    def fn(hp, key, *args):
        data = args[0] if has_data else None
        state = init(hp, key, data, args[-1] if resume else None)
        return finish(task.advance(state, hp, data, steps), hp, data)

    fn.__qualname__ = f"halving rung of {steps} steps"
    if task.segment is not None:
        fn.segments = Segments(init, task.segment, finish, lambda data: steps)  # type: ignore[attr-defined]
    return fn
