"""jaxmom as a drop-in for optax and PyTorch users: warmup from 0, argument types, dtypes,
torch's dampening, checkpoints restored into another configuration."""

import re

import flax.serialization
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

import jaxmom
from tests.helpers import scan_updates

WARMUP = optax.warmup_cosine_decay_schedule(0.0, 0.1, 10, 100)


@pytest.fixture(scope="module")
def problem():
    rng = np.random.default_rng(0)
    params = {"w": jnp.asarray(rng.normal(size=(3, 4)), jnp.float32)}
    grads = {"w": jnp.asarray(rng.normal(size=(40, 3, 4)), jnp.float32)}
    return params, grads


def test_warmup_from_zero_through_inject_hyperparams_equals_optax_sgd(problem):
    params, grads = problem
    ours = optax.inject_hyperparams(jaxmom.sgd_momentum)(learning_rate=WARMUP, beta=0.9)
    theirs = optax.inject_hyperparams(optax.sgd)(learning_rate=WARMUP, momentum=0.9)
    s1, s2 = ours.init(params), theirs.init(params)
    p1 = p2 = params
    for t in range(grads["w"].shape[0]):  # eager updates: the schedule's value is concrete
        g = {"w": grads["w"][t]}
        u1, s1 = ours.update(g, s1, p1)
        u2, s2 = theirs.update(g, s2, p2)
        p1, p2 = optax.apply_updates(p1, u1), optax.apply_updates(p2, u2)
        np.testing.assert_allclose(p1["w"], p2["w"], rtol=1e-6, atol=1e-7)
    assert float(s1.hyperparams["learning_rate"]) > 0  # it did warm up


def test_warmup_through_nnx_optimizer_equals_optax_sgd():
    def make(tx):
        model = nnx.Linear(3, 2, rngs=nnx.Rngs(0))
        return model, nnx.Optimizer(model, tx, wrt=nnx.Param)

    x = jnp.linspace(-1, 1, 24).reshape(8, 3)
    m1, o1 = make(optax.inject_hyperparams(jaxmom.sgd_momentum)(learning_rate=WARMUP, beta=0.9))
    m2, o2 = make(optax.inject_hyperparams(optax.sgd)(learning_rate=WARMUP, momentum=0.9))
    for _ in range(15):
        for model, opt in ((m1, o1), (m2, o2)):
            grads = nnx.grad(lambda m: jnp.mean(m(x) ** 2))(model)
            opt.update(model, grads)
        np.testing.assert_allclose(m1.kernel[...], m2.kernel[...], rtol=1e-6, atol=1e-7)
    assert not np.allclose(m1.kernel[...], make(optax.sgd(0.1))[0].kernel[...])  # it trained


@pytest.mark.parametrize(
    "make",
    [jaxmom.momentum, lambda b: jaxmom.sgd_momentum(0.1, b), lambda b: jaxmom.heavy_ball(0.1, b)],
)
@pytest.mark.parametrize("beta", ["0.9", [0.9, 0.8], None, True, np.array([0.5, 0.9])])
def test_beta_of_a_wrong_type_is_named(make, beta):
    with pytest.raises(TypeError, match="beta"):
        make(beta)


@pytest.mark.parametrize("lr", ["0.01", [0.01], None, False])
def test_learning_rate_of_a_wrong_type_is_named(lr):
    for make in (jaxmom.sgd_momentum, jaxmom.heavy_ball):
        with pytest.raises(TypeError, match="learning_rate"):
            make(lr, 0.9)
    with pytest.raises(TypeError, match="nesterov"):
        jaxmom.sgd_momentum(0.1, 0.9, nesterov="no")


def test_values_are_checked_in_the_dtype_they_run_in():
    for lr, becomes in ((1e-50, "0.0"), (1e39, "inf")):
        with pytest.raises(
            ValueError,
            match=rf"learning_rate={re.escape(repr(lr))} does not fit float32.*{becomes}",
        ):
            jaxmom.sgd_momentum(lr, 0.9)
    with jax.enable_x64(True):  # in float64 both fit
        jaxmom.sgd_momentum(1e-50, 0.9)
        jaxmom.sgd_momentum(1e39, 0.9)
    with pytest.raises(ValueError, match=r"must be finite and >= 0.*-0\.5.*optax.scale"):
        jaxmom.sgd_momentum(-0.5, 0.9)


def test_accumulator_dtype_equals_optax_sgd(problem):
    params, grads = problem
    for nesterov in (False, True):
        ours = jaxmom.sgd_momentum(
            0.05, 0.9, nesterov=nesterov, accumulator_dtype=jnp.bfloat16
        )  # fmt: skip
        theirs = optax.sgd(0.05, 0.9, nesterov=nesterov, accumulator_dtype=jnp.bfloat16)
        np.testing.assert_array_equal(
            scan_updates(ours, params, grads)["w"], scan_updates(theirs, params, grads)["w"]
        )
        assert ours.init(params)[0].velocity["w"].dtype == jnp.bfloat16


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float16])
def test_heavy_ball_keeps_low_precision_state_under_scan(problem, dtype):
    params, grads = jax.tree.map(lambda a: a.astype(dtype), problem)
    for tx in (
        jaxmom.heavy_ball(jnp.float32(0.01), 0.9),
        jaxmom.heavy_ball(jnp.float32(0.01), jnp.float32(0.9), nesterov=True),
        jaxmom.heavy_ball(optax.linear_schedule(0.0, 0.01, 10), 0.9),
    ):
        out = scan_updates(tx, params, grads)  # fails if the velocity turned float32
        assert out["w"].dtype == dtype
        _, state = tx.update({"w": grads["w"][0]}, tx.init(params), params)
        assert state[1].velocity["w"].dtype == dtype
    # with accumulator_dtype the velocity is kept in it
    tx = jaxmom.heavy_ball(0.01, 0.9, accumulator_dtype=jnp.float32)
    assert tx.init(params)[1].velocity["w"].dtype == jnp.float32
    assert scan_updates(tx, params, grads)["w"].dtype == dtype


def test_heavy_ball_nesterov_is_the_look_ahead_and_equals_sgd_momentum(problem):
    params, grads = problem
    lr, beta = 0.05, 0.8
    got = scan_updates(jaxmom.heavy_ball(lr, beta, nesterov=True), params, grads)["w"]
    want = scan_updates(jaxmom.sgd_momentum(lr, beta, nesterov=True), params, grads)["w"]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    # the documented update, in float64: v <- beta v + lr g ; x <- x - (beta v + lr g)
    x, v = np.asarray(params["w"], np.float64), 0.0
    for t, g in enumerate(np.asarray(grads["w"], np.float64)):
        v = beta * v + lr * g
        x = x - (beta * v + lr * g)
        np.testing.assert_allclose(got[t], x, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_dampening_equals_torch(torch, dtype):
    steps = 50
    rng = np.random.default_rng(3)
    x0 = rng.normal(size=(4, 3)).astype(dtype)
    grads = rng.normal(size=(steps, 4, 3)).astype(dtype)
    jdtype = jnp.float64 if dtype == "float64" else jnp.float32
    for beta, damp in ((0.9, 0.1), (0.5, 0.5), (0.99, 0.9), (0.8, 1.0), (0.0, 0.3)):
        p = torch.nn.Parameter(torch.tensor(x0))
        opt = torch.optim.SGD([p], lr=0.05, momentum=beta, dampening=damp)
        want = []
        for g in grads:
            p.grad = torch.tensor(g)
            opt.step()
            want.append(p.detach().numpy().copy())
        with jax.enable_x64(dtype == "float64"):
            tx = jaxmom.sgd_momentum(0.05, beta, dampening=damp)
            got = scan_updates(tx, jnp.asarray(x0, jdtype), jnp.asarray(grads, jdtype))
            assert got.dtype == jdtype
            tol = 1e-12 if dtype == "float64" else 2e-5
            np.testing.assert_allclose(got, np.stack(want), rtol=tol, atol=tol)
    # the first step is the undamped gradient, so scaling the gradient by (1 - d) is not torch
    scaled = optax.chain(optax.scale(0.9), jaxmom.sgd_momentum(0.05, 0.9))
    got = scan_updates(jaxmom.sgd_momentum(0.05, 0.9, dampening=0.1), jnp.asarray(x0), grads)
    assert not np.allclose(got, scan_updates(scaled, jnp.asarray(x0), grads), rtol=1e-3)


def test_dampening_zero_keeps_the_state_of_optax_trace_and_traced_dampening_works(problem):
    params, grads = problem
    assert jaxmom.momentum(0.9, dampening=0.0).init(params).count is None
    with pytest.raises(ValueError, match="nesterov=True needs dampening=0"):
        jaxmom.sgd_momentum(0.1, 0.9, nesterov=True, dampening=0.1)
    with pytest.raises(ValueError, match="dampening must be finite and in"):
        jaxmom.momentum(0.9, dampening=1.5)
    with pytest.raises(TypeError, match="dampening"):
        jaxmom.momentum(0.9, dampening="0.1")

    @jax.jit
    def run(d):  # a traced dampening: one program for every value
        return scan_updates(jaxmom.sgd_momentum(0.05, 0.9, dampening=d), params, grads)["w"]

    want = scan_updates(jaxmom.sgd_momentum(0.05, 0.9, dampening=0.3), params, grads)["w"]
    np.testing.assert_allclose(run(jnp.float32(0.3)), want, rtol=1e-6)


def test_restored_state_that_does_not_fit_says_what_to_do(problem):
    params, grads = problem
    g = {"w": grads["w"][0]}
    constant = jaxmom.sgd_momentum(0.1, 0.9)
    scheduled = jaxmom.sgd_momentum(0.1, optax.linear_schedule(0.5, 0.9, 10))
    saved = flax.serialization.to_state_dict(constant.update(g, constant.init(params))[1])
    restored = flax.serialization.from_state_dict(scheduled.init(params), saved)
    with pytest.raises(ValueError, match=r"beta is a schedule.*count=None.*tx.init"):
        scheduled.update(g, restored, params)
    fixed = (restored[0]._replace(count=jnp.asarray(1, jnp.int32)), *restored[1:])
    scheduled.update(g, fixed, params)  # the fix the message gives works
    saved = flax.serialization.to_state_dict(scheduled.update(g, scheduled.init(params))[1])
    restored = flax.serialization.from_state_dict(constant.init(params), saved)
    assert restored[0].count is not None  # flax restores the count it was given
    with pytest.raises(ValueError, match=r"constant beta and no dampening.*count=1"):
        constant.update(g, restored, params)
