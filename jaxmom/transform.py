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

from jaxmom._checks import check_beta, check_bool, check_learning_rate

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
    dampening: ArrayLike = 0.0,
    accumulator_dtype: Any | None = None,
) -> optax.GradientTransformation:
    r"""Heavy-ball momentum: accumulate a velocity of past gradients.

    .. math::

      v_1 = g_0, \qquad v_{t+1} = \beta v_t + (1 - d)\, g_t, \qquad u_t = v_{t+1}
      \quad (\text{Nesterov: } u_t = g_t + \beta v_{t+1}),

    with the dampening :math:`d = 0` by default, when this is ``v <- g + beta * v`` from
    :math:`v_0 = 0`: ``optax.trace``. Chained with ``optax.scale_by_learning_rate(lr)`` it is
    ``optax.sgd(lr, momentum=beta)`` and ``torch.optim.SGD(lr=lr, momentum=beta,
    dampening=d)``: like torch, the first step keeps the whole gradient, undamped.

    Args:
      beta: the momentum coefficient, in [0, 1]. A Python float, a JAX array (it may be traced
        under ``jit``/``vmap``: one compiled program then serves every value), or a schedule
        ``step -> beta``, in which case the state carries the step count. ``beta = 0`` is
        gradient descent; ``beta = 1`` is the chapter's frictionless bowl, which never
        converges. Concrete values are checked (finite, in [0, 1], after the cast to the dtype
        they run in); traced values and the values a schedule returns are used as they are.
      nesterov: use Nesterov's look-ahead update ``g + beta * v``.
      dampening: torch's dampening ``d`` in [0, 1]. Any value other than a concrete 0 makes
        the state carry the step count (the first step is not damped, nor any step with
        ``beta = 0``, where torch keeps no buffer). Nesterov momentum with dampening is
        refused, as torch refuses it.
      accumulator_dtype: dtype of the velocity; ``None`` infers it from the parameters.

    Returns:
      An :class:`optax.GradientTransformation` whose state is a :class:`MomentumState`. Its
      ``update`` raises ``ValueError`` when given a state made for another configuration (a
      restored state without a step count where this one needs it, or the reverse).

    Raises:
      TypeError: if ``beta`` or ``dampening`` is not a number, an array or (``beta``) a
        schedule, or ``nesterov`` is not a bool.
      ValueError: if a concrete ``beta`` or ``dampening`` is not finite or lies outside [0, 1],
        or ``nesterov`` is combined with a nonzero dampening.

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
    if callable(dampening):
        raise TypeError(f"dampening must be a number or a scalar array, got {dampening!r}")
    damp = check_beta(dampening, "dampening")
    nesterov = check_bool(nesterov, "nesterov")
    undamped = damp is not None and damp == 0
    if nesterov and not undamped:
        raise ValueError(
            f"nesterov=True needs dampening=0 (as torch.optim.SGD), got dampening={dampening!r}"
        )
    if accumulator_dtype is not None:
        accumulator_dtype = jax.dtypes.canonicalize_dtype(accumulator_dtype)
    is_schedule = callable(beta)
    counts = is_schedule or not undamped

    def init_fn(params):
        velocity = optax.tree.zeros_like(params, dtype=accumulator_dtype)
        count = jnp.zeros([], jnp.int32) if counts else None
        return MomentumState(velocity=velocity, count=count)

    def update_fn(updates, state, params=None):
        del params
        _check_state(state, counts, is_schedule)
        b = beta(state.count) if is_schedule else beta
        if undamped:
            accumulate = lambda g, v: g + _cast_like(b, v) * v  # noqa: E731
        else:  # torch: the first buffer is the gradient itself, then beta*v + (1 - d)*g;
            # with beta = 0 torch keeps no buffer and steps by the undamped gradient
            undamped_now = (state.count == 0) | (jnp.asarray(b) == 0)
            scale = jnp.where(undamped_now, 1.0, 1.0 - jnp.asarray(dampening))
            accumulate = lambda g, v: _cast_like(scale, g) * g + _cast_like(b, v) * v  # noqa: E731
        velocity = jax.tree.map(
            lambda g, v: None if g is None else accumulate(g, v),
            updates,
            state.velocity,
            is_leaf=lambda g: g is None,
        )
        # Nesterov is undamped (refused otherwise), so its look-ahead is ``accumulate`` again
        updates = jax.tree.map(accumulate, updates, velocity) if nesterov else velocity
        velocity = optax.tree.cast(velocity, accumulator_dtype)
        count = optax.safe_increment(state.count) if counts else None
        return updates, MomentumState(velocity=velocity, count=count)

    return optax.GradientTransformation(init_fn, update_fn)


def _check_state(state, counts: bool, is_schedule: bool) -> None:
    """A restored state must fit the optimizer: a step count exactly when it needs one."""
    if not (hasattr(state, "velocity") and hasattr(state, "count")):
        raise TypeError(f"momentum's state must be a MomentumState, got {type(state).__name__}")
    if counts and state.count is None:
        why = "beta is a schedule" if is_schedule else "dampening is set"
        raise ValueError(
            f"this momentum's {why}, so its state needs a step count, but the state given has "
            "count=None: it was made by a momentum with a constant beta and no dampening (a "
            "restored checkpoint?). Restore into this optimizer's own tx.init(params), or set "
            "the count: state._replace(count=jnp.asarray(steps_done, jnp.int32))"
        )
    if not counts and state.count is not None:
        raise ValueError(
            "this momentum has a constant beta and no dampening, so its state has no step "
            f"count, but the state given has count={state.count}: it was made by a momentum "
            "with a beta schedule or dampening (a restored checkpoint?). Build the optimizer "
            "with the same beta and dampening, or drop the count: state._replace(count=None)"
        )


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


def sgd_momentum(
    learning_rate: ScalarOrSchedule,
    beta: ScalarOrSchedule = 0.9,
    *,
    nesterov: bool = False,
    dampening: ArrayLike = 0.0,
    accumulator_dtype: Any | None = None,
) -> optax.GradientTransformation:
    r"""Stochastic gradient descent with heavy-ball momentum, as ``optax.sgd`` does it.

    .. math::

      v_{t+1} = g_t + \beta v_t, \qquad x_{t+1} = x_t - \alpha_t v_{t+1}.

    Equal to ``optax.sgd(learning_rate, momentum=beta, nesterov=nesterov,
    accumulator_dtype=accumulator_dtype)`` and to ``torch.optim.SGD(lr=learning_rate,
    momentum=beta, dampening=dampening, nesterov=nesterov)``.

    Args:
      learning_rate: :math:`\alpha`, finite and >= 0 (0 is legal: warmup schedules start
        there; a negative rate is refused, as torch refuses it); a float, a (possibly traced)
        array, or a schedule ``step -> learning_rate``. Traced values and schedules are not
        checked.
      beta: the momentum coefficient; see :func:`momentum`.
      nesterov: use Nesterov's look-ahead update.
      dampening: torch's dampening; see :func:`momentum`.
      accumulator_dtype: dtype of the velocity; ``None`` infers it from the parameters.

    Returns:
      An :class:`optax.GradientTransformation`.

    Raises:
      TypeError: on arguments of the wrong type (a string, a list, ``None``).
      ValueError: on a concrete learning rate that is not finite and >= 0, or a bad ``beta``
        or ``dampening``.

    Example:
      >>> import jaxmom
      >>> opt = jaxmom.sgd_momentum(0.01, beta=0.8)   # the chapter's torch.optim.SGD
    """
    return optax.chain(
        momentum(beta, nesterov=nesterov, dampening=dampening, accumulator_dtype=accumulator_dtype),
        _learning_rate(learning_rate, flip_sign=True),
    )


def heavy_ball(
    learning_rate: ScalarOrSchedule,
    beta: ScalarOrSchedule = 0.9,
    *,
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
      beta: the momentum coefficient; see :func:`momentum`.
      nesterov: step by the look-ahead ``beta * v + lr * g`` instead of ``v``.
      accumulator_dtype: dtype of the velocity; ``None`` infers it from the parameters.

    Returns:
      An :class:`optax.GradientTransformation`.

    Raises:
      TypeError: on arguments of the wrong type.
      ValueError: on a concrete learning rate that is not finite and >= 0, or a bad ``beta``.

    Example:
      >>> import jaxmom
      >>> opt = jaxmom.heavy_ball(0.01, beta=0.8)  # the chapter: v <- 0.8 v + 0.01 g; x <- x - v

    References:
      The textbook chapter "第五章 动量方法", sections 5.2.1 and 5.5.1.
    """
    return optax.chain(
        _keep_dtypes(_learning_rate(learning_rate, flip_sign=False)),
        momentum(beta, nesterov=nesterov, accumulator_dtype=accumulator_dtype),
        optax.scale(-1.0),
    )
