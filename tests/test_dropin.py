"""jaxmom as a drop-in for optax users, run as they run it: ``optax.inject_hyperparams`` under
``jax.jit``, ``nnx.jit`` and ``optax.MultiSteps``, and checkpoints that move between
``optax.sgd`` and ``jaxmom.sgd_momentum`` (orbax and flax.serialization)."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx
from helpers import (
    flax_round_trip,
    orbax_round_trip,
    quadratic_grad,
    quadratic_problem,
    run_jitted,
)

import jaxmom

WARMUP = optax.warmup_cosine_decay_schedule(0.0, 0.1, 10, 100)
STEPS = 100


@pytest.fixture(scope="module")
def problem():
    """Parameters and a gradient that depends on them (a quadratic), as in training."""
    return quadratic_problem(0)


_grad = quadratic_grad


def _run(tx, params, h, steps=STEPS, state=None):
    return run_jitted(tx, params, h, steps, state)


def _assert_equal(a, b):
    jax.tree.map(np.testing.assert_array_equal, a, b)


# every configuration optax.sgd has: (jaxmom kwargs, optax.sgd kwargs)
SGD_CASES = [
    ({"learning_rate": 0.05, "beta": 0.9}, {"learning_rate": 0.05, "momentum": 0.9}),
    (
        {"learning_rate": WARMUP, "beta": 0.9, "nesterov": True},
        {"learning_rate": WARMUP, "momentum": 0.9, "nesterov": True},
    ),
    (
        {"learning_rate": WARMUP, "beta": 0.8, "accumulator_dtype": "bfloat16"},
        {"learning_rate": WARMUP, "momentum": 0.8, "accumulator_dtype": "bfloat16"},
    ),
]


@pytest.mark.parametrize("ours, theirs", SGD_CASES)
def test_inject_hyperparams_under_jit_equals_optax_sgd_bit_for_bit(problem, ours, theirs):
    params, h = problem
    tx = optax.inject_hyperparams(jaxmom.sgd_momentum)(**ours)
    ref = optax.inject_hyperparams(optax.sgd)(**theirs)
    got, state = _run(tx, params, h)
    want, ref_state = _run(ref, params, h)
    _assert_equal(got, want)
    assert jax.tree.structure(state.inner_state) == jax.tree.structure(ref_state.inner_state)
    _assert_equal(state.inner_state, ref_state.inner_state)
    lr = state.hyperparams["learning_rate"]
    assert lr == ref_state.hyperparams["learning_rate"]
    if not callable(ours["learning_rate"]):  # optax finds a schedule's value twice
        assert optax.tree_utils.tree_get(state, "learning_rate") == lr


def test_tree_set_changes_the_jitted_run_as_in_optax(problem):
    params, h = problem
    tx = optax.inject_hyperparams(jaxmom.sgd_momentum)(learning_rate=0.05, beta=0.9)
    ref = optax.inject_hyperparams(optax.sgd)(learning_rate=0.05, momentum=0.9)
    p1, s1 = _run(tx, params, h, steps=10)
    p2, s2 = _run(ref, params, h, steps=10)
    s1 = optax.tree_utils.tree_set(s1, learning_rate=0.01, beta=0.5)
    s2 = optax.tree_utils.tree_set(s2, learning_rate=0.01, momentum=0.5)
    p1, s1 = _run(tx, p1, h, steps=10, state=s1)
    p2, s2 = _run(ref, p2, h, steps=10, state=s2)
    _assert_equal(p1, p2)
    assert float(optax.tree_utils.tree_get(s1, "beta")) == 0.5
    unchanged, _ = _run(tx, *_run(tx, params, h, steps=10), steps=0)
    assert not np.allclose(p1["w"], _run(tx, unchanged, h, steps=10)[0]["w"])  # it mattered


def test_inject_hyperparams_of_momentum_in_a_chain_and_heavy_ball(problem):
    params, h = problem
    chained = optax.chain(
        optax.inject_hyperparams(jaxmom.momentum)(beta=0.9, nesterov=True), optax.scale(-0.05)
    )
    ref = optax.chain(
        optax.inject_hyperparams(optax.trace)(decay=0.9, nesterov=True), optax.scale(-0.05)
    )
    _assert_equal(_run(chained, params, h)[0], _run(ref, params, h)[0])
    # heavy_ball is the chain scale_by_learning_rate -> trace -> scale(-1), injected or not
    hb = optax.inject_hyperparams(jaxmom.heavy_ball)(learning_rate=WARMUP, beta=0.9)

    def hb_optax(learning_rate, beta):
        return optax.chain(
            optax.scale_by_learning_rate(learning_rate, flip_sign=False),
            optax.trace(beta),
            optax.scale(-1.0),
        )

    ref = optax.inject_hyperparams(hb_optax)(learning_rate=WARMUP, beta=0.9)
    _assert_equal(_run(hb, params, h)[0], _run(ref, params, h)[0])


def test_inject_hyperparams_with_dampening_and_torch_options_under_jit(problem):
    """Configurations optax does not have: injected and jitted equals the plain optimizer."""
    params, h = problem
    for kwargs in (
        {"dampening": 0.3},
        {"beta": optax.linear_schedule(0.5, 0.9, 50)},
        {"weight_decay": 0.01, "maximize": True},
        {"nesterov": True, "weight_decay": 0.02},
    ):
        kw = {"beta": 0.9, **kwargs}
        injected = optax.inject_hyperparams(jaxmom.sgd_momentum)(learning_rate=0.05, **kw)
        plain = jaxmom.sgd_momentum(0.05, **kw)
        np.testing.assert_allclose(
            _run(injected, params, h)[0]["w"], _run(plain, params, h)[0]["w"], rtol=1e-6
        )


def test_multisteps_of_inject_hyperparams_equals_optax(problem):
    params, h = problem
    for nesterov in (False, True):
        tx = optax.MultiSteps(
            optax.inject_hyperparams(jaxmom.sgd_momentum)(WARMUP, 0.9, nesterov=nesterov), 3
        )
        ref = optax.MultiSteps(
            optax.inject_hyperparams(optax.sgd)(WARMUP, 0.9, nesterov=nesterov), 3
        )
        got, state = _run(tx, params, h, steps=30)
        want, ref_state = _run(ref, params, h, steps=30)
        _assert_equal(got, want)
        _assert_equal(state.inner_opt_state.inner_state, ref_state.inner_opt_state.inner_state)


def test_nnx_optimizer_under_nnx_jit_equals_optax_sgd():
    def make(tx):
        model = nnx.Linear(3, 2, rngs=nnx.Rngs(0))
        return model, nnx.Optimizer(model, tx, wrt=nnx.Param)

    @nnx.jit
    def step(model, opt, x):
        grads = nnx.grad(lambda m: jnp.mean(m(x) ** 2))(model)
        opt.update(model, grads)

    x = jnp.linspace(-1, 1, 24).reshape(8, 3)
    for nesterov in (False, True):
        m1, o1 = make(
            optax.inject_hyperparams(jaxmom.sgd_momentum)(WARMUP, beta=0.9, nesterov=nesterov)
        )
        m2, o2 = make(optax.inject_hyperparams(optax.sgd)(WARMUP, 0.9, nesterov=nesterov))
        for _ in range(30):
            step(m1, o1, x)
            step(m2, o2, x)
        np.testing.assert_array_equal(m1.kernel[...], m2.kernel[...])
        assert not np.allclose(m1.kernel[...], make(optax.sgd(0.1))[0].kernel[...])  # trained
        assert float(o1.opt_state.hyperparams["learning_rate"]) > 0  # it warmed up


def test_state_shape_comes_from_the_configuration_not_a_value(problem):
    params, _ = problem
    assert isinstance(jaxmom.momentum(0.9).init(params), optax.TraceState)
    assert isinstance(jaxmom.momentum(0.9, dampening=0).init(params), optax.TraceState)
    # an array dampening may be traced: a counted state whatever its value, in init and update
    zero = jaxmom.momentum(0.9, dampening=jnp.float32(0.0))
    assert isinstance(zero.init(params), jaxmom.MomentumState)
    assert isinstance(
        jaxmom.momentum(optax.constant_schedule(0.9)).init(params), jaxmom.MomentumState
    )
    with pytest.raises(ValueError, match=r"nesterov=True needs no dampening.*static_args"):
        jaxmom.momentum(0.9, nesterov=True, dampening=jnp.float32(0.0))


# -- checkpoints between optax.sgd and jaxmom.sgd_momentum --------------------------------------

PAIRS = [
    (lambda: optax.sgd(0.05, 0.9), lambda: jaxmom.sgd_momentum(0.05, 0.9)),
    (
        lambda: optax.sgd(WARMUP, 0.9, nesterov=True),
        lambda: jaxmom.sgd_momentum(WARMUP, 0.9, nesterov=True),
    ),
]


@pytest.mark.parametrize("pair", PAIRS)
@pytest.mark.parametrize("round_trip", [orbax_round_trip, flax_round_trip])
def test_checkpoints_move_between_optax_sgd_and_jaxmom_both_ways(
    problem, tmp_path, pair, round_trip
):
    params, h = problem
    make_optax, make_jaxmom = pair
    uninterrupted, _ = _run(make_optax(), params, h)
    for i, (first, second) in enumerate(
        ((make_optax(), make_jaxmom()), (make_jaxmom(), make_optax()))
    ):
        p, s = _run(first, params, h, steps=STEPS // 2)
        target = {"params": params, "opt_state": second.init(params)}
        restored = round_trip({"params": p, "opt_state": s}, target, tmp_path / f"ckpt{i}")
        got, _ = _run(second, restored["params"], h, steps=STEPS // 2, state=restored["opt_state"])
        _assert_equal(got, uninterrupted)


def test_a_state_of_another_configuration_says_how_to_convert(problem):
    params, h = problem
    g = _grad(params, h)
    constant = jaxmom.sgd_momentum(0.1, 0.9)
    damped = jaxmom.sgd_momentum(0.1, 0.9, dampening=0.1)
    trace_state, damped_state = constant.init(params), damped.init(params)
    with pytest.raises(ValueError, match=r"MomentumState\(velocity=state.trace"):
        damped.update(g, trace_state, params)
    with pytest.raises(ValueError, match=r"optax.TraceState\(trace=state.velocity\)"):
        constant.update(g, damped_state, params)
    # the fixes the messages give work
    count = jnp.asarray(0, jnp.int32)
    converted = (jaxmom.MomentumState(trace_state[0].trace, count), *trace_state[1:])
    damped.update(g, converted, params)
    constant.update(
        g, (optax.TraceState(trace=damped_state[0].velocity), *damped_state[1:]), params
    )
    # a state of jaxmom 0.2 (a MomentumState without a count) for a counted configuration
    old = (jaxmom.MomentumState(trace_state[0].trace, None), *trace_state[1:])
    with pytest.raises(ValueError, match=r"count=None.*_replace\(count="):
        damped.update(g, old, params)


def test_optax_spellings_of_beta_are_the_same_optimizer_under_jit(problem):
    """``optax.sgd(lr, momentum=b)`` becomes ``jaxmom.sgd_momentum(lr, momentum=b)``, and
    ``optax.trace(decay=b)`` ``jaxmom.momentum(decay=b)``: equal to beta= and to optax, plain
    and injected (the spelled name is the hyperparameter's); two names at once are refused."""
    params, h = problem
    want = _run(optax.sgd(WARMUP, momentum=0.8), params, h)
    _assert_equal(_run(jaxmom.sgd_momentum(WARMUP, momentum=0.8), params, h), want)
    _assert_equal(_run(jaxmom.sgd_momentum(WARMUP, beta=0.8), params, h), want)
    injected = optax.inject_hyperparams(jaxmom.sgd_momentum)(learning_rate=0.05, momentum=0.8)
    got, state = _run(injected, params, h)
    assert set(state.hyperparams) == {"learning_rate", "momentum"}
    ref = optax.inject_hyperparams(optax.sgd)(learning_rate=0.05, momentum=0.8)
    _assert_equal(got, _run(ref, params, h)[0])
    trace = _run(optax.chain(optax.trace(decay=0.7), optax.scale(-0.05)), params, h)
    for tx in (jaxmom.momentum(decay=0.7), jaxmom.momentum(momentum=0.7), jaxmom.momentum(0.7)):
        _assert_equal(_run(optax.chain(tx, optax.scale(-0.05)), params, h), trace)
    hb = _run(jaxmom.heavy_ball(0.05, beta=0.7), params, h)
    _assert_equal(_run(jaxmom.heavy_ball(0.05, momentum=0.7), params, h), hb)
    with pytest.raises(TypeError, match=r"beta= and momentum="):
        jaxmom.sgd_momentum(0.1, 0.9, momentum=0.9)
    with pytest.raises(TypeError, match=r"beta= and decay="):
        jaxmom.momentum(0.9, decay=0.9)
    with pytest.raises(TypeError, match=r"needs the momentum coefficient"):
        jaxmom.momentum()
    # not given, beta is no hyperparameter (as optax.sgd's momentum=None is none)
    plain = optax.inject_hyperparams(jaxmom.sgd_momentum)(learning_rate=0.05)
    assert set(plain.init(params).hyperparams) == {"learning_rate"}
    # the default beta is 0.9, as in 0.4
    _assert_equal(
        _run(jaxmom.sgd_momentum(0.05), params, h), _run(optax.sgd(0.05, momentum=0.9), params, h)
    )
