"""Heavy-ball momentum as an optax gradient transformation: :func:`momentum`, the velocity
``v <- g + beta * v`` (``optax.trace``, state and all) with torch's dampening and beta schedules,
to put in any optax chain. The optimizers built from it are in :mod:`jaxmom.optim`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
from jax.typing import ArrayLike

from jaxmom.common import check_beta, check_bool

ScalarOrSchedule = ArrayLike | Callable[[ArrayLike], ArrayLike]


class MomentumState(NamedTuple):
    """State of :func:`momentum` where optax has no equivalent: a beta schedule or dampening.

    Every other configuration keeps ``optax.TraceState(trace)``, ``optax.trace``'s own state, so
    that checkpoints move between ``optax.sgd`` and :func:`sgd_momentum` both ways.

    Attributes:
      velocity: the running velocity ``v``, a pytree shaped like the parameters.
      count: the number of updates so far (int32), which a schedule and torch's undamped first
        step need.
    """

    velocity: optax.Updates
    count: jax.Array | None = None  # type: ignore[assignment]  # a field, not tuple.count


def is_static_zero(value) -> bool:
    """``None`` or a Python number equal to 0: an option that is off, known without tracing.

    Arrays (concrete or traced) never count as off, whatever their value, so that a state's
    shape never depends on a value ``jit`` or ``optax.inject_hyperparams`` may trace.
    """
    return value is None or (isinstance(value, int | float) and value == 0)


def value_at(value: ScalarOrSchedule, count) -> Any:
    """A hyperparameter at step ``count``: a schedule's value there, else the value itself."""
    return value(count) if callable(value) else value


class Default:
    """A coefficient's default when none is given (``DEFAULT_BETA`` is 0.9). Not a number, so
    that ``optax.inject_hyperparams`` leaves it out of the hyperparameters, as it leaves out
    ``optax.sgd``'s ``momentum=None``: a coefficient given by any of its names is one."""

    def __init__(self, value: float):
        self.value = value

    def __repr__(self) -> str:
        return repr(self.value)


#: ``beta``'s default in :func:`jaxmom.sgd_momentum` and :func:`jaxmom.heavy_ball`.
DEFAULT_BETA = Default(0.9)


def resolve_beta(fn: str, default, **spellings):
    """The momentum coefficient given by one of its names (``beta``, optax's ``momentum`` or
    ``decay``), else ``default``; two at once is a ``TypeError`` naming both. Only ``None``
    counts as not given, so a traced value (``inject_hyperparams``) is fine."""
    given = {k: v for k, v in spellings.items() if v is not None and not isinstance(v, Default)}
    if len(given) > 1:
        names = " and ".join(f"{k}=" for k in given)
        raise TypeError(f"{fn}() got {names}: they name the same coefficient, give one")
    if not given:
        if default is None:
            raise TypeError(f"{fn}() needs the momentum coefficient: {'= or '.join(spellings)}=")
        return default.value if isinstance(default, Default) else default
    return next(iter(given.values()))


def momentum(
    beta: ScalarOrSchedule | None = None,
    *,
    decay: ScalarOrSchedule | None = None,
    momentum: ScalarOrSchedule | None = None,
    nesterov: bool = False,
    dampening: ArrayLike | None = None,
    accumulator_dtype: Any | None = None,
) -> optax.GradientTransformation:
    r"""Heavy-ball momentum: accumulate a velocity of past gradients.

    .. math::

      v_1 = g_0, \qquad v_{t+1} = \beta v_t + (1 - d)\, g_t, \qquad u_t = v_{t+1}
      \quad (\text{Nesterov: } u_t = g_t + \beta v_{t+1}),

    with no dampening (:math:`d = 0`) by default, when this is ``v <- g + beta * v`` from
    :math:`v_0 = 0`: ``optax.trace``, state and all. Chained with
    ``optax.scale_by_learning_rate(lr)`` it is ``optax.sgd(lr, momentum=beta)`` and
    ``torch.optim.SGD(lr=lr, momentum=beta, dampening=d)``: like torch, the first step keeps the
    whole gradient, undamped.

    The state's shape is decided by the configuration alone, never by the value of an array (which
    ``jit`` or ``optax.inject_hyperparams`` may trace): ``optax.TraceState(trace)`` unless
    ``beta`` is a schedule or ``dampening`` is given as anything but ``None`` or a Python 0, when
    it is a :class:`MomentumState` with a step count.

    Args:
      beta: the momentum coefficient, in [0, 1]. A Python float, a JAX array (it may be traced
        under ``jit``/``vmap``: one compiled program then serves every value), or a schedule
        ``step -> beta``, in which case the state carries the step count. ``beta = 0`` is
        gradient descent; ``beta = 1`` is the chapter's frictionless bowl, which never
        converges. Concrete values are checked (finite, in [0, 1], after the cast to the dtype
        they run in); traced values and the values a schedule returns are used as they are.
      decay, momentum: ``beta`` by optax's names (``optax.trace(decay)``,
        ``optax.sgd(momentum=)``); give exactly one of the three.
      nesterov: use Nesterov's look-ahead update ``g + beta * v``.
      dampening: torch's dampening ``d`` in [0, 1]. ``None`` or a Python 0: none. Any other
        value, arrays included (they may be traced: one program for every ``d``), makes the
        state carry the step count (the first step is not damped, nor any step with
        ``beta = 0``, where torch keeps no buffer). Nesterov momentum with dampening is refused,
        as torch refuses it; an array ``dampening`` with ``nesterov`` is refused too, since its
        value may be unknown.
      accumulator_dtype: dtype of the velocity; ``None`` infers it from the parameters. Under
        ``optax.inject_hyperparams`` give it as a string (``"bfloat16"``): a dtype class is
        callable and would be taken for a schedule (as for ``optax.sgd``).

    Returns:
      An :class:`optax.GradientTransformation` whose state is ``optax.TraceState`` or a
      :class:`MomentumState` (see above). Its ``update`` raises ``ValueError`` when given a state
      made for another configuration, saying how to convert it.

    Raises:
      TypeError: if ``beta`` or ``dampening`` is not a number, an array or (``beta``) a
        schedule, ``nesterov`` is not a bool, or not exactly one of ``beta``, ``decay`` and
        ``momentum`` is given.
      ValueError: if a concrete ``beta`` or ``dampening`` is not finite or lies outside [0, 1],
        or ``nesterov`` is combined with a dampening that is not ``None`` or 0.

    Examples:
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
    beta = resolve_beta("momentum", None, beta=beta, decay=decay, momentum=momentum)
    check_beta(beta)
    if callable(dampening):
        raise TypeError(f"dampening must be a number or a scalar array, got {dampening!r}")
    undamped = is_static_zero(dampening)
    if not undamped:
        check_beta(dampening, "dampening")
    nesterov = check_bool(nesterov, "nesterov")
    if nesterov and not undamped:
        raise ValueError(
            "nesterov=True needs no dampening (as torch.optim.SGD): dampening=None or 0, got "
            f"dampening={dampening!r} (an array may be nonzero; under inject_hyperparams put "
            "'dampening' in static_args)"
        )
    if accumulator_dtype is not None:
        accumulator_dtype = jax.dtypes.canonicalize_dtype(accumulator_dtype)
    is_schedule = callable(beta)
    counts = is_schedule or not undamped

    def init_fn(params):
        velocity = optax.tree.zeros_like(params, dtype=accumulator_dtype)
        if counts:
            return MomentumState(velocity=velocity, count=jnp.zeros([], jnp.int32))
        return optax.TraceState(trace=velocity)

    def update_fn(updates, state, params=None):
        del params
        _check_state(state, counts, is_schedule)
        b = value_at(beta, state.count)
        if undamped:
            accumulate = lambda g, v: g + b * v  # noqa: E731
        else:  # torch: the first buffer is the gradient itself, then beta*v + (1 - d)*g;
            # with beta = 0 torch keeps no buffer and steps by the undamped gradient
            undamped_now = (state.count == 0) | (jnp.asarray(b) == 0)
            scale = jnp.where(undamped_now, 1.0, 1.0 - jnp.asarray(dampening))
            accumulate = lambda g, v: scale * g + b * v  # noqa: E731
        old = state.velocity if counts else state.trace
        new = jax.tree.map(
            lambda g, v: None if g is None else accumulate(g, v),
            updates,
            old,
            is_leaf=lambda g: g is None,
        )
        # Nesterov is undamped (refused otherwise), so its look-ahead is ``accumulate`` again
        updates = jax.tree.map(accumulate, updates, new) if nesterov else new
        # computed as optax.trace computes it, kept in the state's dtype (accumulator_dtype, or
        # the parameters'): a float32 beta array does not turn a bfloat16 state into float32
        velocity = jax.tree.map(
            lambda n, v: None if n is None else n.astype(v.dtype),
            new,
            old,
            is_leaf=lambda n: n is None,
        )
        if counts:
            return updates, MomentumState(velocity, optax.safe_increment(state.count))
        return updates, optax.TraceState(trace=velocity)

    return optax.GradientTransformation(init_fn, update_fn)


def _check_state(state, counts: bool, is_schedule: bool) -> None:
    """A restored state must fit the optimizer: a step count exactly when it needs one."""
    fields = getattr(state, "_fields", ())
    why = "beta is a schedule" if is_schedule else "dampening is set"
    if counts and "velocity" in fields and state.count is None:
        raise ValueError(
            f"this momentum's {why}, so its state needs a step count, but the state given has "
            "count=None (a checkpoint of jaxmom 0.2?). Restore into this optimizer's own "
            "tx.init(params), or set the count: "
            "state._replace(count=jnp.asarray(steps_done, jnp.int32))"
        )
    if counts and "trace" in fields:
        raise ValueError(
            f"this momentum's {why}, so its state is a MomentumState(velocity, count), but the "
            "state given is optax.TraceState (from optax.sgd, or a momentum with a constant "
            "beta and no dampening). Convert it: jaxmom.MomentumState(velocity=state.trace, "
            "count=jnp.asarray(steps_done, jnp.int32))"
        )
    if not counts and "velocity" in fields:
        raise ValueError(
            "this momentum has a constant beta and no dampening, so its state is optax.sgd's "
            "optax.TraceState(trace), but the state given is a MomentumState (from a momentum "
            "with a beta schedule or dampening, or a checkpoint of jaxmom 0.2). Convert it: "
            "optax.TraceState(trace=state.velocity)"
        )
    if not ({"velocity", "count"} <= set(fields) or "trace" in fields):
        raise TypeError(
            f"momentum's state must be an optax.TraceState or a jaxmom.MomentumState, got "
            f"{type(state).__name__}"
        )
