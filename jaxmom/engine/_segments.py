"""The segment form of a block: its runs started by one compiled program, advanced by a host
loop over one compiled program of a few steps written out, and finished by a third.

The programs take and give the block as :func:`jaxmom.engine._blocks.block_program` does
(hyperparameters ``[D, m]``, seeds ``[D, k]``, carry ``[D, m, k, ...]``, outputs ``[D, m, k,
...]``), so a block's runs are the same whichever form computes them. Inside, the state is
``[D, k, m, ...]``: vmapped over the devices' blocks, then over seeds and points (``"vmap"``),
or with each of the ``k * m`` runs written out (``"unroll"``).
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax.sharding import PartitionSpec as P

from jaxmom.engine._checks import named_leaves


class SegmentForm(NamedTuple):
    """A train function's :class:`jaxmom.training.Segments`, and how its runs are laid out."""

    segments: Any
    has_data: bool
    has_carry: bool
    vectorize: str


def _each(form: SegmentForm, mesh, fn, data, hp, seeds, *per_run):
    """``fn(h, seed, data, *run_leaves)`` for every run of the blocks: ``hp`` ``{name: [D, m]}``
    (any pytree of ``[D, m]`` leaves),
    ``seeds`` ``[D, k]``, ``per_run`` pytrees ``[D, k, m, ...]``; gives ``[D, k, m, ...]``.
    ``"vmap"``: vmapped over the blocks, seeds and points. ``"unroll"``: each device's block
    (``shard_map`` over ``mesh``) with its runs written out, nothing vmapped (even a vmap of
    one run slows a convolution on a CPU, 1.8x measured)."""
    if form.vectorize == "vmap":

        def device(hp_d, seeds_d, *pr):
            k, m = seeds_d.shape[0], _width(hp_d, 0)

            def per_seed(s, *p):
                return jax.vmap(lambda h, *q: fn(h, s, data, *q), axis_size=m)(hp_d, *p)

            return jax.vmap(per_seed, axis_size=k)(seeds_d, *pr)

        return jax.vmap(device)(hp, seeds, *per_run)

    def block(data, hp_b, seeds_b, *pr):  # one device's block, [1, ...]
        k, m = seeds_b.shape[1], _width(hp_b, 1)
        rows = []
        for i in range(k):
            cols = []
            for j in range(m):
                h = jax.tree.map(lambda v, j=j: v[0, j], hp_b)
                run = jax.tree.map(lambda a, i=i, j=j: a[0, i, j], pr)
                cols.append(fn(h, seeds_b[0, i], data, *run))
            rows.append(jax.tree.map(lambda *a: jnp.stack(a), *cols))
        return jax.tree.map(lambda *a: jnp.stack(a)[None], *rows)

    specs = (P(), P("blocks"), P("blocks"), *(P("blocks") for _ in per_run))
    mapped = jax.shard_map(block, mesh=mesh, in_specs=specs, out_specs=P("blocks"))
    return mapped(data, hp, seeds, *per_run)


def _width(hp, axis: int) -> int:
    """The points of a block: the length of ``axis`` of ``hp``'s leaves (1 without any)."""
    leaves = jax.tree.leaves(hp)
    return leaves[0].shape[axis] if leaves else 1


@functools.lru_cache(maxsize=32)
def init_program(form: SegmentForm, mesh=None):
    """``(hp, seeds, carry, data) -> state [D, k, m, ...]``; ``mesh``: the devices' mesh
    (``"unroll"`` only)."""
    segs = form.segments

    def program(hp, seeds, carry, data):
        swapped = jax.tree.map(lambda a: jnp.swapaxes(a, 1, 2), carry)

        def one(h, seed, data, *c):
            return segs.init(h, jax.random.key(seed), data, c[0] if form.has_carry else None)

        return _each(form, mesh, one, data, hp, seeds, *((swapped,) if form.has_carry else ()))

    return program


@functools.lru_cache(maxsize=64)
def advance_program(form: SegmentForm, steps: int, mesh=None):
    """``(state, hp, seeds, data) -> state``, ``steps`` more steps written out."""
    segs = form.segments

    def program(state, hp, seeds, data):
        def one(h, _, data, s):
            return segs.advance(s, h, data, steps)

        return _each(form, mesh, one, data, hp, seeds, state)

    return program


@functools.lru_cache(maxsize=32)
def finish_program(form: SegmentForm, mesh=None):
    """``(state, hp, seeds, data) -> {name: [D, m, k, ...]}``, the train function's outputs."""
    segs = form.segments

    def program(state, hp, seeds, data):
        def one(h, _, data, s):
            return named_leaves(segs.finish(s, h, data))

        outs = _each(form, mesh, one, data, hp, seeds, state)
        return {n: jnp.swapaxes(v, 1, 2) for n, v in outs.items()}

    return program


def segment_runner(form: SegmentForm, total: int, steps: int, compile_fn, mesh):
    """A callable ``(hp, seeds, carry, data) -> outputs`` as the whole-run block program's,
    which runs ``total`` steps as ``total // steps`` segments (and one of the rest) on the
    devices of ``mesh``; each program is compiled by ``compile_fn(program, args)`` on its
    first call (cached there)."""
    full, rest = divmod(total, steps)
    mesh = mesh if form.vectorize == "unroll" else None

    def run(hp, seeds, carry, data):
        start = compile_fn(init_program(form, mesh), (hp, seeds, carry, data))
        state = start(hp, seeds, carry, data)
        for n, count in ((steps, full), (rest, 1 if rest else 0)):
            if count:
                args = (state, hp, seeds, data)
                advance = compile_fn(advance_program(form, n, mesh), args)
                for _ in range(count):
                    state = advance(state, hp, seeds, data)
        args = (state, hp, seeds, data)
        return compile_fn(finish_program(form, mesh), args)(*args)

    return run
