"""Plots of a :class:`jaxmom.SweepResult`: a metric against the first axis, a heatmap over the
first two axes (one cell per grid point, never interpolated), and per-step curves."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def _axes(ax, figsize=(7, 4)):
    import matplotlib.pyplot as plt

    return ax or plt.subplots(figsize=figsize)[1]


def _label(name: str) -> str:
    return {"beta": "β", "learning_rate": "learning rate"}.get(name, name)


def _edges(values: np.ndarray, log: bool) -> np.ndarray:
    """Cell edges halfway between sorted grid values (in log space for a log axis)."""
    v = np.log10(values) if log else values.astype(float)
    if len(v) == 1:
        half = max(0.05 * abs(v[0]), 0.01) if not log else 0.25  # a narrow cell, not +-0.5
        mid = v[0] + np.array([-half, half])
    else:
        inner = (v[1:] + v[:-1]) / 2
        mid = np.concatenate([[2 * v[0] - inner[0]], inner, [2 * v[-1] - inner[-1]]])
    return 10**mid if log else mid


def _is_log(values: np.ndarray) -> bool:
    v = np.asarray(values, float)
    return len(v) > 2 and bool(np.all(v > 0)) and v.max() / v.min() >= 20


def metric_lines(res, ax=None, metric: str = "final_loss"):
    """``metric`` against the first axis: a line per value of the second axis (median over
    seeds and any further axes), a band from min to max over seeds."""
    ax = _axes(ax)
    names = list(res.axes)
    if not names:
        raise ValueError("a sweep without grid axes has nothing to plot against")
    value = np.where(res.diverged, np.nan, res._metric(metric))
    value = value.reshape(*value.shape[:2], -1) if len(names) > 1 else value[:, None, :]
    x = res.axes[names[0]]
    for j in range(value.shape[1]):
        f = value[:, j]
        label = f"{_label(names[1])} {res.axes[names[1]][j]:g}" if len(names) > 1 else None
        with np.errstate(all="ignore"):
            marker = "o" if len(x) == 1 else "." if len(x) < 40 else None  # one point: visible
            (line,) = ax.plot(x, np.nanmedian(f, axis=-1), label=label, marker=marker)
            ax.fill_between(
                x, np.nanmin(f, axis=-1), np.nanmax(f, axis=-1), alpha=0.2, color=line.get_color()
            )
    ax.set(xlabel=_label(names[0]), ylabel=metric.replace("_", " "), yscale="log")
    if len(names) > 1:
        ax.legend(title="median, min–max over seeds", fontsize=8, loc="best")
    return ax


def heatmap(res, ax=None, metric: str = "final_loss"):
    """log10 of the median ``metric`` over the first two axes: one cell per grid point;
    cells where every seed diverged are hatched grey."""
    ax = _axes(ax)
    names = list(res.axes)
    if len(names) < 2:
        raise ValueError(f"a heatmap needs two grid axes, this sweep has {names}")
    value = np.where(res.diverged, np.inf, res._metric(metric))
    value = value.reshape(*value.shape[:2], -1)
    with np.errstate(all="ignore"):
        z = np.log10(np.median(value, axis=-1)).T  # [axis 1, axis 0]
    xs, ys = res.axes[names[0]], res.axes[names[1]]
    xlog = _is_log(xs)
    ax.set_facecolor("0.85")
    rows = np.arange(len(ys) + 1) - 0.5  # one row per value of the second axis
    mesh = ax.pcolormesh(
        _edges(xs, xlog), rows, np.ma.masked_invalid(z), cmap="viridis", shading="flat"
    )
    step = max(1, len(ys) // 12)
    ax.set_yticks(range(0, len(ys), step), [f"{v:g}" for v in ys[::step]])
    ax.set(xlabel=_label(names[0]), ylabel=_label(names[1]), title=f"log10 median {metric}")
    ax.set_xscale("log" if xlog else "linear")
    ax.figure.colorbar(mesh, ax=ax, label=f"log10 {metric} (grey: diverged)")
    return ax


def curves(res, ax=None, index: int = 0, seed_index: int = 0, max_lines: int = 64):
    """``step_losses`` curves coloured by the first axis, at position ``index`` of the second
    axis (if any) and one seed."""
    import matplotlib.pyplot as plt

    ax = _axes(ax)
    if "step_losses" not in res.outputs:
        raise ValueError("curves need a 'step_losses' output")
    names = list(res.axes)
    x = res.axes[names[0]]
    rows = np.unique(np.linspace(0, len(x) - 1, min(max_lines, len(x))).astype(int))
    key = (rows, index) if len(names) > 1 else (rows,)
    losses = res.outputs["step_losses"][key]  # [rows, (further axes), seed, steps]
    losses = losses.reshape(len(rows), -1, len(res.seeds), losses.shape[-1])[:, 0, seed_index]
    every = (res.metadata.get("settings") or {}).get("record_every", 1) or 1
    steps = np.arange(losses.shape[-1]) * every
    lo, hi = float(x.min()), float(x.max())
    if hi == lo:  # one value: a narrow range around it, not [v, v + 1]
        lo, hi = lo - max(0.05 * abs(lo), 0.01), hi + max(0.05 * abs(hi), 0.01)
    norm = plt.Normalize(lo, hi)
    cmap = plt.get_cmap("viridis")
    for r, row in zip(rows, losses, strict=True):
        ax.plot(steps, row, color=cmap(norm(x[r])), lw=0.8)
    ax.figure.colorbar(plt.cm.ScalarMappable(cmap=cmap, norm=norm), ax=ax, label=_label(names[0]))
    title = f"seed {int(res.seeds[seed_index])}"
    if len(names) > 1:
        title = f"{_label(names[1])} {res.axes[names[1]][index]:g}, " + title
    ax.set(xlabel="step", ylabel="loss", yscale="log", title=title)
    return ax


def overview(res, path: Path) -> Path:
    """The plots that fit the sweep, side by side in one PNG, written atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from jaxmom._paths import atomic_path

    panels = [metric_lines]
    if len(res.axes) >= 2:
        panels.append(heatmap)
    if "step_losses" in res.outputs:
        panels.append(curves)
    fig, axes = plt.subplots(1, len(panels), figsize=(6.5 * len(panels), 4.5), squeeze=False)
    for panel, ax in zip(panels, axes[0], strict=True):
        panel(res, ax)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
    return Path(path)
