r"""Closed forms for momentum on quadratics (the chapter's sections 5.2.2 and 5.3).

On :math:`f(x) = \tfrac{h}{2} x^2` heavy ball,
:math:`x_{t+1} = x_t - \alpha h x_t + \beta (x_t - x_{t-1})`, is linear:

.. math::

  \begin{bmatrix} x_{t+1} \\ x_t \end{bmatrix} = A
  \begin{bmatrix} x_t \\ x_{t-1} \end{bmatrix}, \qquad
  A = \begin{bmatrix} 1 - \alpha h + \beta & -\beta \\ 1 & 0 \end{bmatrix},

and converges linearly at the rate :math:`\rho(A)`, the largest modulus of the roots of
:math:`\lambda^2 - (1 - \alpha h + \beta)\lambda + \beta = 0`. Every function is jax.numpy,
elementwise over broadcast arguments, and works under ``jit`` and ``vmap``. The matrix is
defined for every real ``alpha``, ``beta`` and ``h``, so these functions accept every finite
number (``alpha * h = 0``, negative momentum, ``beta >= 1``) and refuse only what is not one (a
string, ``None``, ``nan``, ``inf``), with an error that names the argument; the optimal
parameters need curvatures ``0 < mu <= L``. Traced arguments cannot be checked.

Reference: Goh, "Why Momentum Really Works", Distill, 2017.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxmom.common import concrete, first_bad


def _check(name: str, value, ok, must: str) -> np.ndarray | None:
    """``value`` checked finite and ``ok``; :func:`concrete`'s array (``None`` if traced)."""
    arr = concrete(value, name, scalar=False)
    if arr is not None and not np.all(good := np.isfinite(arr) & ok(arr)):
        raise ValueError(f"{name} must be {must}, got {name}={first_bad(value, ~good)!r}")
    return arr


def _check_args(**args) -> None:
    """Each named argument a finite number (or array of them): the matrix is defined there."""
    for name, value in args.items():
        _check(name, value, lambda a: True, "finite")


def _check_curvatures(mu, L) -> None:
    m = _check("mu", mu, lambda a: a > 0, "finite and > 0")
    l_ = _check("L", L, lambda a: a > 0, "finite and > 0")
    if m is not None and l_ is not None and np.any(np.broadcast_arrays(m, l_)[1] < m):
        raise ValueError(f"L must be >= mu, got mu={mu!r}, L={L!r}")


def iteration_matrix(alpha, beta, h) -> jax.Array:
    """``[..., 2, 2]``: ``[[1 - alpha*h + beta, -beta], [1, 0]]`` over the broadcast arguments."""
    _check_args(alpha=alpha, beta=beta, h=h)
    alpha, beta, h = jnp.broadcast_arrays(*map(jnp.asarray, (alpha, beta, h)))
    one, zero = jnp.ones_like(beta), jnp.zeros_like(beta)
    top = jnp.stack([1 - alpha * h + beta, -beta], axis=-1)
    return jnp.stack([top, jnp.stack([one, zero], axis=-1)], axis=-2)


def spectral_radius(alpha, beta, h) -> jax.Array:
    """rho(A): the largest root modulus of ``lambda^2 - (1 - alpha*h + beta) lambda + beta``.

    Where the roots are complex (``(1 - alpha*h + beta)^2 < 4 beta``) it is ``sqrt(beta)``.
    """
    _check_args(alpha=alpha, beta=beta, h=h)
    t = 1 - jnp.asarray(alpha) * h + beta
    disc = t**2 - 4 * jnp.asarray(beta)
    root = jnp.sqrt(jnp.maximum(disc, 0.0))
    real = jnp.maximum(jnp.abs(t + root), jnp.abs(t - root)) / 2
    return jnp.where(disc >= 0, real, jnp.sqrt(jnp.maximum(beta, 0.0)))


def gd_rate(alpha, h) -> jax.Array:
    """Gradient descent's linear rate on ``h/2 x^2``: ``|1 - alpha*h|`` (momentum with beta 0)."""
    _check_args(alpha=alpha, h=h)
    return jnp.abs(1 - jnp.asarray(alpha) * h)


def optimal_momentum(mu, L):
    """``(alpha*, beta*, rate)`` minimising the worst rate over curvatures in ``[mu, L]``.

    alpha* = (2 / (sqrt(mu) + sqrt(L)))^2, beta* = ((sqrt(L) - sqrt(mu)) / (sqrt(L) + sqrt(mu)))^2,
    rate = (sqrt(kappa) - 1) / (sqrt(kappa) + 1) with kappa = L / mu.
    """
    _check_curvatures(mu, L)
    sm, sl = jnp.sqrt(jnp.asarray(mu, float)), jnp.sqrt(jnp.asarray(L, float))
    alpha = (2 / (sm + sl)) ** 2
    beta = ((sl - sm) / (sl + sm)) ** 2
    return alpha, beta, (sl - sm) / (sl + sm)


def optimal_gd(mu, L):
    """``(alpha*, rate)`` for gradient descent: alpha* = 2 / (mu + L), rate (kappa-1)/(kappa+1)."""
    _check_curvatures(mu, L)
    mu, L = jnp.asarray(mu, float), jnp.asarray(L, float)
    return 2 / (mu + L), (L - mu) / (L + mu)


def converges(alpha, beta, h) -> jax.Array:
    """True where heavy ball converges on ``h/2 x^2``, i.e. where rho(A) < 1.

    That is, |beta| < 1 and 0 < alpha*h < 2(1 + beta) (the Jury conditions of the
    characteristic polynomial; negative momentum included).
    """
    _check_args(alpha=alpha, beta=beta, h=h)
    ah, beta = jnp.asarray(alpha) * h, jnp.asarray(beta)
    return (jnp.abs(beta) < 1) & (ah > 0) & (ah < 2 * (1 + beta))


def critical_beta(alpha, h) -> jax.Array:
    """The smallest beta whose roots are complex (critical damping): ``(1 - sqrt(alpha*h))^2``.

    The roots are complex for beta strictly between ``(1 -+ sqrt(alpha*h))^2``; where
    ``alpha*h < 0`` no beta makes them complex, and the answer is ``inf``.
    """
    _check_args(alpha=alpha, h=h)
    ah = jnp.asarray(alpha) * h
    return jnp.where(ah >= 0, (1 - jnp.sqrt(jnp.maximum(ah, 0))) ** 2, jnp.inf)


def terminal_velocity_factor(beta) -> jax.Array:
    """``1 / (1 - beta)``: under a constant gradient g the step tends to alpha*g / (1 - beta)."""
    _check_args(beta=beta)
    return 1 / (1 - jnp.asarray(beta))


def quadratic_trajectory(
    h_diag, x0, opt: optax.GradientTransformation, steps: int, linear=None
) -> jax.Array:
    """The iterates of ``opt`` on ``f(x) = 1/2 x^T diag(h) x + linear^T x``: ``[steps + 1, d]``.

    Any optax optimizer works (``jaxmom.sgd_momentum(alpha, beta)`` is the chapter's heavy
    ball). ``h_diag = 0`` with ``linear = g`` is the constant gradient ``g`` of section 5.3.
    Pure: vmap it over optimizers built from traced (alpha, beta).
    """
    h = jnp.asarray(h_diag)
    x0 = jnp.broadcast_to(jnp.asarray(x0, h.dtype), h.shape)
    b = (
        jnp.zeros_like(x0)
        if linear is None
        else jnp.broadcast_to(jnp.asarray(linear, h.dtype), h.shape)
    )

    def step(carry, _):
        x, state = carry
        updates, state = opt.update(h * x + b, state, x)
        x = optax.apply_updates(x, updates)
        return (x, state), x

    _, xs = jax.lax.scan(step, (x0, opt.init(x0)), length=steps)
    return jnp.concatenate([x0[None], xs], axis=0)
