"""Asynchronous successive halving (ASHA) on the lane pool: one compiled program for a whole
search, results after every segment.

Every device holds a fixed pool of lanes; a trial (a configuration with all its seeds) takes one
lane per seed. One compiled program advances every lane a segment of steps and evaluates it,
and starts new trials in freed lanes from ``task.init`` inside the same program. Between
segments the host decides: a trial that reaches a rung (``min_steps * eta**i``, up to
``max_steps``) goes on if it is in the best ``1/eta`` of the trials that have reached that rung
so far (:mod:`jaxmom.engine._asha_rule`), else its lanes take the next trial. Nobody waits for a
rung to fill, so the lanes stay busy.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import numpy as np

from jaxmom.common import check_positive_int, check_settings
from jaxmom.engine import _lanes_store as folder
from jaxmom.engine._asha_rule import OUTCOMES, Decisions
from jaxmom.engine._checks import check_seeds
from jaxmom.engine._halving import rung_steps
from jaxmom.engine._lanes import Search
from jaxmom.engine._plans import Plan, check_plan
from jaxmom.engine._pool_setup import Request, set_up
from jaxmom.engine._samplers import make_sampler
from jaxmom.results import Points, SweepResult, metric_mode
from jaxmom.training import Task

#: Seconds between checkpoints of a search with ``out=`` (and one at the end).
CHECKPOINT_SECONDS = 2.0


def asha_sweep(
    task: Task,
    space: Mapping | None,
    n_trials: int,
    seeds: Sequence[int] = (0,),
    *,
    data=None,
    min_steps: int,
    max_steps: int,
    eta: int = 3,
    metric: str,
    mode: str | None = None,
    sampler: str | Mapping | Any = "random",
    seed: int = 0,
    lanes: int | None = None,
    out: str | os.PathLike | None = None,
    chunk_size: int | None = None,
    progress: bool = True,
    compiler_options: Mapping | None = None,
    callback: Callable[[dict], object] | None = None,
    check_finite: Sequence[str] | None = None,
    settings: Mapping | None = None,
    plan: Plan | Mapping | str | None = None,
) -> SweepResult:
    """Asynchronous successive halving over ``n_trials`` trials, as one compiled program.

    Args:
      task: a :class:`jaxmom.Task` (e.g. :func:`jaxmom.nnx_task`).
      space: name -> :class:`jaxmom.Uniform`, :class:`jaxmom.LogUniform`, ... ; ``None`` when
        ``sampler`` is a table.
      n_trials: the trials started, in the sampler's order.
      seeds: the seeds every trial runs with (seed ``s`` with ``jax.random.key(s)``, as
        :func:`jaxmom.trial_sweep`); a trial is ranked by its metric's mean over them.
      data: passed to the task's functions.
      min_steps, max_steps: the first rung's steps and the last's; the rungs are
        ``min_steps * eta**i`` below ``max_steps``, then ``max_steps``.
      eta: a trial goes on from a rung if it is in the best ``1/eta`` of those that reached
        that rung before it (itself included; the first ones go on if they are the best yet).
      metric: a scalar output of ``task.evaluate`` that ranks the trials.
      mode: ``"min"`` or ``"max"``; ``None`` picks by the name (``"max"`` for an accuracy).
      sampler: ``"random"``, ``"sobol"`` or ``"halton"`` (:func:`jaxmom.sample` of ``space``
        with ``seed``), a table of trials (name -> values), taken in order, or an Optuna
        study (``optuna.create_study(direction=...)``, its direction the search's ``mode``),
        asked for each new trial as lanes free up, told every rung's value and every trial's
        end (pruned, complete or failed): see :mod:`jaxmom.engine._samplers`. A resumed
        search replays what it told into a fresh study of the same sampler and seed.
      seed: the sampler's seed.
      lanes: runs per device (a trial takes one per seed); ``None`` fits the pool to the
        search, at most 64 a CPU device and 1,024 an accelerator.
      out: a folder: the search is checkpointed there every few seconds and at the end, and
        the same call resumes it to the same bits after a kill at any moment.
      chunk_size: runs a call over every device: ``lanes`` times the devices (give one).
      progress: a progress bar of the trials decided, with the best so far.
      compiler_options: XLA's options for the pool's program.
      callback: called with each decision, a dict: ``trial``, ``rung``, ``steps``,
        ``values`` (per seed), ``outcome`` (``"promoted"``, ``"stopped"``, ``"finished"``,
        ``"diverged"``), ``model_steps`` and ``seconds`` (of the search so far).
      check_finite: the outputs whose non-finite values stop a trial at once (diverged);
        ``None``: every floating output.
      settings: a JSON-able record kept in the result's metadata and checked on resume.
      plan: how the steps run (see :class:`jaxmom.Plan`): ``form``, ``vectorize``,
        ``devices`` and ``segment_steps`` (a divisor of ``min_steps``) apply.

    Returns:
      A :class:`jaxmom.SweepResult` over ``trial``: ``res[name]`` holds ``evaluate``'s outputs
      at ``max_steps`` for the trials that got there, NaN for the others, and
      ``res["steps_reached"]`` the steps each trial trained. ``res.rungs``:
      ``steps`` [rungs]; ``metric`` [trial, rung, seed] (NaN where not reached);
      ``outcome`` [trial, rung] (codes of ``res.rungs["outcomes"]``); ``decided_at`` and
      ``order`` [trial, rung] (the search's model-steps at the decision, and the arrival's
      place at its rung); ``reached`` and ``started_at`` [trial]. ``res.trace`` [segments,
      4]: seconds, model-steps, best value so far and its trial, after every segment.

    Examples:
      >>> import jax.numpy as jnp, jaxmom
      >>> task = jaxmom.Task(  # gradient descent on x**2 / 2, in closed form
      ...     lambda hp, key, data: {"x": jnp.float32(1.0)},
      ...     lambda s, hp, data, steps: {"x": s["x"] * (1 - hp["lr"]) ** steps},
      ...     lambda s, hp, data: {"loss": s["x"] ** 2},
      ... )
      >>> res = jaxmom.asha_sweep(task, {"lr": jaxmom.Uniform(0.0, 0.5)}, 9, min_steps=4,
      ...                         max_steps=36, metric="loss", progress=False)
      >>> done = res.rungs["reached"] == 36
      >>> int(done.sum()) < 9  # not every trial trained to the end
      True
      >>> bool(res.best(1, "loss")[0]["lr"] == res.trials["lr"][done].max())  # the largest won
      True
    """
    t0 = time.perf_counter()
    if not isinstance(task, Task):
        raise TypeError(f"task must be a jaxmom.Task (e.g. jaxmom.nnx_task), got {task!r}")
    if jax.process_count() > 1:
        raise ValueError("asha_sweep runs in one process, on its devices: start it in one")
    n_trials = check_positive_int(n_trials, "n_trials")
    seeds = check_seeds(seeds)
    min_steps = check_positive_int(min_steps, "min_steps")
    max_steps = check_positive_int(max_steps, "max_steps")
    eta = check_positive_int(eta, "eta", minimum=2)
    if max_steps < min_steps:
        raise ValueError(f"max_steps={max_steps} must be >= min_steps={min_steps}")
    mode = metric_mode(metric, mode)
    sign = -1.0 if mode == "max" else 1.0
    source, sampling = make_sampler(space, n_trials, sampler, seed, sign)
    table = source.table
    if lanes is not None and chunk_size is not None:
        raise ValueError(f"give lanes={lanes} (per device) or chunk_size={chunk_size}, not both")
    if chunk_size is not None:
        lanes = max(1, check_positive_int(chunk_size, "chunk_size") // jax.device_count())
    if lanes is not None:
        lanes = check_positive_int(lanes, "lanes")
    options = dict(compiler_options or {})
    if callback is not None and not callable(callback):
        raise TypeError(f"callback must be callable, got {callback!r}")
    user = check_settings(settings)
    forced = check_plan(plan)
    rungs = rung_steps(min_steps, max_steps, eta)

    def fit(steps: int, devices: int) -> int:
        return _fit(n_trials, rungs, steps, eta, devices)

    req = Request(task, seeds, data, metric, check_finite, forced, lanes, options)
    pool, chosen, check, shapes, record = set_up(req, table, rungs, fit)
    record.update(sampler=sampling, n_trials=n_trials, rungs=rungs, eta=eta, mode=mode)
    record["settings"] = user
    path = None if out is None else folder.open_search(out, record)
    spec = pool.spec
    decisions = Decisions(n_trials, rungs, len(seeds), eta, sign)
    search = Search(pool, source, decisions, metric, check, shapes)
    search.t0 = t0
    saved = None if path is None else folder.load(path)
    if saved is not None:
        search.load(saved)
        pool.load_arrays(saved)
    label = f"asha ({pool.label})"
    bar = _bar(progress, n_trials, search, label)

    def events(event: dict) -> None:
        source.told(event)
        if callback is not None:
            callback(event)

    search.events = events
    if bar is not None:
        search.on_decision = lambda t: _tick(bar, search)
    saving = folder.Checkpoints(path, CHECKPOINT_SECONDS)

    def checkpoint(force: bool = False):
        saving(lambda: dict(search.arrays(), **pool.arrays()), force)

    try:
        if not search.done:
            search.run(checkpoint)
            checkpoint(force=True)
    finally:
        if bar is not None:
            bar.close()
    c = search.counters
    meta = dict(
        settings=dict(record, computation=None, user=user),
        asha=True,
        wall_seconds=time.perf_counter() - t0,
        pool=dict(
            slots=pool.slots,
            lanes_per_slot=len(seeds),
            devices=chosen.devices,
            segment_steps=spec.steps,
            segments=c["segments"],
            busy=pool.counts["busy"] / max(1, pool.counts["computed"]),
            sampler_seconds=source.seconds,
            model_steps=c["model_steps"],
        ),
        plan=dict(chosen._asdict(), label=chosen.describe()),
    )
    points = Points.table(table)
    d = search.dec
    outputs = dict(search.final)
    if "steps_reached" not in outputs:  # shown beside the trials by to_dataframe / to_xarray
        outputs["steps_reached"] = np.repeat(d.reached[:, None], len(seeds), axis=1)
    res = SweepResult(
        points.axes,
        seeds,
        outputs,
        search.diverged,
        np.ones_like(search.diverged),
        meta,
        trials=table,
    )
    res.rungs = {"steps": np.array(rungs), **{k: getattr(d, k) for k in d.FIELDS}}
    res.rungs["outcomes"] = OUTCOMES
    res.trace = np.array(search.trace, np.float64).reshape(-1, 4)
    return res


def _fit(n: int, rungs: list, steps: int, eta: int, devices: int) -> int:
    """Slots per device that keep a search's lanes busy: the expected work of ASHA in
    slot-segments over eight times the segments of one whole run (the tail, where the last
    trials promoted run to the end while the other lanes idle, is then at most about an
    eighth), rounded down to a power of two per device. On a CPU a lane costs about the same
    in a small pool as in a large one (``benchmarks/NOTES.md``), so a small pool loses no
    speed."""
    work, before = 0.0, 0
    for i, r in enumerate(rungs):
        work += n * eta**-i * math.ceil((r - before) / steps)
        before = r
    want = work / (8 * math.ceil(rungs[-1] / steps)) / devices
    return 1 << max(0, math.floor(math.log2(max(want, 1.0))))


def _bar(progress, total: int, search: Search, label: str):
    if not progress:
        return None
    from tqdm.auto import tqdm

    done = int((search.dec.outcome >= 2).any(-1).sum())
    return tqdm(total=total, initial=done, unit="trial", desc=label, smoothing=0.1)


def _tick(bar, search: Search) -> None:
    bar.update(1)
    best = search.dec.best()
    if best is not None:
        bar.set_postfix_str(f"best {best[0]:.4g} (trial {best[1]}, rung {best[2]})", refresh=False)
