"""jaxmom.theory against numpy's eigenvalues and against real trajectories of jaxmom."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxmom
from jaxmom import theory


@pytest.fixture(scope="module")
def grid():
    rng = np.random.default_rng(0)
    alpha = rng.uniform(0.01, 1.0, 400)
    h = rng.uniform(0.1, 4.0, 400)
    beta = rng.uniform(0.0, 0.999, 400)
    return alpha.astype(np.float32), beta.astype(np.float32), h.astype(np.float32)


def test_spectral_radius_equals_numpy_eigenvalues(grid):
    alpha, beta, h = grid
    a = np.asarray(theory.iteration_matrix(alpha, beta, h), np.float64)
    assert a.shape == (400, 2, 2)
    want = np.abs(np.linalg.eigvals(a)).max(-1)
    np.testing.assert_allclose(theory.spectral_radius(alpha, beta, h), want, rtol=2e-3, atol=1e-5)


def test_theory_works_under_jit_and_vmap(grid):
    alpha, beta, h = grid
    f = jax.jit(jax.vmap(theory.spectral_radius))
    np.testing.assert_allclose(f(alpha, beta, h), theory.spectral_radius(alpha, beta, h), rtol=1e-5)


def _measured_rate(xs, burn=50):
    """The linear rate of |x_t| from a log-linear fit of the envelope past ``burn`` steps."""
    r = np.log(np.maximum(np.abs(np.asarray(xs, np.float64)), 1e-300))
    t = np.arange(len(r))[burn:]
    # the envelope of an oscillating sequence: the running max over a window of 8 steps
    env = np.array([r[i : i + 8].max() for i in range(burn, len(r) - 8)])
    return float(np.exp(np.polyfit(t[: len(env)], env, 1)[0]))


@pytest.mark.parametrize("alpha, beta, h", [(0.1, 0.5, 1.0), (0.05, 0.9, 2.0), (0.3, 0.2, 1.5)])
def test_trajectories_of_jaxmom_converge_at_rho(alpha, beta, h):
    with jax.enable_x64(True):
        xs = theory.quadratic_trajectory(
            jnp.array([h]), 1.0, jaxmom.sgd_momentum(alpha, beta), 400
        )[:, 0]
        rho = float(theory.spectral_radius(alpha, beta, h))
    assert abs(_measured_rate(xs) / rho - 1) < 0.02


def test_beta_zero_is_gradient_descent(grid):
    alpha, _, h = grid
    np.testing.assert_allclose(
        theory.spectral_radius(alpha, 0.0, h), theory.gd_rate(alpha, h), rtol=1e-5, atol=1e-6
    )
    gd = theory.quadratic_trajectory(jnp.array([2.0]), 1.0, jaxmom.sgd_momentum(0.1, 0.0), 10)
    np.testing.assert_allclose(gd[:, 0], 0.8 ** np.arange(11), rtol=1e-5)


def test_beta_one_never_converges(grid):
    alpha, _, h = grid
    assert not theory.converges(alpha, 1.0, h).any()
    assert (theory.spectral_radius(alpha, 1.0, h) >= 1 - 1e-6).all()
    xs = theory.quadratic_trajectory(jnp.array([1.0]), 1.0, jaxmom.sgd_momentum(0.1, 1.0), 500)
    assert np.abs(xs[-100:]).max() > 0.5  # the frictionless bowl: it keeps swinging


def test_region_boundary():
    beta = np.linspace(0.0, 0.95, 20)
    edge = 2 * (1 + beta)  # alpha*h on the boundary
    np.testing.assert_allclose(theory.spectral_radius(edge, beta, 1.0), 1.0, rtol=1e-5)
    assert theory.converges(edge * 0.99, beta, 1.0).all()
    assert not theory.converges(edge * 1.01, beta, 1.0).any()
    assert (theory.spectral_radius(edge * 0.99, beta, 1.0) < 1).all()
    assert (theory.spectral_radius(edge * 1.01, beta, 1.0) > 1).all()


def test_complex_roots_have_rate_sqrt_beta():
    alpha, h = 0.1, 1.0
    beta = np.linspace(float(theory.critical_beta(alpha, h)) + 1e-3, 0.99, 10)
    np.testing.assert_allclose(theory.spectral_radius(alpha, beta, h), np.sqrt(beta), rtol=1e-5)


@pytest.mark.parametrize("mu, L", [(1.0, 10.0), (2.0, 20.0), (0.1, 100.0)])
def test_optimal_parameters_beat_their_neighbours(mu, L):
    def worst(a, b):
        hs = np.linspace(mu, L, 201)
        return float(np.max(theory.spectral_radius(a, b, hs)))

    a, b, rate = (float(v) for v in theory.optimal_momentum(mu, L))
    np.testing.assert_allclose(worst(a, b), rate, rtol=1e-3)
    for da, db in [(1.05, 1), (0.95, 1), (1, 1.05), (1, 0.95)]:
        assert worst(a * da, min(b * db, 0.9999)) > rate
    ga, grate = (float(v) for v in theory.optimal_gd(mu, L))
    np.testing.assert_allclose(np.max(theory.gd_rate(ga, np.array([mu, L]))), grate, rtol=1e-5)
    assert rate < grate  # momentum's optimum beats gradient descent's


def test_terminal_velocity_matches_a_constant_gradient_run():
    alpha, g = 0.01, 3.0
    for beta in (0.5, 0.8, 0.9):
        tx = jaxmom.heavy_ball(alpha, beta)
        state = tx.init(jnp.zeros(1))
        for _ in range(300):
            step, state = tx.update(jnp.full(1, g), state)
        want = alpha * g * float(theory.terminal_velocity_factor(beta))
        np.testing.assert_allclose(-step[0], want, rtol=1e-4)


def test_linear_term_gives_a_constant_gradient():
    # h = 0 and linear = g: gradient descent moves by alpha*g every step
    xs = theory.quadratic_trajectory(
        jnp.zeros(2), 1.0, jaxmom.sgd_momentum(0.1, 0.0), 5, linear=2.0
    )
    np.testing.assert_allclose(xs[:, 0], 1.0 - 0.2 * np.arange(6), atol=1e-6)
    # and with h: the minimum moves to -linear/h
    xs = theory.quadratic_trajectory(jnp.array([4.0]), 0.0, jaxmom.sgd_momentum(0.1, 0.5), 300, 2.0)
    np.testing.assert_allclose(xs[-1], [-0.5], rtol=1e-5)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: theory.optimal_momentum(0.0, 1.0), "mu must be finite and > 0, got mu=0.0"),
        (lambda: theory.optimal_gd(2.0, 1.0), "L must be >= mu"),
        (lambda: theory.optimal_momentum(1.0, float("inf")), "L must be finite"),
        (lambda: theory.spectral_radius(np.nan, 0.5, 1.0), "alpha must be finite, got alpha=nan"),
        (lambda: theory.spectral_radius(0.1, -np.inf, 1.0), "beta must be finite, got beta=-inf"),
        (lambda: theory.converges(0.1, [0.5, np.nan], 1.0), "got beta=nan"),
        (lambda: theory.critical_beta(0.1, np.inf), "h must be finite"),
        (lambda: theory.terminal_velocity_factor(None), "beta must be numbers"),
        (lambda: theory.gd_rate("0.1", 1.0), "alpha must be"),
    ],
)
def test_concrete_arguments_are_checked(call, match):
    with pytest.raises((ValueError, TypeError), match=match):
        call()


def test_the_whole_domain_of_the_matrix_is_accepted():
    """alpha*h = 0, negative and large beta: numpy's eigenvalues and the Jury conditions."""
    rng = np.random.default_rng(1)
    ah = np.concatenate([[0.0, 0.0, -0.5], rng.uniform(-1, 5, 500)])
    beta = np.concatenate([[0.5, -0.5, 0.3], rng.uniform(-1.5, 1.5, 500)])
    with jax.enable_x64(True):
        rho = np.asarray(theory.spectral_radius(ah, beta, 1.0))
        a = np.asarray(theory.iteration_matrix(ah, beta, 1.0))
        conv = np.asarray(theory.converges(ah, beta, 1.0))
        crit = np.asarray(theory.critical_beta(ah, 1.0))
    np.testing.assert_allclose(rho, np.abs(np.linalg.eigvals(a)).max(-1), rtol=1e-6, atol=1e-6)
    assert rho[0] == 1.0 and not conv[0]  # alpha*h = 0: the root 1, no progress
    clear = np.abs(rho - 1) > 1e-6
    np.testing.assert_array_equal(conv[clear], rho[clear] < 1)
    assert conv[(beta < 0) & (rho < 1 - 1e-6)].all() and (conv & (beta < 0)).any()
    assert np.isinf(crit[ah < 0]).all()
    complex_roots = np.abs(np.imag(np.linalg.eigvals(a))).max(-1) > 1e-9
    np.testing.assert_array_equal(complex_roots[ah < 0], False)
    inside = (
        (ah >= 0) & (beta > crit + 1e-6) & (beta < (1 + np.sqrt(np.maximum(ah, 0))) ** 2 - 1e-6)
    )
    np.testing.assert_array_equal(
        complex_roots[(ah >= 0) & (np.abs(beta - crit) > 1e-6)],
        inside[(ah >= 0) & (np.abs(beta - crit) > 1e-6)],
    )
    # negative momentum on a real trajectory converges at rho
    with jax.enable_x64(True):
        xs = theory.quadratic_trajectory(
            jnp.array([1.0]),
            1.0,
            optax.sgd(0.5, momentum=-0.3),
            120,  # torch and jaxmom refuse it
        )[:, 0]
    assert (
        abs(_measured_rate(xs, burn=10) / float(theory.spectral_radius(0.5, -0.3, 1.0)) - 1) < 0.02
    )
