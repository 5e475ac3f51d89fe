"""The theory of the family on quadratics: QHM's and AggMo's iteration matrices are one step of
the real transforms, their closed-form rates equal ``numpy.linalg.eigvals`` and the measured rate
of real runs, their special cases are heavy ball's and gradient descent's, and the numerical
optima meet the closed forms where one exists."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxmom
from jaxmom import theory

RNG = np.random.default_rng(3)
N = 64
ALPHA = RNG.uniform(0.01, 1.5, N)
BETA = RNG.uniform(0.0, 0.99, N)
NU = RNG.uniform(0.0, 1.0, N)
H = RNG.uniform(0.1, 3.0, N)
BETAS = np.sort(RNG.uniform(0.0, 0.99, (N, 3)), axis=1)


def test_qhm_and_aggmo_rates_are_the_eigenvalues_of_their_matrices():
    with jax.enable_x64(True):
        m = np.asarray(theory.qhm_iteration_matrix(ALPHA, BETA, NU, H))
        rho = np.asarray(theory.qhm_spectral_radius(ALPHA, BETA, NU, H))
        np.testing.assert_allclose(rho, np.abs(np.linalg.eigvals(m)).max(-1), rtol=1e-6)
        m = np.asarray(theory.aggmo_iteration_matrix(ALPHA, BETAS, H))
        assert m.shape == (N, 4, 4)
        rho = np.asarray(theory.aggmo_spectral_radius(ALPHA, BETAS, H))
        np.testing.assert_allclose(rho, np.abs(np.linalg.eigvals(m)).max(-1), rtol=1e-6)
    assert (rho > 1).any() and (rho < 1).any()  # both regimes were checked


@pytest.mark.parametrize("i", range(4))
def test_the_matrices_are_one_step_of_the_transforms(i):
    """``(x, b)`` after one step of ``sgd_qhm`` on ``h/2 x^2`` is the matrix times ``(x, b)``;
    likewise ``(x, v_1..v_K)`` for ``sgd_aggmo``."""
    a, b, n, h = ALPHA[i], BETA[i], NU[i], H[i]
    with jax.enable_x64(True):
        x, buf = jnp.array([1.3]), jnp.array([-0.4])
        tx = jaxmom.sgd_qhm(a, b, n)
        state = (jaxmom.QHMState(jnp.int32(0), buf), *tx.init(x)[1:])
        u, state = tx.update(h * x, state, x)
        want = np.asarray(theory.qhm_iteration_matrix(a, b, n, h)) @ np.array([1.3, -0.4])
        np.testing.assert_allclose([float((x + u)[0]), float(state[0].trace[0])], want, rtol=1e-12)
        v = jnp.array([[0.2], [-0.5], [0.7]])
        tx = jaxmom.sgd_aggmo(a, tuple(BETAS[i]))
        state = (jaxmom.AggMoState(jnp.int32(0), v), *tx.init(x)[1:])
        u, state = tx.update(h * x, state, x)
        want = np.asarray(theory.aggmo_iteration_matrix(a, BETAS[i], h)) @ np.array(
            [1.3, 0.2, -0.5, 0.7]
        )
        got = [float((x + u)[0]), *np.asarray(state[0].trace[:, 0])]
        np.testing.assert_allclose(got, want, rtol=1e-12)


def _measured_rate(opt, h, steps=400, tail=100):
    with jax.enable_x64(True):
        xs = np.abs(np.asarray(theory.quadratic_trajectory(jnp.array([h]), 1.0, opt, steps)))[:, 0]
    return (xs[-1] / xs[-1 - tail]) ** (1 / tail)


@pytest.mark.parametrize(
    "opt, rate",
    [
        (jaxmom.sgd_qhm(0.5, 0.9, 0.7), lambda: theory.qhm_spectral_radius(0.5, 0.9, 0.7, 1.0)),
        (jaxmom.sgd_qhm(1.2, 0.8, 0.3), lambda: theory.qhm_spectral_radius(1.2, 0.8, 0.3, 1.0)),
        (jaxmom.sgd_qhm(2.5, 0.95, 0.9), lambda: theory.qhm_spectral_radius(2.5, 0.95, 0.9, 1.0)),
        (
            jaxmom.sgd_aggmo(0.3, (0.0, 0.9, 0.99)),
            lambda: theory.aggmo_spectral_radius(0.3, jnp.array([0.0, 0.9, 0.99]), 1.0),
        ),
        (
            jaxmom.sgd_aggmo(1.0, (0.5, 0.7)),
            lambda: theory.aggmo_spectral_radius(1.0, jnp.array([0.5, 0.7]), 1.0),
        ),
    ],
)
def test_the_rate_is_the_measured_rate_of_real_runs(opt, rate):
    with jax.enable_x64(True):
        want = float(rate())
    assert 0.5 < want < 1.0
    assert _measured_rate(opt, 1.0) == pytest.approx(want, rel=0.02)


def test_qhm_converges_where_real_runs_do_and_its_special_cases():
    a, b, n = (g.ravel() for g in np.meshgrid(np.linspace(0.05, 12, 30), [0.5, 0.9], [0, 0.5, 1]))
    predicted = np.asarray(theory.qhm_converges(a, b, n, 1.0))
    bound = 2 * (1 + b) / (1 + b - 2 * n * b)
    np.testing.assert_array_equal(predicted, a < bound)
    with jax.enable_x64(True):
        clear = np.abs(a / bound - 1) > 0.05
        run = jax.jit(
            jax.vmap(
                lambda a, b, n: theory.quadratic_trajectory(
                    jnp.ones(1), 1.0, jaxmom.sgd_qhm(a, b, n), 600
                )[-1, 0]
            )
        )
        final = np.abs(np.nan_to_num(np.asarray(run(a, b, n)), nan=np.inf))
    np.testing.assert_array_equal((final < 1e-3)[clear], predicted[clear])
    # nu = 1: heavy ball at alpha (1 - beta); nu = 0: gradient descent's x, and the buffer's
    # own mode beta, which x does not read
    np.testing.assert_allclose(
        theory.qhm_spectral_radius(ALPHA, BETA, 1.0, H),
        theory.spectral_radius(ALPHA * (1 - BETA), BETA, H),
        rtol=1e-5,
        atol=1e-6,
    )
    np.testing.assert_allclose(
        theory.qhm_spectral_radius(ALPHA, BETA, 0.0, H),
        np.maximum(theory.gd_rate(ALPHA, H), BETA),
        rtol=1e-5,
    )


@pytest.mark.parametrize("mu, L", [(2.0, 20.0), (1.0, 400.0)])
def test_the_numerical_optima_meet_the_closed_forms(mu, L):
    """QHM's best worst-case rate is heavy ball's, at nu = 1 and alpha (1 - beta) = alpha*;
    AggMo with one beta is heavy ball at that beta (its best rate sqrt(beta*) at beta*), with
    beta 0 gradient descent."""
    a_hb, b_hb, rate_hb = (float(v) for v in theory.optimal_momentum(mu, L))
    a, b, n, rate = theory.optimal_qhm(mu, L)
    assert rate == pytest.approx(rate_hb, abs=1e-4)
    assert n == pytest.approx(1.0, abs=1e-3) and b == pytest.approx(b_hb, abs=2e-3)
    assert a * (1 - b) == pytest.approx(a_hb, rel=2e-3)
    a, rate = theory.optimal_aggmo(mu, L, (b_hb,))
    assert rate == pytest.approx(rate_hb, abs=2e-3) and a == pytest.approx(a_hb, rel=1e-2)
    a, rate = theory.optimal_aggmo(mu, L, (0.0,))
    a_gd, rate_gd = (float(v) for v in theory.optimal_gd(mu, L))
    assert rate == pytest.approx(rate_gd, abs=2e-3) and a == pytest.approx(a_gd, rel=1e-2)


def test_bad_arguments_name_themselves():
    with pytest.raises(ValueError, match=r"nu must be finite, got nu=nan"):
        theory.qhm_spectral_radius(0.1, 0.9, float("nan"), 1.0)
    with pytest.raises(ValueError, match=r"betas must be finite"):
        theory.aggmo_spectral_radius(0.1, [0.0, float("inf")], 1.0)
    with pytest.raises(ValueError, match=r"L must be >= mu"):
        theory.optimal_qhm(3.0, 2.0)
