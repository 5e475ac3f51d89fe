"""Heavy-ball momentum as optax gradient transformations.

Three entry points:

* :func:`momentum` — the velocity alone, ``v <- g + beta * v``, to put in any optax chain;
* :func:`sgd_momentum` — ``momentum`` followed by ``scale_by_learning_rate``: ``optax.sgd``;
* :func:`heavy_ball` — the chapter's own rule, ``v <- beta * v + lr * g; x <- x - v``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
from jax.typing import ArrayLike

from jaxmom._checks import check_beta, check_learning_rate

ScalarOrSchedule = ArrayLike | Callable[[ArrayLike], ArrayLike]


class MomentumState(NamedTuple):
    """State of :func:`momentum`.

    Attributes:
      velocity: the running velocity ``v``, a pytree shaped like the parameters.
      count: the number of updates so far when ``beta`` is a schedule, else ``None``.
    """

    velocity: optax.Updates
    count: jax.Array | None = None


def _cast_like(beta, leaf):
    """``beta`` in the leaf's floating dtype, as a Python float is under weak typing.

    Without the cast a float32 ``beta`` array would promote a bfloat16 velocity to float32.
    """
    if isinstance(beta, int | float) or not jnp.issubdtype(leaf.dtype, jnp.inexact):
        return beta
    return jnp.asarray(beta).astype(leaf.dtype)


def momentum(
    beta: ScalarOrSchedule,
    *,
    nesterov: bool = False,
    accumulator_dtype: Any | None = None,
) -> optax.GradientTransformation:
    r"""Heavy-ball momentum: accumulate a velocity of past gradients.

    .. math::

      v_{t+1} = g_t + \beta v_t, \qquad u_t = v_{t+1}
      \quad (\text{Nesterov: } u_t = g_t + \beta v_{t+1}),

    with :math:`v_0 = 0`. Chained with ``optax.scale_by_learning_rate(lr)`` this is
    ``optax.sgd(lr, momentum=beta)`` and ``torch.optim.SGD(lr=lr, momentum=beta)`` (torch starts
    its buffer at the first gradient, which is the same as starting at zero).

    Args:
      beta: the momentum coefficient, in [0, 1]. A Python float, a JAX array (it may be traced
        under ``jit``/``vmap``: one compiled program then serves every value), or a schedule
        ``step -> beta``, in which case the state carries the step count. ``beta = 0`` is
        gradient descent; ``beta = 1`` is the chapter's frictionless bowl, which never
        converges. Concrete values are checked (finite, in [0, 1]); traced values and the
        values a schedule returns cannot be checked and are used as they are.
      nesterov: use Nesterov's look-ahead update ``g + beta * v``.
      accumulator_dtype: dtype of the velocity; ``None`` infers it from the parameters.

    Returns:
      An :class:`optax.GradientTransformation` whose state is a :class:`MomentumState`.

    Raises:
      ValueError: if a concrete ``beta`` is not finite or lies outside [0, 1].

    Example:
      >>> import jax.numpy as jnp, optax, jaxmom
      >>> tx = optax.chain(jaxmom.momentum(0.9), optax.scale(-0.01))
      >>> params = {"w": jnp.ones(3)}
      >>> state = tx.init(params)
      >>> updates, state = tx.update({"w": jnp.ones(3)}, state)
      >>> params = optax.apply_updates(params, updates)

    References:
      Polyak, *Some methods of speeding up the convergence of iteration methods*, 1964.
      Sutskever et al., *On the importance of initialization and momentum in deep learning*,
      ICML 2013. The textbook chapter "第五章 动量方法", section 5.2.
    """
    check_beta(beta)
    if accumulator_dtype is not None:
        accumulator_dtype = jax.dtypes.canonicalize_dtype(accumulator_dtype)
    is_schedule = callable(beta)

    def init_fn(params):
        velocity = optax.tree.zeros_like(params, dtype=accumulator_dtype)
        count = jnp.zeros([], jnp.int32) if is_schedule else None
        return MomentumState(velocity=velocity, count=count)

    def update_fn(updates, state, params=None):
        del params
        if is_schedule:
            b = beta(state.count)
            count = optax.safe_increment(state.count)
        else:
            b, count = beta, None

        def accumulate(g, v):
            return g + _cast_like(b, v) * v

        velocity = jax.tree.map(
            lambda g, v: None if g is None else accumulate(g, v),
            updates,
            state.velocity,
            is_leaf=lambda g: g is None,
        )
        updates = jax.tree.map(accumulate, updates, velocity) if nesterov else velocity
        velocity = optax.tree.cast(velocity, accumulator_dtype)
        return updates, MomentumState(velocity=velocity, count=count)

    return optax.GradientTransformation(init_fn, update_fn)


def _scale_by(learning_rate: ScalarOrSchedule, *, flip_sign: bool):
    check_learning_rate(learning_rate)
    return optax.scale_by_learning_rate(learning_rate, flip_sign=flip_sign)


def sgd_momentum(
    learning_rate: ScalarOrSchedule,
    beta: ScalarOrSchedule = 0.9,
    *,
    nesterov: bool = False,
) -> optax.GradientTransformation:
    r"""Stochastic gradient descent with heavy-ball momentum, as ``optax.sgd`` does it.

    .. math::

      v_{t+1} = g_t + \beta v_t, \qquad x_{t+1} = x_t - \alpha_t v_{t+1}.

    Equal to ``optax.sgd(learning_rate, momentum=beta, nesterov=nesterov)`` and to
    ``torch.optim.SGD(lr=learning_rate, momentum=beta, nesterov=nesterov)``.

    Args:
      learning_rate: :math:`\alpha`, finite and > 0; a float, a (possibly traced) array, or a
        schedule ``step -> learning_rate``. Traced values and schedules are not checked.
      beta: the momentum coefficient; see :func:`momentum`.
      nesterov: use Nesterov's look-ahead update.

    Returns:
      An :class:`optax.GradientTransformation`.

    Raises:
      ValueError: on a concrete learning rate that is not finite and > 0, or a bad ``beta``.

    Example:
      >>> import jaxmom
      >>> opt = jaxmom.sgd_momentum(0.01, beta=0.8)   # the chapter's torch.optim.SGD
    """
    return optax.chain(
        momentum(beta, nesterov=nesterov),
        _scale_by(learning_rate, flip_sign=True),
    )


def heavy_ball(
    learning_rate: ScalarOrSchedule,
    beta: ScalarOrSchedule = 0.9,
) -> optax.GradientTransformation:
    r"""The chapter's own momentum rule (section 5.5.1): the learning rate inside the velocity.

    .. math::

      v_{t+1} = \beta v_t + \alpha_t g_t, \qquad x_{t+1} = x_t - v_{t+1}.

    It is ``chain(scale(lr), momentum(beta), scale(-1))``. For a constant learning rate it equals
    :func:`sgd_momentum`, since then :math:`v^{hb}_t = \alpha v_t`. Under a schedule they differ:
    here each past gradient keeps the learning rate of the step that produced it,
    :math:`x_{t+1} - x_t = -\sum_{s \le t} \beta^{t-s} \alpha_s g_s`, whereas
    :func:`sgd_momentum` rescales the whole velocity by the current one,
    :math:`-\alpha_t \sum_{s \le t} \beta^{t-s} g_s`.

    Args:
      learning_rate: :math:`\alpha`, finite and > 0, or a schedule ``step -> learning_rate``.
      beta: the momentum coefficient; see :func:`momentum`.

    Returns:
      An :class:`optax.GradientTransformation`.

    Raises:
      ValueError: on a concrete learning rate that is not finite and > 0, or a bad ``beta``.

    Example:
      >>> import jaxmom
      >>> opt = jaxmom.heavy_ball(0.01, beta=0.8)    # sgd_momentum(parameters, vs, 1e-2, 0.8)

    References:
      The textbook chapter "第五章 动量方法", sections 5.2.1 and 5.5.1.
    """
    return optax.chain(
        _scale_by(learning_rate, flip_sign=False),
        momentum(beta),
        optax.scale(-1.0),
    )
