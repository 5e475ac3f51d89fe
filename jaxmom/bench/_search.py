"""Searching a space of hyperparameters, seven ways, in one run: ``jaxmom bench --task search``.

The task: scikit-learn's digits split into train (1,077), validation (360) and test (360); an
NNX MLP 64 -> 64 -> 10 trained in batches of 32 for up to 30 epochs (1,020 steps), 2 seeds a
configuration. Two spaces (:mod:`jaxmom.bench._search_task`): ``digits``, beta in [0, 0.99],
the learning rate log-uniform in [1e-3, 3] and weight decay log-uniform in [1e-5, 1e-1] of
``sgd_momentum``; ``hard``, five hyperparameters where a random configuration is usually poor
(the learning rate over five decades, dampening and gradient clipping added). A configuration
is ranked by its validation accuracy (mean over seeds); the test accuracy of the one each
method picks is measured after, by training it again on the same seeds (training never sees
held-out data, so it is that model's).

Methods (``configs`` configurations, 729 by default):

- ``exhaustive``: a 9 x 9 x 9 grid (``product``), every configuration to the end
  (:func:`jaxmom.trial_sweep`);
- ``random``: ``configs`` random configurations to the end;
- ``halving``: successive halving (eta = 3) over the random configurations, from 38 steps;
- ``hyperband``: Hyperband (3 brackets) over them;
- ``optuna_tpe``: Optuna's TPE with its ``HyperbandPruner``, trial by trial, each step one
  call of a jitted step of the hyperparameters (``task.advance(..., 1)``: compiled once for
  every trial, both seeds vmapped, the same batches as the other methods), the validation
  accuracy reported after every epoch;
- ``optuna_sweep``: :func:`jaxmom.optuna_sweep` with TPE, 3 batches;
- ``asha``: :func:`jaxmom.asha_sweep` over the random configurations (eta = 3, from 38 steps),
  asynchronous successive halving on a pool of lanes, one compiled program;
- ``asha_tpe``: the same with Optuna's TPE (multivariate, constant liar) choosing each new
  trial (``sampler=study``);
- ``pbt``: :func:`jaxmom.pbt_sweep` with the model-steps of ``asha``: a population of 12% of
  ``configs`` (87 of 729) trained to the end, a decision every 3 epochs.

Each row: the best validation accuracy, the test accuracy of that configuration, model-steps
spent (steps x seeds, over every run), wall time (compilation included: every method starts
with the engine's and JAX's caches emptied, so none runs on another's programs), the programs XLA
compiled, the lanes' busy fraction (methods on the lane pool), and the trace of the best
accuracy against time for the figure.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import numpy as np

from jaxmom.bench import _report as bench
from jaxmom.bench import _search_report as search_report
from jaxmom.bench._search_pool import asha, best_config, pbt
from jaxmom.bench._search_task import (
    METRIC,
    SPACES,
    Plan,
    optuna_sweep_peer,
    optuna_tpe,
    setup,
    steps_per_epoch,
)
from jaxmom.engine import (
    LogUniform,
    clear_caches,
    halving_sweep,
    product,
    sample,
    trial_sweep,
)

FORMAT = "jaxmom.bench_search/2"
METHODS = (
    "exhaustive",
    "random",
    "halving",
    "hyperband",
    "optuna_tpe",
    "optuna_sweep",
    "asha",
    "asha_tpe",
    "pbt",
)
OPTIONAL = {"optuna_tpe": "optuna", "optuna_sweep": "optuna", "asha_tpe": "optuna"}
TASK_REQUIRES = "sklearn"


def _grid(configs: int, space: dict) -> dict:
    k = max(2, round(configs ** (1 / len(space))))
    axes = {}
    for name, dim in space.items():
        u = (np.arange(k) + 0.5) / k
        axes[name] = (
            dim.low * (dim.high / dim.low) ** u
            if isinstance(dim, LogUniform)
            else (dim.low + (dim.high - dim.low) * u)
        )
    return product(axes)


def _sweep(plan: Plan, table: dict) -> dict:
    task, val, _ = setup(plan.hidden, plan.space_name)
    steps = plan.epochs * steps_per_epoch(plan)
    res = trial_sweep(task.train_fn(steps), table, plan.seeds, data=val, progress=False)
    config, best = best_config(table, np.asarray(res[METRIC]))
    n = len(next(iter(table.values())))
    return dict(config=config, val=best, model_steps=n * len(plan.seeds) * steps)


def _halving(plan: Plan, table: dict, brackets: int) -> dict:
    task, val, _ = setup(plan.hidden, plan.space_name)
    steps = plan.epochs * steps_per_epoch(plan)
    res = halving_sweep(
        task,
        table,
        plan.seeds,
        data=val,
        min_steps=plan.min_steps,
        max_steps=steps,
        brackets=brackets,
        metric=METRIC,
        mode="max",
        progress=False,
    )
    config, best = best_config(table, np.asarray(res[METRIC]))
    spent = int(res.rungs["reached"].sum()) * len(plan.seeds)
    return dict(config=config, val=best, model_steps=spent, busy=res.metadata["pool"]["busy"])


def test_accuracy(plan: Plan, config: dict) -> float:
    """The chosen configuration trained again on the same seeds, scored on the test split."""
    task, _, test = setup(plan.hidden, plan.space_name)
    steps = plan.epochs * steps_per_epoch(plan)
    table = {k: np.array([v]) for k, v in config.items()}
    res = trial_sweep(task.train_fn(steps), table, plan.seeds, data=test, progress=False)
    return float(np.asarray(res[METRIC]).mean())


def run(
    methods: Sequence[str] = METHODS,
    *,
    quick: bool = False,
    configs: int | None = None,
    spaces: Sequence[str] = tuple(SPACES),
    log: Callable[[str], None] | None = print,
) -> dict:
    """Runs ``methods`` on each of ``spaces``; see the module's docstring."""
    bench.check_methods(methods, METHODS)
    unknown = [s for s in spaces if s not in SPACES]
    if unknown or not spaces:
        raise ValueError(f"spaces must be some of {list(SPACES)}, got {list(spaces)}")
    say = log or (lambda s: None)
    methods, skipped = bench.installed(methods, OPTIONAL, say)
    rows = []
    for space in spaces:
        plan = Plan(quick, configs, space)
        rows += _run_space(plan, methods, say)
    first = Plan(quick, configs)
    setup = {
        "data": "sklearn digits: train 1077, validation 360, test 360",
        "model": f"MLP 64-{first.hidden}-10",
        "epochs": first.epochs,
        "configs": first.configs,
        "seeds": list(first.seeds),
        "eta": 3,
        "min_steps": first.min_steps,
        "spaces": {n: {k: repr(v) for k, v in SPACES[n].items()} for n in spaces},
    }
    ratios: dict = {}
    for space in spaces:
        ratios.update(_ratios([r for r in rows if r["space"] == space], space))
    return bench.report(FORMAT, setup, rows, ratios, skipped)


def _run_space(plan: Plan, methods: Sequence[str], say) -> list[dict]:
    table = sample(plan.space, plan.configs, method="random", seed=0)
    calls = {
        "exhaustive": lambda: _sweep(plan, _grid(plan.configs, plan.space)),
        "random": lambda: _sweep(plan, table),
        "halving": lambda: _halving(plan, table, 1),
        "hyperband": lambda: _halving(plan, table, 3),
        "optuna_tpe": lambda: optuna_tpe(plan),
        "optuna_sweep": lambda: optuna_sweep_peer(plan),
        "asha": lambda: asha(plan),
        "asha_tpe": lambda: asha(plan, tpe=True),
        "pbt": lambda: pbt(plan),
    }
    rows = []
    log = bench.compile_log()
    for method in methods:
        clear_caches()  # every method compiles its own programs: its time includes them
        log.clear()
        t0 = time.perf_counter()
        row = calls[method]()
        seconds = time.perf_counter() - t0
        row.update(method=method, space=plan.space_name, seconds=seconds)
        row.setdefault("busy", None)
        row["compiles"] = bench.compiled_programs(log)
        # pbt's test accuracy: its own schedule's, replayed on the test split
        test_fn = row.pop("test_fn", None)
        row["test"] = test_fn() if test_fn else test_accuracy(plan, row["config"])
        row.setdefault("trace", [[seconds, row["val"]]])
        rows.append(row)
        say(
            f"{plan.space_name:6s} {method:13s} val {row['val']:.4f} test {row['test']:.4f}  "
            f"{row['model_steps']:.3g} model-steps  {seconds:7.1f} s  "
            f"{row['compiles']} compiles"
        )
    return rows


def _reach(rows: list[dict], points: float = 0.005) -> None:
    """Each row's ``seconds_to_target``: when its best first came within ``points`` of the
    exhaustive search's best (``None``: never; a method without a trace, at its end)."""
    by = {r["method"]: r for r in rows}
    if "exhaustive" not in by:
        return
    target = by["exhaustive"]["val"] - points
    for r in rows:
        hit = [t for t, v in r["trace"] if v >= target]
        r["target"], r["seconds_to_target"] = target, (hit[0] if hit else None)


def _ratios(rows: list[dict], space: str) -> dict:
    _reach(rows)
    by = {r["method"]: r for r in rows}
    out = {}
    for m in ("halving", "hyperband", "optuna_sweep", "asha", "asha_tpe", "pbt"):
        for peer in ("exhaustive", "optuna_tpe"):
            if m in by and peer in by:
                key = f"{space}: {peer}/{m}"
                out[f"{key} seconds"] = by[peer]["seconds"] / by[m]["seconds"]
                out[f"{key} model-steps"] = by[peer]["model_steps"] / by[m]["model_steps"]
                reach = by[peer].get("seconds_to_target"), by[m].get("seconds_to_target")
                if None not in reach:
                    out[f"{key} seconds to the target"] = reach[0] / reach[1]  # type: ignore[operator]
    return out


table, plot = search_report.table, search_report.plot  # the report as Markdown, its figure
write = bench.write  # the report as JSON, atomically
