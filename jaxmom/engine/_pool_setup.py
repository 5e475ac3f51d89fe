"""Setting a search up on the lane pool, as every search on it does (ASHA, PBT): the metric
checked on the traced run, the plan and the pool's size, the pool itself, and what its folder
records of all that (a resume with another is refused)."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax

from jaxmom.engine._checks import check_finite_names, output_shapes
from jaxmom.engine._pool import Pool, layout
from jaxmom.engine._sweeps import _fingerprint


class Request(NamedTuple):
    """What a search asks of the pool: its ``task``, ``seeds``, ``data``, the ``metric`` it
    ranks by, ``check_finite`` (names, or ``None``), the :class:`jaxmom.Plan` given,
    ``lanes`` per device (``None``: fitted) and XLA's ``options``."""

    task: Any
    seeds: Any
    data: Any
    metric: str
    check_finite: Any
    plan: Any
    lanes: int | None
    options: Any


class Setup(NamedTuple):
    """The pool a search runs on, the plan chosen, the outputs it checks, and the record."""

    pool: Pool
    chosen: Any
    check: tuple
    shapes: dict
    record: dict


def traced_task(task, table: dict, data, metric: str, steps: int) -> tuple:
    """``(traced, like)``: a run of ``steps`` steps traced (no compute: its outputs' shapes,
    computation and primitives) and the types of the task's state; ``metric`` must be one
    scalar output of ``task.evaluate`` per run."""
    hp_dtypes = {name: jax.dtypes.canonicalize_dtype(v.dtype) for name, v in table.items()}
    traced = output_shapes(task.train_fn(steps), hp_dtypes, data, data is not None)
    scalars = [name for name, s in traced.shapes.items() if s.shape == ()]
    if metric not in scalars:
        raise ValueError(
            f"metric must be a scalar output of task.evaluate ({scalars}), got {metric!r}"
        )
    hp = {name: jax.ShapeDtypeStruct((), d) for name, d in hp_dtypes.items()}
    key = jax.eval_shape(lambda: jax.random.key(0))
    like = jax.eval_shape(lambda hp, key: task.init(hp, key, data), hp, key)
    return traced, like


def set_up(req: Request, table: dict, rungs: list[int], fit) -> Setup:
    """Checks ``req.metric`` (a scalar output of ``task.evaluate``, traced: no compute), lays
    the pool out for ``rungs`` (its decision points, in steps) and ``fit(segment_steps,
    devices)`` slots per device when ``req.lanes`` is ``None``, and makes the pool."""
    task, data, k = req.task, req.data, len(req.seeds)
    n = len(next(iter(table.values())))
    traced, like = traced_task(task, table, data, req.metric, rungs[0])
    check = check_finite_names(req.check_finite, traced.shapes)
    setting = (task, traced.primitives, k, n * k, rungs)
    spec, chosen, slots = layout(setting, req.plan, req.lanes, fit)
    spec = spec._replace(has_data=data is not None)
    hp_dtypes = {name: jax.dtypes.canonicalize_dtype(v.dtype) for name, v in table.items()}
    pool = Pool(spec, like, hp_dtypes, req.seeds, data, chosen.devices, req.options)
    pool.load(pool.zeros(slots))
    pool.label = f"{pool.capacity} x {k} lanes, {chosen.describe()}"
    record = dict(
        seeds=[int(s) for s in req.seeds],
        metric=req.metric,
        slots=slots,
        devices=chosen.devices,
        segment_steps=spec.steps,
        form=[spec.form, spec.vectorize],
        computation=traced.computation,
        data=_fingerprint(data),
    )
    return Setup(pool, chosen, check, traced.shapes, record)
