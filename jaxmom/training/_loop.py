"""The project's one training loop: a whole run as one pure function, ``lax.scan`` over its steps.

:func:`train_step` is one optimizer step on a batch; :func:`train_scan` runs every step of a
batch order. The chapter's :func:`jaxmom.train`, :func:`jaxmom.sweep` and any Flax NNX model's
:func:`jaxmom.nnx_task` all run it (a model's loss and gradient is an argument).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from jaxmom.training._batches import BatchOrder


class TrainResult(NamedTuple):
    """What one run gives.

    Attributes:
      params: the final parameters (a nested dict like :func:`jaxmom.init_mlp`'s).
      step_losses: ``[steps]``, the mean squared error of each step's batch, before its update
        (what the chapter records with ``loss.item()``).
      epoch_losses: ``[epochs]``, the mean squared error over the points seen in each epoch.
      model_state: the final state a step updates besides the parameters (a Flax NNX model's
        batch statistics and RNG counters), when :func:`train_scan` was given one; else ``None``.
      opt_state: the final optimizer state.
    """

    params: dict
    step_losses: jax.Array
    epoch_losses: jax.Array
    model_state: Any = None
    opt_state: Any = None


def masked_mean(values: jax.Array, mask: jax.Array | None = None) -> jax.Array:
    """The mean of ``values`` over the real points.

    Args:
      values: ``[batch]``.
      mask: ``[batch]`` bools, True for real points; ``None``: all are real.

    Returns:
      A scalar (0 where no point is real).

    Examples:
      >>> import jax.numpy as jnp, jaxmom
      >>> float(jaxmom.masked_mean(jnp.array([1.0, 3.0, 100.0]), jnp.array([True, True, False])))
      2.0
    """
    if mask is None:
        return jnp.mean(values)
    m = mask.astype(values.dtype)
    return jnp.sum(values * m) / jnp.maximum(jnp.sum(m), 1.0)


def train_step(
    opt: optax.GradientTransformation,
    params,
    opt_state,
    x,
    y,
    mask=None,
    *,
    value_and_grad,
):
    """One step of ``opt`` on a batch. Pure: jit, vmap and scan it.

    Args:
      opt: any optax transformation.
      params, opt_state: the parameters and ``opt``'s state.
      x, y: the batch's inputs and targets.
      mask: ``[batch]`` bools, True for real examples; ``None``: all real.
      value_and_grad: ``(params, x, y, mask) -> (loss, grads)``, e.g.
        ``jax.value_and_grad(loss_fn)``; :func:`jaxmom.train_step` gives the chapter's MLP's
        by default.

    Returns:
      ``(params, opt_state, loss)``, the loss before the step.

    Examples:
      >>> import jax, jax.numpy as jnp, optax, jaxmom
      >>> def loss_fn(w, x, y, mask):
      ...     return jaxmom.masked_mean((x @ w - y) ** 2, mask)
      >>> opt = jaxmom.sgd_momentum(0.1, momentum=0.9)
      >>> w, x, y = jnp.zeros(2), jnp.ones((4, 2)), jnp.ones(4)
      >>> step = jax.jit(lambda w, s: jaxmom.training.train_step(
      ...     opt, w, s, x, y, value_and_grad=jax.value_and_grad(loss_fn)))
      >>> w, state, loss = step(w, opt.init(w))
      >>> float(loss)
      1.0
    """
    loss, grads = value_and_grad(params, x, y, mask)
    return (*_apply(opt, params, opt_state, grads), loss)


def _apply(opt: optax.GradientTransformation, params, opt_state, grads):
    updates, opt_state = opt.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state


def train_scan(
    opt: optax.GradientTransformation,
    params: dict,
    order: BatchOrder,
    data: tuple[jax.Array, jax.Array],
    epochs: int,
    opt_state=None,
    *,
    value_and_grad,
    model_state=None,
    unroll: bool = False,
) -> TrainResult:
    """The whole run as one ``lax.scan`` over the steps of ``order``. Pure; ``epochs`` is static.

    Args:
      opt: any optax transformation.
      params: initial parameters.
      order: the batch order, ``[steps, batch]``; ``steps`` must be a multiple of ``epochs``.
      data: ``(x, y)``, ``[n, ...]`` each (``[n, 1]`` for the chapter); batches are gathered
        from it, never copied whole.
      epochs: number of epochs in ``order``.
      opt_state: initial optimizer state; ``None`` means ``opt.init(params)``.
      value_and_grad: the step's loss and gradient, as in :func:`train_step`.
      model_state: what a step updates besides the parameters, not trained by ``opt`` (a Flax
        NNX model's batch statistics and RNG counters). With it ``value_and_grad(params,
        model_state, x, y, mask) -> ((loss, model_state), grads)``, and the state is carried
        from step to step.
      unroll: write the steps out one after another (no ``while`` loop in the program): the
        same steps, compiled per step count. XLA:CPU runs a convolution's weight gradient
        inside a loop through a slow path (``benchmarks/NOTES.md``); a few steps written out
        are the segments a sweep's plan runs such models in.

    Returns:
      A :class:`TrainResult`.
    """
    x, y = data
    if opt_state is None:
        opt_state = opt.init(params)

    def step(carry, batch):
        params, opt_state, state = carry
        idx, mask = batch
        if model_state is None:
            params, opt_state, loss = train_step(
                opt, params, opt_state, x[idx], y[idx], mask, value_and_grad=value_and_grad
            )
        else:
            (loss, state), grads = value_and_grad(params, state, x[idx], y[idx], mask)
            params, opt_state = _apply(opt, params, opt_state, grads)
        return (params, opt_state, state), loss

    carry = (params, opt_state, model_state)
    batches = (order.indices, order.mask)
    (params, opt_state, state), step_losses = jax.lax.scan(step, carry, batches, unroll=unroll)
    counts = order.mask.sum(axis=1).astype(step_losses.dtype)
    return TrainResult(
        params, step_losses, epoch_means(step_losses, counts, epochs), state, opt_state
    )


def epoch_means(step_losses: jax.Array, counts: jax.Array, epochs: int) -> jax.Array:
    """Each epoch's mean loss over the points it saw.

    Args:
      step_losses: ``[steps]``, each step's mean loss over its batch.
      counts: ``[steps]``, how many real points each step had.
      epochs: epochs in ``steps`` (a divisor of it).

    Returns:
      ``[epochs]``.
    """
    per_epoch = (step_losses * counts).reshape(epochs, -1).sum(axis=1)
    return per_epoch / counts.reshape(epochs, -1).sum(axis=1)
