"""The chapter's data set (section 5.5.1).

The chapter draws ``x = linspace(-1, 1, 1000)``, ``y = x**2 + 0.1 * eps`` with
``torch.manual_seed(1)``, and shuffles it every epoch into batches of 32, keeping the last
partial batch (1000 = 31 * 32 + 8: 32 steps an epoch): :func:`jaxmom.batch_order`.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from jaxmom.common import check_positive_int

#: The key of the default data set, as the chapter fixes ``torch.manual_seed(1)``.
DATA_SEED = 1


def make_dataset(key: jax.Array | None = None, n: int = 1000, noise: float = 0.1):
    """The chapter's regression data: ``x = linspace(-1, 1, n)[:, None]``, ``y = x**2 + noise*eps``.

    Args:
      key: a JAX PRNG key for ``eps ~ N(0, 1)``; ``None`` uses the fixed key ``DATA_SEED``, so
        the default data set is the same in every run, as in the chapter.
      n: number of points, >= 1.
      noise: standard deviation of the noise.

    Returns:
      ``(x, y)``, both float32 ``[n, 1]``.
    """
    n = check_positive_int(n, "n")
    if key is None:
        return _default_dataset(n, float(noise))
    return _dataset(key, n, noise)


@functools.cache
def _default_dataset(n: int, noise: float):
    return _dataset(jax.random.key(DATA_SEED), n, noise)


@functools.partial(jax.jit, static_argnums=1)
def _dataset(key, n, noise):
    x = jnp.linspace(-1.0, 1.0, n, dtype=jnp.float32)[:, None]
    y = x**2 + noise * jax.random.normal(key, x.shape, jnp.float32)
    return x, y
