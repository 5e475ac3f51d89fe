"""Asynchronous successive halving's decisions, on the host: the bookkeeping of a search that
runs on the lane pool (:mod:`jaxmom.engine._pool`), kept as NumPy arrays so it can be saved
and resumed exactly.

The rule at a rung (Li et al., MLSys 2020, as Optuna's ``SuccessiveHalvingPruner`` applies it):
a trial that reaches rung ``i`` goes on if its value is among the best ``len // eta`` (at least
the best one) of the finite values recorded at rung ``i`` so far, its own included; a trial
that reaches the last rung is finished; a non-finite value stops a trial (diverged). Trials
that reach a rung in the same segment are decided in the order of their trial numbers.
"""

from __future__ import annotations

import bisect

import numpy as np

#: A trial's outcome at a rung.
NOT_REACHED, PROMOTED, STOPPED, FINISHED, DIVERGED = 0, 1, 2, 3, 4
OUTCOMES = ("not reached", "promoted", "stopped", "finished", "diverged")


def promotable(value: float, ranked: list[float], eta: int) -> bool:
    """Whether ``value`` (lower is better) goes on: it is among the best ``len(ranked) //
    eta`` (at least one) of ``ranked``, the finite values at its rung so far in ascending
    order, its own included."""
    k = max(len(ranked) // eta, 1)
    return value <= ranked[k - 1]


class Decisions:
    """Every trial's record: ``metric`` ``[n, rungs, seeds]`` at each rung reached,
    ``outcome`` and ``decided_at`` (the search's model-steps then) and ``order`` (its place
    among the arrivals at that rung) ``[n, rungs]``, ``reached`` ``[n]`` (steps trained) and
    ``started_at`` ``[n]`` (model-steps when it started). ``sign`` is -1 to maximise."""

    FIELDS = ("metric", "outcome", "decided_at", "order", "reached", "started_at")

    def __init__(self, n: int, rungs: list[int], seeds: int, eta: int, sign: float):
        self.rungs, self.eta, self.sign = list(rungs), eta, sign
        r = len(rungs)
        self.metric = np.full((n, r, seeds), np.nan)
        self.outcome = np.zeros((n, r), np.int8)
        self.decided_at = np.full((n, r), -1, np.int64)
        self.order = np.full((n, r), -1, np.int64)
        self.reached = np.zeros(n, np.int64)
        self.started_at = np.full(n, -1, np.int64)
        self.ranked: list[list[float]] = [[] for _ in rungs]  # finite scores, ascending
        self.arrivals = [0 for _ in rungs]
        self.top: list[tuple[float, int] | None] = [None for _ in rungs]  # (score, trial)

    def arrays(self) -> dict:
        return {f"rungs/{k}": getattr(self, k) for k in self.FIELDS}

    def load(self, arrays: dict) -> None:
        for k in self.FIELDS:
            setattr(self, k, np.array(arrays[f"rungs/{k}"]))
        for rung in range(len(self.rungs)):
            arrived = self.order[:, rung] >= 0
            score = self.sign * self.metric[arrived, rung].mean(-1)
            self.ranked[rung] = sorted(score[np.isfinite(score)].tolist())
            self.arrivals[rung] = int(arrived.sum())
            for t in np.flatnonzero(arrived):
                self._better(rung, self.sign * float(self.metric[t, rung].mean()), int(t))

    def _better(self, rung: int, score: float, trial: int) -> None:
        top = self.top[rung]
        if np.isfinite(score) and (top is None or score < top[0]):
            self.top[rung] = (score, trial)

    def decide(self, trial: int, rung: int, values: np.ndarray, at: int, bad: bool = False) -> int:
        """Records ``trial``'s ``values`` (one per seed) at ``rung`` and returns its outcome
        (``bad``: an output it checks is not finite, so it diverged)."""
        self.metric[trial, rung] = values
        self.order[trial, rung] = self.arrivals[rung]
        self.arrivals[rung] += 1
        self.decided_at[trial, rung] = at
        self.reached[trial] = self.rungs[rung]
        score = self.sign * float(np.mean(values))
        if bad or not np.isfinite(score):
            outcome = DIVERGED
        else:
            bisect.insort(self.ranked[rung], score)
            self._better(rung, score, trial)
            if rung == len(self.rungs) - 1:
                outcome = FINISHED
            elif promotable(score, self.ranked[rung], self.eta):
                outcome = PROMOTED
            else:
                outcome = STOPPED
        self.outcome[trial, rung] = outcome
        return outcome

    def diverge(self, trial: int, rung: int, steps: int, at: int) -> None:
        """``trial`` stopped on its way to ``rung``, after ``steps`` steps: an output it checks
        is no longer finite."""
        self.outcome[trial, rung] = DIVERGED
        self.decided_at[trial, rung] = at
        self.reached[trial] = steps

    def best(self) -> tuple[float, int, int] | None:
        """``(value, trial, rung)``: the best mean value at the highest rung any trial has
        reached with a finite value, or ``None`` before one has."""
        for rung in range(len(self.rungs) - 1, -1, -1):
            top = self.top[rung]
            if top is not None:
                return self.sign * top[0], top[1], rung
        return None
