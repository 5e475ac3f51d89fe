"""Pieces every optimizer of :mod:`jaxmom.optim` is built from: torch's gradient (``maximize``,
L2 weight decay), decoupled weight decay, the learning rate, and a ``None``-aware tree map."""

from __future__ import annotations

import jax
import optax

from jaxmom.common import check_bool, check_learning_rate
from jaxmom.optim._transform import ScalarOrSchedule, is_static_zero


def map_grads(fn, updates, *rest):
    """``jax.tree.map(fn, updates, *rest)`` that keeps ``None`` gradients ``None`` (optax lets a
    leaf of the updates be ``None``: a parameter that is not trained)."""
    return jax.tree.map(
        lambda g, *r: None if g is None else fn(g, *r), updates, *rest, is_leaf=lambda g: g is None
    )


def torch_gradient(
    tx: optax.GradientTransformation, weight_decay, maximize: bool
) -> optax.GradientTransformation:
    """``tx`` fed torch's gradient, ``(-g if maximize else g) + weight_decay * params``, with
    ``tx``'s own state (no element of its own in a chain, so ``optax.sgd``'s state stays)."""
    decays = not is_static_zero(weight_decay)
    if not (decays or maximize):
        return tx

    def update_fn(updates, state, params=None):
        if maximize:
            updates = jax.tree.map(lambda g: -g, updates)
        if decays:
            if params is None:
                raise ValueError(
                    f"weight_decay={weight_decay!r} needs the parameters: call "
                    "update(grads, state, params)"
                )
            updates = map_grads(lambda g, p: g + weight_decay * p, updates, params)
        return tx.update(updates, state, params)

    return optax.GradientTransformation(tx.init, update_fn)


def scale_by_rate(learning_rate: ScalarOrSchedule, *, flip_sign: bool):
    """``optax.scale_by_learning_rate`` of a checked learning rate."""
    check_learning_rate(learning_rate)
    return optax.scale_by_learning_rate(learning_rate, flip_sign=flip_sign)


def keep_dtypes(tx: optax.GradientTransformation) -> optax.GradientTransformation:
    """``tx`` whose updates keep the dtypes of the incoming updates (a float32 learning rate
    times a bfloat16 gradient stays bfloat16), so the state after it keeps its dtype too."""

    def update_fn(updates, state, params=None):
        new, state = tx.update(updates, state, params)
        return map_grads(lambda g, n: n.astype(g.dtype), updates, new), state

    return optax.GradientTransformation(tx.init, update_fn)


def descend(
    direction: optax.GradientTransformation,
    learning_rate: ScalarOrSchedule,
    weight_decay,
    *,
    decouple: bool,
    maximize: bool,
) -> optax.GradientTransformation:
    """The step ``-learning_rate * direction(torch's gradient)``, with weight decay either added
    to the gradient (L2, torch's ``weight_decay``) or, ``decouple=True``, to the direction
    (``p <- p (1 - lr wd) - lr d``: qhoptim's ``weight_decay_type="direct"``, AdamW's decay).

    ``weight_decay`` ``None`` or a Python 0 adds no element to the chain's state.
    """
    decouple = check_bool(decouple, "decouple_weight_decay")
    maximize = check_bool(maximize, "maximize")
    decays = not is_static_zero(weight_decay)
    if decays:
        check_learning_rate(weight_decay, "weight_decay")
    if decays and decouple:
        tx = optax.chain(
            torch_gradient(direction, None, maximize), optax.add_decayed_weights(weight_decay)
        )
    else:
        tx = torch_gradient(direction, weight_decay, maximize)
    return optax.chain(tx, scale_by_rate(learning_rate, flip_sign=True))
