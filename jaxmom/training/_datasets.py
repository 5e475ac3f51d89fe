"""Data sets that ship with a dependency: nothing is downloaded."""

from __future__ import annotations

import jax.numpy as jnp

from jaxmom.common import check_positive_int


def load_digits(test_size: int = 360, seed: int = 0):
    """scikit-learn's handwritten digits (1,797 8x8 images, 10 classes), split at random once.

    The data ships inside scikit-learn (``pip install "jaxmom[experiments]"``); nothing is
    downloaded. Pixels are scaled from 0..16 to 0..1.

    Args:
      test_size: images held out for testing (the default split is 1,437 / 360).
      seed: the NumPy seed of the split; the same seed gives the same split everywhere.

    Returns:
      ``(x_train, y_train, x_test, y_test)``: float32 ``[n, 64]`` images and int32 ``[n]``
      labels.
    """
    import numpy as np

    try:
        from sklearn.datasets import load_digits as sk_load_digits
    except ImportError as e:
        raise ImportError(
            'the digits data set needs scikit-learn: pip install "jaxmom[experiments]"'
        ) from e
    test_size = check_positive_int(test_size, "test_size")
    x, y = sk_load_digits(return_X_y=True)
    if test_size >= len(y):
        raise ValueError(f"test_size must be < {len(y)} images, got test_size={test_size}")
    perm = np.random.default_rng(seed).permutation(len(y))
    x, y = (x[perm] / 16.0).astype(np.float32), y[perm].astype(np.int32)
    n = len(y) - test_size
    return (jnp.asarray(x[:n]), jnp.asarray(y[:n]), jnp.asarray(x[n:]), jnp.asarray(y[n:]))
