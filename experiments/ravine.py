"""Section 5.1 (figure 01): a narrow valley, and gradient descent zigzagging across it.

Claim: on a loss shaped like a flat funnel the gradient is steep across the valley and
shallow along it. The learning rate must stay small enough for the steep direction (above
2/L gradient descent diverges), and below that cap it bounces from wall to wall while the
shallow direction crawls, so convergence is slow.

The valley is f(x, y) = 1/2 (mu x^2 + L y^2) with mu = 1, L = 25 (condition number 25),
started from (-9, 1.5). Gradient descent runs 30 steps at alpha = 0.95 * 2/L (just under
the cap: it zigzags), at alpha = 1.05 * 2/L (just over it: it diverges) and at alpha = 1/L
(no zigzag, but slower still along the valley).

Command:  python -m experiments.ravine [--out results]
Writes:   01_ravine.png (contours and the three paths), ravine.json
Runtime:  about 2 s on a 2-core CPU.
"""

from __future__ import annotations

from pathlib import Path

import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np

import jaxmom
from experiments.common import claim, main, save_figure, write_result
from jaxmom import theory

NAME = "ravine"
MU, L = 1.0, 25.0
START = (-9.0, 1.5)
STEPS = 30


def draw_valley(ax, ymax: float) -> None:
    """The contours of the valley 1/2 (mu x^2 + L y^2) over x in [-10, 2], |y| <= ymax."""
    gx, gy = np.meshgrid(np.linspace(-10, 2, 300), np.linspace(-ymax, ymax, 200))
    levels = np.geomspace(0.05, 80, 14)
    ax.contour(gx, gy, 0.5 * (MU * gx**2 + L * gy**2), levels=levels, cmap="Greys", linewidths=0.6)


def run(out: Path, quick: bool = False) -> dict:
    del quick  # already tiny
    h = jnp.array([MU, L])
    cap = 2 / L
    alphas = {"zigzag": 0.95 * cap, "diverges": 1.05 * cap, "small": 1 / L}
    paths = {
        k: np.asarray(
            theory.quadratic_trajectory(h, jnp.array(START), jaxmom.sgd_momentum(a, 0.0), STEPS)
        )
        for k, a in alphas.items()
    }
    zig = paths["zigzag"]
    flips = int(np.sum(np.sign(zig[1:, 1]) != np.sign(zig[:-1, 1])))
    growth = float(abs(paths["diverges"][-1, 1]) / abs(START[1]))
    shrink = float(abs(zig[-1, 1]) / abs(START[1]))
    x_left = {k: float(p[-1, 0] / START[0]) for k, p in paths.items() if k != "diverges"}
    x_theory = {k: float((1 - alphas[k] * MU) ** STEPS) for k in x_left}

    fig, ax = plt.subplots(figsize=(8, 4))
    draw_valley(ax, ymax=2.2)
    styles = {"zigzag": "tab:red", "small": "tab:green", "diverges": "tab:purple"}
    for k, p in paths.items():
        shown = p[: 8 if k == "diverges" else None]
        ax.plot(
            shown[:, 0],
            shown[:, 1],
            "o-",
            ms=2.5,
            lw=0.9,
            color=styles[k],
            label=f"GD, α = {alphas[k]:.4f} ({k})",
        )
    ax.plot(0, 0, "k*", ms=10)
    ax.set(
        xlabel="x (shallow, μ = 1)",
        ylabel="y (steep, L = 25)",
        ylim=(-2.2, 2.2),
        title=f"a narrow valley: {STEPS} steps of gradient descent",
    )
    ax.legend(loc="lower right", fontsize=8)
    figures = [save_figure(fig, out, "01_ravine.png")]

    claims = [
        claim(
            "5.1",
            "a step above 2/L (set by the steep direction) diverges",
            f"α = 1.05·2/L: |y| grew {growth:.1f}x in {STEPS} steps",
            growth > 1,
        ),
        claim(
            "5.1",
            "just under that cap, gradient descent zigzags across the valley",
            f"α = 0.95·2/L: y changed sign in {flips} of {STEPS} steps, |y| shrank to {shrink:.2f}",
            flips == STEPS and shrink < 1,
        ),
        claim(
            "5.1",
            "and moves slowly along the shallow direction",
            f"x kept {x_left['zigzag']:.1%} of its distance after {STEPS} steps "
            f"(theory (1 − αμ)^{STEPS} = {x_theory['zigzag']:.1%}); at α = 1/L "
            f"{x_left['small']:.1%}",
            x_left["zigzag"] > 0.05
            and all(abs(x_left[k] / x_theory[k] - 1) < 1e-3 for k in x_left),
        ),
    ]
    numbers = {
        "alphas": alphas,
        "sign_changes_y": flips,
        "y_growth_diverging": growth,
        "x_fraction_left": x_left,
        "x_fraction_theory": x_theory,
    }
    return write_result(out, NAME, {"figures": figures, "claims": claims, "numbers": numbers})


if __name__ == "__main__":
    main(run, __doc__)
