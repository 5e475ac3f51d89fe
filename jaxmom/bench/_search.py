"""Searching a space of hyperparameters, six ways, in one run: ``jaxmom bench --task search``.

The task: scikit-learn's digits split into train (1,077), validation (360) and test (360); an
NNX MLP 64 -> 64 -> 10 trained by ``sgd_momentum(learning_rate, beta,
weight_decay=weight_decay)`` in batches of 32 for up to 30 epochs (1,020 steps), 2 seeds a
configuration. The space: beta in [0, 0.99], the learning rate log-uniform in [1e-3, 3], weight
decay log-uniform in [1e-5, 1e-1]. A configuration is ranked by its validation accuracy (mean
over seeds); the test accuracy of the one each method picks is measured after, by training it
again on the same seeds (training never sees held-out data, so it is that model's).

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
- ``optuna_sweep``: :func:`jaxmom.optuna_sweep` with TPE, 3 batches.

Each row: the best validation accuracy, the test accuracy of that configuration, model-steps
spent (steps x seeds, over every run) and wall time (compilation included), and the trace of
the best accuracy against time for the figure.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from jaxmom.bench import _report as bench
from jaxmom.bench._search_task import (
    METRIC,
    SPACE,
    Plan,
    optuna_sweep_peer,
    optuna_tpe,
    setup,
    steps_per_epoch,
)
from jaxmom.common import atomic_path
from jaxmom.engine import (
    LogUniform,
    halving_sweep,
    product,
    sample,
    trial_sweep,
)

FORMAT = "jaxmom.bench_search/1"
METHODS = ("exhaustive", "random", "halving", "hyperband", "optuna_tpe", "optuna_sweep")
OPTIONAL = {"optuna_tpe": "optuna", "optuna_sweep": "optuna"}
TASK_REQUIRES = "sklearn"


def _grid(configs: int) -> dict:
    k = max(2, round(configs ** (1 / 3)))
    axes = {}
    for name, dim in SPACE.items():
        u = (np.arange(k) + 0.5) / k
        axes[name] = (
            dim.low * (dim.high / dim.low) ** u
            if isinstance(dim, LogUniform)
            else (dim.low + (dim.high - dim.low) * u)
        )
    return product(axes)


def _best(table: dict, values: np.ndarray) -> tuple[dict, float]:
    """The configuration with the highest mean over seeds (NaN ranks last)."""
    mean = np.where(np.isfinite(values).all(-1), values.mean(-1), -np.inf)
    i = int(np.argmax(mean))
    return {k: float(v[i]) for k, v in table.items()}, float(mean[i])


def _sweep(plan: Plan, table: dict) -> dict:
    task, val, _ = setup(plan.hidden)
    steps = plan.epochs * steps_per_epoch(plan)
    res = trial_sweep(task.train_fn(steps), table, plan.seeds, data=val, progress=False)
    config, best = _best(table, np.asarray(res[METRIC]))
    n = len(next(iter(table.values())))
    return dict(config=config, val=best, model_steps=n * len(plan.seeds) * steps)


def _halving(plan: Plan, table: dict, brackets: int) -> dict:
    task, val, _ = setup(plan.hidden)
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
    config, best = _best(table, np.asarray(res[METRIC]))
    spent = int(res.rungs["reached"].sum()) * len(plan.seeds)
    return dict(config=config, val=best, model_steps=spent)


def test_accuracy(plan: Plan, config: dict) -> float:
    """The chosen configuration trained again on the same seeds, scored on the test split."""
    task, _, test = setup(plan.hidden)
    steps = plan.epochs * steps_per_epoch(plan)
    table = {k: np.array([v]) for k, v in config.items()}
    res = trial_sweep(task.train_fn(steps), table, plan.seeds, data=test, progress=False)
    return float(np.asarray(res[METRIC]).mean())


def run(
    methods: Sequence[str] = METHODS,
    *,
    quick: bool = False,
    configs: int | None = None,
    log: Callable[[str], None] | None = print,
) -> dict:
    """Runs ``methods`` on one search space; see the module's docstring."""
    bench.check_methods(methods, METHODS)
    say = log or (lambda s: None)
    methods, skipped = bench.installed(methods, OPTIONAL, say)
    plan = Plan(quick, configs)
    table = sample(SPACE, plan.configs, method="random", seed=0)
    calls = {
        "exhaustive": lambda: _sweep(plan, _grid(plan.configs)),
        "random": lambda: _sweep(plan, table),
        "halving": lambda: _halving(plan, table, 1),
        "hyperband": lambda: _halving(plan, table, 3),
        "optuna_tpe": lambda: optuna_tpe(plan),
        "optuna_sweep": lambda: optuna_sweep_peer(plan),
    }
    rows = []
    for method in methods:
        t0 = time.perf_counter()
        row = calls[method]()
        seconds = time.perf_counter() - t0
        row.update(method=method, seconds=seconds, test=test_accuracy(plan, row["config"]))
        row.setdefault("trace", [[seconds, row["val"]]])
        rows.append(row)
        say(
            f"{method:13s} val {row['val']:.4f} test {row['test']:.4f}  "
            f"{row['model_steps']:.3g} model-steps  {seconds:7.1f} s"
        )
    setup = {
        "data": "sklearn digits: train 1077, validation 360, test 360",
        "model": f"MLP 64-{plan.hidden}-10",
        "epochs": plan.epochs,
        "configs": plan.configs,
        "seeds": list(plan.seeds),
        "eta": 3,
        "min_steps": plan.min_steps,
        "space": {k: repr(v) for k, v in SPACE.items()},
    }
    return bench.report(FORMAT, setup, rows, _ratios(rows), skipped)


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


def _ratios(rows: list[dict]) -> dict:
    _reach(rows)
    by = {r["method"]: r for r in rows}
    out = {}
    for m in ("halving", "hyperband", "optuna_sweep"):
        for peer in ("exhaustive", "optuna_tpe"):
            if m in by and peer in by:
                out[f"{peer}/{m} seconds"] = by[peer]["seconds"] / by[m]["seconds"]
                out[f"{peer}/{m} model-steps"] = by[peer]["model_steps"] / by[m]["model_steps"]
                reach = by[peer].get("seconds_to_target"), by[m].get("seconds_to_target")
                if None not in reach:
                    out[f"{peer}/{m} seconds to the target"] = reach[0] / reach[1]  # type: ignore[operator]
    return out


def table(report: dict) -> str:
    """The report's rows as a Markdown table, and its ratios."""
    header = [
        "method",
        "best val acc",
        "its test acc",
        "model-steps",
        "seconds",
        "s to target",
        "configuration",
    ]

    def reach(r):
        s = r.get("seconds_to_target")
        return "never" if s is None and "target" in r else ("" if s is None else f"{s:.1f}")

    rows = [
        [
            r["method"],
            f"{r['val']:.4f}",
            f"{r['test']:.4f}",
            f"{r['model_steps']:.3g}",
            f"{r['seconds']:.1f}",
            reach(r),
            ", ".join(f"{k}={v:.3g}" for k, v in r["config"].items()),
        ]
        for r in report["rows"]
    ]
    return bench.markdown(header, rows, report["ratios"], digits=2)


def plot(report: dict, path):
    """The best validation accuracy found against wall time, a line or dot per method."""
    from matplotlib.figure import Figure  # no pyplot: the user's backend and figures stay

    fig = Figure(figsize=(7, 4.5))
    ax = fig.subplots()
    for i, r in enumerate(report["rows"]):
        t, v = np.array(r["trace"], float).T
        style: dict[str, Any] = dict(
            color=f"C{i}", label=f"{r['method']} ({r['model_steps']:.2g} model-steps)"
        )
        if len(t) > 1:
            ax.step(t, v, where="post", **style)
        else:
            ax.plot(t, v, "o", ms=7, **style)
    target = next((r["target"] for r in report["rows"] if "target" in r), None)
    if target is not None:
        ax.axhline(target, color="grey", ls=":", lw=1, label="target: exhaustive best - 0.5 pt")
    ax.set_xscale("log")
    ax.set_xlabel("wall time (s), compilation included")
    ax.set_ylabel("best validation accuracy found")
    task = report["task"]
    ax.set_title(
        f"{task['configs']} configurations x {len(task['seeds'])} seeds, up to "
        f"{task['epochs']} epochs ({report['device']['cpu']})",
        fontsize=9,
    )
    ax.legend(fontsize=8)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    return path


write = bench.write  # the report as JSON, atomically
