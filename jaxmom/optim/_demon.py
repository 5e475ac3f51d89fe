"""Decaying momentum (Chen et al.): :func:`demon`, a schedule of beta for any momentum here."""

from __future__ import annotations

import jax.numpy as jnp
import optax
from jax.typing import ArrayLike

from jaxmom.common import check_beta, check_positive_int


def demon(beta: ArrayLike, steps: int) -> optax.Schedule:
    r"""Demon's schedule of the momentum coefficient: ``beta`` at step 0 down to 0 at ``steps``.

    .. math::

      \beta_t = \beta_0 \frac{1 - t/T}{(1 - \beta_0) + \beta_0 (1 - t/T)},
      \qquad 0 \le t \le T,

    and 0 after :math:`T`. It decays the total contribution of a gradient to later updates,
    :math:`\sum_k \beta^k = 1/(1 - \beta)`, linearly in t: :math:`1/(1 - \beta_t) - 1 =
    (1 - t/T) \beta_0 / (1 - \beta_0)`. Pass it where a beta goes: ``jaxmom.momentum``,
    ``jaxmom.sgd_momentum``, ``jaxmom.heavy_ball`` and ``jaxmom.qhm`` take schedules.

    Args:
      beta: :math:`\beta_0` in [0, 1); a float or an array (it may be traced: one program for
        every value under ``vmap``).
      steps: :math:`T`, the step at which the momentum reaches 0; an integer >= 1.

    Returns:
      An ``optax.Schedule``: ``step -> beta_t``.

    Raises:
      ValueError: if a concrete ``beta`` is not in [0, 1) or ``steps`` is not an integer >= 1.

    Examples:
      >>> import jaxmom
      >>> opt = jaxmom.sgd_momentum(0.1, beta=jaxmom.demon(0.9, steps=1000))
      >>> round(float(jaxmom.demon(0.9, 1000)(500)), 4)  # half way: 1/(1 - b) - 1 halved
      0.8182

    References:
      Chen, Wolfe, Kyrillidis et al., *Demon: improved neural network training with momentum
      decay*, ICASSP 2022 (arXiv:1910.04952).
    """
    arr = check_beta(beta, "beta")
    if arr is not None and arr >= 1:
        raise ValueError(f"demon's beta must be < 1 (1 never decays), got beta={beta!r}")
    steps = check_positive_int(steps, "steps")

    def schedule(count):
        t = jnp.asarray(count).astype(jnp.result_type(float))  # float64 under x64
        left = 1 - jnp.clip(t / steps, 0, 1)
        b = jnp.asarray(beta)
        return b * left / ((1 - b) + b * left)

    return schedule
