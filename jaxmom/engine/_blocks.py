"""Running the blocks of a sweep: one compiled program over a block of runs per device, the
calls one after another, each call's results copied out (and written by a background thread)
while the next runs. :mod:`jaxmom.engine._sweeps` decides the blocks; this module runs them.

A block is ``(m points, k seeds)``. Its program vmaps over the seeds and, inside, over the
points with the seed's key shared, so whatever a run derives from its key alone is computed
once per seed. A sweep may carry a per-run input (the state a halving rung resumes from),
``[points, seeds, ...]`` on the host, gathered per block as the hyperparameters are.
"""

from __future__ import annotations

import functools
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from jaxmom.engine._checks import SweepTooLarge, available_memory, gb, named_leaves
from jaxmom.engine._segments import segment_runner


class Work(NamedTuple):
    """What :func:`run_blocks` runs: ``points`` (:class:`jaxmom.results.Points`), ``seeds``,
    ``data`` (shared by every run), ``carry`` (a per-run pytree ``[points, seeds, ...]``, or
    ``None``), ``block`` ``(m, k)`` and ``done`` (``[point blocks, seed blocks]``)."""

    points: Any
    seeds: np.ndarray
    data: Any
    carry: Any
    block: tuple[int, int]
    done: np.ndarray


class Runner(NamedTuple):
    """How the blocks of a call are computed: the whole-run block ``program`` (a ``scan``), or,
    when ``form`` is given, in segments of ``segment_steps`` of the run's ``total`` steps
    (:mod:`jaxmom.engine._segments`); compiled with XLA ``options``."""

    program: Any
    form: Any = None
    total: int = 0
    segment_steps: int = 0
    options: Any = None

    def make(self, args, sharding):
        """A callable for the call's ``args`` (its programs compiled once per shape)."""
        local = len(sharding.addressable_devices)
        if self.form is None:
            return _compile(self.program, args, self.options, local)

        def compile_fn(program, a):
            return _compile(program, a, self.options, local, sharding)

        return segment_runner(self.form, self.total, self.segment_steps, compile_fn, sharding.mesh)


def run_blocks(runner: Runner, work: Work, sink, progress, check, n_devices: int | None = None):
    """Runs every block of ``work`` not done, one per device per call, on the first
    ``n_devices`` devices (all by default), while the results of the call before are copied
    out: into ``sink`` (a :class:`jaxmom.results.Store`, written by a
    background thread at most two calls behind) or, when ``sink`` is a dict of ``[points,
    seeds, ...]`` arrays, into it. In one process a last call with fewer blocks than devices
    runs on fewer devices (a second compile) rather than give one a copy of another's work.
    ``progress``: ``False``, ``True`` or the progress bar's label. Returns ``(seconds the loop
    waited for writes, seconds the writer was busy)``."""
    block, done, seeds = work.block, work.done, work.seeds
    store = None if isinstance(sink, dict) else sink
    results: Any = sink if store is None else None
    m, k = block
    n_points, n_seeds = work.points.n, len(seeds)
    pending = [tuple(b) for b in np.argwhere(~done)]
    devices = jax.devices()[: n_devices or None]
    calls = [pending[i : i + len(devices)] for i in range(0, len(pending), len(devices))]
    total = n_points * n_seeds
    bar = _bar(progress, total, total - _runs(pending, block, n_points, n_seeds))
    writer = _Writer(store)
    made: dict = {}
    running = None
    try:
        for call in [*calls, None]:
            nxt = None
            if call is not None:
                width = len(call) if jax.process_count() == 1 else len(devices)
                if width not in made:
                    mesh = Mesh(np.array(devices[:width]), ("blocks",))
                    made[width] = [NamedSharding(mesh, P("blocks")), None]
                    made[width].append(_placed(work.data, NamedSharding(mesh, P())))
                sharding, fn, data = made[width]
                padded = call + [call[-1]] * (width - len(call))
                hp, keys, carry = _inputs(padded, work)
                args = (*jax.device_put((hp, keys, carry), sharding), data)
                if fn is None:
                    fn = made[width][1] = runner.make(args, sharding)
                nxt = (call, fn(*args))
            if running is not None:
                blocks = []
                for (q, g), blk in _host_blocks(running[1], running[0], store is None):
                    rows, cols = min(m, n_points - q * m), min(k, n_seeds - g * k)
                    outs = {n: a[:rows, :cols] for n, a in blk.items()}
                    outs["diverged"] = diverged_runs(outs, check, rows, cols)
                    blocks.append(((q, g), outs))
                if store is None:
                    for (q, g), outs in blocks:
                        for name, a in outs.items():
                            results[name][
                                q * m : q * m + a.shape[0], g * k : g * k + a.shape[1]
                            ] = a
                else:
                    writer.submit(blocks)
                if bar is not None:
                    bar.update(_runs(running[0], block, n_points, n_seeds))
            running = nxt
        writer.wait(0)
    finally:
        writer.close()
        if bar is not None:
            bar.close()
    return writer.waited, writer.busy


class _Writer:
    """Writes blocks to the store on one background thread, at most ``depth`` calls behind
    (bounded memory); an error there (a full disk) is raised in the sweep's thread."""

    def __init__(self, store, depth: int = 2):
        self.store, self.depth = store, depth
        self.futures: list[Future] = []
        self.waited = self.busy = 0.0
        self.pool: Any = None if store is None else ThreadPoolExecutor(1, "jaxmom-writer")

    def _write(self, blocks):
        t = time.perf_counter()
        for (q, g), outs in blocks:
            diverged = outs.pop("diverged")
            self.store.write_block(q, g, outs, diverged)
        self.busy += time.perf_counter() - t

    def submit(self, blocks) -> None:
        self.wait(self.depth - 1)
        self.futures.append(self.pool.submit(self._write, blocks))

    def wait(self, keep: int) -> None:
        t = time.perf_counter()
        while len(self.futures) > keep:
            self.futures.pop(0).result()
        self.waited += time.perf_counter() - t

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)


def _placed(data, replicated):
    """``data`` on every device of ``replicated``: for the same JAX arrays (immutable) the same
    placed arrays again, so a repeated small sweep does not copy its data set every call; NumPy
    data (which may change in place) is placed anew."""
    if data is None:
        return None
    leaves = jax.tree.leaves(data)
    if not all(isinstance(a, jax.Array) for a in leaves):
        return jax.device_put(data, replicated)
    key = (tuple(map(id, leaves)), replicated)  # the entry keeps its leaves, so ids stay theirs
    hit = _PLACED.get(key)
    if hit is None:
        hit = _PLACED[key] = (leaves, jax.device_put(data, replicated))
        while len(_PLACED) > 4:
            _PLACED.pop(next(iter(_PLACED)))
    return hit[1]


_PLACED: dict = {}


def _host_blocks(out: dict, call: list, gather: bool):
    """Yields ``((q, g), {name: [m, k, ...]})`` for the real blocks of a call that this process
    stores: all of them in one process or when gathering, else its own devices' shards."""
    if jax.process_count() > 1 and gather:
        from jax.experimental import multihost_utils

        out = {k: multihost_utils.process_allgather(a, tiled=True) for k, a in out.items()}
    if jax.process_count() == 1 or gather:
        host = {k: np.asarray(a) for k, a in out.items()}
        for d, b in enumerate(call):
            yield b, {k: a[d] for k, a in host.items()}
        return
    shards = {k: {s.index[0].start or 0: s for s in a.addressable_shards} for k, a in out.items()}
    for d in sorted(next(iter(shards.values()))):
        if d < len(call):
            yield call[d], {k: np.asarray(s[d].data)[0] for k, s in shards.items()}


def diverged_runs(outs: dict[str, np.ndarray], check, rows: int, cols: int) -> np.ndarray:
    """``[rows, cols]``: a non-finite value in any output of ``check``. On the host, from the
    fetched block: in the compiled program it slowed compilation and saved nothing."""
    bad = np.zeros((rows, cols), bool)
    for name in check:
        bad |= ~np.isfinite(outs[name].reshape(rows, cols, -1)).all(-1)
    return bad


@functools.lru_cache(maxsize=32)
def block_program(train_fn, has_data: bool, has_carry: bool = False):
    """``(hp {name: [D, m]}, seeds [D, k], carry [D, m, k, ...], data) -> {name: [D, m, k,
    ...]}``; ``train_fn(hp, key[, data][, carry])`` is one run.

    Two levels of ``vmap``: over the ``D * k`` (block, seed) rows, then over a row's ``m``
    points with its key shared. (A third level, blocks then seeds, compiled 0.45 s slower on
    a CPU for the same program: the first call of a small sweep.)"""

    def run(h, key, data, c):
        args = (h, key, *((data,) if has_data else ()), *((c,) if has_carry else ()))
        return train_fn(*args)

    def program(hp, seeds, carry, data):
        (d, k), m = seeds.shape, (next(iter(hp.values())).shape[1] if hp else 1)
        rows_hp = {n: jnp.repeat(v, k, axis=0) for n, v in hp.items()}  # [D * k, m]
        rows_carry = jax.tree.map(
            lambda a: jnp.swapaxes(a, 1, 2).reshape(d * k, m, *a.shape[3:]), carry
        )

        def per_row(h, seed, c):
            key = jax.random.key(seed)
            return jax.vmap(lambda h, c: named_leaves(run(h, key, data, c)), axis_size=m)(h, c)

        outs = jax.vmap(per_row)(rows_hp, seeds.reshape(d * k), rows_carry)
        return {n: jnp.swapaxes(v.reshape(d, k, m, *v.shape[2:]), 1, 2) for n, v in outs.items()}

    return program


def _inputs(call, work: Work):
    """Host arrays for the blocks of a call: ``{name: [D, m]}`` values, ``[D, k]`` seeds and
    the carry ``[D, m, k, ...]``. The edge blocks repeat their last point or seed; those runs
    are never stored."""
    m, k = work.block
    q, g = np.array(call).T
    points = np.minimum(q[:, None] * m + np.arange(m), work.points.n - 1)
    seeds = np.minimum(g[:, None] * k + np.arange(k), len(work.seeds) - 1)
    hp = work.points.values(points)
    carry = jax.tree.map(lambda a: a[points[:, :, None], seeds[:, None, :]], work.carry)
    return hp, work.seeds[seeds].astype(np.uint32), carry


def _runs(blocks, block, n_points, n_seeds) -> int:
    m, k = block
    return sum(min(m, n_points - q * m) * min(k, n_seeds - g * k) for q, g in blocks)


def n_blocks(n_points, n_seeds, block) -> tuple[int, int]:
    return -(-n_points // block[0]), -(-n_seeds // block[1])


def _compile(prog, args, options, local_devices: int, out_sharding=None, donate=()):
    """Compiles ``program`` for ``args`` (cached by shapes), its outputs laid out as
    ``out_sharding`` when given and the arguments ``donate`` donated, and refuses, before
    running it, a call whose memory would not fit in this host's."""
    key = (prog, tuple(sorted(options.items())) if options else None, *_avals(args))
    key += (out_sharding, donate)
    if key in COMPILED:
        return COMPILED[key]
    shardings = {} if out_sharding is None else {"out_shardings": out_sharding}
    jitted = jax.jit(prog, donate_argnums=donate, **shardings)
    compiled = jitted.lower(*args).compile(dict(options) if options else None)
    mem = compiled.memory_analysis()
    if mem is not None and jax.default_backend() == "cpu":
        per_device = mem.temp_size_in_bytes + mem.argument_size_in_bytes + mem.output_size_in_bytes
        need, avail = per_device * local_devices, available_memory()
        if avail and need > 0.9 * avail:
            raise SweepTooLarge(
                f"one compiled call needs {gb(need)} of memory, {gb(avail)} is available: "
                "pass a smaller chunk_size"
            )
    if len(COMPILED) >= 16:
        COMPILED.pop(next(iter(COMPILED)))
    COMPILED[key] = compiled
    return compiled


COMPILED: dict = {}


def _avals(args):
    leaves, tree = jax.tree.flatten(args)
    return tree, tuple((a.shape, str(a.dtype), str(getattr(a, "sharding", None))) for a in leaves)


def _bar(progress, total, initial):
    if not progress or jax.process_index() != 0:
        return None
    from tqdm.auto import tqdm

    desc = progress if isinstance(progress, str) else "sweep"
    return tqdm(total=total, initial=initial, unit="run", desc=desc, smoothing=0.1)
