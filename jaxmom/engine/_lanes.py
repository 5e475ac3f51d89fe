"""A search on the lane pool: which trial each slot holds, the segments, the decisions at the
rungs and the best so far after every segment.

Everything here is host state of NumPy arrays and ints (:meth:`Search.arrays`), so a search
saved at a segment boundary resumes to the same bits: the pool's programs are deterministic
and every decision follows from the recorded values.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from jaxmom.engine._asha_rule import (
    DIVERGED,
    FINISHED,
    OUTCOMES,
    PROMOTED,
    Decisions,
)
from jaxmom.engine._blocks import diverged_runs
from jaxmom.engine._pool import FULL, HOLD, LAST, Pool


class Search:
    """ASHA over ``table`` (``{name: [n]}``) on ``pool``.

    ``rungs``: the rungs' steps; ``metric``: the output ranked; ``check``: the outputs whose
    non-finite values stop a trial; ``shapes``: every output's ``ShapeDtypeStruct`` (per run);
    ``events``: called with each decision (a dict), or ``None``.
    """

    def __init__(self, pool: Pool, sampler, decisions: Decisions, metric: str, check, shapes):
        self.pool, self.sampler, self.dec = pool, sampler, decisions
        self.table = sampler.table  # filled as trials are asked
        self.metric, self.check = metric, tuple(check)
        self.rungs = np.asarray(decisions.rungs, np.int64)
        self.n = len(next(iter(self.table.values())))
        k = len(pool.seeds)
        self.final = {
            name: np.full((self.n, k, *s.shape), np.nan, np.float32) for name, s in shapes.items()
        }
        self.diverged = np.zeros((self.n, k), bool)
        self.slot_trial = np.full(pool.capacity, -1, np.int64)
        self.slot_count = np.zeros(pool.capacity, np.int64)
        self.next_trial = 0
        self.counters = dict(model_steps=0, segments=0)
        self.trace: list[list[float]] = []
        self.seconds = 0.0  # before this call (a resumed search's earlier calls)
        self.t0 = time.perf_counter()
        self.events: Callable[[dict], Any] | None = None
        self.on_decision: Callable[[int], Any] | None = None

    # -- saving and resuming ----------------------------------------------------------------

    def arrays(self) -> dict:
        """The host state, NumPy arrays by name (the pool's lanes apart)."""
        out = dict(self.dec.arrays(), **self.sampler.arrays())
        out.update({f"table/{k}": v for k, v in self.table.items()})
        out.update({f"final/{k}": v for k, v in self.final.items()})
        out.update(
            diverged=self.diverged,
            slot_trial=self.slot_trial,
            slot_count=self.slot_count,
            next_trial=np.int64(self.next_trial),
            counters=np.array([self.counters[k] for k in sorted(self.counters)], np.int64),
            counts=np.array([self.pool.counts[k] for k in sorted(self.pool.counts)], np.int64),
            trace=np.array(self.trace, np.float64).reshape(-1, 4),
            seconds=np.float64(self.seconds + self.elapsed()),
        )
        return out

    def load(self, a: dict) -> None:
        for k, v in self.table.items():
            v[:] = a[f"table/{k}"]  # in place: the sampler's table too
        self.sampler.load(a)
        self.dec.load(a)
        self.final = {k: np.array(a[f"final/{k}"]) for k in self.final}
        self.diverged = np.array(a["diverged"])
        self.slot_trial, self.slot_count = np.array(a["slot_trial"]), np.array(a["slot_count"])
        self.next_trial = int(a["next_trial"])
        self.counters = dict(zip(sorted(self.counters), a["counters"].tolist(), strict=True))
        counts = a["counts"].tolist()
        self.pool.counts = dict(zip(sorted(self.pool.counts), counts, strict=True))
        self.trace = a["trace"].tolist()
        self.seconds = float(a["seconds"])

    def elapsed(self) -> float:
        """Seconds since this call began (``t0``, set by the caller: compilation included)."""
        return time.perf_counter() - self.t0

    # -- the segments -----------------------------------------------------------------------

    @property
    def done(self) -> bool:
        return self.next_trial >= self.n and not (self.slot_trial >= 0).any()

    def run(self, after_segment: Callable[[], Any] | None = None) -> None:
        """Segments until every trial has started and every lane is done."""
        while not self.done:
            self.segment()
            if after_segment is not None:
                after_segment()

    def segment(self) -> None:
        pool, s = self.pool, self.pool.spec
        reset = self._fill()
        active = self.slot_trial >= 0
        rung = np.searchsorted(self.rungs, self.slot_count, side="right")
        target = self.rungs[np.minimum(rung, len(self.rungs) - 1)]
        mode = np.where(active, FULL, HOLD)
        if s.rest:
            mode[active & (target - self.slot_count == s.rest)] = LAST
        trials = np.maximum(self.slot_trial, 0)
        outs = pool.step({k: v[trials] for k, v in self.table.items()}, mode, reset)
        steps = np.where(mode == FULL, s.steps, np.where(mode == LAST, s.rest, 0))
        self.slot_count += steps
        c = self.counters
        c["model_steps"] += int(steps.sum()) * len(pool.seeds)
        c["segments"] += 1
        self._decide(outs, active, rung, target)
        best = self.dec.best()
        value, trial = (np.nan, -1) if best is None else best[:2]
        self.trace.append([self.seconds + self.elapsed(), c["model_steps"], value, trial])

    def _fill(self) -> np.ndarray:
        """Gives idle slots the next trials; the reset mask."""
        reset = np.zeros(self.pool.capacity, bool)
        for slot in np.flatnonzero(self.slot_trial < 0):
            if self.next_trial >= self.n:
                break
            self.sampler.ask(self.next_trial)
            self.slot_trial[slot], self.slot_count[slot] = self.next_trial, 0
            self.dec.started_at[self.next_trial] = self.counters["model_steps"]
            self.next_trial += 1
            reset[slot] = True
        return reset

    def _decide(self, outs: dict, active, rung, target) -> None:
        bad = diverged_runs(outs, self.check, len(active), len(self.pool.seeds))
        arrived = active & (self.slot_count == target)
        stop = arrived | (active & bad.any(-1))
        at = self.counters["model_steps"]
        for slot in sorted(np.flatnonzero(stop), key=lambda i: self.slot_trial[i]):
            t, r = int(self.slot_trial[slot]), int(rung[slot])
            if arrived[slot]:
                outcome = self.dec.decide(t, r, outs[self.metric][slot], at, bad[slot].any())
            else:
                self.dec.diverge(t, r, int(self.slot_count[slot]), at)
                outcome = DIVERGED
            if outcome == FINISHED:
                for name, v in outs.items():
                    self.final[name][t] = v[slot]
            self.diverged[t] = bad[slot]
            if outcome != PROMOTED:
                self.slot_trial[slot] = -1
                if self.on_decision is not None:
                    self.on_decision(t)
            if self.events is not None:
                self.events(
                    dict(
                        trial=t,
                        rung=r,
                        steps=int(self.slot_count[slot]),
                        values=outs[self.metric][slot].tolist(),
                        outcome=OUTCOMES[outcome],
                        model_steps=at,
                        seconds=self.seconds + self.elapsed(),
                    )
                )
