"""Section 5.2.2: the phase diagram of heavy ball, rho(A) over (alpha*h, beta).

Claim: the rate rho(A) maps out where and how fast momentum converges. It converges
exactly where 0 <= beta < 1 and alpha*h < 2(1 + beta); above the critical-damping curve
beta = (1 - sqrt(alpha*h))^2 the roots are complex (the iterates oscillate) and the rate
is sqrt(beta); for curvatures in [mu, L] the optimal (alpha*, beta*) puts alpha* mu and
alpha* L on that curve, so every curvature converges at the same rate sqrt(beta*).

The heatmap is ``jaxmom.theory.spectral_radius`` on a 400 x 400 grid. Real runs of
``jaxmom.sgd_momentum`` (a 40 x 40 grid, 300 steps from x = 1, float64) check the boundary:
a run counts as converged when |x| has fallen below 1e-3 of its start. Points within 3% of
the boundary (where 300 steps cannot tell) are left out of the count.

Command:  python -m experiments.phase_diagram [--out results] [--quick]
Writes:   phase_diagram.png, phase_diagram.json
Runtime:  about 3 s on a 2-core CPU.
"""

from __future__ import annotations

from pathlib import Path

import jax
import matplotlib.pyplot as plt
import numpy as np

from experiments.common import claim, heavy_ball_paths, main, save_figure, write_result
from jaxmom import theory

NAME = "phase_diagram"
MU, L = 2.0, 20.0  # the curvatures of section 5.4's x^2 + 10 y^2
STEPS = 300


def _converged(ah, beta) -> np.ndarray:
    tail = heavy_ball_paths(ah, beta, 1.0, STEPS)[:, -10:]
    return np.nan_to_num(np.abs(tail), nan=np.inf).max(1) < 1e-3


def run(out: Path, quick: bool = False) -> dict:
    n = 100 if quick else 400
    ah = np.linspace(4.2 / n, 4.2, n)  # alpha > 0
    bb = np.linspace(0.0, 1.0, n)
    AH, BB = np.meshgrid(ah, bb)
    rho = np.asarray(theory.spectral_radius(AH, BB, 1.0))

    # the theory's boundary against real runs
    m = 12 if quick else 40
    RA, RB = (g.ravel() for g in np.meshgrid(np.linspace(0.05, 4.1, m), np.linspace(0.0, 0.99, m)))
    with jax.enable_x64(True):
        conv = _converged(RA, RB)
    predicted = np.asarray(theory.converges(RA, RB, 1.0))
    clear = np.abs(RA / (2 * (1 + RB)) - 1) > 0.03
    clear &= np.asarray(theory.spectral_radius(RA, RB, 1.0)) < 0.97  # settles within 300 steps
    clear |= ~predicted
    agree = int(np.sum((conv == predicted) & clear))
    checked = int(np.sum(clear))

    # complex roots: rate sqrt(beta)
    cplx = BB > np.asarray(theory.critical_beta(AH, 1.0)) + 1e-6
    cplx_err = float(np.max(np.abs(rho[cplx] - np.sqrt(BB[cplx]))))
    # the optimum for [MU, L]: both ends on the critical curve, the same rate along the segment
    with jax.enable_x64(True):  # near the critical curve float32 loses half its digits
        a, b, rate = (float(v) for v in theory.optimal_momentum(MU, L))
        on_curve = max(abs(float(theory.critical_beta(a, h)) - b) for h in (MU, L))
        seg = np.asarray(theory.spectral_radius(a, b, np.linspace(MU, L, 101)))
    seg_err = float(np.max(np.abs(seg - rate)))

    fig, ax = plt.subplots(figsize=(8, 5))
    im = ax.pcolormesh(
        AH, BB, np.minimum(rho, 1.2), cmap="magma_r", shading="auto", vmin=0, vmax=1.2
    )
    fig.colorbar(im, ax=ax, label="ρ(A) (clipped at 1.2)")
    ax.plot(2 * (1 + bb), bb, "w-", lw=2, label="boundary αh = 2(1 + β)")
    crit = np.asarray(theory.critical_beta(ah, 1.0))
    ax.plot(ah, crit, "c--", lw=1.5, label="critical damping β = (1 − √(αh))²")
    ax.contour(AH, BB, rho, levels=[0.5, 0.8, 0.9, 0.95], colors="0.6", linewidths=0.6)
    ax.plot(
        [a * MU, a * L], [b, b], "g-", lw=3, label=f"optimum for [{MU:g}, {L:g}]: ρ = {rate:.3f}"
    )
    ax.plot(1.0, 0.0, "g*", ms=14, label="ρ = 0 at αh = 1, β = 0")
    ax.scatter(
        RA[clear & ~conv],
        RB[clear & ~conv],
        s=4,
        c="w",
        marker="x",
        label="real run did not converge",
    )
    ax.text(0.3, 0.85, "complex roots:\nρ = √β", color="w", fontsize=9)
    ax.set(
        xlabel="α h",
        ylabel="β",
        xlim=(0, 4.2),
        ylim=(0, 1),
        title="heavy ball on h/2·x²: the rate ρ(A)",
    )
    # a grey legend: its white and cyan entries are drawn as on the map, not white on white
    ax.legend(
        loc="upper center",
        bbox_to_anchor=(0.5, -0.13),
        ncol=2,
        fontsize=8,
        facecolor="0.45",
        labelcolor="w",
        framealpha=1,
    )
    figures = [save_figure(fig, out, "phase_diagram.png")]

    claims = [
        claim(
            "5.2.2",
            "momentum converges exactly where 0 ≤ β < 1 and αh < 2(1 + β)",
            f"real runs agree with the theory at {agree} of {checked} grid points",
            agree == checked,
        ),
        claim(
            "5.2.2",
            "above the critical-damping curve the rate is √β",
            f"largest |ρ(A) − √β| over {int(cplx.sum())} grid points: {cplx_err:.1e}",
            cplx_err < 1e-5,
        ),
        claim(
            "5.2.2",
            "the optimal (α*, β*) for [μ, L] gives every curvature the rate √β*",
            f"[{MU:g}, {L:g}]: ends {on_curve:.1e} from the critical curve; ρ along the "
            f"segment within {seg_err:.1e} of {rate:.4f}",
            on_curve < 1e-9 and seg_err < 1e-6,
        ),
    ]
    numbers = {
        "agree": agree,
        "checked": checked,
        "complex_region_max_err": cplx_err,
        "optimum": {"alpha": a, "beta": b, "rate": rate},
        "segment_max_err": seg_err,
    }
    return write_result(out, NAME, {"figures": figures, "claims": claims, "numbers": numbers})


if __name__ == "__main__":
    main(run, __doc__)
