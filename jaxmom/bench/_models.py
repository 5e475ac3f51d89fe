"""Training the models users bring, the ways they would, in one run: ``jaxmom bench --task
models``.

Every method trains the same runs: for each of ``n`` runs (1, 4, 16 and 256 by default) a
model of :mod:`jaxmom.bench._zoo` built from ``nnx.Rngs(k_model)``, trained ``steps`` steps
(32) by ``sgd_momentum(learning_rate, 0.9)`` (learning rates log-spaced in [0.01, 0.1]: a
sweep of one seed) on batches of 32 of 1,024 digits drawn by :func:`jaxmom.batch_window` from
``k_order`` (``k_model, k_order = split(key(0))``). The methods:

- ``flax_loop``: Flax's tutorial loop, ``nnx.Optimizer`` and an ``nnx.jit`` train step
  called from Python, the runs one after another (timed on up to 2 runs: its rate does not
  depend on how many there are);
- ``vmap_scan``: a hand-written ``jax.jit(jax.vmap(scan))`` over the runs;
- ``jaxmom``: :func:`jaxmom.trial_sweep` of :func:`jaxmom.nnx_task`'s ``train_fn``, its plan
  chosen by the engine; ``jaxmom_scan``, ``jaxmom_segments_vmap``, ``jaxmom_segments_unroll``,
  ``jaxmom_one_device`` (and ``jaxmom_all_devices`` with several devices) force one.

A row: model-steps per second of the calls after the first (their median; a second of them at
most), its programs compiled (``compile_s``: what the first call took more; a first call of
over 20 s is not repeated, its compile time taken from JAX's compile events), the plan, and
the largest relative difference of the runs' step losses to the ``flax_loop``'s (the same
runs: it shows that every method did the same work).
"""

from __future__ import annotations

import functools
import statistics
import time
from collections.abc import Callable, Sequence
from typing import TypeVar

import jax
import numpy as np

from jaxmom.bench import _report as bench
from jaxmom.bench._zoo import BATCH, LOSS, MODELS, digits, flax_loop, hparams, optimizer, vmap_scan
from jaxmom.common import atomic_path
from jaxmom.engine import trial_sweep
from jaxmom.training import nnx_task

FORMAT = "jaxmom.bench_models/1"
PLANS: dict[str, object] = {
    "jaxmom": None,
    "jaxmom_scan": {"form": "scan", "vectorize": "vmap"},
    "jaxmom_segments_vmap": {"form": "segments", "vectorize": "vmap"},
    "jaxmom_segments_unroll": {"form": "segments", "vectorize": "unroll"},
    "jaxmom_one_device": {"devices": 1},
    "jaxmom_all_devices": "all devices",
}
METHODS = ("flax_loop", "vmap_scan", *PLANS)
OPTIONAL: dict[str, str] = {}
TASK_REQUIRES = "sklearn"
SIZES = (1, 4, 16, 256)
LOOP_RUNS = 2
T = TypeVar("T")
ONE_CALL_S = 20.0
REPEAT_S = 1.0
_EVENTS = ("backend_compile", "jaxpr_trace", "jaxpr_to_mlir_module")


def _timed(fn: Callable[[], T]) -> tuple[float, float, T]:
    """``(seconds running, seconds compiling, result)``. The first call compiles; then the
    median of calls, as many as fit in ``REPEAT_S`` (at least one), its programs cached, and
    compiling is what the first took more. A first call of over ``ONE_CALL_S`` is not
    repeated: its compiling is what JAX's own compile events report."""
    log = bench.compile_log()
    log.clear()
    t0 = time.perf_counter()
    out = jax.block_until_ready(fn())
    first = time.perf_counter() - t0
    events = [secs for event, secs in log if any(e in event for e in _EVENTS)]
    if first > ONE_CALL_S:
        return first - sum(events), sum(events), out
    times: list[float] = []
    while not times or (sum(times) < REPEAT_S and len(times) < 25):
        t0 = time.perf_counter()
        out = jax.block_until_ready(fn())
        times.append(time.perf_counter() - t0)
    running = statistics.median(times)
    return running, max(first - running, 0.0), out


def engine(model, hp: dict, data, steps: int, plan) -> tuple[np.ndarray, dict]:
    """:func:`jaxmom.trial_sweep` of the runs: ``[runs, steps]`` losses and the plan."""
    res = trial_sweep(_train_fn(model, steps), hp, data=data, progress=False, plan=plan)
    return np.asarray(res["step_losses"])[:, 0], res.metadata["plan"]


@functools.cache
def _train_fn(model, steps: int):
    """One train function per model and steps, so a sweep repeated reuses its programs."""
    task = nnx_task(model, LOSS, optimizer, batch_size=BATCH)
    return task.train_fn(steps, record_every=1)


def _one(method: str, model, n: int, data, steps: int) -> dict:
    """One row: ``method`` on ``n`` runs of ``model``."""
    hp = hparams(n)
    row: dict = {"method": method, "runs": n}
    if method == "flax_loop":
        runs = min(n, LOOP_RUNS)
        t0 = time.perf_counter()
        flax_loop(model, hp, data, steps, 1)  # compiles the step (and traces it twice)
        once = time.perf_counter() - t0
        t0 = time.perf_counter()
        losses = flax_loop(model, hp, data, steps, runs)
        running = time.perf_counter() - t0
        compiling = max(once - running / runs, 0.0)
        row.update(timed_runs=runs, compile_s=compiling, losses=losses)
        row["model_steps_per_s"] = runs * steps / running
        return row
    if method == "vmap_scan":
        running, compiling, out = _timed(lambda: vmap_scan(model, hp, data, steps))
        losses = np.asarray(out)
    else:
        plan = PLANS[method]
        if plan == "all devices":
            plan = {"devices": jax.device_count()}
        running, compiling, (losses, row["plan"]) = _timed(
            lambda: engine(model, hp, data, steps, plan)
        )
    row.update(timed_runs=n, compile_s=compiling, losses=losses)
    row["model_steps_per_s"] = n * steps / running
    return row


def run(
    methods: Sequence[str] = METHODS,
    *,
    models: Sequence[str] = tuple(MODELS),
    sizes: Sequence[int] = SIZES,
    steps: int = 32,
    log: Callable[[str], None] | None = print,
) -> dict:
    """Runs ``methods`` on every model and size; see the module's docstring."""
    bench.check_methods(methods, METHODS)
    unknown = [m for m in models if m not in MODELS]
    if unknown:
        raise ValueError(f"unknown model {unknown[0]!r}; choose from {', '.join(MODELS)}")
    say = log or (lambda s: None)
    skipped = []
    if jax.device_count() == 1 and "jaxmom_all_devices" in methods:
        methods = [m for m in methods if m != "jaxmom_all_devices"]
        skipped.append("jaxmom_all_devices")
    data = digits()
    rows = []
    for name in models:
        for n in sizes:
            ref = None
            for method in methods:
                row = _one(method, MODELS[name], n, data, steps)
                losses = row.pop("losses")
                ref = losses if ref is None else ref
                k = min(len(ref), len(losses))
                diff = np.abs(losses[:k] - ref[:k]) / np.maximum(np.abs(ref[:k]), 1e-12)
                row.update(model=name, max_relative_difference=float(np.max(diff)))
                rows.append(row)
                say(
                    f"{name:15s} {n:4d} runs  {method:24s} {row['model_steps_per_s']:9.0f} "
                    f"model-steps/s  compile {row['compile_s']:5.1f} s"
                    + (f"  plan: {row['plan']['label']}" if "plan" in row else "")
                )
    task = {
        "data": "sklearn digits, the first 1024 images (8x8x1), batch 32",
        "models": {m: (MODELS[m].__doc__ or MODELS[m].__name__) for m in models},
        "steps": steps,
        "sizes": list(sizes),
        "hyperparameters": "beta 0.9, learning rates log-spaced in [0.01, 0.1], seed 0",
    }
    return bench.report(FORMAT, task, rows, _ratios(rows), skipped)


def _ratios(rows: list[dict]) -> dict:
    """Per model and size: jaxmom's rate over the faster hand-written form's, and over the
    tutorial loop's."""
    out = {}
    at = {(r["model"], r["runs"], r["method"]): r["model_steps_per_s"] for r in rows}
    for model, n in sorted({(r["model"], r["runs"]) for r in rows}):
        mine = at.get((model, n, "jaxmom"))
        peers = [at.get((model, n, m)) for m in ("flax_loop", "vmap_scan")]
        if mine and any(peers):
            out[f"{model} {n} runs: jaxmom / the faster hand-written"] = mine / max(
                p for p in peers if p
            )
        if mine and peers[0]:
            out[f"{model} {n} runs: jaxmom / flax_loop"] = mine / peers[0]
    return out


def table(report: dict) -> str:
    """The report's rows as a Markdown table, and its ratios."""
    header = ["model", "runs", "method", "model-steps/s", "compile s", "plan", "max rel diff"]
    rows = [
        [
            r["model"],
            str(r["runs"]),
            r["method"],
            f"{r['model_steps_per_s']:,.0f}",
            f"{r['compile_s']:.1f}",
            r["plan"]["label"] if "plan" in r else "",
            f"{r['max_relative_difference']:.1e}",
        ]
        for r in report["rows"]
    ]
    return bench.markdown(header, rows, report["ratios"], digits=2)


def plot(report: dict, path):
    """Model-steps per second against runs, a panel per model, a line per method."""
    from matplotlib.figure import Figure  # no pyplot: the user's backend and figures stay

    models = list(dict.fromkeys(r["model"] for r in report["rows"]))
    methods = list(dict.fromkeys(r["method"] for r in report["rows"]))
    fig = Figure(figsize=(4.2 * len(models), 4))
    axes = np.atleast_1d(fig.subplots(1, len(models), sharey=True))
    for ax, model in zip(axes, models, strict=True):
        for i, method in enumerate(methods):
            rows = [r for r in report["rows"] if r["model"] == model and r["method"] == method]
            style = "o-" if method.startswith("jaxmom") else "s--"
            xs, ys = [r["runs"] for r in rows], [r["model_steps_per_s"] for r in rows]
            ax.plot(xs, ys, style, color=f"C{i}", label=method, lw=2.5 if method == "jaxmom" else 1)
        ax.set(xscale="log", yscale="log", xlabel="runs", title=model)
        ax.grid(True, which="both", lw=0.3)
    axes[0].set_ylabel("model-steps per second (compilation apart)")
    axes[-1].legend(fontsize=7)
    d = report["device"]
    fig.suptitle(
        f"{d['cpu'] if d['platform'] == 'cpu' else d['kind']} x{d['count']} "
        f"({report['date'][:10]}), {report['task']['steps']} steps a run",
        fontsize=9,
    )
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    return path


write = bench.write  # the report as JSON, atomically
