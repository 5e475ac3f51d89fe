"""Plots of a :class:`jaxmom.SweepResult`: a metric against the first axis, a heatmap over the
first two axes (one cell per grid point, never interpolated), and per-step curves."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np

from jaxmom.common import atomic_path
from jaxmom.results._metric import metric_mode


def _axes(ax, figsize=(7, 4)):
    import matplotlib.pyplot as plt

    return ax or plt.subplots(figsize=figsize)[1]


def _label(name: str) -> str:
    return {"beta": "β", "learning_rate": "learning rate"}.get(name, name)


def _uniform(values: np.ndarray, log: bool) -> bool:
    """Evenly spaced (in log space for a log axis), so cells of the real values look even."""
    v = np.log10(values) if log else np.asarray(values, float)
    gaps = np.diff(v)
    return len(v) < 3 or bool(np.allclose(gaps, gaps[0], rtol=1e-3, atol=0))


def _cells(values: np.ndarray) -> tuple[np.ndarray, str]:
    """Cell edges for the heatmap's first axis, and the axis's scale.

    Evenly spaced values (linearly or in log space) get cells centred on them, edges half-way
    between neighbours; uneven ones get one equal cell each, labelled with its value (the real
    positions would squash some cells to slivers). One value: one cell around it.
    """
    v = np.asarray(values, float)
    log = _is_log(v)
    if len(v) == 1:
        half = 0.25 if log or v[0] == 0 else 0.05 * abs(v[0])
        mid = (np.log10(v) if log else v)[0] + np.array([-half, half])
        return (10**mid if log else mid), ("log" if log else "linear")
    if not _uniform(v, log):
        return np.arange(len(v) + 1) - 0.5, "index"
    w = np.log10(v) if log else v
    inner = (w[1:] + w[:-1]) / 2
    mid = np.concatenate([[2 * w[0] - inner[0]], inner, [2 * w[-1] - inner[-1]]])
    return (10**mid if log else mid), ("log" if log else "linear")


def _is_log(values: np.ndarray) -> bool:
    v = np.asarray(values, float)
    return len(v) > 2 and bool(np.all(v > 0)) and v.max() / v.min() >= 20


def _log_values(values: np.ndarray, mode: str) -> bool:
    """A log scale only for what is minimised and positive (losses), never for a bounded metric
    to maximise (accuracy) or one that can be negative."""
    finite = np.asarray(values, float)
    finite = finite[np.isfinite(finite)]
    return mode == "min" and finite.size > 0 and bool(np.all(finite > 0))


def metric_lines(res, ax=None, metric: str = "final_loss", mode: str = "min"):
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
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all seeds diverged: a gap
            marker = "o" if len(x) == 1 else "." if len(x) < 40 else None  # one point: visible
            (line,) = ax.plot(x, np.nanmedian(f, axis=-1), label=label, marker=marker)
            ax.fill_between(
                x, np.nanmin(f, axis=-1), np.nanmax(f, axis=-1), alpha=0.2, color=line.get_color()
            )
    yscale = "log" if _log_values(value, mode) else "linear"
    xscale = "log" if _is_log(x) else "linear"  # a learning rate over decades
    ax.set(xlabel=_label(names[0]), ylabel=metric.replace("_", " "), yscale=yscale, xscale=xscale)
    if len(names) > 1:
        ax.legend(title="median, min–max over seeds", fontsize=8, loc="best")
    return ax


def heatmap(res, ax=None, metric: str = "final_loss", mode: str = "min"):
    """The median ``metric`` over the first two axes (log10 of it for a positive metric to
    minimise): one cell per grid point; cells where every seed diverged are grey."""
    ax = _axes(ax)
    names = list(res.axes)
    if len(names) < 2:
        raise ValueError(f"a heatmap needs two grid axes, this sweep has {names}")
    value = np.where(res.diverged, np.nan, res._metric(metric))
    value = value.reshape(*value.shape[:2], -1)
    log = _log_values(value, mode)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all seeds diverged: a grey cell
        z = np.nanmedian(value, axis=-1).T  # [axis 1, axis 0]
        z = np.log10(z) if log else z
    what = f"log10 median {metric}" if log else f"median {metric}"
    xs, ys = res.axes[names[0]], res.axes[names[1]]
    edges, xscale = _cells(xs)
    ax.set_facecolor("0.85")
    rows = np.arange(len(ys) + 1) - 0.5  # one row per value of the second axis
    mesh = ax.pcolormesh(edges, rows, np.ma.masked_invalid(z), cmap="viridis", shading="flat")
    ystep = max(1, len(ys) // 12)
    ax.set_yticks(range(0, len(ys), ystep), [f"{v:g}" for v in ys[::ystep]])
    if xscale == "index":
        xstep = max(1, len(xs) // 10)
        ax.set_xticks(range(0, len(xs), xstep), [f"{v:g}" for v in xs[::xstep]])
    else:
        ax.set_xscale(xscale)
    ax.set(xlabel=_label(names[0]), ylabel=_label(names[1]), title=what)
    some_diverged = bool(np.isnan(z).any())
    ax.figure.colorbar(mesh, ax=ax, label=what + (" (grey: diverged)" if some_diverged else ""))
    return ax


def curves(res, ax=None, index: int = 0, max_lines: int = 6):
    """``step_losses`` against the step for up to ``max_lines`` values of the first axis (at
    position ``index`` of the second axis, if any): the median over seeds and a min–max band,
    each labelled with its value."""
    ax = _axes(ax)
    if "step_losses" not in res.outputs:
        raise ValueError("curves need a 'step_losses' output")
    names = list(res.axes)
    x = res.axes[names[0]]
    rows = np.unique(np.linspace(0, len(x) - 1, min(max_lines, len(x))).astype(int))
    key = (rows, index) if len(names) > 1 else (rows,)
    losses = res.outputs["step_losses"][key]  # [rows, (further axes), seed, steps]
    losses = losses.reshape(len(rows), -1, len(res.seeds), losses.shape[-1])[:, 0]
    every = (res.metadata.get("settings") or {}).get("record_every", 1) or 1
    window = max(1, losses.shape[-1] // 25)  # a batch's loss is noisy: a moving average
    losses = _moving_average(np.asarray(losses, float), window)
    steps = (np.arange(losses.shape[-1]) + (window - 1) / 2) * every
    for r, runs in zip(rows, losses, strict=True):
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            (line,) = ax.plot(steps, np.nanmedian(runs, axis=0), lw=1.2, label=f"{x[r]:.4g}")
            ax.fill_between(
                steps,
                np.nanmin(runs, axis=0),
                np.nanmax(runs, axis=0),
                alpha=0.15,
                color=line.get_color(),
                lw=0,
            )
    title = f"median, min–max over {len(res.seeds)} seed(s)"
    if window > 1:
        title += f"; mean of {window * every} steps"
    if len(names) > 1:
        title = f"{_label(names[1])} {res.axes[names[1]][index]:g}: " + title
    yscale = "log" if _log_values(losses, "min") else "linear"
    ax.set(xlabel="step", ylabel="loss", yscale=yscale, title=title)
    ax.legend(title=_label(names[0]), fontsize=8, loc="upper right")
    return ax


def _moving_average(x: np.ndarray, window: int) -> np.ndarray:
    """The mean of each ``window`` consecutive values along the last axis ("valid" part)."""
    if window == 1:
        return x
    c = np.cumsum(np.concatenate([np.zeros((*x.shape[:-1], 1)), x], axis=-1), axis=-1)
    return (c[..., window:] - c[..., :-window]) / window


def overview(res, path: Path, metric: str | None = None, mode: str | None = None) -> Path:
    """The plots that fit the sweep, side by side in one PNG, written atomically. Drawn on a
    ``matplotlib.figure.Figure``, without pyplot: the user's backend and figures stay.
    ``metric``/``mode``: what the panels show and which way is better (default: a halving
    sweep's own metric, else ``final_loss``), as :meth:`SweepResult.best` ranks."""
    import functools

    from matplotlib.figure import Figure

    settings = res.metadata.get("settings") or {}
    if metric is None:
        metric = settings.get("metric", "final_loss")
        if mode is None and "sign" in settings:
            mode = "max" if settings["sign"] < 0 else "min"
    mode = metric_mode(metric, mode)
    if res.trials:  # a table of trials: the metric against each hyperparameter
        panels: list[Any] = [
            functools.partial(scatter, name=n, metric=metric, mode=mode)
            for n in list(res.trials)[:3]
        ]
        if getattr(res, "rungs", None) is not None:
            panels.append(functools.partial(rungs, mode=mode))
    else:
        panels = [functools.partial(metric_lines, metric=metric, mode=mode)]
        if len(res.axes) >= 2:
            panels.append(functools.partial(heatmap, metric=metric, mode=mode))
    if "step_losses" in res.outputs and not res.trials:
        panels.append(curves)
    fig = Figure(figsize=(6.5 * len(panels), 4.5))
    axes = fig.subplots(1, len(panels), squeeze=False)
    for panel, ax in zip(panels, axes[0], strict=True):
        panel(res, ax)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    return Path(path)


def scatter(res, ax=None, name: str = "beta", metric: str = "final_loss", mode: str = "min"):
    """A table of trials: the median ``metric`` over seeds against hyperparameter ``name``, one
    dot per trial, coloured by the next hyperparameter; trials without a value (diverged, or
    pruned by successive halving) are counted in the title, not drawn."""
    import matplotlib.colors as mcolors

    ax = _axes(ax)
    x = np.asarray(res.trials[name], float)
    halving = getattr(res, "rungs", None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN trials: counted below
        if halving is not None:  # each trial at the last rung it reached
            mean = np.nanmean(halving["metric"], axis=-1)
            last = np.maximum(np.isfinite(mean).cumsum(1).argmax(1), 0)
            y = mean[np.arange(len(mean)), last]
        else:
            y = np.nanmedian(np.asarray(res[metric], float), axis=-1)
    shown = np.isfinite(y) & np.isfinite(x)
    others = [n for n in res.trials if n != name]
    kw = {}
    if others:
        c = np.asarray(res.trials[others[0]], float)
        norm = mcolors.LogNorm() if _log_spread(c) else None
        kw = dict(c=c[shown], cmap="viridis", norm=norm)
    size = 14 if halving is None else np.where(last == mean.shape[1] - 1, 30, 6)[shown]
    dots = ax.scatter(x[shown], y[shown], s=size, alpha=0.8, **kw)
    if others:
        ax.figure.colorbar(dots, ax=ax, label=_label(others[0]))
    if _log_spread(x):
        ax.set_xscale("log")
    if _log_values(y[shown], mode):
        ax.set_yscale("log")
    ax.set_xlabel(_label(name))
    what = "median" if halving is None else "last rung's (large: finished) mean"
    ax.set_ylabel(f"{what} {metric.replace('_', ' ')}")
    hidden = int((~shown).sum())
    ax.set_title(f"{shown.sum()} trials" + (f" ({hidden} without a value)" if hidden else ""))
    return ax


def _log_spread(values: np.ndarray) -> bool:
    """Drawn from a log-uniform range: positive, spread over 20x, median well below the mean."""
    v = np.asarray(values, float)
    v = v[np.isfinite(v)]
    return _is_log(v) and bool(np.median(v) < 0.5 * np.mean(v))


def rungs(res, ax=None, mode: str = "min"):
    """Successive halving's decisions: each trial's mean metric over seeds at every rung it
    reached, one line per trial; a pruned trial's line ends where it stopped."""
    ax = _axes(ax)
    steps, record = res.rungs["steps"], res.rungs["metric"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        mean = np.nanmean(record, axis=-1)  # [trial, rung]
    final = np.isfinite(mean[:, -1])
    for i in np.argsort(final, kind="stable"):  # the finishers drawn last, on top
        ok = np.isfinite(mean[i])
        style = (
            dict(color="C3", lw=1.4, alpha=0.9)
            if final[i]
            else dict(color="grey", lw=0.6, alpha=0.35)
        )
        ax.plot(steps[ok], mean[i, ok], marker="o", ms=2, **style)
    ax.set_xscale("log")
    if _log_values(mean[np.isfinite(mean)], mode):
        ax.set_yscale("log")
    metric = (res.metadata.get("settings") or {}).get("metric", "metric")
    ax.set_xlabel("steps trained")
    ax.set_ylabel(f"mean {metric.replace('_', ' ')}")
    ax.set_title(f"successive halving: {int(final.sum())} of {len(mean)} trials finished")
    return ax
