"""The JAX ways of training the chapter's task in its bench: the usual optax loop, one
compiled run (:func:`jaxmom.train`) and the sweeps (:func:`jaxmom.sweep`, autodiff's gradient
through :func:`jaxmom.grid_sweep`), each from seed 0's inputs."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxmom.bench._torch import BETA, LR
from jaxmom.chapter import (
    compiler_options,
    fully_optimised,
    make_dataset,
    mse_loss,
    seed_inputs,
    sweep,
    train,
    train_scan,
    train_step,
)
from jaxmom.engine import grid_sweep
from jaxmom.optim import sgd_momentum

EPOCHS = 12
AUTODIFF = jax.value_and_grad(mse_loss)  # the usual way to get the step's loss and gradient


def task():
    """The shared inputs: seed 0's initial parameters and batch order, and the data set."""
    params, order = seed_inputs(0, epochs=EPOCHS)
    return params, order, make_dataset()


def betas_for(models: int) -> np.ndarray:
    """One beta per model, spread around the chapter's 0.8 (so no two runs are the same)."""
    return np.linspace(0.5, 0.95, models, dtype=np.float32) if models > 1 else np.array([BETA])


def jit_step(opt):
    """One jitted :func:`jaxmom.train_step` of ``opt`` with autodiff's gradient, as users write it.

    It is also the step whose flops define the work (``flops_per_model_step``), so the count
    does not depend on how jaxmom's own step is written.
    """
    return jax.jit(functools.partial(train_step, opt, value_and_grad=AUTODIFF))


@functools.cache
def _optax_setup(lr, beta):
    """``optax.sgd`` and its jitted step, built once per (lr, beta) as a user's loop would."""
    opt = optax.sgd(lr, momentum=beta)
    return opt, jit_step(opt)


@functools.cache
def jaxmom_opt(lr, beta):
    """One optimizer object per (lr, beta): its tracing is cached, as a user's would be."""
    return sgd_momentum(jnp.float32(lr), jnp.float32(beta))


def optax_loop(params, order, data, lr=LR, beta=BETA) -> np.ndarray:
    """The usual JAX way: ``optax.sgd`` in a jitted step, called per batch from Python."""
    opt, step = _optax_setup(lr, beta)
    x, y = (np.asarray(a) for a in data)
    idx, mask = np.asarray(order.indices), np.asarray(order.mask)
    state = opt.init(params)
    losses = []
    for i, m in zip(idx, mask, strict=True):
        params, state, loss = step(params, state, x[i], y[i], m)
        losses.append(loss)
    return np.asarray(jnp.stack(losses))


def jaxmom_train(params, order, data, lr=LR, beta=BETA) -> np.ndarray:
    """One run as one compiled scan: :func:`jaxmom.train`'s step losses."""
    opt = jaxmom_opt(lr, beta)
    res = train(opt, params=params, order=order, data=data)
    return np.asarray(res.step_losses)


def jaxmom_sweep(betas, lr=LR, kernel: str = "xla") -> np.ndarray:
    """:func:`jaxmom.sweep` over ``betas`` at seed 0: step losses ``[models, steps]``."""
    with fully_optimised():  # the steady state
        res = sweep(
            np.asarray(betas), learning_rates=(lr,), seeds=(0,), progress=False, kernel=kernel
        )
    return res.step_losses[:, 0, 0]


@functools.cache
def _autodiff_train_fn():
    """Seed 0's run of the chapter's task as a ``grid_sweep`` train_fn, autodiff's gradient."""
    params, order, data = task()

    def train_fn(hp, key):
        opt = sgd_momentum(hp["lr"], hp["beta"])
        res = train_scan(opt, params, order, data, EPOCHS, value_and_grad=AUTODIFF)
        return {"loss": res.step_losses}

    return train_fn


def jaxmom_sweep_autodiff(betas, lr=LR) -> np.ndarray:
    """:func:`jaxmom_sweep`'s runs with autodiff's gradient: step losses ``[models, steps]``."""
    grid = {"beta": np.asarray(betas, np.float32), "lr": np.asarray([lr], np.float32)}
    out = grid_sweep(
        _autodiff_train_fn(), grid, (0,), progress=False, compiler_options=compiler_options()
    )
    return out["loss"][:, 0, 0]
