"""A run that can be paused: :class:`Task`, for sweeps that stop and resume their runs.

A train function (:func:`jaxmom.grid_sweep`) runs from start to end. A :class:`Task` cuts it in
three pure functions, so a run can be advanced some steps, evaluated, stored and advanced again
(:func:`jaxmom.halving_sweep` trains every trial to a first rung, keeps the best and resumes
those):

* ``init(hparams, key, data) -> state``: a new run;
* ``advance(state, hparams, data, steps) -> state``: ``steps`` (a Python int) more steps;
* ``evaluate(state, hparams, data) -> {name: array}``: what the run has reached.

``state`` is any pytree of arrays (PRNG keys included); ``data`` is ``None`` when the sweep has
none. A task's runs must not depend on how their steps are cut: advancing 50 then 100 steps
gives the run of 150 (:func:`jaxmom.nnx_task` draws each step's batch from the run's key and the
step's number).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

from jaxmom.common import check_positive_int


@dataclass(frozen=True, eq=False)
class Task:
    """A run cut into three pure functions, so it can be paused, stored and resumed.

    Args:
      init: ``(hparams, key, data) -> state``, a new run.
      advance: ``(state, hparams, data, steps) -> state``, ``steps`` (a Python int) more steps.
      evaluate: ``(state, hparams, data) -> {name: array}``, what the run has reached.

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

    def __post_init__(self):
        for name in ("init", "advance", "evaluate"):
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
    return train_fn
