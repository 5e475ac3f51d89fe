"""The chapter's sweep: its MLP trained for every (beta, learning rate, seed), on the engine.

:func:`sweep` is :func:`jaxmom.grid_sweep` with the chapter's train function: the run of seed
``s`` starts from :func:`jaxmom.seed_inputs` of ``jax.random.key(s)`` and trains with
:func:`jaxmom.train_scan`, the project's one training loop. The engine computes a seed's initial
weights and batch order once for all of its (beta, learning rate) pairs, and the program is
compiled with jaxmom's tuned CPU options (:mod:`jaxmom.chapter._xla`), which suit this model.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping, Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from numpy.typing import ArrayLike

from jaxmom.chapter import _xla
from jaxmom.chapter._data import make_dataset
from jaxmom.chapter._fused import fused_run, train_block
from jaxmom.chapter._model import Net, init_mlp
from jaxmom.chapter._train import check_data, seed_inputs, train_scan
from jaxmom.common import check_beta, check_learning_rate, check_positive_int, check_settings
from jaxmom.engine import Plan, grid_sweep, halving_sweep, trial_sweep
from jaxmom.optim import sgd_momentum
from jaxmom.results import SweepResult
from jaxmom.training import check_order_args, epoch_means, nnx_task, steps_per_epoch


@functools.cache
def chapter_train_fn(
    epochs: int, batch_size: int, nesterov: bool, record_every: int, kernel: str = "xla"
):
    """The chapter's run as a ``grid_sweep`` train function of ``{"beta", "learning_rate"}``,
    a key and ``data = (x, y)``: outputs ``final_loss``, ``epoch_losses`` and, unless
    ``record_every`` is 0, the loss of every ``record_every``-th step (0, k, 2k, ...).
    ``kernel``: ``"xla"`` (:func:`jaxmom.train_scan`), ``"pallas"`` (the fused kernel of
    :mod:`jaxmom.chapter._fused`) or ``"pallas-interpret"`` (its semantics, on any backend)."""

    def train_fn(hp, key, data):
        x, y = data
        params, order = seed_inputs(key, n=x.shape[0], batch_size=batch_size, epochs=epochs)
        if kernel == "xla":
            opt = sgd_momentum(hp["learning_rate"], hp["beta"], nesterov=nesterov)
            res = train_scan(opt, params, order, (x, y), epochs)
            step_losses, epoch_losses = res.step_losses, res.epoch_losses
        else:
            run = fused_run(nesterov, kernel == "pallas-interpret")
            xb, yb = x[order.indices, 0], y[order.indices, 0]
            step_losses = run(params, xb, yb, order.mask, hp["beta"], hp["learning_rate"])
            counts = order.mask.sum(axis=1).astype(step_losses.dtype)  # as train_scan's
            epoch_losses = epoch_means(step_losses, counts, epochs)
        out = {"final_loss": epoch_losses[-1], "epoch_losses": epoch_losses}
        if record_every:
            out["step_losses"] = step_losses[::record_every]
        return out

    return train_fn


KERNELS = ("auto", "xla", "pallas")


def resolve_kernel(kernel: str) -> str:
    """``"xla"``, ``"pallas"`` or ``"pallas-interpret"`` for the default backend: ``"auto"`` is
    the fused kernel on a GPU and XLA elsewhere; ``"pallas"`` off a GPU or TPU is interpreted."""
    if kernel not in KERNELS:
        raise ValueError(f"kernel must be one of {', '.join(KERNELS)}, got kernel={kernel!r}")
    backend = jax.default_backend()
    if kernel == "auto":  # the kernel where it compiles here, XLA elsewhere
        return "pallas" if backend == "gpu" and _kernel_compiles() else "xla"
    return "pallas-interpret" if kernel == "pallas" and backend not in ("gpu", "tpu") else kernel


@functools.cache
def _kernel_compiles() -> bool:
    """Whether the fused kernel compiles on the default backend (checked once, on a small
    problem): a GPU whose Triton cannot take it falls back to XLA rather than failing."""

    rows = jax.numpy.zeros((4, 32))
    try:
        args = (init_mlp(jax.random.key(0)), rows, rows, rows > 0, rows[0], rows[0])
        jax.block_until_ready(train_block(*args))
    except Exception:  # any failure to lower, compile or run it: XLA serves
        return False
    return True


def sweep(
    betas: ArrayLike,
    learning_rates: ArrayLike = (0.01,),
    seeds: Sequence[int] = (0,),
    *,
    epochs: int = 12,
    batch_size: int = 32,
    nesterov: bool = False,
    record_every: int = 1,
    kernel: str = "auto",
    data: tuple[jax.Array, jax.Array] | None = None,
    out: str | os.PathLike | None = None,
    chunk_size: int | None = None,
    progress: bool = True,
    compiler_options: Mapping | None = None,
    check_finite: Sequence[str] | None = None,
    settings: Mapping | None = None,
    plan: Plan | Mapping | str | None = None,
) -> SweepResult:
    """Train the chapter's MLP for every (beta, learning rate, seed), vmapped and sharded.

    Run ``(beta_i, lr_j, seed_k)`` equals
    ``train(sgd_momentum(lr_j, beta_i, nesterov=nesterov), seed=seed_k, ...)``.

    Args:
      betas, learning_rates: the grid's axes (beta in [0, 1]; learning rates finite and >= 0).
      seeds: distinct integer seeds in [0, 2**32); see :func:`jaxmom.seed_inputs`.
      epochs, batch_size: as in :func:`jaxmom.train`.
      nesterov: Nesterov momentum.
      record_every: keep the loss of every k-th step (1: every step; 0: none, only
        ``epoch_losses`` and ``final_loss``): a million runs of 384 steps take 1.6 GB at 1.
      kernel: ``"xla"`` (:func:`jaxmom.train_scan` under ``vmap``), ``"pallas"`` (the whole
        training of a block of models in one fused kernel, :mod:`jaxmom.chapter._fused`;
        interpreted, slowly, off a GPU or TPU) or ``"auto"``: the kernel on a GPU where it
        compiles, XLA elsewhere.
      data: ``(x, y)``; default the chapter's data set.
      out: a store folder (e.g. ``"sweep.zarr"``), written block by block; the same call again
        runs only what is missing. A store of other settings is an error, never mixed.
      chunk_size, progress, check_finite, plan: as :func:`jaxmom.grid_sweep`'s.
      compiler_options: XLA options; ``None``: jaxmom's tuned ones for this model on a CPU
        (a small sweep compiles at optimisation level 1), XLA's own elsewhere.
      settings: JSON-able settings of yours, stored beside the sweep's own (``user``); a
        store holding others is refused.

    Returns:
      A :class:`SweepResult` with axes ``beta`` and ``learning_rate``; outputs ``final_loss``
      ``[n_beta, n_lr, n_seed]``, ``epoch_losses`` ``[..., epochs]``, ``step_losses``
      ``[..., steps / record_every]``. Runs that diverge keep their non-finite losses and are
      flagged in ``diverged``; they do not affect any other run.
    """
    kernel = resolve_kernel(kernel)
    betas = as_axis(betas, "betas", check_beta)
    learning_rates = as_axis(learning_rates, "learning_rates", check_learning_rate)
    epochs = check_positive_int(epochs, "epochs")
    record_every = check_positive_int(record_every, "record_every", minimum=0)
    x, y = check_data(make_dataset() if data is None else data)
    n, batch_size, epochs = check_order_args(x.shape[0], batch_size, epochs)
    user = check_settings(settings)
    settings = {
        "model": "chapter MLP 1-20-1",
        "epochs": epochs,
        "batch_size": batch_size,
        "steps": epochs * steps_per_epoch(n, batch_size),
        "nesterov": bool(nesterov),
        "record_every": record_every,
    }
    if user is not None:
        settings["user"] = user
    if compiler_options is None:
        runs = len(betas) * len(learning_rates) * len(np.atleast_1d(seeds))
        compiler_options = _xla.compiler_options(_xla.quick(runs * settings["steps"]))
    return grid_sweep(
        chapter_train_fn(epochs, batch_size, bool(nesterov), record_every, kernel),
        {"beta": betas, "learning_rate": learning_rates},
        seeds,
        data=(x, y),
        chunk_size=chunk_size,
        out=out,
        progress=progress,
        compiler_options=compiler_options,
        check_finite=check_finite,
        settings=settings,
        plan=plan,
    )


def as_axis(values, name: str, check) -> np.ndarray:
    """``values`` as a float64 axis, each value checked by ``check`` in float32, the dtype the
    runs use; errors name the axis ``name`` (the CLI passes its flag) and the value as given.
    Bools are refused, as :func:`jaxmom.grid_sweep` refuses them."""
    if values is None or isinstance(values, str | bytes):
        raise TypeError(f"{name} must be a sequence of numbers, got {name}={values!r}")
    raw = np.atleast_1d(np.asarray(values, dtype=object))
    if any(isinstance(v, bool | np.bool_) or v is None for v in raw.ravel().tolist()):
        raise TypeError(f"{name} must hold numbers, not bools or None, got {name}={values!r}")
    try:
        arr = np.atleast_1d(np.asarray(values, dtype=np.float64))
    except (TypeError, ValueError) as e:
        raise TypeError(f"{name} must be a sequence of numbers, got {name}={values!r}") from e
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D sequence, got shape {arr.shape}")
    check(arr, name, scalar=False)
    return arr


def chapter_loss(outputs: jax.Array, targets: jax.Array) -> jax.Array:
    """The chapter's squared error, one value per example (``[n, 1]`` -> ``[n]``)."""
    return jnp.sum((outputs - targets) ** 2, axis=-1)


@functools.cache
def chapter_task(batch_size: int = 32, nesterov: bool = False, hidden: int = 20):
    """The chapter's run as a :class:`jaxmom.Task` (:func:`jaxmom.nnx_task` of its
    :class:`jaxmom.Net`), for searches that pause runs: hyperparameters ``beta`` and
    ``learning_rate``; ``evaluate`` gives ``final_loss``. Its batches are those of
    :func:`jaxmom.batch_window` (the task's order), not :func:`sweep`'s, so a run's numbers
    differ from :func:`sweep`'s in their digits, not in their law."""

    def optimizer(beta, learning_rate):
        return sgd_momentum(learning_rate, beta, nesterov=nesterov)

    return nnx_task(
        lambda rngs: Net(hidden, rngs=rngs), chapter_loss, optimizer, batch_size=batch_size
    )


def search(trials: dict, seeds: Sequence[int], plan: SearchPlan) -> SweepResult:
    """The chapter's MLP over a table of trials (``beta``, ``learning_rate``): every trial
    trained ``plan.epochs`` epochs by :func:`sweep`'s train function, or with ``plan.eta``
    successive halving from ``plan.min_epochs`` epochs on :func:`chapter_task` (ranked by
    ``final_loss``)."""

    x, y = make_dataset()
    n = x.shape[0]
    if plan.eta is None:
        return trial_sweep(
            chapter_train_fn(plan.epochs, plan.batch_size, plan.nesterov, plan.record_every),
            trials,
            seeds,
            data=(x, y),
            chunk_size=plan.chunk_size,
            out=plan.out,
            progress=plan.progress,
            compiler_options=_xla.compiler_options(),
            settings=dict(plan._asdict(), out=None, progress=None, model="chapter MLP 1-20-1"),
        )
    spe = steps_per_epoch(n, plan.batch_size)
    return halving_sweep(
        chapter_task(plan.batch_size, plan.nesterov),
        trials,
        seeds,
        data=(x, y),
        min_steps=plan.min_epochs * spe,
        max_steps=plan.epochs * spe,
        eta=plan.eta,
        metric="final_loss",
        out=plan.out,
        progress=plan.progress,
        chunk_size=plan.chunk_size,
    )


class SearchPlan(NamedTuple):
    """:func:`search`'s settings: as :func:`sweep`'s, and ``eta`` (``None``: no halving) and
    ``min_epochs`` (the first rung's epochs)."""

    epochs: int = 12
    batch_size: int = 32
    nesterov: bool = False
    record_every: int = 1
    chunk_size: int | None = None
    out: str | None = None
    progress: bool = True
    eta: int | None = None
    min_epochs: int = 1
