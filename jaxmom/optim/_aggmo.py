"""Aggregated momentum (Lucas et al., 2019): :func:`aggmo`, the transform, and
:func:`sgd_aggmo`, the optimizer ``pytorch_optimizer.AggMo`` and ``torch_optimizer.AggMo`` are."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.typing import ArrayLike

from jaxmom.common import check_beta
from jaxmom.optim._pieces import descend, map_grads
from jaxmom.optim._transform import ScalarOrSchedule, value_at

#: The paper's recommended velocities (Lucas et al., section 4).
AGGMO_BETAS = (0.0, 0.9, 0.99)


class AggMoState(NamedTuple):
    """State of :func:`aggmo`.

    Attributes:
      count: the number of updates so far (int32), which a schedule of ``betas`` reads.
      trace: the K velocities, each leaf shaped ``[K, *param.shape]`` (velocity ``i`` at index
        ``i``, in the order of ``betas``).
    """

    count: jax.Array  # type: ignore[assignment]  # a field, not tuple.count
    trace: optax.Updates


def n_velocities(betas) -> int:
    """K, the number of velocities: ``betas``' length (a schedule's, from its value at 0)."""
    if callable(betas):
        shape = jax.eval_shape(betas, jnp.zeros([], jnp.int32)).shape
    elif isinstance(betas, jax.core.Tracer):
        shape = betas.shape
    else:
        if isinstance(betas, tuple | list):
            for i, b in enumerate(betas):
                check_beta(b, f"betas[{i}]")
        else:
            check_beta(betas, "betas", scalar=False)
        shape = np.shape(betas)
    if len(shape) != 1 or shape[0] < 1:
        raise ValueError(f"betas must be a sequence of K >= 1 coefficients, got shape {shape}")
    return int(shape[0])


def aggmo(
    betas: ScalarOrSchedule | tuple = AGGMO_BETAS,
    *,
    accumulator_dtype: Any | None = None,
) -> optax.GradientTransformation:
    r"""Aggregated momentum: K heavy-ball velocities with different betas, averaged.

    .. math::

      v^{(i)}_{t+1} = \beta_i v^{(i)}_t + g_t, \qquad
      u_t = \frac{1}{K} \sum_{i=1}^{K} v^{(i)}_{t+1},

    from :math:`v^{(i)}_0 = 0`. The small betas damp the oscillation a large beta alone
    shows, the large ones keep its speed along shallow directions. ``betas = (b,)`` is
    ``jaxmom.momentum(b)``; chained with ``optax.scale_by_learning_rate(lr)`` (that is
    :func:`sgd_aggmo`) it is ``pytorch_optimizer.AggMo(lr=lr, betas=betas)``.

    Args:
      betas: the K coefficients, each in [0, 1] (default ``(0.0, 0.9, 0.99)``, the paper's):
        a tuple of floats (static), a 1-D array (it may be traced under ``jit``/``vmap``:
        one program for every value) or a schedule ``step -> [K] array``.
      accumulator_dtype: dtype of the velocities; ``None`` infers it from the parameters. The
        updates keep the gradients' dtype.

    Returns:
      An :class:`optax.GradientTransformation` whose state is an :class:`AggMoState`.

    Raises:
      TypeError: if a coefficient is not a number.
      ValueError: if a concrete coefficient is not finite or lies outside [0, 1], or ``betas``
        is not one-dimensional with at least one coefficient.

    Examples:
      >>> import jax.numpy as jnp, optax, jaxmom
      >>> tx = optax.chain(jaxmom.aggmo((0.0, 0.9, 0.99)), optax.scale(-0.1))
      >>> state = tx.init({"w": jnp.ones(3)})

    References:
      Lucas, Sun, Zemel & Grosse, *Aggregated momentum: stability through passive damping*,
      ICLR 2019 (arXiv:1804.00325).
    """
    k = n_velocities(betas)
    if accumulator_dtype is not None:
        accumulator_dtype = jax.dtypes.canonicalize_dtype(accumulator_dtype)

    def init_fn(params):
        def zeros(p):
            dtype = p.dtype if accumulator_dtype is None else accumulator_dtype
            return jnp.zeros((k, *jnp.shape(p)), dtype)

        return AggMoState(jnp.zeros([], jnp.int32), jax.tree.map(zeros, params))

    def update_fn(updates, state, params=None):
        del params
        b = jnp.asarray(value_at(betas, state.count))

        def velocities(g, v):
            return b.reshape((k,) + (1,) * g.ndim) * v + g[None]

        trace = map_grads(velocities, updates, state.trace)
        new = map_grads(lambda g, v: jnp.mean(v, axis=0).astype(g.dtype), updates, trace)
        trace = map_grads(lambda v, old: v.astype(old.dtype), trace, state.trace)
        return new, AggMoState(optax.safe_increment(state.count), trace)

    return optax.GradientTransformation(init_fn, update_fn)


def sgd_aggmo(
    learning_rate: ScalarOrSchedule,
    betas: ScalarOrSchedule | tuple = AGGMO_BETAS,
    *,
    weight_decay: ArrayLike | None = None,
    decouple_weight_decay: bool = False,
    maximize: bool = False,
    accumulator_dtype: Any | None = None,
) -> optax.GradientTransformation:
    r"""Stochastic gradient descent with aggregated momentum.

    .. math::

      v^{(i)}_{t+1} = \beta_i v^{(i)}_t + g_t, \qquad
      x_{t+1} = x_t - \frac{\alpha_t}{K} \sum_i v^{(i)}_{t+1}.

    Equal to ``pytorch_optimizer.AggMo(params, lr=learning_rate, betas=betas,
    weight_decay=weight_decay, weight_decouple=decouple_weight_decay, maximize=maximize)`` and
    to ``torch_optimizer.AggMo`` (L2 weight decay).

    Args:
      learning_rate: finite and >= 0, or a schedule.
      betas: the K coefficients (default ``(0.0, 0.9, 0.99)``); see :func:`aggmo`.
      weight_decay: L2 weight decay added to the gradient; ``None`` or a Python 0: none.
      decouple_weight_decay: decay the parameters directly, ``x <- x (1 - lr * wd)``.
      maximize: ascend the objective.
      accumulator_dtype: dtype of the velocities.

    Returns:
      An :class:`optax.GradientTransformation`.

    Examples:
      >>> import jaxmom
      >>> opt = jaxmom.sgd_aggmo(0.1, betas=(0.0, 0.9, 0.99))
    """
    return descend(
        aggmo(betas, accumulator_dtype=accumulator_dtype),
        learning_rate,
        weight_decay,
        decouple=decouple_weight_decay,
        maximize=maximize,
    )
