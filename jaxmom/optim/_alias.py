"""Optimizers built from :func:`jaxmom.momentum`, as optax's ``alias.py`` builds ``optax.sgd``.

* :func:`sgd_momentum` — ``momentum`` then ``scale_by_learning_rate``: ``optax.sgd`` (same state)
  and ``torch.optim.SGD`` (every option);
* :func:`heavy_ball` — the chapter's own rule, ``v <- beta * v + lr * g; x <- x - v``.
"""

from __future__ import annotations

from typing import Any

import optax
from jax.typing import ArrayLike

from jaxmom.common import check_learning_rate
from jaxmom.optim._pieces import descend, keep_dtypes, scale_by_rate
from jaxmom.optim._transform import DEFAULT_BETA, ScalarOrSchedule, is_static_zero, resolve_beta
from jaxmom.optim._transform import momentum as _momentum


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
    return descend(tx, learning_rate, weight_decay, decouple=False, maximize=maximize)


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
        keep_dtypes(scale_by_rate(learning_rate, flip_sign=False)),
        _momentum(beta, nesterov=nesterov, accumulator_dtype=accumulator_dtype),
        optax.scale(-1.0),
    )
