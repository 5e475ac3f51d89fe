"""Helpers shared by the tests."""

import jax
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
