"""Helpers shared by the tests."""

import os
import signal
import subprocess
import sys

import flax.serialization
import jax
import jax.numpy as jnp
import numpy as np
import optax


def scan_updates(tx, params, grads):
    """Parameters after each of the fixed ``grads`` under ``tx``, in one ``lax.scan`` (its carry
    must keep its types: a state whose dtype changes fails here)."""

    def step(carry, g):
        p, s = carry
        u, s = tx.update(g, s, p)
        p = optax.apply_updates(p, u)
        return (p, s), p

    return jax.lax.scan(step, (params, tx.init(params)), grads)[1]


def run_killed(script: str, *args) -> None:
    """Runs ``script`` in a subprocess (``python -c``, the repository on its path) with this
    process's devices (a search resumed on another count is refused), and checks that it
    ended by SIGKILL, as the script's own kill means."""
    flags = f"--xla_force_host_platform_device_count={jax.device_count()}"
    env = dict(os.environ, PYTHONPATH=".", XLA_FLAGS=flags)
    got = subprocess.run(
        [sys.executable, "-c", script, *map(str, args)], env=env, capture_output=True, timeout=300
    )
    assert got.returncode == -signal.SIGKILL, got.stderr[-2000:]


def orbax_round_trip(tree, target, path):
    """``tree`` saved with orbax to ``path`` and restored into ``target``'s structure."""
    import orbax.checkpoint as ocp

    ckpt = ocp.StandardCheckpointer()
    ckpt.save(path, tree)
    ckpt.wait_until_finished()
    return ckpt.restore(path, target)


def flax_round_trip(tree, target, path):
    """``tree`` written with ``flax.serialization`` to ``path`` and read into ``target``."""
    path.write_bytes(flax.serialization.to_bytes(tree))
    return flax.serialization.from_bytes(target, path.read_bytes())


def quadratic_problem(seed: int):
    """Parameters and the curvatures of a gradient that depends on them (a quadratic)."""
    rng = np.random.default_rng(seed)
    params = {"w": jnp.asarray(rng.normal(size=(3, 4)), jnp.float32), "b": jnp.ones(4)}
    h = {"w": jnp.asarray(rng.uniform(0.5, 2, (3, 4)), jnp.float32), "b": jnp.full(4, 0.7)}
    return params, h


def quadratic_grad(params, h):
    """The gradient of :func:`quadratic_problem`'s quadratic at ``params``."""
    return jax.tree.map(lambda p, c: c * p + 0.1, params, h)


def run_jitted(tx, params, h, steps: int, state=None):
    """``steps`` jitted updates of ``tx``, as a user's loop calls them: ``(params, state)``."""

    @jax.jit
    def step(params, state):
        updates, state = tx.update(quadratic_grad(params, h), state, params)
        return optax.apply_updates(params, updates), state

    state = tx.init(params) if state is None else state
    for _ in range(steps):
        params, state = step(params, state)
    return params, state
