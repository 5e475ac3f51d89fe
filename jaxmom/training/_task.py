"""A run that can be paused: :class:`Task`, for sweeps that stop and resume their runs.

A train function (:func:`jaxmom.grid_sweep`) runs from start to end. A :class:`Task` cuts it in
three pure functions, so a run can be advanced some steps, evaluated, stored and advanced again
(:func:`jaxmom.halving_sweep` trains every trial to a first rung, keeps the best and resumes
those):

* ``init(hparams, key, data) -> state``: a new run;
* ``advance(state, hparams, data, steps) -> state``: ``steps`` (a Python int) more steps;
* ``evaluate(state, hparams, data) -> {name: array}``: what the run has reached.

``state`` is any pytree of arrays (PRNG keys included); ``data`` is ``None`` when the sweep has
none. An optional fourth, ``segment``, is ``advance`` with its steps written out one after
another (no ``while`` loop): a sweep's plan may run the task as a host loop over a compiled
segment of a few such steps (:mod:`jaxmom.engine`), which XLA:CPU runs much faster for
convolutions. A task's runs must not depend on how their steps are cut: advancing 50 then 100 steps
gives the run of 150 (:func:`jaxmom.nnx_task` draws each step's batch from the run's key and the
step's number).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

from jaxmom.common import check_positive_int


class Segments(NamedTuple):
    """A train function cut for the sweep engine's segment plan, as its ``segments``
    attribute: ``init``, then ``advance`` (written out, no ``while`` loop) a few steps at a time
    from the host, then ``finish``; the run is the train function's, step for step.

    Attributes:
      init: ``(hparams, key, data, carry) -> state`` (``carry`` ``None`` unless the sweep has
        one).
      advance: ``(state, hparams, data, steps) -> state``, ``steps`` (a Python int) more steps,
        written out.
      finish: ``(state, hparams, data) -> outputs``, the train function's outputs.
      steps: ``data -> `` the run's steps (a Python int, from the data's shapes).
    """

    init: Callable
    advance: Callable
    finish: Callable
    steps: Callable


@dataclass(frozen=True, eq=False)
class Task:
    """A run cut into three pure functions, so it can be paused, stored and resumed.

    Args:
      init: ``(hparams, key, data) -> state``, a new run.
      advance: ``(state, hparams, data, steps) -> state``, ``steps`` (a Python int) more steps.
      evaluate: ``(state, hparams, data) -> {name: array}``, what the run has reached.
      segment: optional, ``advance`` with its steps written out (no ``while`` loop), for the
        engine's segment plan; the same steps.

    A task's runs must not depend on how their steps are cut: advancing 2 then 3 steps gives
    the run of 5.

    Examples:
      >>> import jax, jax.numpy as jnp, jaxmom
      >>> def init(hp, key, data):
      ...     return {"x": jnp.float32(1.0), "v": jnp.float32(0.0)}
      >>> def advance(s, hp, data, steps):  # heavy ball on f(x) = x**2 / 2
      ...     def step(s, _):
      ...         v = hp["beta"] * s["v"] + s["x"]
      ...         return {"x": s["x"] - 0.1 * v, "v": v}, None
      ...     return jax.lax.scan(step, s, None, length=steps)[0]
      >>> task = jaxmom.Task(init, advance, lambda s, hp, data: {"x": s["x"]})
      >>> res = jaxmom.grid_sweep(task.train_fn(50), {"beta": [0.0, 0.5]}, progress=False)
      >>> bool(abs(res["x"][1, 0]) < abs(res["x"][0, 0]))  # beta = 0.5 gets there first
      True
    """

    init: Callable
    advance: Callable
    evaluate: Callable
    segment: Callable | None = None

    def __post_init__(self):
        for name in ("init", "advance", "evaluate", "segment"):
            if name == "segment" and self.segment is None:
                continue
            if not callable(getattr(self, name)):
                raise TypeError(f"Task's {name} must be callable, got {getattr(self, name)!r}")

    def train_fn(self, steps: int) -> Callable:
        """The plain train function ``(hparams, key, data=None) -> evaluate(...)`` of a run of
        ``steps`` steps, for :func:`jaxmom.grid_sweep` and :func:`jaxmom.trial_sweep` (one
        function per ``steps``, so a sweep repeated reuses its compiled program)."""
        return _train_fn(self, check_positive_int(steps, "steps"))


@functools.cache
def _train_fn(task: Task, steps: int) -> Callable:
    def train_fn(hparams, key, data=None):
        state = task.advance(task.init(hparams, key, data), hparams, data, steps)
        return task.evaluate(state, hparams, data)

    train_fn.__qualname__ = f"Task.train_fn({steps})"
    if task.segment is not None:
        train_fn.segments = Segments(  # type: ignore[attr-defined]
            lambda hp, key, data, carry: task.init(hp, key, data),
            task.segment,
            task.evaluate,
            lambda data: steps,
        )
    return train_fn
