"""The search bench's methods on the lane pool: ASHA (random or TPE refill) and PBT."""

from __future__ import annotations

from typing import Any

import jax
import numpy as np

from jaxmom.bench._search_task import METRIC, Plan, setup, steps_per_epoch
from jaxmom.engine import asha_sweep, pbt_sweep


def best_config(table: dict, values: np.ndarray) -> tuple[dict, float]:
    """The configuration with the highest mean over seeds (NaN ranks last)."""
    mean = np.where(np.isfinite(values).all(-1), values.mean(-1), -np.inf)
    i = int(np.argmax(mean))
    return {k: float(v[i]) for k, v in table.items()}, float(mean[i])


def asha(plan: Plan, tpe: bool = False) -> dict:
    task, val, _ = setup(plan.hidden, plan.space_name)
    steps = plan.epochs * steps_per_epoch(plan)
    sampler: Any = "random"
    if tpe:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        tpe_sampler = optuna.samplers.TPESampler(seed=0, multivariate=True, constant_liar=True)
        sampler = optuna.create_study(direction="maximize", sampler=tpe_sampler)
    res = asha_sweep(
        task,
        plan.space,
        plan.configs,
        plan.seeds,
        data=val,
        min_steps=plan.min_steps,
        max_steps=steps,
        metric=METRIC,
        mode="max",
        sampler=sampler,
        seed=0,
        progress=False,
    )
    config, best = best_config(res.trials, np.asarray(res[METRIC]))
    pool = res.metadata["pool"]
    extra = {"sampler_seconds": pool["sampler_seconds"]} if tpe else {}
    trace = [[t, v] for t, _, v, _ in res.trace.tolist() if np.isfinite(v)]
    return dict(
        config=config,
        val=best,
        model_steps=pool["model_steps"],
        busy=pool["busy"],
        trace=trace,
        pool=dict(lanes=pool["slots"] * pool["lanes_per_slot"], segments=pool["segments"]),
        **extra,
    )


def pbt(plan: Plan) -> dict:
    task, val, _ = setup(plan.hidden, plan.space_name)
    spe = steps_per_epoch(plan)
    population = max(4, round(plan.configs * 0.12))
    res = pbt_sweep(
        task,
        plan.space,
        population,
        plan.seeds,
        data=val,
        steps=plan.epochs * spe,
        interval=max(1, plan.epochs // 10) * spe,
        metric=METRIC,
        mode="max",
        progress=False,
    )
    best = res.history["best"]
    trace = [[t, v] for t, _, v, _ in res.trace.tolist() if np.isfinite(v)]
    config = {k: float(v[best]) for k, v in res.trials.items()}
    val_best = float(np.asarray(res[METRIC])[best].mean())
    spent = res.metadata["pool"]["model_steps"]
    return dict(
        config=config,
        val=val_best,
        test_fn=lambda: replay(plan, res.history),  # measured after the search's time
        model_steps=spent,
        trace=trace,
        population=population,
    )


def replay(plan: Plan, history: dict) -> float:
    """The test accuracy of the best member's run: its line's schedule of hyperparameters
    replayed as one run of each seed, jitted, on the data with the test split held out."""
    task, _, test = setup(plan.hidden, plan.space_name)
    line = history["line"]
    advance = jax.jit(task.advance, static_argnums=3)
    scores = []
    for s in plan.seeds:

        def hp(i):
            return {k: np.float32(v[line[i], i]) for k, v in history["hparams"].items()}

        state, before = jax.jit(task.init)(hp(0), jax.random.key(s), test), 0
        for i, end in enumerate(history["steps"].tolist()):
            state, before = advance(state, hp(i), test, end - before), end
        scores.append(float(jax.jit(task.evaluate)(state, hp(len(line) - 1), test)[METRIC]))
    return float(np.mean(scores))
