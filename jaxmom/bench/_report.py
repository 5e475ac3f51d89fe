"""What every ``jaxmom bench`` report shares: timing, the device and versions, optional peers,
Markdown tables, plots and the JSON file."""

from __future__ import annotations

import datetime
import functools
import json
import os
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import jax
import numpy as np
import optax

from jaxmom.common import write_text


def time_call(fn: Callable[[], object], repeats: int) -> tuple[float, float]:
    """(median seconds, first call minus the median) of ``fn``, results made ready."""
    t0 = time.perf_counter()
    jax.block_until_ready(fn())
    first = time.perf_counter() - t0
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - t0)
    med = statistics.median(times)
    return med, max(first - med, 0.0)


def compiled_flops(lowered) -> float:
    """XLA's flop count of a lowered computation, once compiled."""
    cost = lowered.compile().cost_analysis()
    cost = cost[0] if isinstance(cost, list | tuple) else cost
    return float(cost["flops"])


def device_info() -> dict:
    d = jax.devices()[0]
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {
        "platform": d.platform,
        "kind": d.device_kind,
        "count": jax.device_count(),
        "cpu": cpu,
        "cores": os.cpu_count(),
    }


def versions(torch_version: str | None) -> dict:
    import flax
    import jaxlib

    return {
        "python": platform.python_version(),
        "jax": jax.__version__,
        "jaxlib": jaxlib.__version__,
        "optax": optax.__version__,
        "flax": flax.__version__,
        "numpy": np.__version__,
        "torch": torch_version,
    }


def peer_versions() -> dict:
    """The versions of the peers a bench may run beside jaxmom (``None``: not installed)."""
    from importlib import metadata

    out: dict[str, str | None] = {}
    for name in ("optuna", "hyperoptax", "scikit-learn"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


#: How to install each optional package.
INSTALL = {
    "torch": "pip install torch==2.13.0 (the CPU build; or pip install 'jaxmom[torch]')",
    "optuna": "pip install 'jaxmom[bench]'",
    "hyperoptax": "pip install 'jaxmom[bench]'",
    "sklearn": "pip install 'jaxmom[experiments]' (scikit-learn ships the digits data set)",
}


def missing(methods: Sequence[str], requires: dict[str, str]) -> dict[str, str]:
    """``{method: package}`` for each of ``methods`` whose optional package is not installed."""
    import importlib.util

    return {
        m: requires[m]
        for m in methods
        if m in requires and importlib.util.find_spec(requires[m]) is None
    }


def installed(methods: Sequence[str], requires: dict[str, str], say) -> tuple[list, list]:
    """``(methods to run, methods skipped)``: those whose optional package is missing are
    skipped, and ``say`` is told which and how to install them; none left is a ``ValueError``."""
    absent = missing(methods, requires)
    if absent:
        how = "; ".join(sorted({INSTALL.get(p, f"pip install {p}") for p in absent.values()}))
        say(f"not installed, skipping: {', '.join(absent)} ({how})")
    run = [m for m in methods if m not in absent]
    if not run:
        raise ValueError(f"nothing to run: {', '.join(absent)} not installed")
    return run, list(absent)


def report(fmt: str, task: dict, rows: list, ratios: dict, skipped: list, *, torch=None, **fields):
    """A bench report: its format, the date (UTC), the device and the versions of jaxmom's
    dependencies and peers (``torch``: PyTorch's, where it is one), then ``task``, ``fields``
    (a peak, ...), ``rows``, ``ratios`` and the methods ``skipped``."""
    return {
        "format": fmt,
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "device": device_info(),
        "versions": {**versions(torch), **peer_versions()},
        "task": task,
        **fields,
        "rows": rows,
        "ratios": ratios,
        "skipped": skipped,
    }


def peak_fields(peak, size: int, flops: float) -> dict:
    """The matmul peak measured in the run (best of its samples, with their spread), its size,
    and the flops of one model-step: what each row's ``fraction_of_peak`` is relative to."""
    return {
        "peak_gflops": peak.gflops,
        "peak": peak.report(),
        "matmul_size": size,
        "flops_per_model_step": flops,
    }


def check_methods(methods: Sequence[str], choices: Sequence[str]) -> None:
    """A ``ValueError`` naming the first of ``methods`` that is not in ``choices``."""
    unknown = [m for m in methods if m not in choices]
    if unknown:
        raise ValueError(f"unknown method {unknown[0]!r}; choose from {', '.join(choices)}")


def markdown(header: Sequence[str], rows: Sequence[Sequence[str]], ratios: dict, digits=1) -> str:
    """A Markdown table of ``rows`` (the first column left-aligned), then the ratios."""
    lines = ["| " + " | ".join(header) + " |", "| --- |" + " ---: |" * (len(header) - 1)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    if ratios:
        lines += ["", *(f"- {k}: {v:,.{digits}f}x" for k, v in ratios.items())]
    return "\n".join(lines)


def plot(
    report: dict,
    path: str | os.PathLike,
    *,
    methods: Sequence[str],
    x: tuple[str, str] = ("models", "models trained at once"),
    y: tuple[str, str] = ("model_steps_per_s", "model-steps per second"),
    title: str = "",
) -> Path:
    """Throughput against the number of models (or the ``x`` column), log-log, a line per
    method."""
    from matplotlib.figure import Figure  # no pyplot: the user's backend and figures stay

    fig = Figure(figsize=(7, 4.5))
    ax = fig.subplots()
    for method in methods:
        rows = [r for r in report["rows"] if r["method"] == method]
        if rows:
            ax.plot([r[x[0]] for r in rows], [r[y[0]] for r in rows], "o-", label=method)
    d = report["device"]
    ax.set(
        xscale="log",
        yscale="log",
        xlabel=x[1],
        ylabel=y[1],
        title=f"{title}{d['kind']} x{d['count']} ({report['date'][:10]})",
    )
    ax.grid(True, which="both", lw=0.3)
    ax.legend(fontsize=8)
    path = Path(path)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    return path


def write(report: dict, path: str | os.PathLike) -> Path:
    """Writes the report as JSON, atomically."""
    return write_text(path, json.dumps(report, indent=2) + "\n")


_COMPILE_LOG: list[tuple[str, float]] = []


@functools.cache
def _listen() -> None:
    """Registers, once a process, a listener of JAX's compile events into the log (jax 0.8
    cannot unregister one)."""

    def listen(event: str, duration_secs: float, **kwargs: str | int) -> None:
        if "/jax/core/compile/" in event:
            _COMPILE_LOG.append((event, duration_secs))

    jax.monitoring.register_event_duration_secs_listener(listen)


def compile_log() -> list[tuple[str, float]]:
    """JAX's compile events of this process, ``(event, seconds)``, since the log was last
    cleared (``compile_log().clear()``)."""
    _listen()
    return _COMPILE_LOG


def compiled_programs(log: list[tuple[str, float]]) -> int:
    """The programs XLA's backend compiled in ``log``."""
    return sum(1 for event, _ in log if event.endswith("backend_compile_duration"))
