"""Quasi-hyperbolic momentum (Ma & Yarats, 2019): :func:`qhm`, the transform, and
:func:`sgd_qhm`, the optimizer ``qhoptim.pyt.QHM`` and ``pytorch_optimizer.QHM`` are."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
from jax.typing import ArrayLike

from jaxmom.common import check_beta
from jaxmom.optim._pieces import descend, map_grads
from jaxmom.optim._transform import Default, ScalarOrSchedule, resolve_beta, value_at

#: The authors' recommended values (Ma & Yarats, section 4): a standard baseline.
QHM_BETA = Default(0.999)
QHM_NU = 0.7


class QHMState(NamedTuple):
    """State of :func:`qhm`.

    Attributes:
      count: the number of updates so far (int32), which schedules of ``beta`` and ``nu`` read.
      trace: the momentum buffer ``b``, an exponential moving average of the gradients, shaped
        like the parameters (``qhoptim``'s ``momentum_buffer``).
    """

    count: jax.Array  # type: ignore[assignment]  # a field, not tuple.count
    trace: optax.Updates


def qhm(
    beta: ScalarOrSchedule = QHM_BETA,  # type: ignore[assignment]
    nu: ScalarOrSchedule = QHM_NU,
    *,
    momentum: ScalarOrSchedule | None = None,
    accumulator_dtype: Any | None = None,
) -> optax.GradientTransformation:
    r"""Quasi-hyperbolic momentum: a weighted average of the gradient and a momentum buffer.

    .. math::

      b_{t+1} = \beta b_t + (1 - \beta) g_t, \qquad u_t = (1 - \nu) g_t + \nu b_{t+1},

    from :math:`b_0 = 0`. Chained with ``optax.scale_by_learning_rate(lr)`` (that is
    :func:`sgd_qhm`) it is ``qhoptim.pyt.QHM(lr=lr, momentum=beta, nu=nu)``. Special cases:
    ``nu = 0`` is plain SGD, ``beta = 0`` too; ``nu = 1`` is normalized heavy ball,
    ``sgd_momentum(lr * (1 - beta), beta)``; ``nu = beta`` is Nesterov's method,
    ``sgd_momentum(lr * (1 - beta), beta, nesterov=True)``.

    Args:
      beta: :math:`\beta` in [0, 1] (default 0.999, the authors'): a float, an array (it may
        be traced under ``jit``/``vmap``: one program for every value) or a schedule
        ``step -> beta`` (:func:`jaxmom.demon` is one).
      nu: :math:`\nu` in [0, 1] (default 0.7, the authors'): the weight of the buffer
        against the gradient; a float, an array or a schedule.
      momentum: ``beta`` by qhoptim's and PyTorch's name; give one of the two.
      accumulator_dtype: dtype of the buffer; ``None`` infers it from the parameters. The
        updates keep the gradients' dtype.

    Returns:
      An :class:`optax.GradientTransformation` whose state is a :class:`QHMState`.

    Raises:
      TypeError: if ``beta`` or ``nu`` is not a number, an array or a schedule, or both
        ``beta`` and ``momentum`` are given.
      ValueError: if a concrete ``beta`` or ``nu`` is not finite or lies outside [0, 1].

    Examples:
      >>> import jax.numpy as jnp, optax, jaxmom
      >>> tx = optax.chain(jaxmom.qhm(0.999, 0.7), optax.scale(-1.0))
      >>> state = tx.init({"w": jnp.ones(3)})

    References:
      Ma & Yarats, *Quasi-hyperbolic momentum and Adam for deep learning*, ICLR 2019
      (arXiv:1810.06801).
    """
    beta = resolve_beta("qhm", QHM_BETA, beta=beta, momentum=momentum)
    check_beta(beta)
    check_beta(nu, "nu")
    if accumulator_dtype is not None:
        accumulator_dtype = jax.dtypes.canonicalize_dtype(accumulator_dtype)

    def init_fn(params):
        trace = optax.tree.zeros_like(params, dtype=accumulator_dtype)
        return QHMState(count=jnp.zeros([], jnp.int32), trace=trace)

    def update_fn(updates, state, params=None):
        del params
        b, n = value_at(beta, state.count), value_at(nu, state.count)
        trace = map_grads(lambda g, t: b * t + (1 - b) * g, updates, state.trace)
        new = map_grads(lambda g, t: ((1 - n) * g + n * t).astype(g.dtype), updates, trace)
        trace = map_grads(lambda t, old: t.astype(old.dtype), trace, state.trace)
        return new, QHMState(optax.safe_increment(state.count), trace)

    return optax.GradientTransformation(init_fn, update_fn)


def sgd_qhm(
    learning_rate: ScalarOrSchedule,
    beta: ScalarOrSchedule = QHM_BETA,  # type: ignore[assignment]
    nu: ScalarOrSchedule = QHM_NU,
    *,
    momentum: ScalarOrSchedule | None = None,
    weight_decay: ArrayLike | None = None,
    decouple_weight_decay: bool = False,
    maximize: bool = False,
    accumulator_dtype: Any | None = None,
) -> optax.GradientTransformation:
    r"""Stochastic gradient descent with quasi-hyperbolic momentum, as ``qhoptim`` runs it.

    .. math::

      b_{t+1} = \beta b_t + (1 - \beta) g_t, \qquad
      x_{t+1} = x_t - \alpha_t \big((1 - \nu) g_t + \nu b_{t+1}\big).

    Equal to ``qhoptim.pyt.QHM(params, lr=learning_rate, momentum=beta, nu=nu,
    weight_decay=weight_decay, weight_decay_type="direct" if decouple_weight_decay else
    "grad")``, to ``pytorch_optimizer.QHM`` (``weight_decouple=decouple_weight_decay``,
    ``maximize``) and to ``torch_optimizer.QHM``.

    Args:
      learning_rate: :math:`\alpha`, finite and >= 0, or a schedule ``step -> rate``.
      beta: the buffer's decay (default 0.999); see :func:`qhm`.
      nu: the buffer's weight (default 0.7); see :func:`qhm`.
      momentum: ``beta`` by qhoptim's and PyTorch's name; give one of the two.
      weight_decay: added to the gradient as ``weight_decay * params`` (L2, the references'
        default); ``None`` or a Python 0: none (``update`` then needs no ``params``).
      decouple_weight_decay: decay the parameters directly instead,
        ``x <- x (1 - lr * weight_decay)`` before the step (qhoptim's ``"direct"``).
      maximize: ascend the objective (the gradient is negated first), as PyTorch's option.
      accumulator_dtype: dtype of the buffer; ``None`` infers it from the parameters.

    Returns:
      An :class:`optax.GradientTransformation`.

    Examples:
      >>> import jaxmom
      >>> opt = jaxmom.sgd_qhm(1.0, beta=0.999, nu=0.7)  # the authors' defaults

    References:
      Ma & Yarats, *Quasi-hyperbolic momentum and Adam for deep learning*, ICLR 2019.
    """
    direction = qhm(beta, nu, momentum=momentum, accumulator_dtype=accumulator_dtype)
    return descend(
        direction,
        learning_rate,
        weight_decay,
        decouple=decouple_weight_decay,
        maximize=maximize,
    )
