"""jaxmom as a drop-in for PyTorch users and for typed code: every option of
``torch.optim.SGD`` (momentum, dampening, weight_decay, nesterov, maximize, a learning-rate
schedule, parameter groups) against torch in float64; argument types and dtypes."""

import itertools
import re

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxmom
from tests.helpers import scan_updates


@pytest.fixture(scope="module")
def problem():
    rng = np.random.default_rng(0)
    params = {"w": jnp.asarray(rng.normal(size=(3, 4)), jnp.float32)}
    grads = {"w": jnp.asarray(rng.normal(size=(40, 3, 4)), jnp.float32)}
    return params, grads


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
    with pytest.raises(ValueError, match=r"must be finite and >= 0.*-0\.5.*maximize=True"):
        jaxmom.sgd_momentum(-0.5, 0.9)


def test_accumulator_dtype_equals_optax_sgd(problem):
    params, grads = problem
    for nesterov in (False, True):
        ours = jaxmom.sgd_momentum(0.05, 0.9, nesterov=nesterov, accumulator_dtype=jnp.bfloat16)
        theirs = optax.sgd(0.05, 0.9, nesterov=nesterov, accumulator_dtype=jnp.bfloat16)
        np.testing.assert_array_equal(
            scan_updates(ours, params, grads)["w"], scan_updates(theirs, params, grads)["w"]
        )
        assert ours.init(params)[0].trace["w"].dtype == jnp.bfloat16


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
        assert state[1].trace["w"].dtype == dtype
    # with accumulator_dtype the velocity is kept in it
    tx = jaxmom.heavy_ball(0.01, 0.9, accumulator_dtype=jnp.float32)
    assert tx.init(params)[1].trace["w"].dtype == jnp.float32
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


def _quadratic(p):
    """The gradient of a fixed quadratic at ``p``, so weight decay meets real parameters."""
    return 0.7 * p - 0.2 * p[::-1] + 0.1


def _torch_run(torch, x0, steps, lr_at, **kwargs):
    p = torch.nn.Parameter(torch.tensor(x0))
    opt = torch.optim.SGD([p], lr=lr_at(0), **kwargs)
    out = []
    for t in range(steps):
        opt.param_groups[0]["lr"] = lr_at(t)
        p.grad = torch.tensor(_quadratic(p.detach().numpy()))
        opt.step()
        out.append(p.detach().numpy().copy())
    return np.stack(out)


def _jaxmom_run(tx, x0, steps):
    @jax.jit
    def run(x):
        def step(carry, _):
            p, s = carry
            u, s = tx.update(jax.tree.map(_quadratic, p), s, p)
            p = optax.apply_updates(p, u)
            return (p, s), p

        return jax.lax.scan(step, (x, tx.init(x)), length=steps)[1]

    return run(jax.tree.map(jnp.asarray, x0))


# every combination torch accepts (it refuses Nesterov with dampening)
TORCH_OPTIONS = [
    dict(nesterov=n, dampening=d, weight_decay=w, maximize=m)
    for n, d, w, m in itertools.product((False, True), (0.0, 0.3), (0.0, 0.01), (False, True))
    if not (n and d)
]


@pytest.mark.parametrize("schedule", [False, True], ids=["constant lr", "lr schedule"])
def test_every_torch_sgd_option_equals_torch_in_float64(torch, schedule):
    steps, beta = 60, 0.9
    x0 = np.random.default_rng(5).normal(size=6)
    with jax.enable_x64(True):
        # a warmup in float64 (optax's own schedules compute in float32)
        sched = lambda count: 0.05 * jnp.minimum(count.astype(jnp.float64), 30.0) / 30.0  # noqa: E731
        lr_at = (lambda t: 0.05 * min(t, 30.0) / 30.0) if schedule else (lambda t: 0.05)
        for options in TORCH_OPTIONS:
            want = _torch_run(torch, x0, steps, lr_at, momentum=beta, **options)
            tx = jaxmom.sgd_momentum(sched if schedule else 0.05, beta, **options)
            got = _jaxmom_run(tx, x0, steps)
            assert got.dtype == jnp.float64
            np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12, err_msg=str(options))
    # the order matters: decay after momentum (the other chain) is not torch
    with jax.enable_x64(True):
        after = optax.chain(jaxmom.sgd_momentum(0.05, beta), optax.add_decayed_weights(0.01))
        want = _torch_run(torch, x0, steps, lambda t: 0.05, momentum=beta, weight_decay=0.01)
        assert not np.allclose(_jaxmom_run(after, x0, steps), want, rtol=1e-3)


def test_param_groups_are_optax_partition_and_masked_weight_decay(torch):
    """torch's two param groups (one without weight decay, one at its own lr) as optax says it."""
    steps = 40
    rng = np.random.default_rng(6)
    x0 = {"w": rng.normal(size=4), "b": rng.normal(size=2)}
    with jax.enable_x64(True):
        tw, tb = (torch.nn.Parameter(torch.tensor(x0[k])) for k in ("w", "b"))
        opt = torch.optim.SGD(
            [{"params": [tw], "weight_decay": 0.05}, {"params": [tb], "lr": 0.01}],
            lr=0.05,
            momentum=0.9,
        )
        want = []
        for _ in range(steps):
            tw.grad = torch.tensor(_quadratic(tw.detach().numpy()))
            tb.grad = torch.tensor(_quadratic(tb.detach().numpy()))
            opt.step()
            want.append(np.concatenate([tw.detach().numpy(), tb.detach().numpy()]))
        tx = optax.partition(
            {
                "decayed": jaxmom.sgd_momentum(0.05, 0.9, weight_decay=0.05),
                "bias": jaxmom.sgd_momentum(0.01, 0.9),
            },
            {"w": "decayed", "b": "bias"},
        )
        got = _jaxmom_run(tx, jax.tree.map(jnp.asarray, x0), steps)
        got = np.concatenate([got["w"], got["b"]], axis=1)
        np.testing.assert_allclose(got, np.stack(want), rtol=1e-12, atol=1e-12)
        # one learning rate, weight decay on "w" only: add_decayed_weights(mask=) in front
        masked = optax.chain(
            optax.add_decayed_weights(0.05, mask={"w": True, "b": False}),
            jaxmom.sgd_momentum(0.05, 0.9),
        )
        same = optax.partition(
            {
                "d": jaxmom.sgd_momentum(0.05, 0.9, weight_decay=0.05),
                "n": jaxmom.sgd_momentum(0.05, 0.9),
            },
            {"w": "d", "b": "n"},
        )
        x = jax.tree.map(jnp.asarray, x0)
        jax.tree.map(
            lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-13),
            _jaxmom_run(masked, x, steps),
            _jaxmom_run(same, x, steps),
        )


def test_torch_options_are_checked_and_need_params(problem):
    params, grads = problem
    with pytest.raises(
        ValueError, match=r"weight_decay must be finite and >= 0, got weight_decay=-0\.1$"
    ):
        jaxmom.sgd_momentum(0.1, 0.9, weight_decay=-0.1)
    with pytest.raises(TypeError, match="weight_decay"):
        jaxmom.sgd_momentum(0.1, 0.9, weight_decay="0.1")
    with pytest.raises(TypeError, match="maximize"):
        jaxmom.sgd_momentum(0.1, 0.9, maximize="yes")
    tx = jaxmom.sgd_momentum(0.1, 0.9, weight_decay=0.01)
    with pytest.raises(ValueError, match=r"weight_decay=0.01 needs the parameters.*params\)"):
        tx.update({"w": grads["w"][0]}, tx.init(params))
    # with neither option the transform is optax.sgd's, state and all
    plain = jaxmom.sgd_momentum(0.1, 0.9, weight_decay=0.0, maximize=False)
    assert jax.tree.structure(plain.init(params)) == jax.tree.structure(
        optax.sgd(0.1, 0.9).init(params)
    )
    np.testing.assert_array_equal(
        scan_updates(plain, params, grads)["w"],
        scan_updates(optax.sgd(0.1, 0.9), params, grads)["w"],
    )
    # maximize ascends: the same run as minimizing the negated gradients
    up = scan_updates(jaxmom.sgd_momentum(0.1, 0.9, maximize=True), params, grads)["w"]
    down = scan_updates(jaxmom.sgd_momentum(0.1, 0.9), params, jax.tree.map(lambda g: -g, grads))
    np.testing.assert_array_equal(up, down["w"])
