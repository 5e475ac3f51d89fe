"""Optimizers built from :func:`jaxmom.momentum`, as optax's ``alias.py`` builds ``optax.sgd``.

* :func:`sgd_momentum` — ``momentum`` then ``scale_by_learning_rate``: ``optax.sgd`` (same state)
  and ``torch.optim.SGD`` (every option);
* :func:`heavy_ball` — the chapter's own rule, ``v <- beta * v + lr * g; x <- x - v``.
"""

from __future__ import annotations

from typing import Any

import jax
import optax
from jax.typing import ArrayLike

from jaxmom.common import check_bool, check_learning_rate
from jaxmom.optim._transform import DEFAULT_BETA, ScalarOrSchedule, is_static_zero, resolve_beta
from jaxmom.optim._transform import momentum as _momentum


def _torch_gradient(
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
            updates = jax.tree.map(
                lambda g, p: None if g is None else g + weight_decay * p,
                updates,
                params,
                is_leaf=lambda g: g is None,
            )
        return tx.update(updates, state, params)

    return optax.GradientTransformation(tx.init, update_fn)


def _learning_rate(learning_rate: ScalarOrSchedule, *, flip_sign: bool):
    check_learning_rate(learning_rate)
    return optax.scale_by_learning_rate(learning_rate, flip_sign=flip_sign)


def _keep_dtypes(tx: optax.GradientTransformation) -> optax.GradientTransformation:
    """``tx`` whose updates keep the dtypes of the incoming updates (a float32 learning rate
    times a bfloat16 gradient stays bfloat16), so the state after it keeps its dtype too."""

    def update_fn(updates, state, params=None):
        new, state = tx.update(updates, state, params)
        return jax.tree.map(lambda n, g: n.astype(g.dtype), new, updates), state

    return optax.GradientTransformation(tx.init, update_fn)


def check_given(beta):
    """``beta`` unless it is ``None``: optax's ``momentum=None`` (no momentum) is ``beta=0``
    here, and a ``None`` beta is refused rather than taken for the default."""
    if beta is None:
        raise TypeError(
            "beta must be a number, an array or a schedule, got None (no momentum: beta=0)"
        )
    return beta


def sgd_momentum(
    learning_rate: ScalarOrSchedule,
    beta: ScalarOrSchedule = DEFAULT_BETA,  # type: ignore[assignment]
    *,
    momentum: ScalarOrSchedule | None = None,
    nesterov: bool = False,
    dampening: ArrayLike | None = None,
    weight_decay: ArrayLike | None = None,
    maximize: bool = False,
    accumulator_dtype: Any | None = None,
) -> optax.GradientTransformation:
    r"""Stochastic gradient descent with heavy-ball momentum, as ``optax.sgd`` does it.

    .. math::

      v_{t+1} = g_t + \beta v_t, \qquad x_{t+1} = x_t - \alpha_t v_{t+1}.

    Equal to ``optax.sgd(learning_rate, momentum=beta, nesterov=nesterov,
    accumulator_dtype=accumulator_dtype)``, with the same state (``(TraceState(trace),
    EmptyState())``, or ``ScaleByScheduleState`` for a learning-rate schedule), so checkpoints
    move between the two; and to ``torch.optim.SGD(lr=learning_rate, momentum=beta,
    dampening=dampening, weight_decay=weight_decay, nesterov=nesterov, maximize=maximize)``,
    where the gradient is first negated (``maximize``), then gets ``weight_decay * params``.

    Args:
      learning_rate: :math:`\alpha`, finite and >= 0 (0 is legal: warmup schedules start
        there; a negative rate is refused, as torch refuses it); a float, a (possibly traced)
        array, or a schedule ``step -> learning_rate``. Traced values and schedules are not
        checked.
      beta: the momentum coefficient (default 0.9); see :func:`jaxmom.momentum`. Under
        ``optax.inject_hyperparams`` it is a hyperparameter when given (by either name).
      momentum: ``beta`` by ``optax.sgd``'s name; give one of the two.
      nesterov: use Nesterov's look-ahead update.
      dampening: torch's dampening; see :func:`momentum`.
      weight_decay: torch's L2 penalty, ``g <- g + weight_decay * params`` before momentum
        (``update`` then needs ``params``). ``None`` or a Python 0: none, and the state and
        updates are ``optax.sgd``'s; an array may be traced (``inject_hyperparams`` can
        schedule it). Concrete values must be finite and >= 0.
      maximize: ascend the objective, as torch's ``maximize=True`` (the gradient is negated).
      accumulator_dtype: dtype of the velocity; ``None`` infers it from the parameters.

    Returns:
      An :class:`optax.GradientTransformation`: ``chain(momentum(...), scale_by_learning_rate)``,
      ``momentum`` being fed torch's gradient when ``weight_decay`` or ``maximize`` is set.

    Raises:
      TypeError: on arguments of the wrong type (a string, a list, ``None`` where a number is
        needed, a non-bool ``nesterov`` or ``maximize``).
      ValueError: on a concrete learning rate or weight decay that is not finite and >= 0, or a
        bad ``beta`` or ``dampening``.

    Examples:
      >>> import jaxmom
      >>> opt = jaxmom.sgd_momentum(0.01, beta=0.8)   # the chapter's torch.optim.SGD
    """
    if not is_static_zero(weight_decay):
        check_learning_rate(weight_decay, "weight_decay")
    beta = resolve_beta("sgd_momentum", DEFAULT_BETA, beta=check_given(beta), momentum=momentum)
    tx = _momentum(
        beta, nesterov=nesterov, dampening=dampening, accumulator_dtype=accumulator_dtype
    )
    tx = _torch_gradient(tx, weight_decay, check_bool(maximize, "maximize"))
    return optax.chain(tx, _learning_rate(learning_rate, flip_sign=True))


def heavy_ball(
    learning_rate: ScalarOrSchedule,
    beta: ScalarOrSchedule = DEFAULT_BETA,  # type: ignore[assignment]
    *,
    momentum: ScalarOrSchedule | None = None,
    nesterov: bool = False,
    accumulator_dtype: Any | None = None,
) -> optax.GradientTransformation:
    r"""The chapter's own momentum rule (section 5.5.1): the learning rate inside the velocity.

    .. math::

      v_{t+1} = \beta v_t + \alpha_t g_t, \qquad x_{t+1} = x_t - v_{t+1}
      \quad (\text{Nesterov: } x_{t+1} = x_t - (\beta v_{t+1} + \alpha_t g_t)).

    It is ``chain(scale(lr), momentum(beta), scale(-1))``. For a constant learning rate it equals
    :func:`sgd_momentum`, since then :math:`v^{hb}_t = \alpha v_t`. Under a schedule they differ:
    here each past gradient keeps the learning rate of the step that produced it,
    :math:`x_{t+1} - x_t = -\sum_{s \le t} \beta^{t-s} \alpha_s g_s`, whereas
    :func:`sgd_momentum` rescales the whole velocity by the current one,
    :math:`-\alpha_t \sum_{s \le t} \beta^{t-s} g_s`. The scaled gradient keeps the
    gradient's dtype whatever the learning rate's, so a bfloat16 velocity stays bfloat16.

    Args:
      learning_rate: :math:`\alpha`, finite and >= 0, or a schedule ``step -> learning_rate``.
      beta: the momentum coefficient (default 0.9); see :func:`jaxmom.momentum`.
      momentum: ``beta`` by ``optax.sgd``'s name; give one of the two.
      nesterov: step by the look-ahead ``beta * v + lr * g`` instead of ``v``.
      accumulator_dtype: dtype of the velocity; ``None`` infers it from the parameters.

    Returns:
      An :class:`optax.GradientTransformation`.

    Raises:
      TypeError: on arguments of the wrong type.
      ValueError: on a concrete learning rate that is not finite and >= 0, or a bad ``beta``.

    Examples:
      >>> import jaxmom
      >>> opt = jaxmom.heavy_ball(0.01, beta=0.8)  # the chapter: v <- 0.8 v + 0.01 g; x <- x - v

    References:
      The textbook chapter "第五章 动量方法", sections 5.2.1 and 5.5.1.
    """
    beta = resolve_beta("heavy_ball", DEFAULT_BETA, beta=check_given(beta), momentum=momentum)
    return optax.chain(
        _keep_dtypes(_learning_rate(learning_rate, flip_sign=False)),
        _momentum(beta, nesterov=nesterov, accumulator_dtype=accumulator_dtype),
        optax.scale(-1.0),
    )
