"""Population-based training on the lane pool: a schedule of hyperparameters, learnt in one
compiled program.

Every member of the population holds one slot (a lane per seed). Every ``interval`` steps the
members are evaluated and ranked by the metric's mean over seeds; each of the worst
``fraction`` copies the whole state of a member drawn from the best ``fraction`` (exploit: a
gather by slot inside the pool's program, so nothing recompiles) and takes its hyperparameters,
explored (:mod:`jaxmom.engine._pbt_rule`). The result keeps every member's hyperparameters over
time and its family tree, so the line of the best member is a schedule of hyperparameters.
"""

from __future__ import annotations

import math
import numbers
import os
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import numpy as np

from jaxmom.common import check_positive_int, check_settings
from jaxmom.engine import _lanes_store as folder
from jaxmom.engine._blocks import diverged_runs
from jaxmom.engine._checks import check_seeds
from jaxmom.engine._pbt_rule import exploit, explore, lineage
from jaxmom.engine._plans import Plan, check_plan
from jaxmom.engine._pool import Pool
from jaxmom.engine._pool_setup import Request, set_up
from jaxmom.engine._samplers import StudySampler, make_sampler
from jaxmom.engine._spaces import sample
from jaxmom.results import Points, SweepResult, metric_mode
from jaxmom.training import Task

#: Seconds between checkpoints of a search with ``out=`` (at interval boundaries).
CHECKPOINT_SECONDS = 2.0


def pbt_sweep(
    task: Task,
    space: Mapping,
    population: int,
    seeds: Sequence[int] = (0,),
    *,
    data=None,
    steps: int,
    interval: int,
    metric: str,
    mode: str | None = None,
    fraction: float = 0.25,
    perturb: Sequence[float] = (0.8, 1.2),
    resample: float = 0.25,
    seed: int = 0,
    sampler: Any = None,
    out: str | os.PathLike | None = None,
    chunk_size: int | None = None,
    progress: bool = True,
    compiler_options: Mapping | None = None,
    callback: Callable[[dict], object] | None = None,
    check_finite: Sequence[str] | None = None,
    settings: Mapping | None = None,
    plan: Plan | Mapping | str | None = None,
) -> SweepResult:
    """Population-based training (Jaderberg et al. 2017) of ``population`` members.

    Args:
      task: a :class:`jaxmom.Task` (e.g. :func:`jaxmom.nnx_task`).
      space: name -> :class:`jaxmom.Uniform`, :class:`jaxmom.LogUniform`,
        :class:`jaxmom.IntUniform` or :class:`jaxmom.Choice`: where members start (a random
        sample with ``seed``) and stay.
      population: members, at least 2.
      seeds: every member runs with each seed (``jax.random.key(s)``); it is ranked by its
        metric's mean over them, and copies and is copied with all of them.
      data: passed to the task's functions.
      steps: the steps every member trains.
      interval: steps between two decisions.
      metric: a scalar output of ``task.evaluate`` that ranks the members.
      mode: ``"min"`` or ``"max"``; ``None`` picks by the name (``"max"`` for an accuracy).
      fraction: the worst ``fraction`` (at least one) copy a member of the best ``fraction``.
      perturb: the factors a copied hyperparameter is multiplied by (one drawn each time).
      resample: the probability that a copied hyperparameter is drawn anew from ``space``.
      seed: the seed of the first sample and of every decision.
      sampler: ``None``, or an Optuna study (its direction the search's ``mode``) that
        chooses the values the explore step redraws: each member that redraws asks it for a
        trial, told at the end of the next interval with the member's metric (mean over
        seeds; failed if not finite). A resumed search replays into a fresh study of the same
        sampler and seed, as :func:`jaxmom.asha_sweep`'s.
      out: a folder: checkpointed at interval boundaries; the same call resumes a killed
        search to the same bits.
      chunk_size, progress, compiler_options, check_finite, settings, plan: as
        :func:`jaxmom.asha_sweep`'s (``chunk_size`` the runs a call, at least the population's).
      callback: called after every interval with a dict: ``interval``, ``steps``, ``values``
        (the members' mean metric), ``copies`` (``{member: parent}``) and ``seconds``.

    Returns:
      A :class:`jaxmom.SweepResult` over ``trial`` (the members; their final hyperparameters
      as the table): ``evaluate``'s outputs at ``steps``. ``res.history``: ``steps``
      [intervals] (each interval's last step), ``hparams`` {name: [member, interval]} (what
      each member trained with during each interval), ``parent`` [member, interval] (the member
      it copied at the interval's start, -1 for none), ``metric`` [member, interval, seed],
      ``best`` (the best member at the end) and ``line`` [interval] (the member whose run the
      best one's was, during each interval: its schedule is ``hparams[name][line, arange]``).
      ``res.trace`` [intervals, 4]: seconds, model-steps, best mean metric and its member.
    """
    t0 = time.perf_counter()
    if not isinstance(task, Task):
        raise TypeError(f"task must be a jaxmom.Task (e.g. jaxmom.nnx_task), got {task!r}")
    if jax.process_count() > 1:
        raise ValueError("pbt_sweep runs in one process, on its devices: start it in one")
    population = check_positive_int(population, "population", minimum=2)
    seeds = check_seeds(seeds)
    steps = check_positive_int(steps, "steps")
    interval = check_positive_int(interval, "interval")
    if interval > steps:
        raise ValueError(f"interval={interval} must be <= steps={steps}")
    for name, value, ok in (
        ("fraction", fraction, isinstance(fraction, numbers.Real) and 0 < fraction <= 0.5),
        ("resample", resample, isinstance(resample, numbers.Real) and 0 <= resample <= 1),
    ):
        if not ok:
            limits = "in (0, 0.5]" if name == "fraction" else "in [0, 1]"
            raise ValueError(f"{name} must be a number {limits}, got {name}={value!r}")
    factors = tuple(perturb) if isinstance(perturb, Sequence) else ()
    if not factors or not all(isinstance(f, numbers.Real) and f > 0 for f in factors):
        raise ValueError(f"perturb must be a sequence of positive factors, got {perturb!r}")
    if callback is not None and not callable(callback):
        raise TypeError(f"callback must be callable, got {callback!r}")
    mode = metric_mode(metric, mode)
    sign = -1.0 if mode == "max" else 1.0
    user = check_settings(settings)
    forced = check_plan(plan)
    ends = [min(steps, interval * (i + 1)) for i in range(math.ceil(steps / interval))]
    table = sample(space, population, method="random", seed=seed)  # checks space and seed
    k = len(seeds)
    # every member holds a slot: the population sets the pool's size unless chunk_size does
    per_device = -(-population // jax.device_count())
    lanes = per_device * k if chunk_size is None else max(1, chunk_size // jax.device_count())
    req = Request(task, seeds, data, metric, check_finite, forced, lanes, compiler_options)
    pool, chosen, check, _, record = set_up(req, table, ends, lambda s, d: -(-population // d))
    if pool.capacity < population:
        raise ValueError(
            f"chunk_size={chunk_size} runs a call hold {pool.capacity} member(s) of {k} seeds, "
            f"fewer than the population's {population}"
        )
    record.update(
        space={n: repr(v) for n, v in space.items()},
        population=population,
        steps=steps,
        interval=interval,
        mode=mode,
        fraction=float(fraction),
        perturb=[float(f) for f in factors],
        resample=float(resample),
        seed=int(seed),
        settings=user,
    )
    study = None
    if sampler is not None:  # asks: at most one a member and interval
        study, record["sampler"] = make_sampler(space, population * len(ends), sampler, 0, sign)
        if not isinstance(study, StudySampler):
            raise ValueError(f"sampler must be None or an Optuna study, got {sampler!r}")
    path = None if out is None else folder.open_search(out, record)
    run = _Population(pool, space, table, ends, metric, sign)
    run.study = study
    run.rule = (float(fraction), factors, float(resample), int(seed))
    run.t0, run.callback = t0, callback
    saved = None if path is None else folder.load(path)
    if saved is not None:
        run.load(saved)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(ends), initial=run.done, unit="interval", desc=f"pbt ({pool.label})")
    saving = folder.Checkpoints(path, CHECKPOINT_SECONDS)
    try:
        while run.done < len(ends):
            run.interval()
            if bar is not None:
                bar.update(1)
                bar.set_postfix_str(f"best {run.trace[-1][2]:.4g}", refresh=False)
            saving(run.arrays, force=run.done == len(ends))
    finally:
        if bar is not None:
            bar.close()
    return run.result(seeds, check, dict(record, computation=None), chosen, t0)


class _Population:
    """The host's side of a population: hyperparameters, history, decisions, the segments."""

    def __init__(self, pool: Pool, space, table: dict, ends: list[int], metric: str, sign):
        self.pool, self.space, self.ends, self.metric, self.sign = pool, space, ends, metric, sign
        n, i = len(next(iter(table.values()))), len(ends)
        self.n = n
        self.hp = {name: np.array(v, np.float64) for name, v in table.items()}
        self.history = {name: np.zeros((n, i)) for name in table}
        self.parent = np.full((n, i), -1, np.int64)
        self.values = np.full((n, i, len(pool.seeds)), np.nan)
        self.source = np.arange(pool.capacity)
        self.done, self.model_steps, self.count = 0, 0, 0
        self.trace: list[list[float]] = []
        self.final: dict = {}
        self.rule: tuple = ()
        self.callback: Any = None
        self.study: StudySampler | None = None  # redraws from an Optuna study
        self.pending = np.full(n, -1, np.int64)  # each member's study trial, until told
        self.asks = 0
        self.t0 = time.perf_counter()
        self.seconds = 0.0  # before this call

    def interval(self) -> None:
        pool, i = self.pool, self.done
        c, n = pool.capacity, self.n
        live = np.arange(c) < n
        reset = live & (i == 0 and self.count == 0)
        hp = {name: np.resize(v, c) for name, v in self.hp.items()}
        for name in self.hp:
            self.history[name][:, i] = self.hp[name]
        outs = pool.run_to(hp, live, self.count, self.ends[i], reset, self.source)
        self.model_steps += (self.ends[i] - self.count) * n * len(pool.seeds)
        self.count, self.source = self.ends[i], np.arange(c)
        self.values[:, i] = outs[self.metric][:n]
        self.final = {name: v[:n] for name, v in outs.items()}
        self._tell(self.values[:, i])
        score = self.sign * self.values[:, i].mean(-1)
        finite = np.where(np.isfinite(score), score, np.inf)
        best = int(np.argmin(finite))
        seconds = self.seconds + time.perf_counter() - self.t0
        self.trace.append([seconds, self.model_steps, self.sign * finite[best], best])
        copies: dict[int, int] = {}
        if i + 1 < len(self.ends):
            fraction, factors, resample, seed = self.rule
            rng = np.random.default_rng([seed, 1, i])
            copies = exploit(score, fraction, rng)
            for member, parent in copies.items():
                row = {name: v[parent] for name, v in self.hp.items()}
                new = explore(row, self.space, factors, resample, rng, self._redraw(member))
                for name in self.hp:
                    self.hp[name][member] = new[name]
                self.source[member] = parent
                self.parent[member, i + 1] = parent
        self.done += 1
        if self.callback is not None:
            values = self.sign * score
            self.callback(
                dict(interval=i, steps=self.count, values=values, copies=copies, seconds=seconds)
            )

    def _redraw(self, member: int):
        """``None``, or a callable that asks the study once for ``member``'s new values."""
        if self.study is None:
            return None
        study, drawn = self.study, dict[str, Any]()

        def redraw() -> dict:
            if not drawn:
                study.ask(self.asks)
                self.pending[member], self.asks = self.asks, self.asks + 1
                drawn.update({k: v[self.pending[member]] for k, v in study.table.items()})
            return drawn

        return redraw

    def _tell(self, values: np.ndarray) -> None:
        """Tells the study each pending trial's value: its member's metric now."""
        if self.study is None:
            return
        for member in np.flatnonzero(self.pending >= 0):
            v = values[member]
            outcome = "finished" if np.isfinite(v).all() else "diverged"
            event = dict(trial=int(self.pending[member]), values=v, outcome=outcome)
            self.study.told(dict(event, steps=self.count))
        self.pending[:] = -1

    def arrays(self) -> dict:
        out: dict[str, Any] = {f"hp/{k}": v for k, v in self.hp.items()}
        if self.study is not None:
            out.update(self.study.arrays(), pending=self.pending, asks=np.int64(self.asks))
            out.update({f"table/{k}": v for k, v in self.study.table.items()})
        out.update({f"history/{k}": v for k, v in self.history.items()})
        out.update({f"final/{k}": v for k, v in self.final.items()})
        out.update(parent=self.parent, values=self.values, source=self.source)
        out["counters"] = np.array([self.done, self.model_steps, self.count], np.int64)
        out["trace"] = np.array(self.trace, np.float64).reshape(-1, 4)
        out["seconds"] = np.float64(self.seconds + time.perf_counter() - self.t0)
        out.update(self.pool.arrays())
        return out

    def load(self, a: dict) -> None:
        if self.study is not None:
            for k, v in self.study.table.items():
                v[:] = a[f"table/{k}"]
            self.study.load(a)
            self.pending, self.asks = np.array(a["pending"]), int(a["asks"])
        self.hp = {k: np.array(a[f"hp/{k}"]) for k in self.hp}
        self.history = {k: np.array(a[f"history/{k}"]) for k in self.history}
        self.final = {
            k[len("final/") :]: np.array(v) for k, v in a.items() if k.startswith("final/")
        }
        self.parent, self.values = np.array(a["parent"]), np.array(a["values"])
        self.source = np.array(a["source"])
        self.done, self.model_steps, self.count = a["counters"].tolist()
        self.trace, self.seconds = a["trace"].tolist(), float(a["seconds"])
        self.pool.load_arrays(a)

    def result(self, seeds, check, settings: dict, chosen, t0: float) -> SweepResult:
        bad = diverged_runs(self.final, check, self.n, len(seeds))
        table = {k: v.astype(self.pool.hp_dtypes[k]) for k, v in self.hp.items()}
        meta = dict(settings=settings, pbt=True, wall_seconds=time.perf_counter() - t0)
        meta["pool"] = dict(label=self.pool.label, model_steps=self.model_steps)
        meta["plan"] = dict(chosen._asdict(), label=chosen.describe())
        points = Points.table(table)
        res = SweepResult(
            points.axes, seeds, self.final, bad, np.ones_like(bad), meta, trials=table
        )
        best = int(self.trace[-1][3])
        res.history = dict(
            steps=np.array(self.ends),
            hparams=self.history,
            parent=self.parent,
            metric=self.values,
            best=best,
            line=lineage(self.parent, best),
        )
        res.trace = np.array(self.trace, np.float64).reshape(-1, 4)
        return res
