"""One training run of the chapter's MLP: the project's one loop (:mod:`jaxmom.training`)
with the chapter's loss. :func:`train` runs it jit-compiled for one seed; :func:`jaxmom.sweep`
runs :func:`train_scan` under ``vmap`` for many.

Public pieces, for users who write their own loop: :func:`mse_loss`, :func:`train_step`,
:func:`train_scan` (all pure, traceable under ``jit``/``vmap``) and :func:`seed_inputs`.

Why :func:`train` traces ``opt.update`` to a jaxpr. ``train(opt)`` takes an optimizer as users
build it (``sgd_momentum(lr, beta)``) and promises that new values of beta or the learning
rate, given as arrays, reuse the compiled program. An optax transformation is a pair of
closures, so ``jit`` cannot see the arrays they capture. What optax users already know gives
the same guarantee only if the caller builds the optimizer differently: hyperparameters as
arguments of a pure train function (PureJaxRL's way, and :func:`jaxmom.grid_sweep`'s, where
the sweeps live) or ``optax.inject_hyperparams`` (the values move into the state). Tracing
``update`` once turns its captured arrays into inputs of one program shared by every optimizer
built alike, with nothing asked of the caller; Python floats stay constants. The price is two
small caches: compiled runs by the jaxpr's text, and the tracing by optimizer object and by
everything that changes the traced program (the parameters' and state's tree, shapes, dtypes
and weak types, and ``jax_enable_x64``), so the same optimizer trains float32 and float64
parameters in turn.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.extend import core as jex_core

from jaxmom import training
from jaxmom.chapter import _xla
from jaxmom.chapter._data import make_dataset
from jaxmom.chapter._model import apply_mlp, init_mlp
from jaxmom.common import check_positive_int
from jaxmom.training import BatchOrder, TrainResult, batch_order, check_order_args, masked_mean


def mse_loss(params: dict, x: jax.Array, y: jax.Array, mask: jax.Array | None = None):
    """Mean squared error of the MLP on ``x``, ``y`` [batch, 1], over the real points only.

    With every point real this is ``torch.nn.MSELoss()``.

    Args:
      params: the MLP's parameters (:func:`init_mlp`).
      x, y: ``[batch, 1]`` inputs and targets.
      mask: ``[batch]`` bools, True for real points (padding is False); ``None``: all real.

    Returns:
      The mean squared error, a scalar.

    Examples:
      >>> import jax, jaxmom
      >>> x, y = jaxmom.make_dataset()
      >>> loss = jaxmom.mse_loss(jaxmom.init_mlp(jax.random.key(0)), x, y)
      >>> loss.shape
      ()
    """
    return masked_mean(jnp.sum((apply_mlp(params, x) - y) ** 2, axis=-1), mask)


def mse_value_and_grad(params: dict, x: jax.Array, y: jax.Array, mask: jax.Array | None = None):
    """``jax.value_and_grad(mse_loss)(params, x, y, mask)`` for the chapter's MLP, by hand.

    The same numbers up to float rounding (the tests hold it to autodiff and to PyTorch), but
    written for XLA to fuse: each pass over the ``[batch, hidden]`` block is one loop that
    recomputes ``z = x w1 + b1`` instead of reading it back from memory, with no batched dots.
    On a 2-core CPU a sweep trains 2.5x faster with it than with autodiff's gradient (the
    ``jaxmom_sweep_autodiff`` row of ``jaxmom bench``). :func:`train_step` uses it.

    With ``p = relu(z) w2 + b2`` and ``dp = dL/dp``, ``dz = [z > 0] (dp w2^T)``, so with
    ``a = sum_batch([z > 0] dp)`` and ``c = sum_batch([z > 0] dp x)`` (one variadic reduction):
    ``dw1 = w2^T c``, ``db1 = w2^T a``, ``dw2 = relu(z)^T dp = w1^T c + b1 a``, ``db2 = sum(dp)``.

    Args:
      params, x, y, mask: as :func:`mse_loss`'s.

    Returns:
      ``(loss, grads)``, ``grads`` shaped as ``params``.
    """
    w1, b1 = params["hidden"]["kernel"][0], params["hidden"]["bias"]  # [hidden]
    w2, b2 = params["predict"]["kernel"][:, 0], params["predict"]["bias"]  # [hidden], [1]
    xb = x[:, 0]  # [batch]
    # Forward: the sum over hidden units runs along the major axis of [hidden, batch].
    zt = w1[:, None] * xb[None, :] + b1[:, None]
    r = jnp.sum(jnp.maximum(zt, 0) * w2[:, None], axis=0) - y[:, 0] + b2[0]  # [batch]
    if mask is None:
        weight = jnp.full(r.shape, 1.0 / r.size, r.dtype)
    else:
        m = mask.astype(r.dtype)
        weight = m / jnp.maximum(jnp.sum(m), 1.0)
    loss = jnp.sum(weight * r * r)
    dp = 2.0 * weight * r  # [batch]
    on = xb[:, None] * w1[None, :] + b1[None, :] > 0  # [batch, hidden]
    zero = jnp.zeros((), r.dtype)
    a, c = jax.lax.reduce(
        (jnp.where(on, dp[:, None], zero), jnp.where(on, (dp * xb)[:, None], zero)),
        (zero, zero),
        _add_pairs,
        (0,),
    )
    grads = {
        "hidden": {"kernel": (w2 * c)[None, :], "bias": w2 * a},
        "predict": {"kernel": (w1 * c + b1 * a)[:, None], "bias": jnp.sum(dp, keepdims=True)},
    }
    return loss, grads


def _add_pairs(u, v):
    return u[0] + v[0], u[1] + v[1]


def train_step(opt, params, opt_state, x, y, mask=None, *, value_and_grad=mse_value_and_grad):
    """:func:`jaxmom.training.train_step` with the chapter's MLP's loss and gradient by default.

    Args:
      opt, params, opt_state, x, y, mask: as :func:`jaxmom.training.train_step`'s.
      value_and_grad: :func:`mse_value_and_grad` by default; ``jax.value_and_grad(mse_loss)``
        is the same step by autodiff.

    Returns:
      ``(params, opt_state, loss)``, the loss before the step.
    """
    return training.train_step(opt, params, opt_state, x, y, mask, value_and_grad=value_and_grad)


def train_scan(
    opt,
    params,
    order,
    data,
    epochs,
    opt_state=None,
    *,
    value_and_grad=mse_value_and_grad,
    model_state=None,
) -> TrainResult:
    """:func:`jaxmom.training.train_scan` with the chapter's MLP's loss and gradient by default.

    Args:
      opt, params, order, data, epochs, opt_state, model_state: as
        :func:`jaxmom.training.train_scan`'s.
      value_and_grad: :func:`mse_value_and_grad` by default.

    Returns:
      A :class:`jaxmom.TrainResult`.

    Examples:
      >>> import jaxmom
      >>> params, order = jaxmom.seed_inputs(0, epochs=2)
      >>> opt = jaxmom.sgd_momentum(0.01, momentum=0.8)
      >>> res = jaxmom.train_scan(opt, params, order, jaxmom.make_dataset(), 2)
      >>> res.step_losses.shape, res.epoch_losses.shape
      ((64,), (2,))
    """
    return training.train_scan(
        opt,
        params,
        order,
        data,
        epochs,
        opt_state,
        value_and_grad=value_and_grad,
        model_state=model_state,
    )


def seed_inputs(seed, *, n: int = 1000, batch_size: int = 32, epochs: int = 12, hidden: int = 20):
    """The initial parameters and batch order of run ``seed`` (an integer or a PRNG key).

    ``key = jax.random.key(seed)`` (or ``seed`` itself when it is a key);
    ``k_params, k_order = jax.random.split(key)``; the parameters are
    ``init_mlp(k_params, hidden)`` and the order ``batch_order(k_order, n, batch_size, epochs)``.
    ``seed`` may be traced (``vmap`` over seeds).

    Args:
      seed: an integer or a PRNG key.
      n, batch_size, epochs: the data set's size and the order's shape.
      hidden: the MLP's width.

    Returns:
      ``(params, order)``: a nested dict and a :class:`jaxmom.BatchOrder`.
    """
    k_params, k_order = _seed_keys(seed)
    return init_mlp(k_params, hidden), batch_order(k_order, n, batch_size, epochs)


def _seed_keys(seed):
    is_key = isinstance(seed, jax.Array) and jax.dtypes.issubdtype(seed.dtype, jax.dtypes.prng_key)
    return jax.random.split(seed if is_key else jax.random.key(seed))


def check_data(data) -> tuple[jax.Array, jax.Array]:
    """``(x, y)`` as arrays, or a ``ValueError`` saying which shapes do not fit."""
    try:
        x, y = data
    except (TypeError, ValueError) as e:
        raise ValueError(f"data must be a pair (x, y), got {type(data).__name__}") from e
    x, y = jnp.asarray(x), jnp.asarray(y)
    if x.ndim != 2 or x.shape[1] != 1:
        raise ValueError(f"x must have shape [n, 1] for the chapter's 1->20->1 MLP, got {x.shape}")
    if y.shape != x.shape:
        raise ValueError(f"y must have the shape of x {x.shape}, got {y.shape}")
    return x, y


def _check_order(order: BatchOrder, n: int, epochs: int) -> BatchOrder:
    indices, mask = jnp.asarray(order.indices), jnp.asarray(order.mask)
    if indices.ndim != 2 or mask.shape != indices.shape:
        raise ValueError(
            f"order.indices and order.mask must both be [steps, batch], "
            f"got {indices.shape} and {mask.shape}"
        )
    if indices.shape[0] % epochs:
        raise ValueError(f"order has {indices.shape[0]} steps, not a multiple of epochs={epochs}")
    if isinstance(indices, jax.core.Tracer):
        return BatchOrder(indices, mask)
    host = np.asarray(indices)
    if host.min() < 0 or host.max() >= n:
        raise ValueError(f"order.indices must lie in [0, {n}), the data set's size")
    return BatchOrder(indices, mask)


_COMPILED: dict = {}  # (jaxpr of opt.update, trees) -> jitted run
_HOISTED: dict = {}  # (id(opt), x64, trees, shapes, dtypes) -> (opt, run, consts); opt kept alive
_HOISTED_MAX = 64


def _jaxpr_fn(closed, out_tree):
    """A function of (consts, *pytrees) that evaluates a jaxpr traced from a function of pytrees."""

    def fn(consts, *trees):
        out = jex_core.jaxpr_as_fun(jex_core.ClosedJaxpr(closed.jaxpr, consts))(
            *jax.tree.leaves(trees)
        )
        return jax.tree.unflatten(out_tree, out)

    return fn


def _make_run(update_closed, update_tree):
    update = _jaxpr_fn(update_closed, update_tree)

    def run(consts, params, opt_state, order, x, y, epochs):
        opt = optax.GradientTransformation(None, functools.partial(update, consts))
        return train_scan(opt, params, order, (x, y), epochs, opt_state=opt_state)

    return _xla.jit(run, static_argnames="epochs")


def _avals(*trees) -> tuple:
    """What of ``trees`` changes a traced program: structure, and every leaf's shape, dtype and
    weak type."""
    leaves, tree = jax.tree.flatten(trees)
    return (tree, *((jnp.shape(a), jnp.result_type(a), _weak(a)) for a in leaves))


def _weak(a) -> bool:
    return isinstance(a, int | float) or bool(getattr(a, "weak_type", False))


def _hoist(opt: optax.GradientTransformation, params, opt_state):
    """A jitted run for ``opt``, and the arrays (beta, learning rate, ...) it takes as inputs.

    ``opt.update`` is traced to a jaxpr whose captured arrays are inputs, so two optimizers
    built alike from different arrays share one compiled program; Python floats are constants
    of the jaxpr, so a new float is a new program. Repeated calls with the same ``opt`` object
    skip the tracing.
    """
    x64 = jax.config.jax_enable_x64  # type: ignore[attr-defined]
    ident = (id(opt), x64, *_avals(params, opt_state))
    if ident in _HOISTED:
        return _HOISTED[ident][1:]
    closed, out = jax.make_jaxpr(opt.update, return_shape=True)(params, opt_state, params)
    tree = jax.tree.structure(out)
    key = (str(closed.jaxpr), jax.tree.structure((params, opt_state)), tree)
    if key not in _COMPILED:
        _COMPILED[key] = _make_run(closed, tree)
    run, consts = _COMPILED[key], list(closed.consts)
    if len(_HOISTED) >= _HOISTED_MAX:
        _HOISTED.pop(next(iter(_HOISTED)))
    _HOISTED[ident] = (opt, run, consts)
    return run, consts


def train(
    opt: optax.GradientTransformation,
    *,
    seed: int = 0,
    epochs: int = 12,
    batch_size: int = 32,
    data: tuple[jax.Array, jax.Array] | None = None,
    params: dict | None = None,
    order: BatchOrder | None = None,
) -> TrainResult:
    """Train the chapter's MLP with ``opt``: one jit-compiled ``lax.scan`` over every step.

    The chapter's set-up by default: its data set (:func:`jaxmom.make_dataset`), its ``Net``
    with PyTorch's init, batches of 32 reshuffled every epoch with the last partial batch kept,
    12 epochs (384 steps).

    Compiled once per data shape and optimizer structure: pass beta and the learning rate as
    JAX arrays (``sgd_momentum(jnp.float32(0.01), jnp.float32(0.8))``) and a second call with
    new values reuses the compiled program; a Python float is a constant of the program.

    Args:
      opt: any optax transformation, e.g. ``jaxmom.sgd_momentum(0.01, 0.8)``.
      seed: derives the initial parameters and the batch order (see :func:`seed_inputs`);
        the data set does not depend on it.
      epochs: number of epochs, >= 1.
      batch_size: points per step, 1 <= batch_size <= n.
      data: ``(x, y)``, both ``[n, 1]``; default the chapter's data set.
      params: initial parameters, overriding the seed's.
      order: batch order, overriding the seed's (its batch size wins over ``batch_size``).

    Returns:
      A :class:`TrainResult` with the final parameters, the loss of each step and of each epoch.
    """
    epochs = check_positive_int(epochs, "epochs")
    x, y = check_data(make_dataset() if data is None else data)
    n = x.shape[0]
    if order is None:
        n, batch_size, epochs = check_order_args(n, batch_size, epochs)
    k_params, k_order = _seed_keys(seed)
    if params is None:
        params = init_mlp(k_params)
    order = (
        batch_order(k_order, n, batch_size, epochs)
        if order is None
        else _check_order(order, n, epochs)
    )
    opt_state = opt.init(params)
    run, consts = _hoist(opt, params, opt_state)
    return run(consts, params, opt_state, order, x, y, epochs=epochs)
