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

The rest of the family has the same analysis below: QHM's 2x2 iteration on (x, buffer) and
AggMo's (K+1)x(K+1) one on (x, v_1..v_K), their rates, QHM's convergence region, and optima
computed numerically where no closed form is known.

References: Goh, "Why Momentum Really Works", Distill, 2017. Gitman, Lang, Zhang & Xiao,
"Understanding the role of momentum in stochastic gradient methods", NeurIPS 2019. Lucas, Sun,
Zemel & Grosse, "Aggregated momentum", ICLR 2019.
"""

from __future__ import annotations

import functools

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


def _radius(t, d) -> jax.Array:
    """The largest root modulus of ``l^2 - t l + d``: ``sqrt(d)`` where the roots are complex."""
    disc = t**2 - 4 * d
    root = jnp.sqrt(jnp.maximum(disc, 0.0))
    real = jnp.maximum(jnp.abs(t + root), jnp.abs(t - root)) / 2
    return jnp.where(disc >= 0, real, jnp.sqrt(jnp.maximum(d, 0.0)))


def spectral_radius(alpha, beta, h) -> jax.Array:
    """rho(A): the largest root modulus of ``lambda^2 - (1 - alpha*h + beta) lambda + beta``.

    Where the roots are complex (``(1 - alpha*h + beta)^2 < 4 beta``) it is ``sqrt(beta)``.
    """
    _check_args(alpha=alpha, beta=beta, h=h)
    return _radius(1 - jnp.asarray(alpha) * h + beta, jnp.asarray(beta))


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


# -- the family: quasi-hyperbolic and aggregated momentum ---------------------------------------


def qhm_iteration_matrix(alpha, beta, nu, h) -> jax.Array:
    """``[..., 2, 2]``: QHM (:func:`jaxmom.sgd_qhm`) on ``h/2 x^2`` as a map of ``(x, b)``,
    ``[[1 - alpha*h*(1 - nu*beta), -alpha*nu*beta], [(1 - beta)*h, beta]]``.

    With ``b`` the momentum buffer, ``b' = beta b + (1 - beta) h x`` and
    ``x' = x - alpha ((1 - nu) h x + nu b')`` (Gitman et al., 2019, write heavy ball, Nesterov
    and QHM as this one iteration).
    """
    _check_args(alpha=alpha, beta=beta, nu=nu, h=h)
    a, b, n, h = jnp.broadcast_arrays(*map(jnp.asarray, (alpha, beta, nu, h)))
    top = jnp.stack([1 - a * h * (1 - n * b), -a * n * b], axis=-1)
    return jnp.stack([top, jnp.stack([(1 - b) * h, b], axis=-1)], axis=-2)


def _qhm_trace_det(alpha, beta, nu, h):
    """The QHM matrix's trace ``1 + beta - alpha*h*(1 - nu*beta)`` and determinant
    ``beta * (1 - alpha*h*(1 - nu))``: its characteristic polynomial ``l^2 - T l + D``."""
    ah, beta, nu = jnp.asarray(alpha) * h, jnp.asarray(beta), jnp.asarray(nu)
    return 1 + beta - ah * (1 - nu * beta), beta * (1 - ah * (1 - nu))


def qhm_spectral_radius(alpha, beta, nu, h) -> jax.Array:
    """QHM's linear rate on ``h/2 x^2``: the largest root modulus of ``l^2 - T l + D``.

    Where the roots are complex (``T^2 < 4 D``) it is ``sqrt(D)``. At ``nu = 1`` it is heavy
    ball's :func:`spectral_radius` at ``alpha (1 - beta)``. At ``nu = 0`` the polynomial is
    ``(l - beta)(l - 1 + alpha h)``: ``x`` moves at gradient descent's rate and the buffer,
    which ``x`` then never reads, decays at ``beta``, so the matrix's radius is the larger.
    """
    _check_args(alpha=alpha, beta=beta, nu=nu, h=h)
    return _radius(*_qhm_trace_det(alpha, beta, nu, h))


def qhm_converges(alpha, beta, nu, h) -> jax.Array:
    """True where QHM converges on ``h/2 x^2`` (the Jury conditions of ``l^2 - T l + D``).

    For ``0 <= beta < 1`` and ``0 <= nu <= 1`` that is
    ``0 < alpha*h < 2 (1 + beta) / (1 + beta - 2 nu beta)``: gradient descent's ``2`` at
    ``nu = 0``, normalized heavy ball's ``2 (1 + beta) / (1 - beta)`` at ``nu = 1``.
    """
    _check_args(alpha=alpha, beta=beta, nu=nu, h=h)
    t, d = _qhm_trace_det(alpha, beta, nu, h)
    return (jnp.abs(d) < 1) & (1 - t + d > 0) & (1 + t + d > 0)


def aggmo_iteration_matrix(alpha, betas, h) -> jax.Array:
    """``[..., K+1, K+1]``: AggMo (:func:`jaxmom.sgd_aggmo`) on ``h/2 x^2`` as a map of
    ``(x, v_1, ..., v_K)``: ``v_i' = beta_i v_i + h x``, ``x' = x - alpha/K sum_i v_i'``.

    ``betas`` is ``[..., K]``; ``alpha`` and ``h`` broadcast against its batch dimensions.
    """
    betas = jnp.asarray(betas)
    _check_args(alpha=alpha, betas=betas, h=h)
    k = betas.shape[-1]
    batch = jnp.broadcast_shapes(jnp.shape(alpha), jnp.shape(h), betas.shape[:-1])
    a, h = (jnp.broadcast_to(jnp.asarray(v, betas.dtype), batch) for v in (alpha, h))
    b = jnp.broadcast_to(betas, (*batch, k))
    eye = jnp.broadcast_to(jnp.eye(k, dtype=b.dtype), (*batch, k, k))
    top = jnp.concatenate([(1 - a * h)[..., None], -(a / k)[..., None] * b], axis=-1)
    rows = jnp.concatenate(
        [
            jnp.broadcast_to(h[..., None, None], (*batch, k, 1)),
            b[..., None] * eye,
        ],
        axis=-1,
    )
    return jnp.concatenate([top[..., None, :], rows], axis=-2)


def aggmo_polynomial(alpha, betas, h) -> jax.Array:
    """The coefficients (highest first, ``[..., K+2]``) of AggMo's characteristic polynomial,
    in closed form: ``(l - 1 + alpha h) prod_j (l - beta_j) + (alpha h / K) sum_i beta_i
    prod_{j != i} (l - beta_j)``."""
    betas = jnp.asarray(betas)
    _check_args(alpha=alpha, betas=betas, h=h)
    k = betas.shape[-1]

    def prod(bs):
        one = jnp.ones(1, betas.dtype if jnp.issubdtype(betas.dtype, jnp.floating) else float)
        return functools.reduce(jnp.convolve, [jnp.stack([jnp.ones_like(x), -x]) for x in bs], one)

    def one(ah, b):
        full = jnp.convolve(jnp.stack([jnp.ones_like(ah), ah - 1]), prod([b[j] for j in range(k)]))
        rest = sum(b[i] * prod([b[j] for j in range(k) if j != i]) for i in range(k))
        return full + jnp.pad(ah / k * rest, (2, 0))

    ah = jnp.asarray(alpha) * jnp.asarray(h)
    batch = jnp.broadcast_shapes(ah.shape, betas.shape[:-1])
    ah, betas = jnp.broadcast_to(ah, batch), jnp.broadcast_to(betas, (*batch, k))
    return jnp.vectorize(one, signature="(),(k)->(n)")(ah, betas)


def aggmo_spectral_radius(alpha, betas, h) -> jax.Array:
    """AggMo's linear rate on ``h/2 x^2``: the largest root modulus of
    :func:`aggmo_polynomial` (its roots by ``jnp.roots``; on a CPU, as ``eig`` needs one)."""
    coeffs = aggmo_polynomial(alpha, betas, h)
    roots = jnp.vectorize(lambda c: jnp.roots(c, strip_zeros=False), signature="(n)->(m)")
    return jnp.max(jnp.abs(roots(coeffs)), axis=-1)


def optimal_aggmo(mu, L, betas=(0.0, 0.9, 0.99)):
    """``(alpha*, rate)``: for fixed ``betas``, the learning rate minimising AggMo's worst rate
    over curvatures in ``[mu, L]`` (no closed form: a grid of 200 rates, narrowed around the
    best six times, in float64; the worst case over 129 geometric curvatures). The rate's
    minimum is a sharp, square-root-shaped notch (heavy ball's at critical damping), hence the
    narrowing. Concrete scalars only."""
    _check_curvatures(mu, L)
    with jax.enable_x64(True):
        b = jnp.asarray(betas, jnp.float64)
        hs = jnp.geomspace(float(mu), float(L), 129)
        worst = jax.jit(jax.vmap(lambda a: jnp.max(aggmo_spectral_radius(a, b, hs))))
        lo, hi = 1e-3 / float(L), 4.0 * len(betas) / float(L)
        for _ in range(7):
            grid = jnp.geomspace(lo, hi, 200)
            rates = worst(grid)
            i = int(jnp.argmin(rates))
            lo, hi = float(grid[max(i - 1, 0)]), float(grid[min(i + 1, len(grid) - 1)])
        return float(grid[i]), float(rates[i])


def optimal_qhm(mu, L):
    """``(alpha*, beta*, nu*, rate)`` minimising QHM's worst rate over curvatures in
    ``[mu, L]``, computed numerically (no closed form is known): a grid over (beta, nu, alpha),
    then Nelder-Mead from eight of its best points. Concrete scalars only.

    On every ``[mu, L]`` tried (``tests/test_theory_family.py``, the ``qhm_phase_diagram``
    experiment) it finds heavy ball's rate, ``(sqrt(kappa) - 1)/(sqrt(kappa) + 1)``, at
    ``nu = 1`` (normalized heavy ball with ``alpha (1 - beta)`` heavy ball's ``alpha*``): QHM
    reaches no better rate than heavy ball on a quadratic, only the same one.
    """
    from scipy.optimize import minimize

    _check_curvatures(mu, L)
    hs = np.geomspace(float(mu), float(L), 129)

    def worst(a, b, n):
        h = hs.reshape((1,) * np.ndim(a) + (-1,))
        return np.asarray(qhm_spectral_radius(a[..., None], b[..., None], n[..., None], h)).max(-1)

    bb, nn, aa = np.meshgrid(
        np.linspace(0, 0.99, 34),
        np.linspace(0, 1, 21),
        np.geomspace(0.05 / L, 400 / L, 60),
        indexing="ij",
    )

    def clip(x):
        return np.exp(x[0]), np.clip(x[1], 0, 1 - 1e-12), np.clip(x[2], 0, 1)

    def polish(i):
        x0 = np.array([np.log(aa[i]), bb[i], nn[i]])
        return minimize(
            lambda x: float(worst(*map(np.asarray, clip(x)))),
            x0,
            method="Nelder-Mead",
            options={"xatol": 1e-10, "fatol": 1e-12, "maxiter": 4000},
        )

    with jax.enable_x64(True):
        rates = worst(aa, bb, nn)
        starts = np.argsort(rates, axis=None)[:: max(1, rates.size // 4000)][:8]
        best = min((polish(np.unravel_index(i, rates.shape)) for i in starts), key=lambda r: r.fun)
        a, b, n = clip(best.x)
        return float(a), float(b), float(n), float(worst(*map(np.asarray, (a, b, n))))
