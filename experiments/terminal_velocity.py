"""Section 5.3: under a constant gradient the step approaches alpha*g / (1 - beta).

Claim: if every gradient is the same g, the chapter's velocity v_t = beta v_{t-1} + alpha g
sums a geometric series, v_t = (1 + beta + ... + beta^(t-1)) alpha g, up to alpha g / (1 - beta).
With beta = 0.9 the largest step is 10 times the plain step alpha g.

The chapter's own form (``jaxmom.heavy_ball``) runs on f(x) = g x (``h = 0``, ``linear = g``)
for 300 steps, alpha = 0.01, g = 3, for beta in 0, 0.5, 0.8, 0.9 and 0.95; the measured step
|x_t+1 - x_t| / (alpha g) is compared with the partial sums and with 1 / (1 - beta).

Command:  python -m experiments.terminal_velocity [--out results]
Writes:   terminal_velocity.png (step over alpha g against t, the limits dashed),
          terminal_velocity.json
Runtime:  about 2 s on a 2-core CPU.
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

NAME = "terminal_velocity"
ALPHA, G, STEPS = 0.01, 3.0, 300
BETAS = (0.0, 0.5, 0.8, 0.9, 0.95)


def run(out: Path, quick: bool = False) -> dict:
    del quick  # already tiny
    with jax.enable_x64(True):  # the step is a difference of growing positions
        paths = {
            b: np.asarray(
                theory.quadratic_trajectory(
                    jnp.zeros(1), 0.0, jaxmom.heavy_ball(ALPHA, b), STEPS, linear=G
                )
            )[:, 0]
            for b in BETAS
        }
    ratio = {b: -np.diff(p) / (ALPHA * G) for b, p in paths.items()}
    partial = {b: (1 - b ** np.arange(1, STEPS + 1)) / (1 - b) for b in BETAS}
    err_partial = max(float(np.max(np.abs(ratio[b] / partial[b] - 1))) for b in BETAS)
    limit = {b: float(theory.terminal_velocity_factor(b)) for b in BETAS}
    final = {b: float(ratio[b][-1]) for b in BETAS}

    fig, ax = plt.subplots(figsize=(7, 4))
    for b in BETAS:
        (line,) = ax.plot(np.arange(1, STEPS + 1), ratio[b], lw=1.2, label=f"β = {b:g}")
        ax.axhline(limit[b], ls="--", lw=0.8, color=line.get_color())
    ax.set(
        xscale="log",
        xlabel="step t",
        ylabel="step / (α g)",
        title="a constant gradient: the step tends to 1 / (1 − β) times α g",
    )
    ax.legend()
    figures = [save_figure(fig, out, "terminal_velocity.png")]

    claims = [
        claim(
            "5.3",
            "v_t is the partial sum (1 + β + … + β^(t−1)) α g",
            f"largest relative gap over {len(BETAS)} betas × {STEPS} steps: {err_partial:.1e}",
            err_partial < 1e-6,
        ),
        claim(
            "5.3",
            "at β = 0.9 the step reaches 10 times the plain step α g",
            f"measured step after {STEPS} steps: {final[0.9]:.4f} × α g (1/(1 − β) = "
            f"{limit[0.9]:.4f})",
            abs(final[0.9] / 10 - 1) < 1e-4,
        ),
    ]
    numbers = {
        "final_step_over_alpha_g": final,
        "limit_1_over_1_minus_beta": limit,
        "max_rel_gap_to_partial_sum": err_partial,
    }
    return write_result(out, NAME, {"figures": figures, "claims": claims, "numbers": numbers})


if __name__ == "__main__":
    main(run, __doc__)
