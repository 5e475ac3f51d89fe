"""jaxmom.momentum and its chains against optax.sgd, torch.optim.SGD and the chapter's rule."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from hypothesis import given
from hypothesis import strategies as st

import jaxmom
from tests.helpers import scan_updates

STEPS = 100

shapes_st = st.lists(
    st.lists(st.integers(1, 4), min_size=0, max_size=2).map(tuple), min_size=1, max_size=3
)


def _trajectory(tx, params, noise, h):
    """Parameters after each of ``len(noise)`` steps on f = sum h/2 x^2 with additive noise."""

    def step(carry, eps):
        p, s = carry
        g = jax.tree.map(lambda x, e, c: (c * x + e).astype(x.dtype), p, eps, h)
        u, s = tx.update(g, s, p)
        p = optax.apply_updates(p, u)
        return (p, s), p

    _, ps = jax.lax.scan(step, (params, tx.init(params)), noise)
    return ps


def _problem(shapes, dtype, seed):
    keys = jax.random.split(jax.random.key(seed), 3 * len(shapes))
    params = {
        f"p{i}": jax.random.normal(keys[3 * i], s).astype(dtype) for i, s in enumerate(shapes)
    }
    noise = {
        f"p{i}": jax.random.normal(keys[3 * i + 1], (STEPS, *s)).astype(dtype)
        for i, s in enumerate(shapes)
    }
    h = {
        f"p{i}": jax.random.uniform(keys[3 * i + 2], s).astype(dtype) for i, s in enumerate(shapes)
    }
    return params, noise, h


def _assert_same(a, b, dtype):
    tol = {jnp.bfloat16: 1e-2, jnp.float32: 1e-6, jnp.float64: 1e-12}[dtype]
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        assert x.dtype == y.dtype
        np.testing.assert_allclose(
            np.asarray(x, np.float64), np.asarray(y, np.float64), rtol=tol, atol=tol
        )


def _check_against_optax(shapes, beta, lr, nesterov, dtype, seed):
    params, noise, h = _problem(shapes, dtype, seed)
    run = jax.jit(_trajectory, static_argnums=0)
    want = run(optax.sgd(lr, momentum=beta, nesterov=nesterov), params, noise, h)
    chained = optax.chain(jaxmom.momentum(beta, nesterov=nesterov), optax.scale(-lr))
    _assert_same(run(chained, params, noise, h), want, dtype)
    as_array = optax.chain(jaxmom.momentum(jnp.asarray(beta), nesterov=nesterov), optax.scale(-lr))
    _assert_same(run(as_array, params, noise, h), want, dtype)
    _assert_same(
        run(jaxmom.sgd_momentum(lr, beta, nesterov=nesterov), params, noise, h), want, dtype
    )


hparams = dict(
    shapes=shapes_st,
    beta=st.floats(0.0, float(np.float32(0.999)), width=32),  # values as they run in float32
    lr=st.floats(float(np.float32(1e-4)), 0.5, width=32),
    nesterov=st.booleans(),
    seed=st.integers(0, 2**16),
)


@given(**hparams, dtype=st.sampled_from([jnp.float32, jnp.bfloat16]))
def test_equals_optax_sgd(shapes, beta, lr, nesterov, dtype, seed):
    _check_against_optax(shapes, beta, lr, nesterov, dtype, seed)


@given(**hparams)
def test_equals_optax_sgd_float64(shapes, beta, lr, nesterov, seed):
    with jax.enable_x64(True):
        _check_against_optax(shapes, beta, lr, nesterov, jnp.float64, seed)


@pytest.mark.parametrize(
    "beta, nesterov",  # torch refuses Nesterov without momentum
    [(0.0, False), (0.8, False), (0.99, False), (0.5, True), (0.8, True), (0.99, True)],
)
def test_equals_torch_sgd(torch, beta, nesterov):
    lr = 0.05
    rng = np.random.default_rng(0)
    x0 = {
        "w": rng.normal(size=(3, 4)).astype(np.float32),
        "b": rng.normal(size=4).astype(np.float32),
    }
    grads = {k: rng.normal(size=(STEPS, *v.shape)).astype(np.float32) for k, v in x0.items()}

    tparams = {k: torch.nn.Parameter(torch.tensor(v)) for k, v in x0.items()}
    topt = torch.optim.SGD(tparams.values(), lr=lr, momentum=beta, nesterov=nesterov)
    want = []
    for t in range(STEPS):
        for k, p in tparams.items():
            p.grad = torch.tensor(grads[k][t])
        topt.step()
        want.append({k: p.detach().numpy().copy() for k, p in tparams.items()})

    tx = jaxmom.sgd_momentum(lr, beta, nesterov=nesterov)

    got = jax.jit(functools.partial(scan_updates, tx))(
        jax.tree.map(jnp.asarray, x0), jax.tree.map(jnp.asarray, grads)
    )
    for k in x0:
        np.testing.assert_allclose(got[k], np.stack([w[k] for w in want]), rtol=2e-5, atol=2e-5)


def _fixed_gradient_run(tx, x0, grads):
    """Parameters after each step, the gradients given in advance (not depending on x)."""

    def step(carry, g):
        p, s = carry
        u, s = tx.update(g, s, p)
        p = p + u
        return (p, s), p

    return jax.lax.scan(step, (x0, tx.init(x0)), grads)[1]


def _chapter_replay(x0, grads, lrs, gamma):
    """The chapter's ``sgd_momentum(parameters, vs, lr, gamma)`` in NumPy, float64."""
    param = np.asarray(x0, np.float64).copy()
    v = np.zeros_like(param)
    out = []
    for g, lr in zip(grads, lrs, strict=True):
        v[:] = gamma * v + lr * g
        param = param - v
        out.append(param.copy())
    return np.stack(out)


@pytest.fixture(scope="module")
def fixed_grads():
    rng = np.random.default_rng(1)
    return rng.normal(size=5).astype(np.float32), rng.normal(size=(60, 5)).astype(np.float32)


def test_heavy_ball_is_the_chapters_rule_and_sgd_momentum(fixed_grads):
    x0, grads = fixed_grads
    lr, beta = 0.01, 0.8
    hb = _fixed_gradient_run(jaxmom.heavy_ball(lr, beta), jnp.asarray(x0), jnp.asarray(grads))
    want = _chapter_replay(x0, grads, [lr] * len(grads), beta)
    np.testing.assert_allclose(hb, want, rtol=1e-5, atol=1e-6)
    sgd = _fixed_gradient_run(jaxmom.sgd_momentum(lr, beta), jnp.asarray(x0), jnp.asarray(grads))
    np.testing.assert_allclose(hb, sgd, rtol=1e-5, atol=1e-6)


def test_heavy_ball_differs_from_sgd_momentum_under_a_schedule(fixed_grads):
    x0, grads = fixed_grads
    beta, steps = 0.9, len(grads)
    schedule = optax.linear_schedule(0.1, 0.01, steps)
    lrs = np.array([schedule(t) for t in range(steps)], np.float64)
    hb = _fixed_gradient_run(jaxmom.heavy_ball(schedule, beta), jnp.asarray(x0), jnp.asarray(grads))
    sgd = _fixed_gradient_run(
        jaxmom.sgd_momentum(schedule, beta), jnp.asarray(x0), jnp.asarray(grads)
    )

    np.testing.assert_allclose(hb, _chapter_replay(x0, grads, lrs, beta), rtol=1e-4, atol=1e-5)
    # Step t: heavy ball moves by -sum_s beta^(t-s) lr_s g_s,
    # sgd_momentum by -lr_t sum_s beta^(t-s) g_s.
    g = grads.astype(np.float64)
    diff_steps = []
    for t in range(steps):
        w = beta ** (t - np.arange(t + 1))[:, None]
        diff_steps.append(np.sum(w * (lrs[t] - lrs[: t + 1, None]) * g[: t + 1], axis=0))
    want = np.cumsum(diff_steps, axis=0)
    assert np.abs(want).max() > 0.1  # the two really differ ...
    np.testing.assert_allclose(np.asarray(hb) - np.asarray(sgd), want, rtol=1e-3, atol=1e-4)


def test_vmap_over_beta_equals_separate_runs(fixed_grads):
    x0, grads = fixed_grads
    betas = jnp.array([0.0, 0.5, 0.9, 0.99])

    def run(beta):
        return _fixed_gradient_run(
            jaxmom.sgd_momentum(0.05, beta), jnp.asarray(x0), jnp.asarray(grads)
        )

    batched = jax.jit(jax.vmap(run))(betas)
    for i, b in enumerate([0.0, 0.5, 0.9, 0.99]):
        np.testing.assert_allclose(batched[i], run(b), rtol=1e-6, atol=1e-7)


def test_new_beta_array_does_not_recompile():
    params = {"w": jnp.ones(3)}

    @jax.jit
    def update(beta, g, params):
        tx = jaxmom.momentum(beta)
        return tx.update(g, tx.init(params), params)[0]

    first = update(jnp.float32(0.5), params, params)
    second = update(jnp.float32(0.9), params, params)
    assert update._cache_size() == 1
    # velocity after one step is the gradient itself, whatever beta; after two it depends on beta
    np.testing.assert_allclose(first["w"], second["w"])

    @jax.jit
    def two_steps(beta, g):
        tx = jaxmom.momentum(beta)
        s = tx.init(g)
        _, s = tx.update(g, s)
        return tx.update(g, s)[0]

    for b in (0.1, 0.5, 0.9):
        np.testing.assert_allclose(two_steps(jnp.float32(b), params)["w"], 1 + b, rtol=1e-6)
    assert two_steps._cache_size() == 1


def test_beta_schedule(fixed_grads):
    x0, grads = fixed_grads
    schedule = optax.linear_schedule(0.5, 0.95, 30)
    tx = jaxmom.momentum(schedule)
    state = tx.init(jnp.asarray(x0))
    assert int(state.count) == 0
    v = np.zeros(5)
    for t, g in enumerate(grads[:40]):
        u, state = tx.update(jnp.asarray(g), state)
        v = g + float(schedule(t)) * v
        np.testing.assert_allclose(u, v, rtol=1e-5, atol=1e-6)
    assert int(state.count) == 40
    assert isinstance(jaxmom.momentum(0.9).init(jnp.zeros(2)), optax.TraceState)


def test_none_leaves_empty_trees_and_accumulator_dtype_as_optax():
    params = {"a": jnp.ones((2,)), "b": None}
    grads = {"a": jnp.full((2,), 0.5), "b": None}
    for ours, theirs in [
        (jaxmom.momentum(0.9), optax.trace(0.9)),
        (jaxmom.momentum(0.9, nesterov=True), optax.trace(0.9, nesterov=True)),
        (
            jaxmom.momentum(0.9, accumulator_dtype=jnp.bfloat16),
            optax.trace(0.9, accumulator_dtype=jnp.bfloat16),
        ),
    ]:
        s1, s2 = ours.init(params), theirs.init(params)
        for _ in range(3):
            u1, s1 = ours.update(grads, s1)
            u2, s2 = theirs.update(grads, s2)
        assert jax.tree.structure(u1) == jax.tree.structure(u2)
        assert jax.tree.structure(s1) == jax.tree.structure(s2)  # optax.trace's own state
        assert s1.trace["a"].dtype == s2.trace["a"].dtype
        np.testing.assert_array_equal(u1["a"], u2["a"])
        np.testing.assert_array_equal(s1.trace["a"].astype(float), s2.trace["a"].astype(float))
    empty = jaxmom.momentum(0.9)
    u, _ = empty.update({}, empty.init({}))
    assert u == {}


@pytest.mark.parametrize("beta", [-0.1, 1.5, float("nan"), float("inf"), np.float32(2.0)])
def test_bad_beta_raises_with_value(beta):
    shown = repr(float(beta))
    for make in (
        jaxmom.momentum,
        lambda b: jaxmom.sgd_momentum(0.1, b),
        lambda b: jaxmom.heavy_ball(0.1, b),
    ):
        with pytest.raises(ValueError, match=rf"beta=.*{shown}"):
            make(beta)


@pytest.mark.parametrize("lr", [-0.01, float("nan"), float("inf")])
def test_bad_learning_rate_raises_with_value(lr):
    for make in (jaxmom.sgd_momentum, jaxmom.heavy_ball):
        with pytest.raises(ValueError, match=rf"learning_rate={float(lr)!r}"):
            make(lr, 0.9)


def test_boundary_values_are_accepted():
    jaxmom.momentum(0.0)
    jaxmom.momentum(1.0)  # the frictionless bowl: allowed, never converges
    jaxmom.sgd_momentum(1e-8, 1.0)
    jaxmom.sgd_momentum(0.0, 0.9)  # warmup schedules start at 0
    jaxmom.heavy_ball(0.0, 0.9)
