"""Sections 5.1 and 5.3 (figures 02 and 03): a ball rolling in a bowl, without and with friction.

Claim: momentum is a ball in a bowl. With beta = 1 there is no friction: the ball swings
back and forth forever and never settles. With beta = 0.9 (friction, the usual 0.8 to 0.9)
its speed dies away and it stops at the bottom, at the linear rate sqrt(beta) of the theory.

The bowl is f(x) = 1/2 h x^2 with h = 1, heavy ball (``jaxmom.sgd_momentum``) with
alpha = 0.1, from x = 1, for 200 steps; each GIF animates the first steps.

Command:  python -m experiments.ball_in_bowl [--out results] [--quick]
Writes:   02_ball_no_friction.gif (beta = 1), 03_ball_friction.gif (beta = 0.9),
          02_03_ball_positions.png (both paths against time), ball_in_bowl.json
Runtime:  about 10 s on a 2-core CPU (most of it writing the GIFs).
"""

from __future__ import annotations

from pathlib import Path

import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.animation import FuncAnimation, PillowWriter

import jaxmom
from experiments.common import claim, main, save_figure, write_result
from jaxmom import theory

NAME = "ball_in_bowl"
ALPHA, H, X0, STEPS = 0.1, 1.0, 1.0, 200
BETAS = {"02_ball_no_friction.gif": 1.0, "03_ball_friction.gif": 0.9}


def _gif(xs: np.ndarray, beta: float, path: Path, frames: int) -> None:
    fig, ax = plt.subplots(figsize=(4, 3), dpi=60)
    grid = np.linspace(-1.3, 1.3, 200)
    ax.plot(grid, 0.5 * H * grid**2, "k-", lw=1.5)
    (ball,) = ax.plot([], [], "o", ms=14, color="tab:red")
    text = ax.text(0.02, 0.92, "", transform=ax.transAxes, fontsize=9)
    friction = "no friction" if beta == 1 else "friction"
    ax.set(
        xlim=(-1.3, 1.3),
        ylim=(-0.05, 0.9),
        xticks=[],
        yticks=[],
        title=f"β = {beta:g} ({friction})",
    )

    def draw(t):
        ball.set_data([xs[t]], [0.5 * H * xs[t] ** 2 + 0.04])
        text.set_text(f"step {t}")
        return ball, text

    anim = FuncAnimation(fig, draw, frames=frames, blit=True)
    anim.save(path, writer=PillowWriter(fps=12))
    plt.close(fig)


def run(out: Path, quick: bool = False) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    paths = {
        gif: np.asarray(
            theory.quadratic_trajectory(jnp.array([H]), X0, jaxmom.sgd_momentum(ALPHA, b), STEPS)
        )[:, 0]
        for gif, b in BETAS.items()
    }
    frames = 12 if quick else 120
    for gif, xs in paths.items():
        _gif(xs, BETAS[gif], out / gif, frames)

    fig, ax = plt.subplots(figsize=(7, 3))
    for gif, xs in paths.items():
        ax.plot(xs, lw=1, label=f"β = {BETAS[gif]:g}")
    ax.set(xlabel="step", ylabel="position x", title="a ball in the bowl h/2·x², α = 0.1")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0))  # outside: no curve's end hidden
    figures = [*BETAS, save_figure(fig, out, "02_03_ball_positions.png")]

    free, damped = paths["02_ball_no_friction.gif"], paths["03_ball_friction.gif"]
    swing = float(np.abs(free[-50:]).max())
    settled = float(np.abs(damped[-1]))
    tail = np.abs(damped[100:])
    env = np.maximum.accumulate(tail[::-1])[::-1]  # the decaying envelope
    rate = float(np.exp(np.polyfit(np.arange(len(env)), np.log(env), 1)[0]))
    claims = [
        claim(
            "5.1",
            "β = 1 (no friction): the ball keeps rolling and never settles",
            f"largest |x| over steps {STEPS - 50}–{STEPS}: {swing:.3f} (started at {X0})",
            swing > 0.9 * X0,
        ),
        claim(
            "5.3",
            "β = 0.9 (friction): the ball slows down and stops",
            f"|x| after {STEPS} steps: {settled:.1e}; decay rate {rate:.4f} vs √β = "
            f"{np.sqrt(0.9):.4f}",
            settled < 1e-3 and abs(rate / np.sqrt(0.9) - 1) < 0.02,
        ),
    ]
    numbers = {
        "late_amplitude_beta_1": swing,
        "final_x_beta_0.9": settled,
        "decay_rate_beta_0.9": rate,
        "sqrt_beta": float(np.sqrt(0.9)),
    }
    return write_result(out, NAME, {"figures": figures, "claims": claims, "numbers": numbers})


if __name__ == "__main__":
    main(run, __doc__)
