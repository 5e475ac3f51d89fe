"""Argument checks shared by the public functions.

Only concrete values can be checked: a value traced under ``jit``/``vmap`` (or a schedule, a
callable) is passed through unchecked, since its value is not known when the check runs.
"""

from __future__ import annotations

import jax
import numpy as np


def concrete(value) -> np.ndarray | None:
    """``value`` as a NumPy array, or ``None`` if it is traced or callable."""
    if callable(value) or isinstance(value, jax.core.Tracer):
        return None
    try:
        return np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise TypeError(f"expected a number or an array of numbers, got {value!r}") from e


def check_beta(beta, name: str = "beta") -> None:
    """Raises ``ValueError`` unless every concrete value of ``beta`` is finite and in [0, 1]."""
    arr = concrete(beta)
    if arr is None:
        return
    bad = ~np.isfinite(arr) | (arr < 0.0) | (arr > 1.0)
    if np.any(bad):
        shown = arr[bad].ravel()[0].item()
        raise ValueError(f"{name} must be finite and in [0, 1], got {name}={shown!r}")


def check_learning_rate(learning_rate, name: str = "learning_rate") -> None:
    """Raises ``ValueError`` unless every concrete value is finite and > 0."""
    arr = concrete(learning_rate)
    if arr is None:
        return
    bad = ~np.isfinite(arr) | (arr <= 0.0)
    if np.any(bad):
        shown = arr[bad].ravel()[0].item()
        raise ValueError(f"{name} must be finite and > 0, got {name}={shown!r}")


def check_positive_int(value, name: str, minimum: int = 1) -> int:
    """``value`` as an ``int``; ``ValueError`` naming it if it is not an integer >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise ValueError(f"{name} must be an integer >= {minimum}, got {name}={value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {name}={value!r}")
    return int(value)
