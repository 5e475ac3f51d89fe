"""The chapter's task trained six ways, side by side in one process: ``jaxmom bench``.

The task is the chapter's: its MLP (1 -> 20 -> 1), its 1000 points, batches of 32 with the
last partial batch kept, 12 epochs (384 steps), momentum 0.8 at learning rate 0.01. Every
method trains from the same initial weights on the same batches (seed 0's), so the methods
do equal work; ``tests/test_bench.py`` checks that their losses agree.

Methods:

- ``torch_loop``: the chapter's program (``DataLoader``, ``nn.Module``, ``torch.optim.SGD``
  with momentum, ``loss.item()`` every step), one run after another.
- ``torch_func_vmap``: the best PyTorch practice for many models: parameters stacked as
  ``torch.func.stack_module_state`` stacks them, ``vmap(grad_and_value(functional_call))``,
  and the momentum update done in place on the stacked tensors, each model with its own beta.
- ``optax_loop``: the usual JAX way, ``optax.sgd(momentum=...)`` in a jitted train step
  (gradient by ``jax.value_and_grad``) called from a Python loop over host batches.
- ``jaxmom_train``: one run as one compiled ``lax.scan`` (:func:`jaxmom.train`).
- ``jaxmom_sweep``: many runs, vmapped and sharded over every device (:func:`jaxmom.sweep`).
- ``jaxmom_sweep_autodiff``: the same runs with autodiff's gradient
  (``jax.value_and_grad(mse_loss)``) in place of :func:`jaxmom.mse_value_and_grad`, through
  :func:`jaxmom.grid_sweep`: what the hand-written gradient gains on this device.
- ``jaxmom_sweep_pallas``: :func:`jaxmom.sweep` with ``kernel="pallas"``, the whole training
  of a block of models fused into one Pallas kernel (:mod:`jaxmom.chapter._fused`). On a GPU or TPU
  only: elsewhere the kernel runs interpreted, which is a test of its semantics, not a speed.

``torch_loop``, ``optax_loop`` and ``jaxmom_train`` train one model at a time, so they are
timed on one run (``models = 1``); their throughput does not change with the number of models.
The vmapped methods are timed at each requested number of models.

Report (JSON, ``format = "jaxmom.bench/1"``)::

  {"format", "date" (ISO 8601, UTC), "device" {"platform", "kind", "count", "cpu", "cores"},
   "versions" {"python", "jax", "jaxlib", "optax", "flax", "numpy", "torch"},
   "task" {"steps", "batch_size", "n", "hidden", "lr", "beta"},
   "peak_gflops" (a float32 matmul of ``matmul_size``, timed in the same run), "matmul_size",
   "flops_per_model_step" (XLA's cost analysis of one compiled train step with autodiff's
   gradient: the work every method does, whatever way it is computed),
   "rows": [{"method", "models", "steps", "repeats", "seconds" (median, compilation
             excluded), "compile_seconds" (first call minus the median: compilation and
             warm-up), "model_steps_per_s", "ms_per_model", "flops_per_model_step",
             "gflops", "fraction_of_peak"}, ...],
   "ratios" {"<method>/<peer>": throughput ratio of the best row of each}, "skipped": [...]}
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import jax

from jaxmom.bench import _report
from jaxmom.bench._jax import (
    betas_for,
    jaxmom_opt,
    jaxmom_sweep,
    jaxmom_sweep_autodiff,
    jaxmom_train,
    jit_step,
    optax_loop,
    task,
)
from jaxmom.bench._peak import Peak
from jaxmom.bench._report import (
    compiled_flops,
    device_info,
    installed,
    markdown,
    time_call,
)
from jaxmom.bench._torch import BETA, LR, torch_func_vmap, torch_loop, torch_version

FORMAT = "jaxmom.bench/1"
METHODS = (
    "torch_loop",
    "torch_func_vmap",
    "optax_loop",
    "jaxmom_train",
    "jaxmom_sweep",
    "jaxmom_sweep_autodiff",
    "jaxmom_sweep_pallas",
)
SINGLE_RUN = ("torch_loop", "optax_loop", "jaxmom_train")
# -- measuring -------------------------------------------------------------------------------


def flops_per_model_step(params, order, data) -> float:
    """XLA's cost analysis of one compiled step of the chapter's training, for one model."""
    opt = jaxmom_opt(LR, BETA)
    x, y = data
    idx = order.indices[0]
    return compiled_flops(
        jit_step(opt).lower(params, opt.init(params), x[idx], y[idx], order.mask[0])
    )


#: The optional package each peer needs (the other methods need only jaxmom's dependencies).
OPTIONAL = {"torch_loop": "torch", "torch_func_vmap": "torch"}  # method: the package it needs


def run(
    models: Sequence[int] = (1, 16, 256, 1024, 4096),
    methods: Sequence[str] = METHODS,
    *,
    repeats: int = 5,
    matmul_size: int | None = None,
    log: Callable[[str], None] | None = print,
) -> dict:
    """Times ``methods`` on the chapter's task and returns the report (see the module doc).

    Args:
      models: numbers of models for the vmapped methods (the others train one model).
      methods: a subset of :data:`METHODS`; the torch ones are skipped without PyTorch.
      repeats: timed calls per row (after one untimed call that compiles and warms up).
      matmul_size: side of the peak-measuring matmul (default 2048 on a CPU, 8192 otherwise).
      log: where progress lines go (``None``: silent).
    """
    models = sorted({int(m) for m in models})
    if not models or models[0] < 1:
        raise ValueError(f"models must be positive integers, got {models}")
    _report.check_methods(methods, METHODS)
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    say = log or (lambda s: None)
    torch_ver = torch_version()
    methods, skipped = installed(methods, OPTIONAL, say)

    params, order, data = task()
    steps = int(order.indices.shape[0])
    size = matmul_size or (2048 if jax.default_backend() == "cpu" else 8192)
    peak = Peak(size)
    flops = flops_per_model_step(params, order, data)
    device = device_info()
    say(
        f"device: {device['kind']} x{device['count']}; matmul peak {peak.sample():.1f} GFLOP/s "
        f"(sampled again between methods); {flops:.0f} flops per model step"
    )

    calls = {
        "torch_loop": lambda n: lambda: torch_loop(params, order, data),
        "optax_loop": lambda n: lambda: optax_loop(params, order, data),
        "jaxmom_train": lambda n: lambda: jaxmom_train(params, order, data),
        "torch_func_vmap": lambda n: lambda: torch_func_vmap(params, order, data, betas_for(n)),
        "jaxmom_sweep": lambda n: lambda: jaxmom_sweep(betas_for(n)),
        "jaxmom_sweep_autodiff": lambda n: lambda: jaxmom_sweep_autodiff(betas_for(n)),
        "jaxmom_sweep_pallas": lambda n: lambda: jaxmom_sweep(betas_for(n), kernel="pallas"),
    }
    if "jaxmom_sweep_pallas" in methods and jax.default_backend() not in ("gpu", "tpu"):
        methods = [m for m in methods if m != "jaxmom_sweep_pallas"]
        skipped.append("jaxmom_sweep_pallas")
        say("skipped jaxmom_sweep_pallas: off a GPU or TPU the kernel is interpreted")
        if not methods:
            raise ValueError(
                "jaxmom_sweep_pallas is timed on a GPU or TPU only (here the "
                "kernel would run interpreted)"
            )
    rows: list[dict[str, Any]] = []
    for method in methods:
        for n in [1] if method in SINGLE_RUN else models:
            seconds, compile_s = time_call(calls[method](n), repeats)
            rate = n * steps / seconds
            rows.append(
                {
                    "method": method,
                    "models": n,
                    "steps": steps,
                    "repeats": repeats,
                    "seconds": seconds,
                    "compile_seconds": compile_s,
                    "model_steps_per_s": rate,
                    "ms_per_model": 1e3 * seconds / n,
                    "flops_per_model_step": flops,
                    "gflops": rate * flops / 1e9,
                }
            )
            say(f"{method:16s} {n:6d} models  {seconds:9.4f} s  {rate:12.4g} model-steps/s")
        peak.sample()  # between methods: the peak is the best of the whole run
    for r in rows:
        r["fraction_of_peak"] = r["gflops"] / peak.gflops

    best: dict[str, float] = {}
    for r in rows:
        if r["model_steps_per_s"] > best.get(r["method"], 0):
            best[r["method"]] = r["model_steps_per_s"]
    pairs = [
        (a, b)
        for a in ("jaxmom_sweep", "jaxmom_train")
        for b in ("torch_loop", "torch_func_vmap", "optax_loop")
    ]
    pairs += [("jaxmom_sweep", "jaxmom_sweep_autodiff"), ("jaxmom_sweep_pallas", "jaxmom_sweep")]
    ratios = {f"{a}/{b}": best[a] / best[b] for a, b in pairs if a in best and b in best}
    setup = {
        "steps": steps,
        "batch_size": int(order.indices.shape[1]),
        "n": 1000,
        "hidden": 20,
        "lr": LR,
        "beta": BETA,
    }
    return _report.report(
        FORMAT,
        setup,
        rows,
        ratios,
        skipped,
        torch=torch_ver,
        **_report.peak_fields(peak, size, flops),
    )


def table(report: dict) -> str:
    """The report's rows as a Markdown table, and its ratios."""
    header = [
        "method",
        "models",
        "seconds",
        "compile s",
        "model-steps/s",
        "ms/model",
        "GFLOP/s",
        "of peak",
    ]
    rows = [
        [
            r["method"],
            str(r["models"]),
            f"{r['seconds']:.4f}",
            f"{r['compile_seconds']:.2f}",
            f"{r['model_steps_per_s']:.3g}",
            f"{r['ms_per_model']:.4g}",
            f"{r['gflops']:.3g}",
            f"{100 * r['fraction_of_peak']:.2f}%",
        ]
        for r in report["rows"]
    ]
    return markdown(header, rows, report["ratios"])


def plot(report: dict, path: str | os.PathLike) -> Path:
    """Throughput against the number of models, log-log, a line per method."""
    return _report.plot(report, path, methods=METHODS)


write = _report.write  # the report as JSON, atomically


def load(path: str | os.PathLike) -> dict:
    """Reads a report written by :func:`write`; a clear error if it is not one."""
    try:
        report = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise ValueError(f"cannot read a bench report from {path}: {e}") from e
    if not isinstance(report, dict) or report.get("format") != FORMAT:
        raise ValueError(f"{path} is not a {FORMAT} report")
    return report
