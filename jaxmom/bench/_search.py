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

import datetime
import functools
import time
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxmom.bench import _report as bench
from jaxmom.chapter import MLP
from jaxmom.common import atomic_path
from jaxmom.engine import (
    LogUniform,
    Uniform,
    halving_sweep,
    optuna_sweep,
    product,
    sample,
    trial_sweep,
)
from jaxmom.optim import sgd_momentum
from jaxmom.training import accuracy, load_digits, nnx_task

FORMAT = "jaxmom.bench_search/1"
METHODS = ("exhaustive", "random", "halving", "hyperband", "optuna_tpe", "optuna_sweep")
OPTIONAL = {"optuna_tpe": "optuna", "optuna_sweep": "optuna"}
TASK_REQUIRES = "sklearn"
SPACE = {"beta": Uniform(0.0, 0.99), "learning_rate": LogUniform(1e-3, 3.0),
         "weight_decay": LogUniform(1e-5, 1e-1)}  # fmt: skip
METRIC = "test_accuracy"  # evaluate's held-out accuracy: here, on the validation split
LOSS = optax.softmax_cross_entropy_with_integer_labels


class Plan:
    """The sizes of a run: ``quick`` for tests (27 configurations, 3 epochs)."""

    def __init__(self, quick: bool = False, configs: int | None = None):
        self.configs = configs or (27 if quick else 729)
        self.epochs, self.hidden = (3, 16) if quick else (30, 64)
        self.seeds, self.batch = (0, 1), 32
        self.min_steps = 4 if quick else 38


def optimizer(beta, learning_rate, weight_decay):
    return sgd_momentum(learning_rate, beta, weight_decay=weight_decay)


@functools.cache
def setup(hidden: int):
    """The task and the data: ``(task, (train, val), (train, test))``."""
    x, y, x_test, y_test = load_digits()
    n = x.shape[0] - 360
    task = nnx_task(lambda rngs: MLP(64, hidden, 10, rngs=rngs), LOSS, optimizer,
                    batch_size=32, metrics={"accuracy": accuracy})  # fmt: skip
    return task, (x[:n], y[:n], x[n:], y[n:]), (x[:n], y[:n], x_test, y_test)


def _steps_per_epoch(plan: Plan) -> int:
    """Batches in an epoch of the training split (the last partial one kept)."""
    return -(-setup(plan.hidden)[1][0].shape[0] // plan.batch)


def _grid(configs: int) -> dict:
    k = max(2, round(configs ** (1 / 3)))
    axes = {}
    for name, dim in SPACE.items():
        u = (np.arange(k) + 0.5) / k
        axes[name] = dim.low * (dim.high / dim.low) ** u if isinstance(dim, LogUniform) else (
            dim.low + (dim.high - dim.low) * u)  # fmt: skip
    return product(axes)


def _best(table: dict, values: np.ndarray) -> tuple[dict, float]:
    """The configuration with the highest mean over seeds (NaN ranks last)."""
    mean = np.where(np.isfinite(values).all(-1), values.mean(-1), -np.inf)
    i = int(np.argmax(mean))
    return {k: float(v[i]) for k, v in table.items()}, float(mean[i])


def _sweep(plan: Plan, table: dict) -> dict:
    task, val, _ = setup(plan.hidden)
    steps = plan.epochs * _steps_per_epoch(plan)
    res = trial_sweep(task.train_fn(steps), table, plan.seeds, data=val, progress=False)
    config, best = _best(table, np.asarray(res[METRIC]))
    n = len(next(iter(table.values())))
    return dict(config=config, val=best, model_steps=n * len(plan.seeds) * steps)


def _halving(plan: Plan, table: dict, brackets: int) -> dict:
    task, val, _ = setup(plan.hidden)
    steps = plan.epochs * _steps_per_epoch(plan)
    res = halving_sweep(task, table, plan.seeds, data=val, min_steps=plan.min_steps,
                        max_steps=steps, brackets=brackets, metric=METRIC, mode="max",
                        progress=False)  # fmt: skip
    config, best = _best(table, np.asarray(res[METRIC]))
    spent = int(res.rungs["reached"].sum()) * len(plan.seeds)
    return dict(config=config, val=best, model_steps=spent)


@functools.cache
def _step_fns(hidden: int):
    """A careful Optuna user's training: a jitted step and a jitted evaluation, the
    hyperparameters as arguments (compiled once for every trial), both seeds vmapped."""
    task, _, _ = setup(hidden)
    init = jax.jit(jax.vmap(task.init, in_axes=(None, 0, None)))
    step = jax.jit(jax.vmap(lambda s, hp, d: task.advance(s, hp, d, 1), in_axes=(0, None, None)))
    score = jax.jit(jax.vmap(lambda s, hp, d: task.evaluate(s, hp, d)[METRIC],
                             in_axes=(0, None, None)))  # fmt: skip
    return init, step, score


def _optuna_tpe(plan: Plan) -> dict:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    _, val, _ = setup(plan.hidden)
    init, step, score = _step_fns(plan.hidden)
    spe = _steps_per_epoch(plan)
    keys = jax.vmap(jax.random.key)(jnp.asarray(plan.seeds))
    spent = [0]

    def objective(trial):
        hp = {
            "beta": trial.suggest_float("beta", 0.0, 0.99),
            "learning_rate": trial.suggest_float("learning_rate", 1e-3, 3.0, log=True),
            "weight_decay": trial.suggest_float("weight_decay", 1e-5, 1e-1, log=True),
        }
        hp = {k: jnp.float32(v) for k, v in hp.items()}  # fmt: skip
        state = init(hp, keys, val)
        value = float("nan")
        for e in range(plan.epochs):
            for _ in range(spe):
                state = step(state, hp, val)
            spent[0] += len(plan.seeds) * spe
            value = float(np.mean(score(state, hp, val)))
            trial.report(value if np.isfinite(value) else 0.0, e)
            if not np.isfinite(value) or trial.should_prune():
                raise optuna.TrialPruned()
        return value

    sampler = optuna.samplers.TPESampler(seed=0)
    pruner = optuna.pruners.HyperbandPruner(min_resource=1, max_resource=plan.epochs)
    study = optuna.create_study(direction="maximize", sampler=sampler, pruner=pruner)
    study.optimize(objective, n_trials=plan.configs)
    best = study.best_trial
    return dict(config=dict(best.params), val=float(best.value), model_steps=spent[0],
                trace=_study_trace(study))  # fmt: skip


def _optuna_sweep(plan: Plan) -> dict:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    task, val, _ = setup(plan.hidden)
    steps = plan.epochs * _steps_per_epoch(plan)
    study = optuna.create_study(direction="maximize",
                                sampler=optuna.samplers.TPESampler(seed=0))  # fmt: skip
    optuna_sweep(study, task, SPACE, plan.configs, batch_size=-(-plan.configs // 3),
                 seeds=plan.seeds, data=val, metric=METRIC, steps=steps,
                 progress=False)  # fmt: skip
    best = study.best_trial
    spent = plan.configs * len(plan.seeds) * steps
    return dict(config=dict(best.params), val=float(best.value), model_steps=spent,
                trace=_study_trace(study))  # fmt: skip


def _study_trace(study) -> list[list[float]]:
    """``[[seconds since the first trial began, best value so far], ...]``."""
    done = [t for t in study.trials if t.datetime_complete is not None]
    t0 = min(t.datetime_start for t in done)
    best, out = -np.inf, []
    for t in sorted(done, key=lambda t: t.datetime_complete):
        if t.value is not None:
            best = max(best, t.value)
        out.append([(t.datetime_complete - t0).total_seconds(), best])
    return out


def test_accuracy(plan: Plan, config: dict) -> float:
    """The chosen configuration trained again on the same seeds, scored on the test split."""
    task, _, test = setup(plan.hidden)
    steps = plan.epochs * _steps_per_epoch(plan)
    table = {k: np.array([v]) for k, v in config.items()}
    res = trial_sweep(task.train_fn(steps), table, plan.seeds, data=test, progress=False)
    return float(np.asarray(res[METRIC]).mean())


def run(methods: Sequence[str] = METHODS, *, quick: bool = False, configs: int | None = None,
        log: Callable[[str], None] | None = print) -> dict:  # fmt: skip
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
        "optuna_tpe": lambda: _optuna_tpe(plan),
        "optuna_sweep": lambda: _optuna_sweep(plan),
    }
    rows = []
    for method in methods:
        t0 = time.perf_counter()
        row = calls[method]()
        seconds = time.perf_counter() - t0
        row.update(method=method, seconds=seconds, test=test_accuracy(plan, row["config"]))
        row.setdefault("trace", [[seconds, row["val"]]])
        rows.append(row)
        say(f"{method:13s} val {row['val']:.4f} test {row['test']:.4f}  "
            f"{row['model_steps']:.3g} model-steps  {seconds:7.1f} s")  # fmt: skip
    return {
        "format": FORMAT,
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "device": bench.device_info(),
        "versions": {**bench.versions(None), **bench.peer_versions()},
        "task": {"data": "sklearn digits: train 1077, validation 360, test 360",
                 "model": f"MLP 64-{plan.hidden}-10", "epochs": plan.epochs,
                 "configs": plan.configs, "seeds": list(plan.seeds), "eta": 3,
                 "min_steps": plan.min_steps, "space": {k: repr(v) for k, v in SPACE.items()}},
        "rows": rows,
        "ratios": _ratios(rows),
        "skipped": skipped,
    }  # fmt: skip


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
                    out[f"{peer}/{m} seconds to the target"] = reach[0] / reach[1]
    return out


def check_methods(methods: Sequence[str]) -> None:
    bench.check_methods(methods, METHODS)


def missing(methods: Sequence[str]) -> dict[str, str]:
    return bench.missing(methods, OPTIONAL)


def table(report: dict) -> str:
    """The report's rows as a Markdown table, and its ratios."""
    header = ["method", "best val acc", "its test acc", "model-steps", "seconds",
              "s to target", "configuration"]  # fmt: skip

    def reach(r):
        s = r.get("seconds_to_target")
        return "never" if s is None and "target" in r else ("" if s is None else f"{s:.1f}")

    rows = [
        [r["method"], f"{r['val']:.4f}", f"{r['test']:.4f}", f"{r['model_steps']:.3g}",
         f"{r['seconds']:.1f}", reach(r),
         ", ".join(f"{k}={v:.3g}" for k, v in r["config"].items())]
        for r in report["rows"]
    ]  # fmt: skip
    return bench.markdown(header, rows, report["ratios"], digits=2)


def plot(report: dict, path):
    """The best validation accuracy found against wall time, a line or dot per method."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for i, r in enumerate(report["rows"]):
        t, v = np.array(r["trace"], float).T
        style = dict(color=f"C{i}", label=f"{r['method']} ({r['model_steps']:.2g} model-steps)")
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
    ax.set_title(f"{task['configs']} configurations x {len(task['seeds'])} seeds, up to "
                 f"{task['epochs']} epochs ({report['device']['cpu']})", fontsize=9)  # fmt: skip
    ax.legend(fontsize=8)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
    return path


write = bench.write  # the report as JSON, atomically
