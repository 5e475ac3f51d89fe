"""Where a search on the lane pool gets its next trial: a table (sampled at the start, or
given), or an Optuna study asked as lanes free up.

A study sampler asks ``study.ask(distributions)`` for each new trial (the asks of a segment one
after another, so a sampler with constant liar sees the ones running), reports each rung's
value (the metric's mean over seeds) with ``trial.report(value, steps)``, and tells a stopped
trial as pruned, a finished one as complete with that value, a diverged one as failed: the
study's storage, ``trials_dataframe()``, Optuna's plots and optuna-dashboard then show the
whole search with its learning curves. Everything it did is logged, so a resumed search
replays it into a fresh study of the same sampler and seed, and goes on from the same state.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

import numpy as np

from jaxmom.engine._checks import check_trials
from jaxmom.engine._spaces import METHODS, sample
from jaxmom.results import Points

#: The kinds of a study sampler's logged calls.
ASK, REPORT, PRUNED, COMPLETE, FAIL = 0, 1, 2, 3, 4


class TableSampler:
    """The trials of a table, in its order."""

    def __init__(self, table: dict):
        self.table = table
        self.seconds = 0.0

    def ask(self, trial: int) -> None:
        """Trial ``trial``'s row is already in the table."""

    def told(self, event: dict) -> None:
        """Nothing to tell."""

    def arrays(self) -> dict:
        return {}

    def load(self, arrays: dict) -> None:
        """A table is the same on every call: nothing to restore."""


class StudySampler:
    """An Optuna study's sampler; ``sign`` -1 where the search maximises."""

    def __init__(self, study, space: Mapping, n_trials: int, sign: float):
        from jaxmom.engine._optuna import distributions, value_dtype

        self.study, self.dists = study, distributions(space)
        self.table = {name: np.zeros(n_trials, value_dtype(d)) for name, d in self.dists.items()}
        self.trials: dict[int, object] = {}
        self.log: list[tuple[int, int, float, int]] = []  # (kind, trial, value, steps)
        self.seconds = 0.0  # spent in study.ask

    def ask(self, trial: int) -> None:
        t0 = time.perf_counter()
        asked = self.study.ask(self.dists)
        self.seconds += time.perf_counter() - t0
        for name in self.dists:
            self.table[name][trial] = asked.params[name]
        self.trials[trial] = asked
        self.log.append((ASK, trial, np.nan, 0))

    def told(self, event: dict) -> None:
        """Reports a decision's value at its steps, and tells a trial that ends."""
        value = float(np.mean(event["values"]))
        kind = {"stopped": PRUNED, "finished": COMPLETE, "diverged": FAIL}.get(event["outcome"])
        if np.isfinite(value) and event["outcome"] != "diverged":
            self._apply(REPORT, event["trial"], value, event["steps"])
        if kind is not None:
            self._apply(kind, event["trial"], value, event["steps"])

    def _apply(self, kind: int, trial: int, value: float, steps: int) -> None:
        from optuna.trial import TrialState

        t = self.trials[trial]
        if kind == REPORT:
            t.report(value, steps)  # type: ignore[attr-defined]
        elif kind == COMPLETE:
            self.study.tell(t, value)
        else:
            self.study.tell(t, state=TrialState.PRUNED if kind == PRUNED else TrialState.FAIL)
        if kind != REPORT:
            del self.trials[trial]
        self.log.append((kind, trial, value, steps))

    def arrays(self) -> dict:
        return {"sampler/log": np.array(self.log, np.float64).reshape(-1, 4)}

    def load(self, arrays: dict) -> None:
        """Replays the logged calls into the study, which must hold no trial yet (a fresh
        study of the same sampler and seed asks the same trials again: checked)."""
        log = arrays["sampler/log"]
        if len(log) and len(self.study.trials):
            raise ValueError(
                f"resuming a search asked of an Optuna study needs a fresh study (this one "
                f"holds {len(self.study.trials)} trials) of the same sampler and seed: the "
                f"search replays its {int((log[:, 0] == ASK).sum())} trials into it"
            )
        recorded = {name: v.copy() for name, v in self.table.items()}
        self.log = []
        for kind, trial, value, steps in log.tolist():
            if int(kind) == ASK:
                self.ask(int(trial))
                got = {n: self.table[n][int(trial)] for n in self.table}
                want = {n: recorded[n][int(trial)] for n in self.table}
                if got != want:
                    raise ValueError(
                        f"the study asked other trials than the search recorded (trial "
                        f"{int(trial)}: {got} against {want}): resume with a study of the same "
                        "sampler and seed as the first call's"
                    )
            else:
                self._apply(int(kind), int(trial), value, int(steps))


def make_sampler(space, n_trials: int, sampler, seed, sign: float) -> tuple:
    """The sampler of ``asha_sweep``'s arguments, and what its folder records of it."""
    if isinstance(sampler, Mapping):
        if space is not None:
            raise ValueError("give space=None with a table as sampler: the table is the trials")
        table = check_trials(sampler)
        n = len(next(iter(table.values())))
        if n < n_trials:
            raise ValueError(f"n_trials={n_trials} is more than the sampler table's {n} trials")
        table = {k: v[:n_trials] for k, v in table.items()}
        return TableSampler(table), Points.table(table).spec()["trials"]
    if hasattr(sampler, "ask") and hasattr(sampler, "tell") and hasattr(sampler, "direction"):
        direction = sampler.direction.name.lower()  # "minimize" / "maximize"
        if (direction == "maximize") != (sign < 0):
            raise ValueError(
                f"the study's direction is {direction}, the search's mode the other: create the "
                "study with the direction of mode (or pass the mode of the study)"
            )
        asked = StudySampler(sampler, space, n_trials, sign)  # checks the space
        record = dict(study=type(sampler.sampler).__name__, direction=direction)
        record["space"] = {k: repr(v) for k, v in space.items()}
        return asked, record
    if not isinstance(sampler, str) or sampler not in METHODS:
        raise ValueError(
            f"sampler must be one of {METHODS}, a table of trials or an Optuna study, got "
            f"{sampler!r}"
        )
    table = sample(space, n_trials, method=sampler, seed=seed)  # checks space and seed
    record = dict(method=sampler, seed=int(seed), space={k: repr(v) for k, v in space.items()})
    return TableSampler(table), record
