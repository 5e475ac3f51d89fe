"""Argument checks shared by the public functions.

Only concrete values can be checked: a value traced under ``jit``/``vmap`` (or a schedule, a
callable) is passed through unchecked, since its value is not known when the check runs.
Concrete values are checked in the dtype they will run in (float32 unless ``jax_enable_x64``
is on or the value is an array of another floating dtype), so ``1e-50`` is not accepted only to
train at 0.0, nor ``1e39`` to train at inf.
"""

from __future__ import annotations

import json
import numbers

import jax
import jax.numpy as jnp
import numpy as np


def run_dtype(arr: np.ndarray) -> np.dtype:
    """The floating dtype JAX computes ``arr`` in: its own if floating, else the default float."""
    if jnp.issubdtype(arr.dtype, jnp.floating):
        return jax.dtypes.canonicalize_dtype(arr.dtype)
    return jax.dtypes.canonicalize_dtype(jnp.float64)


def concrete(value, name: str, *, scalar: bool = True) -> np.ndarray | None:
    """``value`` in float64 after a round trip through the dtype it runs in, or ``None`` if it is
    traced or callable (a schedule).

    Raises ``TypeError`` naming ``name`` for what is not a number (``None``, a string, a bool, a
    list where a scalar is expected), and ``ValueError`` for a value that the cast to its run
    dtype turns into 0 or inf.
    """
    if callable(value) or isinstance(value, jax.core.Tracer):
        return None
    what = "a number, a scalar array or a schedule step -> value" if scalar else "numbers"
    if (
        value is None
        or isinstance(value, str | bytes | bool | np.bool_)
        or (scalar and not isinstance(value, numbers.Real | np.ndarray | jax.Array))
    ):
        raise TypeError(f"{name} must be {what}, got {name}={value!r} ({type(value).__name__})")
    try:
        arr = np.asarray(value)
    except (TypeError, ValueError) as e:
        raise TypeError(f"{name} must be {what}, got {name}={value!r}") from e
    if arr.dtype.kind not in "iuf" and not jnp.issubdtype(arr.dtype, jnp.floating):
        raise TypeError(f"{name} must be {what}, got {name}={value!r} (dtype {arr.dtype})")
    if scalar and arr.ndim != 0:
        raise TypeError(f"{name} must be a scalar, got {name} of shape {arr.shape}")
    given = arr.astype(np.float64)
    dtype = run_dtype(arr)
    with np.errstate(over="ignore", under="ignore"):
        cast = given.astype(dtype).astype(np.float64)
    lost = np.isfinite(given) & ((~np.isfinite(cast)) | ((given != 0) & (cast == 0)))
    if lost.any():
        shown = given[lost].ravel()[0].item()
        raise ValueError(
            f"{name}={shown!r} does not fit {np.dtype(dtype).name}, the dtype it runs in (it "
            f"becomes {cast[lost].ravel()[0].item()!r}); enable jax_enable_x64 for float64"
        )
    return cast


def first_bad(value, bad: np.ndarray):
    """The first value of ``value`` where ``bad``, as the user gave it (not as it was cast)."""
    return np.broadcast_to(np.asarray(value, np.float64), bad.shape)[bad].ravel()[0].item()


def check_beta(beta, name: str = "beta", *, scalar: bool = True) -> np.ndarray | None:
    """Raises unless every concrete value of ``beta`` is a finite number in [0, 1]; returns
    :func:`concrete`'s array (``None`` for a traced value or a schedule)."""
    arr = concrete(beta, name, scalar=scalar)
    if arr is None:
        return None
    bad = ~np.isfinite(arr) | (arr < 0.0) | (arr > 1.0)
    if np.any(bad):
        raise ValueError(
            f"{name} must be finite and in [0, 1], got {name}={first_bad(beta, bad)!r}"
        )
    return arr


def check_learning_rate(learning_rate, name: str = "learning_rate", *, scalar: bool = True):
    """Raises unless every concrete value is a finite number >= 0.

    0 is legal (warmup schedules start there). A negative rate is refused, as torch refuses it:
    momentum with a negative rate ascends, which is better said with ``maximize=True``.
    """
    arr = concrete(learning_rate, name, scalar=scalar)
    if arr is None:
        return
    bad = ~np.isfinite(arr) | (arr < 0.0)
    if np.any(bad):
        hint = (
            " (to ascend, use sgd_momentum(..., maximize=True) or negate the loss)"
            if "rate" in name
            else ""
        )
        raise ValueError(
            f"{name} must be finite and >= 0, got {name}={first_bad(learning_rate, bad)!r}{hint}"
        )


def check_bool(value, name: str) -> bool:
    """``value`` as a ``bool``; ``TypeError`` naming it otherwise (``nesterov="no"`` is true)."""
    if not isinstance(value, bool | np.bool_):
        raise TypeError(f"{name} must be a bool, got {name}={value!r}")
    return bool(value)


def check_positive_int(value, name: str, minimum: int = 1) -> int:
    """``value`` as an ``int``; ``ValueError`` naming it if it is not an integer >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise ValueError(f"{name} must be an integer >= {minimum}, got {name}={value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {name}={value!r}")
    return int(value)


def check_settings(settings):
    """``settings`` as plain JSON data (a copy), or ``None``; a ``TypeError`` if it is not a
    JSON-able dict."""
    if settings is None:
        return None
    try:
        return json.loads(json.dumps(dict(settings)))
    except (TypeError, ValueError) as e:
        raise TypeError(f"settings must be a JSON-able dict: {e}") from e
