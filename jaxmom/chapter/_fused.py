"""The chapter's whole training for a block of models in one Pallas kernel.

Each program of the kernel trains ``B`` models (:data:`BLOCK`, 128) of one seed: every step's
forward pass, backward pass and momentum update, for all of the run's steps, with each model's
parameters and velocities (61 + 61 floats, the hidden layer padded from 20 to 32 units with
zeros that stay zero) held as the loop's carry, never written to memory; only each step's loss
is stored. The 1-20-1 network needs no matrix multiply: the models lie along the last axis
(a GPU's threads, a TPU's lanes), the hidden units along the first, and each of the batch's 32
points is one pass of elementwise work over a ``[32, B]`` tile (forward, loss, gradient
accumulated), so no tiny matmul is ever issued. The batch's points, targets and mask are read
as scalars, one row per step, from the seed's batch order gathered beforehand by XLA.

:func:`train_block` runs the kernel; :func:`fused_run` is one run of the chapter written on it,
with a batching rule (``jax.custom_batching.custom_vmap``) that turns a ``vmap`` over models
sharing a seed into one kernel over all of them: :func:`jaxmom.sweep` with ``kernel="pallas"``.
With ``interpret=True`` the kernel runs on any backend (slowly) with the same semantics.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax.experimental import pallas as pl

#: Models per program: one per GPU thread of four warps, or a TPU's 128 lanes.
BLOCK = 128
#: Hidden units as the kernel holds them (the chapter's 20, padded with zeros).
HIDDEN = 32


def _pow2(n: int) -> int:
    return 1 << max(0, (n - 1).bit_length())


def _kernel(
    w1_ref,
    b1_ref,
    w2_ref,
    b2_ref,
    beta_ref,
    lr_ref,
    x_ref,
    y_ref,
    m_ref,
    out_ref,
    *,
    steps: int,
    batch: int,
    nesterov: bool,
):
    beta, lr = beta_ref[...], lr_ref[...]  # [1, B]
    params = (w1_ref[...], b1_ref[...], w2_ref[...], b2_ref[...])  # [H, B] x 3, [1, B]
    zeros = tuple(jnp.zeros_like(p) for p in params)

    def step(t, carry):
        params, velocity = carry
        w1, b1, w2, b2 = params
        count = jnp.maximum(jnp.sum(m_ref[t, :]), 1.0)

        def point(p, acc):
            loss, g1, gb1, g2, gb2 = acc
            x, y, weight = x_ref[t, p], y_ref[t, p], m_ref[t, p] / count
            z = x * w1 + b1
            h = jnp.maximum(z, 0.0)
            r = jnp.sum(h * w2, axis=0, keepdims=True) + b2 - y  # [1, B]
            d = 2.0 * weight * r
            dz = jnp.where(z > 0, d * w2, 0.0)
            return loss + weight * r * r, g1 + dz * x, gb1 + dz, g2 + d * h, gb2 + d

        loss, *grads = jax.lax.fori_loop(0, batch, point, (jnp.zeros_like(b2), *zeros))
        out_ref[pl.ds(t, 1), :] = loss
        velocity = tuple(g + beta * v for g, v in zip(grads, velocity, strict=True))
        updates = (
            tuple(g + beta * v for g, v in zip(grads, velocity, strict=True))
            if nesterov
            else velocity
        )
        params = tuple(p - lr * u for p, u in zip(params, updates, strict=True))
        return params, velocity

    jax.lax.fori_loop(0, steps, step, (params, zeros))


@functools.partial(jax.jit, static_argnames=("nesterov", "interpret", "platform"))
def train_block(
    params,
    xb,
    yb,
    mask,
    beta,
    lr,
    *,
    nesterov: bool = False,
    interpret: bool = False,
    platform: str | None = None,
) -> jax.Array:
    """``[steps, M]``: the step losses of ``M`` models of one seed, trained by the kernel.

    Args:
      params: the chapter's parameters (``init_mlp``'s dict), each leaf with a leading ``[M]``
        axis (one set per model) or without it (every model starts alike).
      xb, yb, mask: ``[steps, batch]``: each step's points, targets and real-point mask.
      beta, lr: ``[M]``.
      nesterov: Nesterov momentum.
      interpret: run the kernel's semantics with XLA (any backend; for tests).
      platform: what the kernel is lowered for (``"cuda"``, ``"tpu"``); default the default
        backend's (``jax.export`` for another platform names it).
    """
    m = beta.shape[0]
    steps, batch = xb.shape
    mp = -(-m // BLOCK) * BLOCK

    def lanes(a, rows):  # [M, k] or [k] -> [rows, Mp]: models on lanes, zero padding
        a = jnp.broadcast_to(a.reshape(-1, a.shape[-1]) if a.ndim > 1 else a, (m, a.shape[-1]))
        a = jnp.pad(a.astype(jnp.float32), ((0, mp - m), (0, rows - a.shape[-1])))
        return a.T

    hidden = params["hidden"]
    w1 = lanes(hidden["kernel"].reshape(*hidden["kernel"].shape[:-2], -1), HIDDEN)
    b1 = lanes(hidden["bias"], HIDDEN)
    w2 = lanes(params["predict"]["kernel"][..., 0], HIDDEN)
    b2 = lanes(params["predict"]["bias"], 1)
    hp = [jnp.pad(v.astype(jnp.float32), (0, mp - m))[None, :] for v in (beta, lr)]
    sp, bp = _pow2(steps), _pow2(batch)  # Triton's blocks are powers of two: padded, unread
    rows = [
        jnp.pad(a.astype(jnp.float32), ((0, sp - steps), (0, bp - batch))) for a in (xb, yb, mask)
    ]
    tile = pl.BlockSpec((HIDDEN, BLOCK), lambda i: (0, i))
    row = pl.BlockSpec((1, BLOCK), lambda i: (0, i))
    whole = pl.BlockSpec((sp, bp), lambda i: (0, 0))
    out = pl.pallas_call(
        functools.partial(_kernel, steps=steps, batch=batch, nesterov=nesterov),
        out_shape=jax.ShapeDtypeStruct((sp, mp), jnp.float32),
        grid=(mp // BLOCK,),
        in_specs=[tile, tile, tile, row, row, row, whole, whole, whole],
        out_specs=pl.BlockSpec((sp, BLOCK), lambda i: (0, i)),
        interpret=interpret,
        compiler_params=None if interpret else _compiler_params(platform),
        name="jaxmom_fused_train",
    )(w1, b1, w2, b2, *hp, *rows)
    return out[:steps, :m]


def _compiler_params(platform: str | None):
    """Triton on an NVIDIA GPU (four warps: a thread per model of the block): the batch rows
    are read from global memory a scalar at a time, where Mosaic GPU would stage every block
    in shared memory (0.5 MB for 384 steps, more than an H100 has). Elsewhere the default."""
    if (platform or jax.default_backend()) not in ("cuda", "gpu"):
        return None
    from jax.experimental.pallas import triton as pltriton

    return pltriton.CompilerParams(num_warps=BLOCK // 32, num_stages=1)


@functools.cache
def fused_run(nesterov: bool = False, interpret: bool = False):
    """``run(params, xb, yb, mask, beta, lr) -> [steps]``: one model's step losses, by the
    kernel. Under ``vmap`` over models that share their seed (the same parameters and batches,
    as :func:`jaxmom.grid_sweep` runs a seed's points), the models become one kernel's lanes;
    any other ``vmap`` runs a kernel per model."""
    kw = dict(nesterov=nesterov, interpret=interpret)

    def single(params, xb, yb, mask, beta, lr):
        return train_block(params, xb, yb, mask, beta[None], lr[None], **kw)[:, 0]

    @jax.custom_batching.custom_vmap
    def run(params, xb, yb, mask, beta, lr):
        return single(params, xb, yb, mask, beta, lr)

    @run.def_vmap
    def _rule(axis_size, in_batched, params, xb, yb, mask, beta, lr):
        *shared, beta_b, lr_b = in_batched
        beta, lr = (
            v if b else jnp.broadcast_to(v, (axis_size,)) for v, b in ((beta, beta_b), (lr, lr_b))
        )
        if not any(jax.tree.leaves(shared)):  # one seed's models: one kernel, models on lanes
            return train_block(params, xb, yb, mask, beta, lr, **kw).T, True
        axes = [jax.tree.map(lambda b: 0 if b else None, b) for b in in_batched[:4]]
        return jax.vmap(single, in_axes=(*axes, 0, 0))(params, xb, yb, mask, beta, lr), True

    return run
