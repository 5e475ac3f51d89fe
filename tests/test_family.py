"""The momentum family (QHM, QHAdam, AggMo, Demon) against its reference implementations and its
special cases: ``qhoptim``, ``pytorch_optimizer`` and ``torch_optimizer`` step by step on a
random problem, float32 and float64, with weight decay, over hundreds of jitted steps; qhoptim's
identities against jaxmom's own ``sgd_momentum``; Demon against the paper's formula."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxmom

STEPS = 300
RNG = np.random.default_rng(0)
P0 = {"w": RNG.normal(size=(5, 4)), "b": RNG.normal(size=4)}
H = {"w": RNG.uniform(0.2, 2.0, (5, 4)), "b": RNG.uniform(0.2, 2.0, 4)}
C = {"w": RNG.normal(size=(5, 4)), "b": RNG.normal(size=4)}
TOL = {"float32": {"rtol": 2e-5, "atol": 2e-6}, "float64": {"rtol": 1e-11, "atol": 1e-12}}


def _grad(p, sin):
    """A gradient that depends on the parameters: a quadratic bowl plus a ripple."""
    return {k: H[k] * p[k] + C[k] + 0.3 * sin(3 * p[k]) for k in p}


def jax_run(tx, dtype: str, steps: int = STEPS, sign: float = 1.0):
    """The parameters after each of ``steps`` updates of ``tx`` (``{name: [steps, ...]}``),
    jitted as one ``lax.scan``. ``sign=-1`` negates the gradient: the problem to maximize, for
    the optimizers' ``maximize=True``."""
    with jax.enable_x64(dtype == "float64"):
        p0 = {k: jnp.asarray(v, dtype) for k, v in P0.items()}
        consts = {k: (jnp.asarray(H[k], dtype), jnp.asarray(C[k], dtype)) for k in P0}

        def body(carry, _):
            p, s = carry
            g = {
                k: sign * (consts[k][0] * p[k] + consts[k][1] + 0.3 * jnp.sin(3 * p[k])) for k in p
            }
            u, s = tx.update(g, s, p)
            p = optax.apply_updates(p, u)
            return (p, s), p

        _, ps = jax.jit(lambda p: jax.lax.scan(body, (p, tx.init(p)), length=steps))(p0)
        return {k: np.asarray(v) for k, v in ps.items()}


def torch_run(torch, make_opt, dtype: str, steps: int = STEPS, sign: float = 1.0):
    """The same trajectory under a PyTorch optimizer ``make_opt(params)``."""
    dt = getattr(torch, dtype)
    ps = {k: torch.nn.Parameter(torch.tensor(v, dtype=dt)) for k, v in P0.items()}
    hc = {k: (torch.tensor(H[k], dtype=dt), torch.tensor(C[k], dtype=dt)) for k in P0}
    opt = make_opt(list(ps.values()))
    path: dict[str, list] = {k: [] for k in ps}
    for _ in range(steps):
        for k, p in ps.items():
            x = p.detach()
            p.grad = sign * (hc[k][0] * x + hc[k][1] + 0.3 * torch.sin(3 * x))
        opt.step()
        for k, p in ps.items():
            path[k].append(p.detach().numpy().copy())
    return {k: np.stack(v) for k, v in path.items()}


def _close(got, want, dtype):
    for k in want:
        np.testing.assert_allclose(got[k], want[k], **TOL[dtype], err_msg=k)
    # and it moved: the problem's minimum is far from the start
    assert not np.allclose(got["w"][-1], P0["w"], atol=1e-2)


# (reference package, its optimizer and kwargs, jaxmom's optimizer and kwargs)
QHM = {"lr": 0.05, "momentum": 0.999, "nu": 0.7}
QHM2 = {"lr": 0.1, "momentum": 0.9, "nu": 0.5}
OURS_QHM = {"learning_rate": 0.05, "beta": 0.999, "nu": 0.7}
OURS_QHM2 = {"learning_rate": 0.1, "beta": 0.9, "nu": 0.5}
QHADAM = {"lr": 0.002, "betas": (0.995, 0.999), "nus": (0.7, 1.0)}
# an eps that keeps the steps smooth where a coordinate reaches its minimum (with 1e-8, Adam's
# near-sign steps there turn rounding into differences of 1e-3 within a hundred steps)
QHADAM2 = {"lr": 0.003, "betas": (0.9, 0.99), "nus": (0.6, 0.8), "eps": 1e-3}
OURS_QHADAM = {"learning_rate": 0.002, "b1": 0.995, "b2": 0.999, "nu1": 0.7, "nu2": 1.0}
OURS_QHADAM2 = {"learning_rate": 0.003, "betas": (0.9, 0.99), "nus": (0.6, 0.8), "eps": 1e-3}
AGGMO = {"lr": 0.02, "betas": (0.0, 0.9, 0.99)}
OURS_AGGMO = {"learning_rate": 0.02, "betas": (0.0, 0.9, 0.99)}
L2, DIRECT = {"weight_decay": 0.05}, {"weight_decay": 0.05, "decouple_weight_decay": True}

CASES = [
    ("qhoptim", "QHM", QHM, "sgd_qhm", OURS_QHM),
    ("qhoptim", "QHM", QHM2, "sgd_qhm", OURS_QHM2),
    ("qhoptim", "QHM", {**QHM2, **L2}, "sgd_qhm", {**OURS_QHM2, **L2}),
    (
        "qhoptim",
        "QHM",
        {**QHM2, **L2, "weight_decay_type": "direct"},
        "sgd_qhm",
        {**OURS_QHM2, **DIRECT},
    ),
    ("pytorch_optimizer", "QHM", {**QHM, **L2}, "sgd_qhm", {**OURS_QHM, **L2}),
    (
        "pytorch_optimizer",
        "QHM",
        {**QHM2, **L2, "weight_decouple": True, "maximize": True},
        "sgd_qhm",
        {**OURS_QHM2, **DIRECT, "maximize": True},
    ),
    ("torch_optimizer", "QHM", {**QHM2, **L2}, "sgd_qhm", {**OURS_QHM2, **L2}),
    ("qhoptim", "QHAdam", QHADAM, "qhadam", OURS_QHADAM),
    ("qhoptim", "QHAdam", {**QHADAM2, **L2}, "qhadam", {**OURS_QHADAM2, **L2}),
    (
        "qhoptim",
        "QHAdam",
        {**QHADAM2, **L2, "decouple_weight_decay": True},
        "qhadam",
        {**OURS_QHADAM2, **DIRECT},
    ),
    (
        "pytorch_optimizer",
        "QHAdam",
        {**QHADAM2, **L2, "maximize": True},
        "qhadam",
        {**OURS_QHADAM2, **L2, "maximize": True},
    ),
    ("torch_optimizer", "QHAdam", {**QHADAM, **L2}, "qhadam", {**OURS_QHADAM, **L2}),
    ("pytorch_optimizer", "AggMo", AGGMO, "sgd_aggmo", OURS_AGGMO),
    (
        "pytorch_optimizer",
        "AggMo",
        {**AGGMO, **L2, "weight_decouple": True, "maximize": True},
        "sgd_aggmo",
        {**OURS_AGGMO, **DIRECT, "maximize": True},
    ),
    ("torch_optimizer", "AggMo", {**AGGMO, **L2}, "sgd_aggmo", {**OURS_AGGMO, **L2}),
    (
        "torch_optimizer",
        "AggMo",
        {"lr": 0.01, "betas": (0.5, 0.95)},
        "sgd_aggmo",
        {"learning_rate": 0.01, "betas": (0.5, 0.95)},
    ),
]


def _reference(package: str, name: str):
    module = pytest.importorskip(package + (".pyt" if package == "qhoptim" else ""))
    return getattr(module, name)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize(
    "package, name, theirs, ours_name, ours",
    CASES,
    ids=[f"{c[0]}.{c[1]}-{i}" for i, c in enumerate(CASES)],
)
def test_equal_to_the_reference_step_by_step(torch, package, name, theirs, ours_name, ours, dtype):
    """Every step's parameters equal; ``maximize=True`` ascends the negated problem."""
    ref = _reference(package, name)
    sign = -1.0 if theirs.get("maximize") else 1.0
    want = torch_run(torch, lambda ps: ref(ps, **theirs), dtype, sign=sign)
    got = jax_run(getattr(jaxmom, ours_name)(**ours), dtype, sign=sign)
    # pytorch_optimizer keeps QHAdam's bias-correction weights in float32 whatever the dtype
    _close(got, want, "float32" if (package, name) == ("pytorch_optimizer", "QHAdam") else dtype)


# -- qhoptim's identities, against jaxmom's own heavy ball -------------------------------------


def _same(a, b, tol=1e-12):
    for k in a:
        np.testing.assert_allclose(a[k], b[k], rtol=tol, atol=tol, err_msg=k)


@pytest.mark.parametrize("beta", [0.5, 0.9, 0.999])
def test_qhm_special_cases_are_sgd_normalized_heavy_ball_and_nesterov(beta):
    """nu = 1: normalized heavy ball, ``sgd_momentum(lr (1 - beta), beta)``; nu = beta:
    Nesterov, ``sgd_momentum(lr (1 - beta), beta, nesterov=True)``; beta = 0 or nu = 0: SGD
    (float64, so that only the order of the arithmetic differs)."""
    lr = 0.2
    hb = jax_run(jaxmom.sgd_momentum(lr * (1 - beta), beta), "float64")
    _same(jax_run(jaxmom.sgd_qhm(lr, beta, nu=1.0), "float64"), hb)
    nag = jax_run(jaxmom.sgd_momentum(lr * (1 - beta), beta, nesterov=True), "float64")
    _same(jax_run(jaxmom.sgd_qhm(lr, beta, nu=beta), "float64"), nag)
    sgd = jax_run(jaxmom.sgd_momentum(lr, 0.0), "float64")
    _same(jax_run(jaxmom.sgd_qhm(lr, 0.0, nu=0.7), "float64"), sgd)
    _same(jax_run(jaxmom.sgd_qhm(lr, beta, nu=0.0), "float64"), sgd)
    assert not np.allclose(hb["w"], sgd["w"])  # the trajectories differ


def test_qhadam_with_nus_one_is_optax_adam_and_aggmo_of_one_beta_is_heavy_ball():
    adam = jax_run(optax.adam(0.01, b1=0.9, b2=0.99, eps=1e-6), "float64")
    _same(jax_run(jaxmom.qhadam(0.01, 0.9, 0.99, 1.0, 1.0, 1e-6), "float64"), adam, 1e-10)
    hb = jax_run(jaxmom.sgd_momentum(0.05, 0.9), "float64")
    _same(jax_run(jaxmom.sgd_aggmo(0.05, (0.9,)), "float64"), hb)
    _same(jax_run(jaxmom.sgd_aggmo(0.05, (0.9, 0.9, 0.9)), "float64"), hb)
    # the average of K velocities: two betas are the mean of two heavy balls' directions
    two = jax_run(jaxmom.sgd_aggmo(0.05, (0.0, 0.9)), "float64")
    assert not np.allclose(two["w"], hb["w"])


# -- Demon -------------------------------------------------------------------------------------


def _demon_formula(beta0, t, T):
    """The paper's formula (Chen et al., eq. 3), in float64 numpy."""
    frac = 1 - np.minimum(t, T) / T
    return beta0 * frac / ((1 - beta0) + beta0 * frac)


@pytest.mark.parametrize("beta0, T", [(0.9, 100), (0.99, 1000), (0.5, 7)])
def test_demon_is_the_papers_formula_and_decays_the_total_weight_linearly(beta0, T):
    t = np.arange(0, 2 * T)
    with jax.enable_x64(True):
        got = np.asarray(jax.jit(jaxmom.demon(beta0, T))(jnp.asarray(t)))
    np.testing.assert_allclose(got, _demon_formula(beta0, t, T), rtol=1e-12, atol=1e-15)
    assert got[0] == pytest.approx(beta0) and np.all(got[T:] == 0)
    # the sum of a gradient's future weights, beta/(1 - beta), falls linearly to 0
    np.testing.assert_allclose(got[:T] / (1 - got[:T]), beta0 / (1 - beta0) * (1 - t[:T] / T))


def test_demon_drives_heavy_ball_and_qhm_as_a_hand_written_schedule():
    """sgd_momentum(lr, demon(b, T)) is heavy ball whose beta at step t is the formula's."""
    beta0, T, lr = 0.9, 120, 0.05
    got = jax_run(jaxmom.sgd_momentum(lr, jaxmom.demon(beta0, T)), "float64", steps=150)
    p = {k: np.asarray(v, np.float64) for k, v in P0.items()}
    v = {k: np.zeros_like(x) for k, x in p.items()}
    for t in range(150):
        g = _grad(p, np.sin)
        b = _demon_formula(beta0, t, T)
        v = {k: g[k] + b * v[k] for k in p}
        p = {k: p[k] - lr * v[k] for k in p}
    _same({k: v[-1] for k, v in got.items()}, p, 1e-10)
    qhm = jax_run(jaxmom.sgd_qhm(lr, jaxmom.demon(beta0, T), 0.7), "float64", steps=150)
    const = jax_run(jaxmom.sgd_qhm(lr, beta0, 0.7), "float64", steps=150)
    assert not np.allclose(qhm["w"], const["w"])  # the schedule reached the run
