"""Section 5.4: gradient descent against momentum on f(x, y) = x^2 + 10 y^2, 15 iterations.

Claim: from (10, 1) and from (-10, -1), gradient descent zigzags across the ellipse's short
axis while momentum gets closer to the minimum in the same 15 steps.

Parameters: the Hessian is diag(2, 20), so the curvatures lie in [mu, L] = [2, 20]. Gradient
descent uses its best step, alpha = 2 / (mu + L) = 1/11; momentum uses the theory's optimum
for [2, 20]: alpha* = (2 / (sqrt(2) + sqrt(20)))^2 ~ 0.1154, beta* ~ 0.2699
(``jaxmom.theory.optimal_momentum``). Distances to the optimum after 15 steps are printed.

Command:  python -m experiments.gd_vs_momentum_2d [--out results]
Writes:   05_gd_vs_momentum.png (both paths on the contours), gd_vs_momentum_2d.json
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

NAME = "gd_vs_momentum_2d"
H = (2.0, 20.0)  # f = x^2 + 10 y^2 = 1/2 (2 x^2 + 20 y^2)
STARTS = ((10.0, 1.0), (-10.0, -1.0))
STEPS = 15


def run(out: Path, quick: bool = False) -> dict:
    del quick  # already tiny
    mu, L = H
    gd_alpha, gd_rate = (float(v) for v in theory.optimal_gd(mu, L))
    alpha, beta, rate = (float(v) for v in theory.optimal_momentum(mu, L))
    methods = {
        f"GD (α={gd_alpha:.4f})": jaxmom.sgd_momentum(gd_alpha, 0.0),
        f"momentum (α={alpha:.4f}, β={beta:.4f})": jaxmom.sgd_momentum(alpha, beta),
    }
    h = jnp.array(H)
    paths = {
        (label, start): np.asarray(theory.quadratic_trajectory(h, jnp.array(start), opt, STEPS))
        for label, opt in methods.items()
        for start in STARTS
    }
    dist = {
        f"{label} from {start}": float(np.linalg.norm(p[-1])) for (label, start), p in paths.items()
    }
    for k, v in dist.items():
        print(f"{k}: distance to the optimum after {STEPS} steps {v:.3e}")

    fig, ax = plt.subplots(figsize=(8, 4.5))
    gx, gy = np.meshgrid(np.linspace(-11, 11, 300), np.linspace(-1.6, 1.6, 200))
    ax.contour(
        gx, gy, gx**2 + 10 * gy**2, levels=np.geomspace(0.05, 130, 14), cmap="Greys", linewidths=0.6
    )
    colours = dict(zip(methods, ("tab:red", "tab:blue"), strict=True))
    for (label, start), p in paths.items():
        ax.plot(
            p[:, 0],
            p[:, 1],
            "o-",
            ms=3,
            lw=1,
            color=colours[label],
            label=label if start == STARTS[0] else None,
        )
    ax.plot(0, 0, "k*", ms=10)
    ax.set(xlabel="x", ylabel="y", title=f"f = x² + 10y², {STEPS} iterations")
    ax.legend(loc="lower right", fontsize=8)
    figures = [save_figure(fig, out, "05_gd_vs_momentum.png")]

    gd_d = [d for k, d in dist.items() if k.startswith("GD")]
    mom_d = [d for k, d in dist.items() if k.startswith("momentum")]
    claims = [
        claim(
            "5.4",
            "on x² + 10y², momentum ends closer to the minimum than GD after 15 steps",
            f"distance {max(mom_d):.2e} (momentum) vs {min(gd_d):.2e} (GD); "
            f"rates {rate:.3f} vs {gd_rate:.3f}",
            max(mom_d) < min(gd_d),
        )
    ]
    numbers = {
        "distance_after_15": dist,
        "momentum": {"alpha": alpha, "beta": beta, "rate": rate},
        "gd": {"alpha": gd_alpha, "rate": gd_rate},
    }
    return write_result(out, NAME, {"figures": figures, "claims": claims, "numbers": numbers})


if __name__ == "__main__":
    main(run, __doc__)
