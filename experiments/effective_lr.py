"""The chapter's 1/(1 - beta) as a law of training: momentum trains like SGD at lr/(1 - beta).

Claim (section 5.3): under a constant gradient the step grows to lr g / (1 - beta), so where
many more steps are taken than 1/(1 - beta) and the runs are away from divergence, momentum
with (beta, lr) should train like plain SGD at the effective rate lr/(1 - beta). Checked on the
chapter's MLP (48 betas x 16 log-spaced learning rates x 2 seeds, 384 steps): over the region
where the law should hold (1/(1 - beta) <= steps/20, an effective rate inside the grid and at
most half the smallest one that failed), each run's log10 final loss is compared with plain
SGD's (the beta = 0 column) at its effective rate, i.e. along its line of constant
lr/(1 - beta), and at its own lr, along the line of constant lr. The RMS change along the law's
lines must be under a third of the change along constant lr. Where it breaks is reported (beta
near 1: few steps per 1/(1 - beta)) and drawn (the divergence edge). The digits experiment
checks the same law.

Command:  python -m experiments.effective_lr [--out results]
Writes:   effective_lr.png (final loss over (beta, lr), lines of constant lr/(1 - beta)),
          effective_lr.json
Runtime:  about 5 s on a 2-core CPU (1,536 runs of 384 steps).
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

import jaxmom
from experiments.common import claim, main, save_figure, write_result

NAME = "effective_lr"


def _mean_log(res: jaxmom.SweepResult, metric: str):
    """``(bad, m)`` over (beta, lr): a run diverged or is non-finite; log10 of the mean over
    seeds (NaN where bad)."""
    values = np.asarray(res[metric], np.float64)
    bad = res.diverged.any(-1) | ~np.isfinite(values).all(-1)
    return bad, np.where(bad, np.nan, np.log10(values.mean(-1)))


def law(res: jaxmom.SweepResult, steps: int, metric: str = "final_loss") -> dict:
    """How well plain SGD at lr/(1 - beta) predicts momentum's log10(metric).

    Each grid point (beta, lr) is compared with the beta = 0 column (plain SGD, interpolated in
    log lr) at its effective rate lr/(1 - beta), the start of its line of constant
    lr/(1 - beta): ``along`` is the RMS difference of log10(metric) along those lines. ``across``
    is the RMS difference from SGD at the same lr (the line of constant lr, which crosses them).
    The region where the law should hold: ``1/(1 - beta) <= steps/20`` (many more steps than
    1/(1 - beta)); an effective rate inside the lr grid; and away from divergence, at most half
    the smallest effective rate (above the best run's) where a run diverged or ended 10x above
    the sweep's best loss.
    """
    betas, lrs = res.axes["beta"], res.axes["learning_rate"]
    if betas[0] != 0:
        raise ValueError("the law is checked against plain SGD: the betas must start at 0")
    bad, m = _mean_log(res, metric)  # [beta, lr]
    B, L = np.meshgrid(betas, lrs, indexing="ij")
    eff = np.log10(L / (1 - B))
    best = np.unravel_index(np.nanargmin(m), m.shape)
    failed = (bad | (m > np.nanmin(m) + 1)) & (eff > eff[best])
    edge = eff[failed].min() if failed.any() else np.inf
    log_lrs = np.log10(lrs)
    region = ~bad & (1 / (1 - B) <= steps / 20) & (eff <= min(edge - np.log10(2), log_lrs[-1]))
    region &= ~np.isnan(m[0]).any()  # SGD itself must be defined along the whole column
    sgd_at_eff = np.interp(eff, log_lrs, m[0])
    along = np.sqrt(np.mean((m - sgd_at_eff)[region] ** 2))
    near_one = ~bad & (1 / (1 - B) > steps / 20) & (eff <= log_lrs[-1])  # where it breaks
    along_near_one = np.sqrt(np.mean((m - sgd_at_eff)[near_one] ** 2)) if near_one.any() else 0
    across = np.sqrt(np.mean((m - m[0][None, :])[region] ** 2))
    return {
        "along": float(along),
        "across": float(across),
        "ratio": float(along / across),
        "along_beta_near_1": float(along_near_one),
        "points": int(region.sum()),
        "edge_log10_effective_lr": float(edge),
        "region_max_beta": float(1 - 20 / steps),
    }


def plot_law(ax, res: jaxmom.SweepResult, steps: int, title: str, metric: str = "final_loss"):
    """log10(metric) over (beta, lr) as cells, with lines of constant lr/(1 - beta)."""
    betas, lrs = res.axes["beta"], res.axes["learning_rate"]
    _, m = _mean_log(res, metric)
    cmap = plt.get_cmap("viridis").with_extremes(bad="0.6")
    im = ax.pcolormesh(
        cell_edges(betas), cell_edges(lrs, log=True), np.ma.masked_invalid(m).T, cmap=cmap
    )
    grey = " (grey: diverged)" if np.isnan(m).any() else ""
    ax.figure.colorbar(im, ax=ax, label=f"log10 {metric.replace('_', ' ')}{grey}")
    lo, hi = cell_edges(lrs, log=True)[[0, -1]]
    grid = np.linspace(betas.min(), betas.max(), 200)
    for c in np.geomspace(lrs.min(), lrs.max() / (1 - betas.max()), 7)[1:]:
        ax.plot(grid, c * (1 - grid), "w--", lw=0.9)
        # the label inside the axes: at the left edge, or where the line comes below the top
        at = betas.min() if c * (1 - betas.min()) < hi / 2 else 1 - hi / 2 / c
        if at < betas.max() - 0.12 * (betas.max() - betas.min()):  # room for the text
            ax.annotate(
                f"{c:.2g}",
                (at, c * (1 - at)),
                color="w",
                fontsize=7,
                xytext=(3, 3),
                textcoords="offset points",
                annotation_clip=True,
            )
    ax.axvline(1 - 20 / steps, color="r", lw=1, label=f"1/(1 − β) = steps/20 ({steps} steps)")
    ax.set(yscale="log", xlabel="β", ylabel="learning rate", title=title)
    ax.set_ylim(lo, hi)  # whole cells: half a (log) step beyond the first and last rate
    ax.plot([], [], "w--", label="lr/(1 − β) constant (value at the line)")
    ax.legend(loc="lower left", fontsize=7, facecolor="0.3", labelcolor="w", framealpha=0.8)


def cell_edges(values: np.ndarray, log: bool = False) -> np.ndarray:
    """Edges of cells centred on ``values`` (in log space for a log axis): half-way between
    neighbours, half a step beyond the first and the last."""
    v = np.log10(np.asarray(values, float)) if log else np.asarray(values, float)
    mid = (v[1:] + v[:-1]) / 2
    edges = np.concatenate([[2 * v[0] - mid[0]], mid, [2 * v[-1] - mid[-1]]])
    return 10**edges if log else edges


def law_claim(name: str, stats: dict) -> dict:
    return claim(
        "5.3",
        f"{name}: momentum trains like SGD at lr/(1 − β) where the law should hold: along lines "
        "of constant lr/(1 − β) log10 loss moves < 1/3 as much as along lines of constant lr",
        f"RMS change of log10 final loss from SGD (β = 0): {stats['along']:.3f} along lr/(1 − β), "
        f"{stats['across']:.3f} along lr (ratio {stats['ratio']:.2f}, {stats['points']} points); "
        f"it breaks for β → 1: {stats['along_beta_near_1']:.3f} along lr/(1 − β) there",
        stats["ratio"] < 1 / 3,
    )


def run(out: Path, quick: bool = False) -> dict:
    n_beta, n_lr, seeds, epochs = (8, 6, 1, 2) if quick else (48, 16, 2, 12)
    betas = np.linspace(0.0, 0.99, n_beta)
    lrs = np.geomspace(1e-3, 1.0, n_lr)
    res = jaxmom.sweep(betas, lrs, range(seeds), epochs=epochs, progress=False, record_every=0)
    steps = res.metadata["settings"]["steps"]
    stats = law(res, steps)
    print(
        f"chapter MLP: RMS change of log10 loss along lr/(1-beta) {stats['along']:.3f}, along lr "
        f"{stats['across']:.3f} ({stats['points']} points); {int(res.diverged.sum())} diverged"
    )
    fig, ax = plt.subplots(figsize=(7, 4.5))
    plot_law(ax, res, steps, f"The chapter's MLP: final loss, {res.diverged.size} runs")
    figures = [save_figure(fig, out, f"{NAME}.png")]
    claims = [law_claim("chapter's MLP", stats)]
    numbers = {
        **stats,
        "runs": res.diverged.size,
        "diverged": int(res.diverged.sum()),
        "wall_seconds": res.metadata["wall_seconds"],
    }
    return write_result(out, NAME, {"figures": figures, "claims": claims, "numbers": numbers})


if __name__ == "__main__":
    main(run, __doc__)
