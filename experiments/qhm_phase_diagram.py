"""QHM's phase diagram in (β, ν) beside heavy ball's in (α, β), on the chapter's quadratic.

The chapter's x^2 + 10 y^2 (curvatures mu = 2, L = 20, section 5.4). Heavy ball's map is its
worst rate over [mu, L], ``max_h jaxmom.theory.spectral_radius(alpha, beta, h)``, over (α, β);
QHM's is, for each (β, ν), the worst rate over [mu, L] at the best learning rate (a grid of 160
rates), from ``theory.qhm_spectral_radius``. Checked: QHM's convergence region
(``theory.qhm_converges``) against real runs of ``jaxmom.sgd_qhm``; the best cell of QHM's map
and ``theory.optimal_qhm`` against heavy ball's closed-form optimum (Gitman et al. 2019 write
both as one 2x2 iteration); and where the authors' default (β 0.999, ν 0.7) lies on the map.

Command:  python -m experiments.qhm_phase_diagram [--out results] [--quick]
Writes:   qhm_phase_diagram.png, qhm_phase_diagram.json
Runtime:  about 10 s on a 2-core CPU.
"""

from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np

import jaxmom
from experiments.common import claim, main, save_figure, write_result
from jaxmom import theory

NAME = "qhm_phase_diagram"
MU, L = 2.0, 20.0


def _worst(rate, hs):
    """max over the curvatures (the last axis) of ``rate(h)``."""
    return np.asarray(rate(hs)).max(-1)


def _maps(n: int):
    """Heavy ball's worst rate over (alpha, beta) and QHM's best-alpha worst rate over
    (beta, nu)."""
    hs = np.geomspace(MU, L, 33)
    alphas = np.geomspace(0.2 / L, 4.0 / MU, 160)
    betas = np.linspace(0.0, 0.999, n)
    nus = np.linspace(0.0, 1.0, n)
    with jax.enable_x64(True):
        a, b = np.meshgrid(alphas, betas, indexing="ij")
        hb = _worst(lambda h: theory.spectral_radius(a[..., None], b[..., None], h), hs[None, None])
        b3, n3, a3 = np.meshgrid(betas, nus, alphas, indexing="ij")
        qhm_all = _worst(
            lambda h: theory.qhm_spectral_radius(a3[..., None], b3[..., None], n3[..., None], h),
            hs[None, None, None],
        )
    return alphas, betas, nus, hb, qhm_all.min(-1)


def _boundary_check(m: int):
    """Real runs of sgd_qhm on h/2 x^2 (h = 1, 600 steps) against ``theory.qhm_converges``."""
    grid = np.meshgrid(np.linspace(0.05, 12, m), np.linspace(0, 0.95, 4), np.linspace(0, 1, 5))
    a, b, n = (g.ravel() for g in grid)
    predicted = np.asarray(theory.qhm_converges(a, b, n, 1.0))
    with jax.enable_x64(True):
        run = jax.vmap(
            lambda a, b, n: theory.quadratic_trajectory(
                jnp.ones(1), 1.0, jaxmom.sgd_qhm(a, b, n), 600
            )[-50:, 0]
        )
        tail = np.asarray(jax.jit(run)(a, b, n))
    conv = np.nan_to_num(np.abs(tail), nan=np.inf).max(1) < 1e-3
    rho = np.asarray(theory.qhm_spectral_radius(a, b, n, 1.0))
    clear = (np.abs(rho - 1) > 0.02) & (rho < 0.97) | ~predicted  # settles in 600 steps
    return int(np.sum((conv == predicted) & clear)), int(clear.sum())


def run(out: Path, quick: bool = False) -> dict:
    n = 21 if quick else 81
    alphas, betas, nus, hb, qhm = _maps(n)
    a_hb, b_hb, rate_hb = (float(v) for v in theory.optimal_momentum(MU, L))
    a_q, b_q, n_q, rate_q = theory.optimal_qhm(MU, L)
    i, j = np.unravel_index(np.argmin(qhm), qhm.shape)
    agree, checked = _boundary_check(12 if quick else 40)
    with jax.enable_x64(True):
        hs = np.geomspace(MU, L, 129)
        alphas_default = np.geomspace(0.01, 100, 2000)[:, None]
        rho = theory.qhm_spectral_radius(alphas_default, 0.999, 0.7, hs[None])
        default = float(np.asarray(rho).max(1).min())

    fig, axes = plt.subplots(1, 2, figsize=(13, 4.8), layout="constrained")
    im = axes[0].pcolormesh(alphas, betas, np.minimum(hb, 1.0).T, cmap="magma_r", vmin=0.5, vmax=1)
    axes[0].plot(a_hb, b_hb, "g*", ms=14, label=f"optimum ρ = {rate_hb:.3f}")
    axes[0].set(xscale="log", xlabel="α", ylabel="β", title="heavy ball: worst ρ over [2, 20]")
    axes[0].legend(fontsize=8)
    axes[1].pcolormesh(nus, betas, np.minimum(qhm, 1.0), cmap="magma_r", vmin=0.5, vmax=1)
    axes[1].plot(n_q, b_q, "g*", ms=14, label=f"optimum ρ = {rate_q:.3f} (ν = {n_q:.3f})")
    axes[1].plot(0.7, 0.999, "co", ms=8, label=f"the authors' default: ρ = {default:.4f}")
    axes[1].plot(betas, betas, "w--", lw=1, label="ν = β: Nesterov")
    axes[1].set(xlabel="ν", ylabel="β", title="QHM: worst ρ over [2, 20] at the best α")
    axes[1].legend(fontsize=8, loc="lower left")
    fig.colorbar(im, ax=axes, label="ρ (clipped at 1)")
    figures = [save_figure(fig, out, f"{NAME}.png")]

    claims = [
        claim(
            "5.2.2 (QHM)",
            "QHM converges exactly where its 2x2 iteration says (Jury conditions)",
            f"real runs of sgd_qhm agree with theory.qhm_converges at {agree} of {checked} "
            "(α, β, ν) points",
            agree == checked,
        ),
        claim(
            "5.2.2 (QHM)",
            "on a quadratic QHM reaches no better rate than heavy ball: its optimum is heavy "
            "ball's, at ν = 1 (normalized heavy ball)",
            f"[{MU:g}, {L:g}]: optimal_qhm ρ = {rate_q:.5f} at ν = {n_q:.4f}, β = {b_q:.4f}, "
            f"α(1 − β) = {a_q * (1 - b_q):.5f}; heavy ball ρ = {rate_hb:.5f} at β* = "
            f"{b_hb:.4f}, α* = {a_hb:.5f}; the map's best cell ρ = {qhm[i, j]:.4f} at β = "
            f"{betas[i]:.3f}, ν = {nus[j]:.2f}",
            abs(rate_q - rate_hb) < 1e-4 and abs(n_q - 1) < 1e-3,
        ),
        claim(
            "5.2.2 (QHM)",
            "the authors' default (β 0.999, ν 0.7) is a deep-learning default, not a quadratic "
            "optimum: at its best α it is slower than gradient descent on [2, 20]",
            f"ρ = {default:.4f} against heavy ball's {rate_hb:.4f} and gradient descent's "
            f"{float(theory.optimal_gd(MU, L)[1]):.4f}",
            default > float(theory.optimal_gd(MU, L)[1]),
        ),
    ]
    numbers = {
        "optimal_qhm": {"alpha": a_q, "beta": b_q, "nu": n_q, "rate": rate_q},
        "optimal_momentum": {"alpha": a_hb, "beta": b_hb, "rate": rate_hb},
        "map_best": {"beta": float(betas[i]), "nu": float(nus[j]), "rate": float(qhm[i, j])},
        "default_rate": default,
        "boundary": {"agree": agree, "checked": checked},
    }
    return write_result(out, NAME, {"figures": figures, "claims": claims, "numbers": numbers})


if __name__ == "__main__":
    main(run, __doc__)
