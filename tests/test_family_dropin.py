"""The momentum family as optax users run it: ``optax.inject_hyperparams`` under ``jit``,
hyperparameters vmapped as arrays (one compile), ``nnx.Optimizer`` under ``nnx.jit``,
``optax.MultiSteps``, checkpoints through orbax and flax.serialization, dtypes kept inside a
``lax.scan``, and bad arguments refused with their names before any compute."""

import functools

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
    scan_updates,
)

import jaxmom

WARMUP = optax.warmup_cosine_decay_schedule(0.0, 0.1, 10, 100)
AGG = jnp.array([0.0, 0.9, 0.99])

# name -> (factory, hyperparameters that inject_hyperparams turns into arrays)
FAMILY = {
    "sgd_qhm": (jaxmom.sgd_qhm, {"learning_rate": 0.05, "beta": 0.9, "nu": 0.7}),
    "sgd_qhm_l2": (
        lambda learning_rate, beta, nu: jaxmom.sgd_qhm(learning_rate, beta, nu, weight_decay=0.01),
        {"learning_rate": WARMUP, "beta": 0.99, "nu": 0.5},
    ),
    "qhadam": (jaxmom.qhadam, {"learning_rate": 0.01, "b1": 0.9, "b2": 0.99, "nu1": 0.7}),
    "sgd_aggmo": (jaxmom.sgd_aggmo, {"learning_rate": 0.05, "betas": AGG}),
    "demon": (
        lambda learning_rate, beta: jaxmom.sgd_momentum(learning_rate, jaxmom.demon(beta, 60)),
        {"learning_rate": 0.05, "beta": 0.9},
    ),
    "qhm_demon": (
        lambda learning_rate, beta, nu: jaxmom.sgd_qhm(learning_rate, jaxmom.demon(beta, 200), nu),
        {"learning_rate": 0.05, "beta": 0.95, "nu": 0.7},
    ),
}


@pytest.fixture(scope="module")
def problem():
    """Parameters and a gradient that depends on them (a quadratic), as in training."""
    return quadratic_problem(1)


_grad = quadratic_grad


def _run(tx, params, h, steps=60, state=None):
    return run_jitted(tx, params, h, steps, state)


def _close(a, b, rtol=1e-6):
    jax.tree.map(lambda x, y: np.testing.assert_allclose(x, y, rtol=rtol, atol=1e-7), a, b)


def _equal(a, b):
    jax.tree.map(np.testing.assert_array_equal, a, b)


@pytest.mark.parametrize("name", FAMILY)
def test_inject_hyperparams_under_jit_equals_the_plain_optimizer(problem, name):
    params, h = problem
    make, hp = FAMILY[name]
    injected = optax.inject_hyperparams(make)(**hp)
    got, state = _run(injected, params, h)
    _close(got, _run(make(**hp), params, h)[0])
    assert set(hp) <= set(state.hyperparams)  # qhadam's eps too, as optax.adam's
    # a hyperparameter set between steps changes the run, without a recompile of its shape
    key = "nu" if "nu" in hp else "learning_rate"
    changed = optax.tree_utils.tree_set(state, **{key: 0.0})
    assert not np.allclose(
        _run(injected, got, h, 10, changed)[0]["w"], _run(injected, got, h, 10, state)[0]["w"]
    )


def _count_compiles():
    seen: list = []
    jax.monitoring.register_event_duration_secs_listener(
        lambda name, secs, **kw: seen.append(name) if "backend_compile" in name else None
    )
    return seen


COMPILES = _count_compiles()


@pytest.mark.parametrize("name", ["sgd_qhm", "qhadam", "sgd_aggmo", "qhm_demon"])
def test_vmapped_hyperparameters_equal_each_run_in_one_compile(problem, name):
    """A sweep's way: the hyperparameters as arrays, vmapped; each lane equals the optimizer
    built from that lane's values, and new values do not compile again."""
    params, h = problem
    make, hp = FAMILY[name]
    n = 3
    rng = np.random.default_rng(2)
    lanes = {
        k: jnp.asarray(
            np.asarray(v) * (1 - 0.05 * rng.uniform(0, 1, (n, *np.shape(v)))), jnp.float32
        )
        for k, v in hp.items()
        if not callable(v)
    }

    def run(hp_lane):
        tx = make(**hp_lane)

        def step(carry, _):
            p, s = carry
            u, s = tx.update(_grad(p, h), s, p)
            return (optax.apply_updates(p, u), s), None

        return jax.lax.scan(step, (params, tx.init(params)), length=40)[0][0]

    swept = jax.jit(jax.vmap(run))
    got = swept(lanes)
    others = {k: jnp.asarray(np.asarray(v) * 0.99) for k, v in lanes.items()}
    before = len(COMPILES)
    swept(others)
    assert len(COMPILES) == before  # new values, no new program
    for i in range(n):
        one = {k: float(v[i]) if v.ndim == 1 else v[i] for k, v in lanes.items()}
        lane = jax.tree.map(lambda x, i=i: x[i], got)
        _close(lane, jax.jit(functools.partial(run, one))(), rtol=2e-5)


@pytest.mark.parametrize(
    "tx", [jaxmom.sgd_qhm(0.1, 0.9, 0.7), jaxmom.qhadam(0.01), jaxmom.sgd_aggmo(0.05)]
)
def test_nnx_optimizer_under_nnx_jit_equals_a_plain_optax_loop(tx):
    """``nnx.Optimizer(model, jaxmom.qhadam(...))`` trains as the pure loop over the model's
    parameters with the same transform."""
    x = jnp.linspace(-1, 1, 24).reshape(8, 3)
    model = nnx.Linear(3, 2, rngs=nnx.Rngs(0))
    opt = nnx.Optimizer(model, tx, wrt=nnx.Param)
    graphdef, params = nnx.split(nnx.Linear(3, 2, rngs=nnx.Rngs(0)), nnx.Param)

    @nnx.jit
    def step(model, opt):
        grads = nnx.grad(lambda m: jnp.mean(m(x) ** 2))(model)
        opt.update(model, grads)

    @jax.jit
    def pure(params, state):
        loss = lambda p: jnp.mean(nnx.merge(graphdef, p)(x) ** 2)  # noqa: E731
        updates, state = tx.update(jax.grad(loss)(params), state, params)
        return optax.apply_updates(params, updates), state

    state = tx.init(params)
    for _ in range(20):
        step(model, opt)
        params, state = pure(params, state)
    _close(model.kernel[...], params["kernel"][...])
    _close(model.bias[...], params["bias"][...])
    assert not np.allclose(model.kernel[...], nnx.Linear(3, 2, rngs=nnx.Rngs(0)).kernel[...])


@pytest.mark.parametrize("name", ["sgd_qhm", "qhadam", "sgd_aggmo", "demon"])
def test_multisteps_of_k_equals_the_optimizer_on_every_kth_gradient(problem, name):
    """``optax.MultiSteps(tx, 3)`` over 30 calls applies ``tx`` 10 times to the mean of 3 equal
    gradients (the parameters do not move in between): the plain run of 10 steps."""
    params, h = problem
    make, hp = FAMILY[name]
    got, _ = _run(optax.MultiSteps(make(**hp), 3), params, h, steps=30)
    _close(got, _run(make(**hp), params, h, steps=10)[0])


@pytest.mark.parametrize("round_trip", [orbax_round_trip, flax_round_trip])
@pytest.mark.parametrize("name", ["sgd_qhm_l2", "qhadam", "sgd_aggmo", "qhm_demon"])
def test_a_checkpoint_mid_run_resumes_to_the_same_bits(problem, tmp_path, name, round_trip):
    params, h = problem
    make, hp = FAMILY[name]
    tx = optax.inject_hyperparams(make)(**hp) if name == "qhadam" else make(**hp)
    uninterrupted, _ = _run(tx, params, h)
    p, s = _run(tx, params, h, steps=30)
    target = {"params": params, "opt_state": tx.init(params)}
    restored = round_trip({"params": p, "opt_state": s}, target, tmp_path / "ckpt")
    got, _ = _run(tx, restored["params"], h, steps=30, state=restored["opt_state"])
    _equal(got, uninterrupted)


@pytest.mark.parametrize(
    "tx, state_dtype",
    [
        (jaxmom.sgd_qhm(0.1, 0.9, 0.7), jnp.bfloat16),
        (jaxmom.sgd_qhm(0.1, jnp.float32(0.9), jnp.float32(0.7)), jnp.bfloat16),
        (jaxmom.sgd_qhm(0.1, accumulator_dtype="float32"), jnp.float32),
        (jaxmom.sgd_aggmo(0.1, AGG), jnp.bfloat16),
        (jaxmom.sgd_aggmo(0.1, accumulator_dtype=jnp.float32), jnp.float32),
        (jaxmom.qhadam(0.01, mu_dtype="float32"), None),
    ],
)
def test_bfloat16_parameters_keep_their_dtypes_inside_a_scan(tx, state_dtype):
    """The updates keep the gradients' dtype and the state its own (the accumulator's, or
    the parameters'), as optax's rules: a float32 hyperparameter array does not promote a
    bfloat16 state, and ``lax.scan`` (which refuses a carry that changes type) runs."""
    params = {"w": jnp.ones((2, 3), jnp.bfloat16)}
    grads = {"w": jnp.full((5, 2, 3), 0.5, jnp.bfloat16)}
    path = scan_updates(tx, params, grads)
    assert path["w"].dtype == jnp.bfloat16
    leaves = [x for x in jax.tree.leaves(tx.init(params)) if x.ndim >= 2]
    if state_dtype is not None:
        assert {x.dtype for x in leaves} == {jnp.dtype(state_dtype)}
    updates, _ = tx.update({"w": grads["w"][0]}, tx.init(params), params)
    assert updates["w"].dtype == jnp.bfloat16


BAD = [
    (lambda: jaxmom.qhm(1.5), ValueError, r"beta must be finite and in \[0, 1\], got beta=1.5"),
    (lambda: jaxmom.qhm(0.9, -0.1), ValueError, r"nu=-0.1"),
    (lambda: jaxmom.qhm(0.9, "0.7"), TypeError, r"nu must be a number"),
    (lambda: jaxmom.sgd_qhm(0.1, 0.9, momentum=0.9), TypeError, r"beta= and momentum="),
    (lambda: jaxmom.sgd_qhm(-0.1), ValueError, r"learning_rate must be finite and >= 0"),
    (lambda: jaxmom.sgd_qhm(0.1, weight_decay=-1.0), ValueError, r"weight_decay.*-1.0"),
    (lambda: jaxmom.sgd_qhm(0.1, maximize="yes"), TypeError, r"maximize must be a bool"),
    (
        lambda: jaxmom.sgd_qhm(0.1, decouple_weight_decay=1),
        TypeError,
        r"decouple_weight_decay must be a bool",
    ),
    (lambda: jaxmom.qhadam(0.1, b1=0.9, betas=(0.9, 0.99)), TypeError, r"b1=/b2= and betas="),
    (lambda: jaxmom.qhadam(0.1, nus=0.7), TypeError, r"nus must be a pair.*nus=0.7"),
    (lambda: jaxmom.qhadam(0.1, nus=(0.7, 2.0)), ValueError, r"nu2=2.0"),
    (lambda: jaxmom.qhadam(0.1, eps=-1e-8), ValueError, r"eps must be finite and >= 0"),
    (lambda: jaxmom.aggmo(()), ValueError, r"betas must be a sequence of K >= 1"),
    (lambda: jaxmom.aggmo((0.0, 1.2)), ValueError, r"betas\[1\] must be finite.*1.2"),
    (lambda: jaxmom.aggmo(np.full((2, 2), 0.5)), ValueError, r"shape \(2, 2\)"),
    (lambda: jaxmom.aggmo(jnp.array([0.0, jnp.nan])), ValueError, r"betas must be finite.*nan"),
    (lambda: jaxmom.demon(1.0, 100), ValueError, r"demon's beta must be < 1"),
    (lambda: jaxmom.demon(0.9, 0), ValueError, r"steps must be an integer >= 1, got steps=0"),
    (lambda: jaxmom.demon(0.9, 10.5), ValueError, r"steps=10.5"),
]


@pytest.mark.parametrize("make, error, match", BAD, ids=[b[2][:30] for b in BAD])
def test_bad_arguments_are_refused_with_their_names(make, error, match):
    with pytest.raises(error, match=match):
        make()
