"""A sweep on real data, the tools users would pick instead side by side: ``jaxmom bench --task
digits``.

The task is :func:`jaxmom.chapter.digits`: scikit-learn's digits, an NNX MLP 64 -> 128 -> 10,
cross-entropy, batches of 32, 5 epochs (225 steps), ``sgd_momentum(lr, beta)``. A row trains
``runs`` runs: betas in [0.5, 0.95] x 2 learning rates x 2 seeds. Every method computes the same
final losses (``tests/test_bench_digits.py``).

Methods:

- ``engine``: :func:`jaxmom.grid_sweep` of the task's train function (in memory).
- ``vmap``: the same train function by hand, ``jax.jit(jax.vmap(jax.vmap(train_fn)))`` over
  seeds and grid points, every output fetched to the host as the engine does. The engine must
  cost at most 3% more, and compile no slower.
- ``optuna``: Optuna's ``GridSampler`` over the same grid (seed as a grid axis), each trial
  training with a jitted optax step called from Python; the step takes beta and the learning
  rate as arguments, so it compiles once and serves every trial, as a careful user writes it.
  Runs one after another: timed on at most 32 trials (its rate does not grow with ``runs``).
- ``hyperoptax``: hyperoptax's ``GridSearch`` over (beta, lr, seed), every point in one
  ``n_parallel`` batch of ``optimize_scan``, jitted: a JAX-native peer.

Optuna and hyperoptax are optional (``pip install "jaxmom[bench]"``); without them their rows are
skipped with a message.

Report (JSON, ``format = "jaxmom.bench_digits/1"``): ``date``, ``device``, ``versions``,
``task``, ``peak_gflops`` (a float32 matmul timed in the same run), ``flops_per_model_step``
(XLA's cost analysis of one step of one model), ``rows`` [{``method``, ``runs``, ``timed_runs``,
``seconds`` (median, compilation excluded), ``compile_seconds``, ``runs_per_s``,
``model_steps_per_s``, ``gflops``, ``fraction_of_peak``}], ``ratios`` {``"engine/<peer> at
<runs> runs"``: runs per second of the engine over the peer's, at every size}, ``skipped``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from jaxmom import chapter as tasks
from jaxmom.bench import _report as bench
from jaxmom.bench._peak import Peak
from jaxmom.chapter import DIGITS_LOSS as LOSS
from jaxmom.chapter import digits_model
from jaxmom.engine import grid_sweep
from jaxmom.training import batch_order, masked_mean

FORMAT = "jaxmom.bench_digits/1"
METHODS = ("engine", "vmap", "optuna", "hyperoptax")
OPTIONAL = {"optuna": "optuna", "hyperoptax": "hyperoptax"}  # method: the package it needs
#: What the task itself needs (its data set).
TASK_REQUIRES = "sklearn"
LRS, SEEDS, EPOCHS, BATCH = (0.03, 0.1), (0, 1), 5, 32
OPTUNA_MAX_TRIALS = 32


@functools.cache
def task():
    """The shared train function and data (built once per process)."""
    return tasks.digits(epochs=EPOCHS, batch_size=BATCH)


def grid(runs: int) -> dict:
    """``runs`` runs: ``runs / 4`` betas in [0.5, 0.95] x :data:`LRS` (x 2 seeds)."""
    if runs < 4 or runs % 4:
        raise ValueError(f"runs must be a positive multiple of 4, got {runs}")
    return {"beta": np.linspace(0.5, 0.95, runs // 4), "learning_rate": np.asarray(LRS)}


def engine(runs: int) -> np.ndarray:
    """:func:`jaxmom.grid_sweep`: final losses ``[beta, lr, seed]``."""
    train_fn, data = task()
    res = grid_sweep(train_fn, grid(runs), SEEDS, data=data, progress=False)
    return res["final_loss"]


@functools.cache
def _vmapped():
    train_fn, _ = task()
    over_points = jax.vmap(train_fn, in_axes=(0, None, None))
    return jax.jit(jax.vmap(over_points, in_axes=(None, 0, None)))


def vmap(runs: int) -> np.ndarray:
    """``jit(vmap(vmap(train_fn)))`` by hand: final losses ``[beta, lr, seed]``."""
    _, data = task()
    g = grid(runs)
    b, lr = np.meshgrid(g["beta"], g["learning_rate"], indexing="ij")
    hp = {"beta": jnp.asarray(b.ravel(), jnp.float32), "learning_rate": jnp.asarray(lr.ravel())}
    keys = jax.vmap(jax.random.key)(jnp.asarray(SEEDS))
    out = jax.tree.map(np.asarray, _vmapped()(hp, keys, data))  # every output, as the engine
    return out["final_loss"].T.reshape(*b.shape, len(SEEDS))


@functools.cache
def _optax_step():
    """One jitted training step whose hyperparameters are arguments: compiled once."""
    graphdef = nnx.split(nnx.eval_shape(lambda: digits_model(nnx.Rngs(0))))[0]

    @jax.jit
    def step(params, opt_state, xb, yb, mask, beta, lr):
        def loss_fn(p):
            return masked_mean(LOSS(nnx.merge(graphdef, p)(xb), yb), mask)

        loss, grads = jax.value_and_grad(loss_fn)(params)
        updates, opt_state = optax.sgd(lr, momentum=beta).update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    return step


def _optax_run(beta: float, lr: float, seed: int) -> float:
    """One run as a user writes it around Optuna: the final epoch's mean training loss."""
    _, (x, y, _, _) = task()
    x, y = np.asarray(x), np.asarray(y)
    k_model, k_order = jax.random.split(jax.random.key(seed))
    params = nnx.state(digits_model(nnx.Rngs(k_model)), nnx.Param)
    order = batch_order(k_order, x.shape[0], BATCH, EPOCHS)
    idx, mask = np.asarray(order.indices), np.asarray(order.mask)
    step, per_epoch = _optax_step(), idx.shape[0] // EPOCHS
    opt_state = optax.sgd(lr, momentum=beta).init(params)
    total = 0.0
    for t in range(idx.shape[0]):
        params, opt_state, loss = step(
            params, opt_state, x[idx[t]], y[idx[t]], mask[t], np.float32(beta), np.float32(lr)
        )
        if t >= idx.shape[0] - per_epoch:
            total += float(loss) * mask[t].sum()
    return total / mask[-per_epoch:].sum()


def optuna_grid(runs: int, trials: int | None = None) -> dict:
    """Optuna's ``GridSampler`` over the grid and seeds: ``{(beta, lr, seed): final loss}``."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    g = grid(runs)
    space = {
        "beta": list(g["beta"]),
        "learning_rate": list(g["learning_rate"]),
        "seed": list(SEEDS),
    }
    study = optuna.create_study(sampler=optuna.samplers.GridSampler(space, seed=0))

    def objective(trial):
        beta = trial.suggest_float("beta", 0.0, 1.0)
        lr = trial.suggest_float("learning_rate", 1e-4, 1.0, log=True)
        seed = trial.suggest_categorical("seed", list(SEEDS))
        return _optax_run(beta, lr, seed)

    study.optimize(objective, n_trials=trials or runs)
    return {
        (t.params["beta"], t.params["learning_rate"], t.params["seed"]): t.value
        for t in study.trials
    }


@functools.cache
def _hyperoptax_search(runs: int):
    import hyperoptax

    train_fn, data = task()
    g = grid(runs)
    space = {
        "beta": hyperoptax.DiscreteSpace(tuple(g["beta"])),
        "learning_rate": hyperoptax.DiscreteSpace(tuple(g["learning_rate"])),
        "seed": hyperoptax.DiscreteSpace(tuple(float(s) for s in SEEDS)),
    }
    state, search = hyperoptax.GridSearch.init(space, n_parallel=runs)

    def func(key, config):  # the run's own seed, not hyperoptax's key: the same runs
        hp = {"beta": config["beta"], "learning_rate": config["learning_rate"]}
        return train_fn(hp, jax.random.key(config["seed"].astype(jnp.uint32)), data)["final_loss"]

    run = jax.jit(lambda state, key: search.optimize_scan(state, key, func, 1)[1])
    return state, run


def hyperoptax_grid(runs: int) -> np.ndarray:
    """hyperoptax's ``GridSearch``: final losses ``[beta, lr, seed]`` (its order is the grid's)."""
    state, run = _hyperoptax_search(runs)
    _, results = run(state, jax.random.key(0))
    return np.asarray(results).reshape(runs // 4, len(LRS), len(SEEDS))


def flops_per_model_step() -> float:
    """XLA's cost analysis of one training step of one model (autodiff's gradient)."""
    _, (x, y, _, _) = task()
    params = nnx.state(digits_model(nnx.Rngs(0)), nnx.Param)
    opt_state = optax.sgd(0.1, momentum=0.9).init(params)
    mask = jnp.ones(BATCH, bool)
    args = (params, opt_state, x[:BATCH], y[:BATCH], mask, np.float32(0.9), np.float32(0.1))
    return bench.compiled_flops(_optax_step().lower(*args))


def run(
    models: Sequence[int] = (256, 1024, 4096),
    methods: Sequence[str] = METHODS,
    *,
    repeats: int = 3,
    matmul_size: int | None = None,
    log: Callable[[str], None] | None = print,
) -> dict:
    """Times ``methods`` on the digits task at each number of runs in ``models``."""
    bench.check_methods(methods, METHODS)
    sizes = sorted({int(m) for m in models})
    for n in sizes:
        grid(n)
    say = log or (lambda s: None)
    methods, skipped = bench.installed(methods, OPTIONAL, say)
    train_fn, data = task()
    steps = train_fn.steps(data[0].shape[0])
    size = matmul_size or (2048 if jax.default_backend() == "cpu" else 8192)
    peak, flops = Peak(size), flops_per_model_step()
    say(
        f"matmul peak {peak.sample():.1f} GFLOP/s (sampled again between methods); "
        f"{flops:.3g} flops per model step"
    )
    calls = {
        "engine": lambda n: lambda: engine(n),
        "vmap": lambda n: lambda: vmap(n),
        "optuna": lambda n: lambda: optuna_grid(n, min(n, OPTUNA_MAX_TRIALS)),
        "hyperoptax": lambda n: lambda: hyperoptax_grid(n),
    }
    rows = []
    for method in methods:
        for n in sizes:
            timed = min(n, OPTUNA_MAX_TRIALS) if method == "optuna" else n
            seconds, compile_s = bench.time_call(calls[method](n), repeats)
            rate = timed / seconds
            gflops = rate * steps * flops / 1e9
            rows.append(
                {
                    "method": method,
                    "runs": n,
                    "timed_runs": timed,
                    "steps": steps,
                    "repeats": repeats,
                    "seconds": seconds,
                    "compile_seconds": compile_s,
                    "runs_per_s": rate,
                    "model_steps_per_s": rate * steps,
                    "gflops": gflops,
                }
            )
            say(
                f"{method:11s} {n:6d} runs  {seconds:9.3f} s  {rate:10.4g} runs/s  "
                f"compile {compile_s:.2f} s"
            )
        peak.sample()  # between methods: the peak is the best of the whole run
    for r in rows:
        r["fraction_of_peak"] = r["gflops"] / peak.gflops
    ratios = {}
    for n in sizes:  # at every size, not only the largest
        at = {r["method"]: r for r in rows if r["runs"] == n}
        ratios.update(
            {
                f"engine/{m} at {n} runs": at["engine"]["runs_per_s"] / r["runs_per_s"]
                for m, r in at.items()
                if m != "engine" and "engine" in at
            }
        )
    top = {r["method"]: r for r in rows if r["runs"] == sizes[-1]}
    if "engine" in top and "vmap" in top:
        ratios["engine_compile/vmap_compile"] = top["engine"]["compile_seconds"] / max(
            top["vmap"]["compile_seconds"], 1e-9
        )
    setup = {
        "data": "sklearn digits 1437/360",
        "model": "MLP 64-128-10",
        "epochs": EPOCHS,
        "batch_size": BATCH,
        "steps": steps,
        "learning_rates": list(LRS),
        "seeds": list(SEEDS),
    }
    return bench.report(
        FORMAT, setup, rows, ratios, skipped, **bench.peak_fields(peak, size, flops)
    )


def table(report: dict) -> str:
    """The report's rows as a Markdown table, and its ratios."""
    header = [
        "method",
        "runs",
        "seconds",
        "compile s",
        "runs/s",
        "model-steps/s",
        "GFLOP/s",
        "of peak",
    ]
    rows = [
        [
            r["method"],
            f"{r['runs']}"
            + (f" ({r['timed_runs']} timed)" if r["timed_runs"] != r["runs"] else ""),
            f"{r['seconds']:.3f}",
            f"{r['compile_seconds']:.2f}",
            f"{r['runs_per_s']:.4g}",
            f"{r['model_steps_per_s']:.3g}",
            f"{r['gflops']:.3g}",
            f"{100 * r['fraction_of_peak']:.1f}%",
        ]
        for r in report["rows"]
    ]
    return bench.markdown(header, rows, report["ratios"], digits=3)


def plot(report: dict, path):
    """Runs per second against the number of runs, a line per method."""
    return bench.plot(
        report,
        path,
        methods=METHODS,
        x=("runs", "runs in the sweep"),
        y=("runs_per_s", "runs per second"),
        title="Digits sweep: ",
    )


write = bench.write  # the report as JSON, atomically
