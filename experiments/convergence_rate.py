"""Section 5.2.2: momentum converges linearly at the rate rho(A), measured on real runs.

Claim: on f(x) = h/2 x^2 heavy ball is the linear map A = [[1 - alpha h + beta, -beta], [1, 0]]
on (x_t, x_t-1), so |x_t| = O(rho(A)^t): the algorithm converges linearly at the rate of the
largest eigenvalue modulus of A.

Over a grid of alpha*h (h = 1 and h = 4) and beta, ``jaxmom.sgd_momentum(alpha, beta)`` runs
600 steps in float64 (all runs of a curvature in one vmapped program); the measured rate is
the slope of a least-squares line through log ||(x_t, x_t-1)|| past the first 50 steps (and
before underflow), compared with ``jaxmom.theory.spectral_radius``. Grid points with
rho in [0.2, 0.98] are kept (a faster rate underflows too soon to fit, a slower one has not
settled). The claim passes when every point is within 2%.

Command:  python -m experiments.convergence_rate [--out results] [--quick]
Writes:   convergence_rate.png (measured against predicted; relative error over the grid),
          convergence_rate.csv (the table), convergence_rate.json
Runtime:  about 3 s on a 2-core CPU.
"""

from __future__ import annotations

from pathlib import Path

import jax
import matplotlib.pyplot as plt
import numpy as np

from experiments.common import claim, heavy_ball_paths, main, save_figure, write_result
from jaxmom import theory

NAME = "convergence_rate"
STEPS, BURN = 600, 50
CURVATURES = (1.0, 4.0)


def _fit_rates(xs: np.ndarray) -> np.ndarray:
    """Least-squares slope of log ||(x_t, x_t-1)|| over [BURN, underflow) for each row."""
    z = np.sqrt(xs[:, 1:] ** 2 + xs[:, :-1] ** 2)
    t = np.arange(z.shape[1], dtype=np.float64)
    ok = (t >= BURN) & (z > 1e-250)
    logz = np.log(np.where(ok, z, 1.0))
    n = ok.sum(1)
    tm = (ok * t).sum(1) / n
    lm = (ok * logz).sum(1) / n
    slope = (ok * (t - tm[:, None]) * (logz - lm[:, None])).sum(1) / (
        ok * (t - tm[:, None]) ** 2
    ).sum(1)
    return np.exp(slope)


def run(out: Path, quick: bool = False) -> dict:
    n = 8 if quick else 24
    ah, bb = np.meshgrid(np.linspace(0.02, 3.9, n), np.linspace(0.0, 0.97, n))
    rows = []
    with jax.enable_x64(True):
        for h in CURVATURES:
            alpha, beta = (ah / h).ravel(), bb.ravel()
            rho = np.asarray(theory.spectral_radius(alpha, beta, h))
            keep = (rho >= 0.2) & (rho <= 0.98)
            measured = _fit_rates(heavy_ball_paths(alpha[keep], beta[keep], h, STEPS))
            rows += [
                (float(a), float(b), h, float(r), float(m))
                for a, b, r, m in zip(alpha[keep], beta[keep], rho[keep], measured, strict=True)
            ]
    table = np.array(rows)  # alpha, beta, h, rho, measured
    rel = table[:, 4] / table[:, 3] - 1
    worst = float(np.abs(rel).max())
    header = "alpha,beta,h,rho_theory,rate_measured,rel_error"
    out.mkdir(parents=True, exist_ok=True)
    np.savetxt(
        out / f"{NAME}.csv",
        np.column_stack([table, rel]),
        delimiter=",",
        header=header,
        comments="",
        fmt="%.6g",
    )

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    ax = axes[0]
    # the curvatures share their (alpha h, beta) grid, so their points coincide: hollow markers
    # of decreasing size, the largest first, keep every curvature visible
    for h, ms in zip(CURVATURES, np.linspace(9, 3, len(CURVATURES)), strict=True):
        sel = table[:, 2] == h
        ax.plot(table[sel, 3], table[sel, 4], "o", ms=ms, mfc="none", mew=0.9, label=f"h = {h:g}")
    ax.plot([0.2, 1], [0.2, 1], "k--", lw=0.8, label="measured = ρ(A)")
    ax.set(
        xlabel="ρ(A) (theory)",
        ylabel="measured linear rate",
        title=f"{len(table)} real runs of jaxmom.momentum",
    )
    ax.legend()
    ax = axes[1]
    sc = ax.scatter(
        table[:, 0] * table[:, 2], table[:, 1], c=100 * np.abs(rel), s=14, cmap="viridis"
    )
    fig.colorbar(sc, ax=ax, label="|relative error| (%)")
    ax.set(xlabel="α h", ylabel="β", title=f"largest error {100 * worst:.2f}%")
    figures = [save_figure(fig, out, "convergence_rate.png")]

    claims = [
        claim(
            "5.2.2",
            "momentum converges linearly at the rate ρ(A)",
            f"{len(table)} runs over (αh, β, h): measured rate within {100 * worst:.2f}% of ρ(A) "
            f"(median {100 * float(np.median(np.abs(rel))):.1e}%)",
            worst < 0.02,
        ),
    ]
    numbers = {
        "runs": len(table),
        "max_rel_error": worst,
        "median_rel_error": float(np.median(np.abs(rel))),
        "table": f"{NAME}.csv",
    }
    return write_result(out, NAME, {"figures": figures, "claims": claims, "numbers": numbers})


if __name__ == "__main__":
    main(run, __doc__)
