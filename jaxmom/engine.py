"""The sweep engine: any pure training function over a grid of hyperparameters and seeds.

Every (grid point, seed) pair is one run. The runs are cut into *blocks* of ``points x seeds``
runs, one block per device per compiled call, so memory is bounded whatever the grid's shape:
a long grid is cut along its points (one seed per block), many seeds of a short grid are cut
along the seeds. Inside a block, ``vmap`` runs over seeds and then over points with the seed's
key shared, so whatever a run derives from its key alone (initial weights, batch order) is
computed once per seed, not once per run. The blocks of a call are sharded over every device of
every process (``jax.devices()``); a block has the same shape whatever the device count, so a
sweep gives the same bits on one device or eight, and resumes across device counts.

With ``out=``, each process writes the blocks its own devices computed straight to the store
(:mod:`jaxmom.store`): nothing is gathered, so writing scales with the processes, and a block's
write costs that block. While a call's results are written the next call is already running.
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from jaxmom._checks import check_positive_int
from jaxmom._sweep_checks import (
    _available_memory,
    _check_finite_names,
    _check_grid,
    _check_seeds,
    _check_settings,
    _check_size,
    _gb,
    _named,
    _output_shapes,
    fingerprint,
)
from jaxmom.result import SweepResult
from jaxmom.store import Store, check_store_path

#: Runs per device in one compiled call when ``chunk_size`` is not given. On a CPU the per-step
#: intermediates of 512 runs of the chapter's MLP stay in a core's cache (the best of 128 to
#: 8192, ``benchmarks/NOTES.md``); an accelerator wants all the parallel work it can get.
CPU_RUNS_PER_DEVICE = 512
ACCELERATOR_RUNS_PER_DEVICE = 65536


def default_chunk_size(n_devices: int | None = None) -> int:
    """Runs per compiled call when ``chunk_size=None``: a multiple of the device count."""
    n = jax.device_count() if n_devices is None else n_devices
    cpu = jax.default_backend() == "cpu"
    return (CPU_RUNS_PER_DEVICE if cpu else ACCELERATOR_RUNS_PER_DEVICE) * n


def grid_sweep(
    train_fn: Callable,
    grid: Mapping[str, Sequence],
    seeds: Sequence[int] = (0,),
    *,
    data=None,
    chunk_size: int | None = None,
    out: str | os.PathLike | None = None,
    progress: bool = True,
    compiler_options: Mapping | None = None,
    check_finite: Sequence[str] | None = None,
    settings: Mapping | None = None,
) -> SweepResult:
    """Runs ``train_fn`` for every point of ``grid`` and every seed, vmapped and sharded.

    Args:
      train_fn: ``train_fn(hparams, key)``, or ``train_fn(hparams, key, data)`` when ``data``
        is given. ``hparams`` is a dict of traced scalars, one per grid axis (float axes as
        JAX's default float, integer axes as its default int); ``key`` is
        ``jax.random.key(seed)``. Returns any pytree of arrays (nested dicts, NamedTuples).
      grid: axis name -> non-empty 1-D sequence of numbers; the runs are their product. A
        setting that must be static (a bool such as ``nesterov``, a shape) cannot be an axis:
        run one sweep per value, with the setting bound in ``train_fn``. ``{}`` runs the seeds.
      seeds: distinct integers in [0, 2**32).
      data: any pytree of arrays, passed to ``train_fn`` as an argument: new data of the same
        shapes reuses the compiled program.
      chunk_size: runs per compiled call over all devices (memory is bounded by it); default
        :func:`default_chunk_size`. A store keeps the block it was created with.
      out: a folder for the store (e.g. ``"sweep.zarr"``). Each block is written as soon as it
        is done; the same call again runs only what is missing, on any number of devices or
        processes. A store of another sweep, or one in use, is refused.
      progress: a progress bar over runs, with an ETA.
      compiler_options: XLA options for the program (default: XLA's own).
      check_finite: the outputs (by name, e.g. ``"loss"`` or ``"params/hidden/kernel"``) whose
        non-finite values flag a run as diverged; default every floating-point output.
      settings: JSON-able settings that define the sweep beyond the grid (epochs, model size):
        stored with the results; a store holding other settings is refused.

    Returns:
      A :class:`jaxmom.SweepResult`, outputs indexed ``[*grid axes, seed, *output shape]``;
      lazy over the store when ``out`` is given. A diverging run is data, not an error.
    """
    axes = _check_grid(grid)
    seeds = _check_seeds(seeds)
    if chunk_size is not None:
        check_positive_int(chunk_size, "chunk_size")
    path = None if out is None else check_store_path(out)
    settings = _check_settings(settings)
    has_data = data is not None
    hp_dtypes = {k: jax.dtypes.canonicalize_dtype(v.dtype) for k, v in axes.items()}
    shapes, computation = _output_shapes(train_fn, hp_dtypes, data, has_data)
    check = _check_finite_names(check_finite, shapes)
    grid_shape = tuple(len(v) for v in axes.values())
    n_points, n_seeds = int(np.prod(grid_shape, dtype=np.int64)), len(seeds)
    n_dev = jax.device_count()
    per_device = (chunk_size or default_chunk_size(n_dev)) // n_dev or 1
    # a sweep smaller than a call still gives every device a block: a device left without one
    # would recompute a copy of another's (the padding of a call), not share the work
    per_device = min(per_device, -(-n_points * n_seeds // n_dev))
    block = (
        (per_device, 1)
        if n_points >= per_device
        else (n_points, min(n_seeds, per_device // n_points))
    )
    _check_size(n_points, n_seeds, block, shapes, len(axes), path)

    store = None
    if path is not None:
        spec = dict(
            axes={k: v.tolist() for k, v in axes.items()}, seeds=seeds.tolist(),
            outputs={k: [list(s.shape), s.dtype.name] for k, s in shapes.items()},
            settings=settings, data=_fingerprint(data), computation=computation,
            block=list(block),
            metadata=_metadata(train_fn),
        )  # fmt: skip
        store = _open_store(path, spec)
        block = store.block
    try:
        done = (
            store.done()
            if store is not None
            else np.zeros(_n_blocks(n_points, n_seeds, block), bool)
        )
        results = None
        if store is None:
            results = {
                k: np.full(
                    (n_points, n_seeds, *s.shape), np.nan if s.dtype.kind in "fc" else 0, s.dtype
                )
                for k, s in shapes.items()
            }
            results["diverged"] = np.zeros((n_points, n_seeds), bool)
        program = _program(train_fn, has_data)
        t0 = time.perf_counter()
        waited, busy = _run(
            program,
            axes,
            seeds,
            data,
            block,
            done,
            store,
            results,
            grid_shape,
            progress,
            compiler_options,
            check,
        )
        wall = time.perf_counter() - t0
    except OSError as e:  # a full disk, a file the store cannot write
        if store is None:
            raise
        store.close()
        raise OSError(
            e.errno,
            f"writing the store {str(path)!r} failed: {e.strerror or e} ({e.filename or path}); "
            "every finished block is kept, and the same call resumes once it can write there",
        ) from None
    except BaseException:
        if store is not None:
            store.close()
        raise
    meta = dict(
        _metadata(train_fn),
        settings=settings,
        computation=computation,
        wall_seconds=wall,
        write_wait_seconds=waited,
        writer_busy_seconds=busy,
    )
    if store is None:
        diverged = results.pop("diverged")
        return SweepResult(axes, seeds, results, diverged, np.ones_like(diverged), meta)
    _sync("jaxmom_sweep_done")
    if jax.process_index() == 0:
        store.finish(meta, complete=True)
    store.close()
    _sync("jaxmom_sweep_finished")
    return SweepResult.load(path)


def _run(
    program, axes, seeds, data, block, done, store, results, grid_shape, progress, options, check
):
    """Runs every block not ``done``, one per device per call, while the results of the call
    before are copied out (and written by a background thread, at most two calls behind).
    Returns ``(seconds the loop waited for writes, seconds the writer was busy)``."""
    m, k = block
    n_points, n_seeds = max(1, int(np.prod(grid_shape, dtype=np.int64))), len(seeds)
    devices = jax.devices()
    sharding = NamedSharding(Mesh(np.array(devices), ("blocks",)), P("blocks"))
    data = None if data is None else jax.device_put(data, NamedSharding(sharding.mesh, P()))
    pending = [tuple(b) for b in np.argwhere(~done)]
    calls = [pending[i : i + len(devices)] for i in range(0, len(pending), len(devices))]
    total = n_points * n_seeds
    bar = _bar(progress, total, total - _runs(pending, block, n_points, n_seeds))
    writer = _Writer(store)
    compiled, running = None, None
    try:
        for call in [*calls, None]:
            nxt = None
            if call is not None:
                padded = call + [call[-1]] * (len(devices) - len(call))
                hp, keys = _inputs(padded, axes, seeds, grid_shape, block)
                args = (jax.device_put(hp, sharding), jax.device_put(keys, sharding), data)
                if compiled is None:
                    compiled = _compile(program, args, options, len(jax.local_devices()))
                nxt = (call, compiled(*args))
            if running is not None:
                blocks = []
                for (q, g), blk in _host_blocks(running[1], running[0], store is None):
                    rows, cols = min(m, n_points - q * m), min(k, n_seeds - g * k)
                    outs = {n: a[:rows, :cols] for n, a in blk.items()}
                    outs["diverged"] = _diverged(outs, check, rows, cols)
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
        self.store, self.depth, self.futures = store, depth, []
        self.waited = self.busy = 0.0
        self.pool = None if store is None else ThreadPoolExecutor(1, "jaxmom-writer")

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


def _diverged(outs: dict[str, np.ndarray], check, rows: int, cols: int) -> np.ndarray:
    """``[rows, cols]``: a non-finite value in any output of ``check``. On the host, from the
    fetched block: in the compiled program it slowed compilation and saved nothing."""
    bad = np.zeros((rows, cols), bool)
    for name in check:
        bad |= ~np.isfinite(outs[name].reshape(rows, cols, -1)).all(-1)
    return bad


@functools.lru_cache(maxsize=32)
def _program(train_fn, has_data: bool):
    """``(hp {axis: [D, m]}, seeds [D, k], data) -> {name: [D, m, k, ...]}``."""

    def run(h, key, data):
        return train_fn(h, key, data) if has_data else train_fn(h, key)

    def block(hp, seeds, data):
        m = len(next(iter(hp.values()))) if hp else 1

        def per_seed(seed):
            key = jax.random.key(seed)
            return jax.vmap(lambda h: _named(run(h, key, data)), axis_size=m)(hp)

        return {k: jnp.swapaxes(v, 0, 1) for k, v in jax.vmap(per_seed)(seeds).items()}

    return jax.vmap(block, in_axes=(0, 0, None))


def _inputs(call, axes, seeds, grid_shape, block):
    """Host arrays for the blocks of a call: ``{axis: [D, m]}`` values and ``[D, k]`` seeds.
    The edge blocks repeat their last point or seed; those runs are never stored."""
    m, k = block
    q, g = np.array(call).T
    points = np.minimum(q[:, None] * m + np.arange(m), max(1, int(np.prod(grid_shape))) - 1)
    idx = np.unravel_index(points, grid_shape) if grid_shape else ()
    hp = {
        name: v[i].astype(jax.dtypes.canonicalize_dtype(v.dtype))
        for (name, v), i in zip(axes.items(), idx, strict=True)
    }
    keys = seeds[np.minimum(g[:, None] * k + np.arange(k), len(seeds) - 1)].astype(np.uint32)
    return hp, keys


def _runs(blocks, block, n_points, n_seeds) -> int:
    m, k = block
    return sum(min(m, n_points - q * m) * min(k, n_seeds - g * k) for q, g in blocks)


def _n_blocks(n_points, n_seeds, block) -> tuple[int, int]:
    return -(-n_points // block[0]), -(-n_seeds // block[1])


def _compile(program, args, options, local_devices: int):
    """Compiles ``program`` for ``args`` (cached by shapes) and refuses, before running it, a
    call whose memory would not fit in this host's."""
    key = (program, options and tuple(sorted(options.items())), *_avals(args))
    if key in _COMPILED:
        return _COMPILED[key]
    compiled = jax.jit(program).lower(*args).compile(dict(options) if options else None)
    mem = compiled.memory_analysis()
    if mem is not None and jax.default_backend() == "cpu":
        per_device = mem.temp_size_in_bytes + mem.argument_size_in_bytes + mem.output_size_in_bytes
        need, avail = per_device * local_devices, _available_memory()
        if avail and need > 0.9 * avail:
            raise MemoryError(
                f"one compiled call needs {_gb(need)} of memory, {_gb(avail)} is available: "
                "pass a smaller chunk_size"
            )
    if len(_COMPILED) >= 16:
        _COMPILED.pop(next(iter(_COMPILED)))
    _COMPILED[key] = compiled
    return compiled


_COMPILED: dict = {}


def _avals(args):
    leaves, tree = jax.tree.flatten(args)
    return tree, tuple((a.shape, str(a.dtype), str(getattr(a, "sharding", None))) for a in leaves)


def _bar(progress, total, initial):
    if not progress or jax.process_index() != 0:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, unit="run", desc="sweep", smoothing=0.1)


def _fingerprint(data) -> str | None:
    if data is None:
        return None
    return fingerprint(str(jax.tree.structure(data)), jax.tree.leaves(data))


def _metadata(train_fn) -> dict:
    return {
        "train_fn": getattr(train_fn, "__qualname__", type(train_fn).__name__),
        "jax_version": jax.__version__,
        "devices": [str(d) for d in jax.devices()],
        "platform": jax.devices()[0].platform,
        "processes": jax.process_count(),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


# -- more than one process ----------------------------------------------------------------------


def _sync(name: str) -> None:
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices(name)


def _open_store(path, spec) -> Store:
    """Process 0 creates or resumes the store under its lock; the others open it after."""
    if jax.process_count() == 1:
        return Store.open(path, spec)
    from jax.experimental import multihost_utils

    store, error = None, ""
    if jax.process_index() == 0:
        try:
            store = Store.open(path, spec)
        except (ValueError, RuntimeError) as e:
            error = str(e)
    failed = multihost_utils.broadcast_one_to_all(np.int32(bool(error)))
    if int(failed):
        raise RuntimeError(error or f"process 0 could not open the store {str(path)!r}")
    return store if store is not None else Store.open(path, spec, create=False)
