"""The plot of a population-based search (:func:`jaxmom.pbt_sweep`): the hyperparameter
schedules along the best member's line of descent, and the population's metric over time."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from jaxmom.common import atomic_path


def schedules(res, path: Path, names: list[str] | None = None) -> Path:
    """One panel per hyperparameter (the first three, or ``names``): every member's value over
    the steps in grey, the best member's line in colour; and a panel of the metric, each
    member's mean over seeds, the best line's in colour. Written atomically, without pyplot."""
    from matplotlib.figure import Figure

    h = res.history
    steps = np.concatenate([[0], h["steps"]])
    line, at = h["line"], np.arange(len(h["line"]))
    names = names or list(h["hparams"])[:3]
    fig = Figure(figsize=(5 * (len(names) + 1), 4.2))
    axes = fig.subplots(1, len(names) + 1, squeeze=False)[0]
    for ax, name in zip(axes, names, strict=False):
        values = h["hparams"][name]
        for row in values:
            ax.stairs(row, steps, baseline=None, color="0.8", lw=0.8)
        ax.stairs(values[line, at], steps, baseline=None, color="C0", lw=2.2, label="best line")
        positive = bool((values > 0).all())
        if positive and values.max() / values.min() > 30:
            ax.set_yscale("log")
        ax.set_xlabel("step")
        ax.set_title({"beta": "β", "learning_rate": "learning rate"}.get(name, name))
        ax.legend(fontsize=8)
    ax = axes[-1]
    metric = res.metadata["settings"]["metric"]
    mean = h["metric"].mean(-1)
    for row in mean:
        ax.plot(h["steps"], row, color="0.8", lw=0.8)
    ax.plot(h["steps"], mean[line, at], "o-", color="C1", lw=2, label="best line")
    ax.set_xlabel("step")
    ax.set_title(f"{metric} (mean over seeds) at each decision")
    ax.legend(fontsize=8)
    fig.suptitle(
        f"population-based training: {mean.shape[0]} members, a decision every "
        f"{int(h['steps'][0])} steps",
        fontsize=10,
    )
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    return path
