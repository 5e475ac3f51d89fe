"""The search bench's task (an NNX MLP on digits) and its two spaces, and its Optuna peers:
TPE with Hyperband pruning trial by trial, and :func:`jaxmom.optuna_sweep`.

- ``digits``: beta, the learning rate and weight decay (``sgd_momentum``);
- ``hard``: five, where a random configuration is usually poor: beta, the learning rate over
  five decades, weight decay, momentum's dampening and the global norm gradients are clipped
  to (``optax.clip_by_global_norm`` before ``sgd_momentum``).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxmom.chapter import MLP
from jaxmom.engine import LogUniform, Uniform, optuna_sweep
from jaxmom.optim import sgd_momentum
from jaxmom.training import accuracy, load_digits, nnx_task

SPACE = {
    "beta": Uniform(0.0, 0.99),
    "learning_rate": LogUniform(1e-3, 3.0),
    "weight_decay": LogUniform(1e-5, 1e-1),
}
HARD = {
    "beta": Uniform(0.0, 0.99),
    "learning_rate": LogUniform(1e-4, 10.0),
    "weight_decay": LogUniform(1e-6, 1e-1),
    "dampening": Uniform(0.0, 0.9),
    "clip": LogUniform(1e-2, 1e2),
}
SPACES = {"digits": SPACE, "hard": HARD}
METRIC = "test_accuracy"  # evaluate's held-out accuracy: here, on the validation split
LOSS = optax.softmax_cross_entropy_with_integer_labels


class Plan:
    """The sizes of a run: ``quick`` for tests (27 configurations, 3 epochs), on the space
    named ``space``."""

    def __init__(self, quick: bool = False, configs: int | None = None, space: str = "digits"):
        self.space_name, self.space = space, SPACES[space]
        self.configs = configs or (27 if quick else 729)
        self.epochs, self.hidden = (3, 16) if quick else (30, 64)
        self.seeds, self.batch = (0, 1), 32
        self.min_steps = 4 if quick else 38


def optimizer(beta, learning_rate, weight_decay):
    return sgd_momentum(learning_rate, beta, weight_decay=weight_decay)


def hard_optimizer(beta, learning_rate, weight_decay, dampening, clip):
    return optax.chain(
        optax.clip_by_global_norm(clip),
        sgd_momentum(learning_rate, beta, weight_decay=weight_decay, dampening=dampening),
    )


@functools.cache
def setup(hidden: int, space: str = "digits"):
    """The task and the data: ``(task, (train, val), (train, test))``."""
    x, y, x_test, y_test = load_digits()
    n = x.shape[0] - 360
    task = nnx_task(
        lambda rngs: MLP(64, hidden, 10, rngs=rngs),
        LOSS,
        hard_optimizer if space == "hard" else optimizer,
        batch_size=32,
        metrics={"accuracy": accuracy},
    )
    return task, (x[:n], y[:n], x[n:], y[n:]), (x[:n], y[:n], x_test, y_test)


def steps_per_epoch(plan: Plan) -> int:
    """Batches in an epoch of the training split (the last partial one kept)."""
    return -(-setup(plan.hidden)[1][0].shape[0] // plan.batch)


@functools.cache
def _step_fns(hidden: int, space: str):
    """A careful Optuna user's training: a jitted step and a jitted evaluation, the
    hyperparameters as arguments (compiled once for every trial), both seeds vmapped."""
    task, _, _ = setup(hidden, space)
    init = jax.jit(jax.vmap(task.init, in_axes=(None, 0, None)))
    step = jax.jit(jax.vmap(lambda s, hp, d: task.advance(s, hp, d, 1), in_axes=(0, None, None)))
    score = jax.jit(
        jax.vmap(lambda s, hp, d: task.evaluate(s, hp, d)[METRIC], in_axes=(0, None, None))
    )
    return init, step, score


def optuna_tpe(plan: Plan) -> dict:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    _, val, _ = setup(plan.hidden, plan.space_name)
    init, step, score = _step_fns(plan.hidden, plan.space_name)
    spe = steps_per_epoch(plan)
    keys = jax.vmap(jax.random.key)(jnp.asarray(plan.seeds))
    spent = [0]

    def objective(trial):
        hp = {
            name: jnp.float32(
                trial.suggest_float(name, d.low, d.high, log=isinstance(d, LogUniform))
            )
            for name, d in plan.space.items()
        }
        state = init(hp, keys, val)
        value = float("nan")
        for e in range(plan.epochs):
            for _ in range(spe):
                state = step(state, hp, val)
            spent[0] += len(plan.seeds) * spe
            value = float(np.mean(score(state, hp, val)))
            trial.report(value if np.isfinite(value) else 0.0, e)
            if not np.isfinite(value) or trial.should_prune():
                raise optuna.TrialPruned()
        return value

    sampler = optuna.samplers.TPESampler(seed=0)
    pruner = optuna.pruners.HyperbandPruner(min_resource=1, max_resource=plan.epochs)
    study = optuna.create_study(direction="maximize", sampler=sampler, pruner=pruner)
    study.optimize(objective, n_trials=plan.configs)
    best = study.best_trial
    return dict(
        config=dict(best.params),
        val=float(best.value),  # type: ignore[arg-type]
        model_steps=spent[0],
        trace=study_trace(study),
    )


def optuna_sweep_peer(plan: Plan) -> dict:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    task, val, _ = setup(plan.hidden, plan.space_name)
    steps = plan.epochs * steps_per_epoch(plan)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=0))
    optuna_sweep(
        study,
        task,
        plan.space,
        plan.configs,
        trials_per_batch=-(-plan.configs // 3),
        seeds=plan.seeds,
        data=val,
        metric=METRIC,
        steps=steps,
        progress=False,
    )
    best = study.best_trial
    spent = plan.configs * len(plan.seeds) * steps
    return dict(
        config=dict(best.params),
        val=float(best.value),  # type: ignore[arg-type]
        model_steps=spent,
        trace=study_trace(study),
    )


def study_trace(study) -> list[list[float]]:
    """``[[seconds since the first trial began, best value so far], ...]``."""
    done = [t for t in study.trials if t.datetime_complete is not None]
    t0 = min(t.datetime_start for t in done)
    best, out = -np.inf, []
    for t in sorted(done, key=lambda t: t.datetime_complete):
        if t.value is not None:
            best = max(best, t.value)
        out.append([(t.datetime_complete - t0).total_seconds(), best])
    return out
