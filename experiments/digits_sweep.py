"""beta on real data: an NNX MLP on scikit-learn's handwritten digits, 4,096 runs in one command.

The 1,797 8x8 digits (10 classes, shipped inside scikit-learn), split once into 1,437 training
and 360 test images; an NNX MLP 64 -> 128 -> 10 (ReLU), cross-entropy, batches of 32 (the last
partial batch kept), 5 epochs (225 steps), ``jaxmom.sgd_momentum(lr, beta)`` over 64 betas in
[0, 0.99] x 16 learning rates log-spaced in [1e-3, 3] x 4 seeds, through
``jaxmom.nnx_train_fn`` and ``jaxmom.grid_sweep``. Reported: test accuracy and final training
loss over the grid, the best beta per learning rate, where runs fail (a non-finite loss, or
test accuracy at chance: the weights blew up). Claims: a larger
learning rate wants a smaller beta (the best beta falls as lr grows), and the chapter's
1/(1 - beta) as a law of training (see ``effective_lr``) holds on this model too.

Command:  python -m experiments.digits_sweep [--out results]
Writes:   digits_sweep.png (final loss with lines of constant lr/(1 - beta); test accuracy),
          digits_best_beta.png (best beta and its accuracy per learning rate), digits_sweep.json
Runtime:  about 60 s on a 2-core CPU (4,096 runs of 225 steps).
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

import jaxmom
from experiments.common import claim, main, save_figure, write_result
from experiments.effective_lr import cell_edges, law, law_claim, plot_law
from jaxmom import chapter as tasks

NAME = "digits_sweep"


def run(out: Path, quick: bool = False) -> dict:
    n_beta, n_lr, seeds, epochs = (6, 4, 1, 1) if quick else (64, 16, 4, 5)
    betas = np.linspace(0.0, 0.99, n_beta)
    lrs = np.geomspace(1e-3, 3.0, n_lr)
    train_fn, data = tasks.digits(epochs=epochs)
    res = jaxmom.grid_sweep(
        train_fn, {"beta": betas, "learning_rate": lrs}, range(seeds), data=data, progress=False
    )
    steps = train_fn.steps(data[0].shape[0])
    acc = np.asarray(res["test_accuracy"]).mean(-1)  # [beta, lr]
    ok = ~res.diverged.any(-1)
    acc_ok = np.where(ok, acc, -np.inf)
    best = {float(lr): float(betas[np.argmax(acc_ok[:, j])]) for j, lr in enumerate(lrs)}
    best_acc = {float(lr): float(acc_ok[:, j].max()) for j, lr in enumerate(lrs)}
    for lr in best:
        print(f"lr {lr:<8.3g} best beta {best[lr]:.3f}  test accuracy {best_acc[lr]:.3f}")
    B, L = np.meshgrid(betas, lrs, indexing="ij")
    eff = L / (1 - B)
    top = eff[np.unravel_index(np.argmax(acc_ok), acc.shape)]
    # diverged, or at chance (0.1) on the test set above the best run's rate: blown up
    failed = ~ok | ((acc < 0.2) & (eff > top))
    first = float(eff[failed].min()) if failed.any() else float("inf")
    print(
        f"{int(res.diverged.sum())} of {res.diverged.size} runs diverged (a non-finite loss), "
        f"{int(failed.sum())} of {failed.size} grid points failed (diverged or at chance "
        f"accuracy); the smallest lr/(1 - beta) that failed: {first:.3g}; "
        f"{res.metadata['wall_seconds']:.1f} s"
    )
    stats = law(res, steps)

    fig, axes = plt.subplots(1, 2, figsize=(14, 4.8), layout="constrained")
    plot_law(axes[0], res, steps, f"Digits: final training loss, {res.diverged.size} runs")
    cmap = plt.get_cmap("magma").with_extremes(bad="0.6")
    im = axes[1].pcolormesh(
        cell_edges(betas),
        cell_edges(lrs, log=True),
        np.ma.masked_array(acc, ~ok).T,
        cmap=cmap,
        vmin=0,
        vmax=1,
    )
    grey = " (grey: diverged)" if (~ok).any() else ""
    fig.colorbar(im, ax=axes[1], label=f"test accuracy, mean over seeds{grey}")
    axes[1].set(
        yscale="log",
        xlabel="β",
        ylabel="learning rate",
        title="Digits: test accuracy",
        ylim=axes[0].get_ylim(),
        xlim=axes[0].get_xlim(),
    )
    figures = [save_figure(fig, out, f"{NAME}.png")]

    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(lrs, list(best.values()), "o-", label="best β (highest test accuracy)")
    ax.plot(lrs, list(best_acc.values()), "s--", label="its test accuracy")
    ax.set(
        xscale="log",
        xlabel="learning rate",
        ylabel="β  /  accuracy",
        ylim=(-0.05, 1.05),
        title="Digits: the best β for each learning rate",
    )
    ax.legend(loc="center left", fontsize=8)
    figures.append(save_figure(fig, out, f"{NAME}_best_beta.png"))

    trained = np.array([best_acc[lr] > 0.5 for lr in best])  # where a best beta means something
    rho = float(np.corrcoef(np.log(lrs[trained]), np.array(list(best.values()))[trained])[0, 1])
    claims = [
        claim(
            "5.3",
            "digits: a larger learning rate wants a smaller β (the best β falls as lr grows)",
            f"correlation of the best β with log lr {rho:.2f} over {int(trained.sum())} learning "
            f"rates; best test accuracy {max(best_acc.values()):.3f}",
            rho < -0.5 or quick,
        ),
        law_claim("digits", stats) if not quick else claim("5.3", "law", "quick", True),
    ]
    numbers = {
        "best_beta": best,
        "best_accuracy": best_acc,
        "law": stats,
        "runs": res.diverged.size,
        "diverged": int(res.diverged.sum()),
        "failed_points": int(failed.sum()),
        "first_failed_effective_lr": first,
        "wall_seconds": res.metadata["wall_seconds"],
    }
    return write_result(out, NAME, {"figures": figures, "claims": claims, "numbers": numbers})


if __name__ == "__main__":
    main(run, __doc__)
