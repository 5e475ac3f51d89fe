"""Quasi-hyperbolic Adam (Ma & Yarats, 2019): :func:`scale_by_qhadam`, the transform, and
:func:`qhadam`, the optimizer ``qhoptim.pyt.QHAdam`` and ``pytorch_optimizer.QHAdam`` are."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
from jax.typing import ArrayLike

from jaxmom.common import check_beta, check_learning_rate
from jaxmom.optim._pieces import descend, map_grads
from jaxmom.optim._transform import Default, ScalarOrSchedule, value_at

#: The authors' recommended values (Ma & Yarats, section 5): b1, b2, nu1, nu2.
B1, B2, NU1, NU2 = Default(0.995), Default(0.999), Default(0.7), Default(1.0)


class QHAdamState(NamedTuple):
    """State of :func:`scale_by_qhadam`.

    Attributes:
      count: the number of updates so far (int32).
      mu: the bias-corrected moving average of the gradients (``qhoptim``'s ``exp_avg``).
      nu: the bias-corrected moving average of their squares (``exp_avg_sq``).
      mu_weight, nu_weight: ``w <- 1 + beta w`` from 0, the averages' normalizers (``1 / w`` is
        the weight of the newest gradient): Adam's bias correction, exact under a schedule.
    """

    count: jax.Array  # type: ignore[assignment]  # a field, not tuple.count
    mu: optax.Updates
    nu: optax.Updates
    mu_weight: jax.Array
    nu_weight: jax.Array


def pair(names: str, given: tuple, pair_name: str, pair_given) -> tuple:
    """``(first, second)`` from their own arguments or PyTorch's pair (``betas=(b1, b2)``), not
    both; a :class:`Default` is an argument not given."""
    if pair_given is None:
        return tuple(g.value if isinstance(g, Default) else g for g in given)
    if any(not isinstance(g, Default) for g in given):
        raise TypeError(f"qhadam() got {names} and {pair_name}=: give one spelling")
    if not isinstance(pair_given, tuple | list) or len(pair_given) != 2:
        raise TypeError(
            f"{pair_name} must be a pair (first, second), got {pair_name}={pair_given!r}"
        )
    return tuple(pair_given)


def scale_by_qhadam(
    b1: ScalarOrSchedule = 0.995,
    b2: ScalarOrSchedule = 0.999,
    nu1: ScalarOrSchedule = 0.7,
    nu2: ScalarOrSchedule = 1.0,
    eps: ArrayLike = 1e-8,
    *,
    mu_dtype: Any | None = None,
) -> optax.GradientTransformation:
    r"""Rescale updates by quasi-hyperbolic Adam's rule.

    .. math::

      \hat m_{t} = \text{bias-corrected EMA}_{b_1}(g), \quad
      \hat v_{t} = \text{bias-corrected EMA}_{b_2}(g^2), \quad
      u_t = \frac{(1 - \nu_1) g_t + \nu_1 \hat m_t}
                 {\sqrt{(1 - \nu_2) g_t^2 + \nu_2 \hat v_t} + \epsilon}.

    ``nu1 = nu2 = 1`` is ``optax.scale_by_adam(b1, b2, eps)``. The averages are kept
    bias-corrected as qhoptim keeps them (``m <- m + (g - m) / w``, ``w <- 1 + b1 w``), so a
    schedule of ``b1`` or ``b2`` is corrected exactly.

    Args:
      b1, b2: the averages' decays in [0, 1] (defaults 0.995 and 0.999, the authors'
        recommendation); floats, arrays or schedules.
      nu1, nu2: the averages' weights against the current gradient, in [0, 1] (defaults 0.7
        and 1.0); floats, arrays or schedules.
      eps: added to the denominator's square root, finite and >= 0.
      mu_dtype: dtype of the first average (as ``optax.scale_by_adam``); ``None`` infers it.

    Returns:
      An :class:`optax.GradientTransformation` whose state is a :class:`QHAdamState`.

    References:
      Ma & Yarats, *Quasi-hyperbolic momentum and Adam for deep learning*, ICLR 2019.
    """
    for name, value in (("b1", b1), ("b2", b2), ("nu1", nu1), ("nu2", nu2)):
        check_beta(value, name)
    check_learning_rate(eps, "eps")
    if mu_dtype is not None:
        mu_dtype = jax.dtypes.canonicalize_dtype(mu_dtype)

    def init_fn(params):
        zero = jnp.zeros([], jnp.result_type(float))
        mu = optax.tree.zeros_like(params, dtype=mu_dtype)
        nu = optax.tree.zeros_like(params)
        return QHAdamState(jnp.zeros([], jnp.int32), mu, nu, zero, zero)

    def update_fn(updates, state, params=None):
        del params
        c = state.count
        w1 = 1 + value_at(b1, c) * state.mu_weight
        w2 = 1 + value_at(b2, c) * state.nu_weight
        n1, n2 = value_at(nu1, c), value_at(nu2, c)
        mu = map_grads(lambda g, m: m + (g - m) / w1.astype(g.dtype), updates, state.mu)
        nu = map_grads(lambda g, v: v + (g * g - v) / w2.astype(g.dtype), updates, state.nu)

        def step(g, m, v):
            num = n1 * m + (1 - n1) * g
            return (num / (jnp.sqrt(n2 * v + (1 - n2) * g * g) + eps)).astype(g.dtype)

        new = map_grads(step, updates, mu, nu)
        mu = map_grads(lambda m, old: m.astype(old.dtype), mu, state.mu)
        nu = map_grads(lambda v, old: v.astype(old.dtype), nu, state.nu)
        return new, QHAdamState(optax.safe_increment(c), mu, nu, w1, w2)

    return optax.GradientTransformation(init_fn, update_fn)


def qhadam(
    learning_rate: ScalarOrSchedule = 1e-3,
    b1: ScalarOrSchedule = B1,  # type: ignore[assignment]
    b2: ScalarOrSchedule = B2,  # type: ignore[assignment]
    nu1: ScalarOrSchedule = NU1,  # type: ignore[assignment]
    nu2: ScalarOrSchedule = NU2,  # type: ignore[assignment]
    eps: ArrayLike = 1e-8,
    *,
    betas: tuple | None = None,
    nus: tuple | None = None,
    weight_decay: ArrayLike | None = None,
    decouple_weight_decay: bool = False,
    maximize: bool = False,
    mu_dtype: Any | None = None,
) -> optax.GradientTransformation:
    r"""Quasi-hyperbolic Adam: :func:`scale_by_qhadam` then the learning rate, as ``optax.adam``.

    Equal to ``qhoptim.pyt.QHAdam(params, lr=learning_rate, betas=(b1, b2), nus=(nu1, nu2),
    weight_decay=weight_decay, decouple_weight_decay=decouple_weight_decay, eps=eps)`` and to
    ``pytorch_optimizer.QHAdam`` (``weight_decouple=``, ``maximize=``). With ``nu1 = nu2 = 1``
    it is ``optax.adam(learning_rate, b1, b2, eps)``.

    Args:
      learning_rate: finite and >= 0, or a schedule.
      b1, b2: the averages' decays (defaults 0.995 and 0.999); or PyTorch's ``betas=(b1, b2)``.
        Under ``optax.inject_hyperparams`` each is a hyperparameter when given, as
        ``sgd_momentum``'s ``beta``.
      nu1, nu2: the averages' weights (defaults 0.7 and 1.0); or qhoptim's ``nus=(nu1, nu2)``.
      eps: added to the denominator, >= 0.
      betas, nus: the PyTorch spellings of the pairs above (tuples, so static under
        ``optax.inject_hyperparams``; give ``b1=`` etc. to inject them).
      weight_decay: L2 weight decay added to the gradient; ``None`` or a Python 0: none.
      decouple_weight_decay: decay the parameters directly, ``x <- x (1 - lr * wd)`` (AdamW's).
      maximize: ascend the objective.
      mu_dtype: dtype of the first average.

    Returns:
      An :class:`optax.GradientTransformation`.

    Examples:
      >>> import jaxmom
      >>> opt = jaxmom.qhadam(1e-3, nus=(0.7, 1.0), betas=(0.995, 0.999))
    """
    b1, b2 = pair("b1=/b2=", (b1, b2), "betas", betas)
    nu1, nu2 = pair("nu1=/nu2=", (nu1, nu2), "nus", nus)
    direction = scale_by_qhadam(b1, b2, nu1, nu2, eps, mu_dtype=mu_dtype)
    return descend(
        direction,
        learning_rate,
        weight_decay,
        decouple=decouple_weight_decay,
        maximize=maximize,
    )
