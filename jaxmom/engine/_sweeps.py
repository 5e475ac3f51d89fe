"""The sweep engine: any pure training function over a grid of hyperparameters, or a table of
trials, and seeds.

Every (point, seed) pair is one run. The runs are cut into *blocks* of ``points x seeds``
runs, one block per device per compiled call, so memory is bounded whatever the grid's shape:
a long grid is cut along its points (one seed per block), many seeds of a short grid are cut
along the seeds. Inside a block, ``vmap`` runs over seeds and then over points with the seed's
key shared, so whatever a run derives from its key alone (initial weights, batch order) is
computed once per seed, not once per run. The blocks of a call are sharded over every device of
every process (``jax.devices()``); a block has the same shape whatever the device count, so a
sweep gives the same bits on one device or eight, and resumes across device counts.

With ``out=``, each process writes the blocks its own devices computed straight to the store
(:mod:`jaxmom.results`): nothing is gathered, so writing scales with the processes, and a block's
write costs that block. While a call's results are written the next call is already running.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import jax
import numpy as np
from numpy.typing import ArrayLike

from jaxmom.common import check_positive_int, check_settings, fingerprint
from jaxmom.engine._blocks import Runner, Work, block_program, n_blocks, run_blocks
from jaxmom.engine._checks import (
    check_finite_names,
    check_grid,
    check_seeds,
    check_size,
    check_trials,
    output_shapes,
)
from jaxmom.engine._plans import Plan, Setting, check_plan, choose
from jaxmom.engine._segments import SegmentForm
from jaxmom.results import Points, Store, SweepResult, check_store_path

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
    grid: Mapping[str, ArrayLike],
    seeds: Sequence[int] = (0,),
    *,
    data=None,
    chunk_size: int | None = None,
    out: str | os.PathLike | None = None,
    progress: bool = True,
    compiler_options: Mapping | None = None,
    check_finite: Sequence[str] | None = None,
    settings: Mapping | None = None,
    plan: Plan | Mapping | str | None = None,
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
      plan: how the steps run (a :class:`jaxmom.Plan`, its fields as a dict, ``"scan"`` or
        ``"segments"``); default ``"auto"``, a rule per model and platform. The choice is in
        the progress bar's label and the result's ``metadata["plan"]``; it never changes a
        result, and a store resumes under any plan.

    Returns:
      A :class:`jaxmom.SweepResult`, outputs indexed ``[*grid axes, seed, *output shape]``;
      lazy over the store when ``out`` is given. A diverging run is data, not an error.

    Examples:
      >>> import jax, jax.numpy as jnp, jaxmom
      >>> def train_fn(hp, key):  # heavy ball on f(x) = x**2 / 2, from a random start
      ...     def step(c, _):
      ...         x, v = c
      ...         v = hp["beta"] * v + x
      ...         return (x - hp["lr"] * v, v), None
      ...     x0 = jax.random.normal(key)
      ...     (x, _), _ = jax.lax.scan(step, (x0, 0.0 * x0), None, length=100)
      ...     return {"loss": 0.5 * x**2}
      >>> res = jaxmom.grid_sweep(train_fn, {"beta": [0.0, 0.5, 0.9], "lr": [0.1, 1.0]},
      ...                         seeds=range(4), progress=False)
      >>> res["loss"].shape  # [beta, lr, seed]
      (3, 2, 4)
    """
    points = Points(check_grid(grid))
    options = Options(
        data, chunk_size, out, progress, compiler_options, check_finite, settings, plan=plan
    )
    return run_sweep(train_fn, points, seeds, options)


def trial_sweep(
    train_fn: Callable,
    trials: Mapping[str, ArrayLike],
    seeds: Sequence[int] = (0,),
    *,
    data=None,
    chunk_size: int | None = None,
    out: str | os.PathLike | None = None,
    progress: bool = True,
    compiler_options: Mapping | None = None,
    check_finite: Sequence[str] | None = None,
    settings: Mapping | None = None,
    plan: Plan | Mapping | str | None = None,
) -> SweepResult:
    """Runs ``train_fn`` for every trial of a table and every seed: :func:`grid_sweep` over
    a list of points instead of a product of axes.

    Args:
      train_fn: as :func:`grid_sweep`'s; ``hparams`` holds one scalar per column of ``trials``.
      trials: column name -> 1-D sequence of numbers, all of one length ``n`` (trial ``i`` is
        row ``i``), e.g. from :func:`jaxmom.sample` or the user's own list of points.
      seeds, data, chunk_size, out, progress, compiler_options, check_finite, settings, plan:
        as :func:`grid_sweep`'s.

    Returns:
      A :class:`jaxmom.SweepResult` with one axis, ``trial``, outputs indexed ``[trial, seed,
      *output shape]``; each column is a coordinate along ``trial`` (``res.trials``), so
      ``best``, ``summary``, the CSV, the DataFrame and xarray show the values.

    Examples:
      >>> import jax.numpy as jnp, jaxmom
      >>> trials = {"beta": [0.0, 0.5, 0.9], "lr": [1.0, 0.5, 0.1]}  # three (beta, lr) pairs
      >>> def train_fn(hp, key):
      ...     return {"rate": jnp.maximum(jnp.abs(1 - hp["lr"]), jnp.sqrt(hp["beta"]))}
      >>> jaxmom.trial_sweep(train_fn, trials, progress=False)["rate"].shape  # [trial, seed]
      (3, 1)
    """
    points = Points.table(check_trials(trials))
    options = Options(
        data, chunk_size, out, progress, compiler_options, check_finite, settings, plan=plan
    )
    return run_sweep(train_fn, points, seeds, options)


class Options(NamedTuple):
    """A sweep's keyword arguments (see :func:`grid_sweep`), and ``carry``: a per-run input
    ``[points, seeds, ...]`` (a pytree of host arrays) given to ``train_fn`` as its last
    argument, as a successive-halving rung resumes its runs' states; ``plan``: as
    :func:`grid_sweep`'s."""

    data: object = None
    chunk_size: int | None = None
    out: str | os.PathLike | None = None
    progress: bool = True
    compiler_options: Mapping | None = None
    check_finite: Sequence[str] | None = None
    settings: Mapping | None = None
    carry: object = None
    plan: object = None


def run_sweep(train_fn: Callable, points: Points, seeds, options: Options) -> SweepResult:
    """The one engine under every sweep: checks, blocks, store, sharding, progress."""
    seeds = check_seeds(seeds)
    o = options
    if o.chunk_size is not None:
        check_positive_int(o.chunk_size, "chunk_size")
    path = None if o.out is None else check_store_path(o.out)
    settings = check_settings(o.settings)
    has_data, has_carry = o.data is not None, o.carry is not None
    hp_dtypes = {k: jax.dtypes.canonicalize_dtype(v.dtype) for k, v in points.hparams.items()}
    run_carry = None if not has_carry else jax.tree.map(_one_run, o.carry)
    forced = check_plan(o.plan)
    shapes, computation, prims = output_shapes(train_fn, hp_dtypes, o.data, has_data, run_carry)
    check = check_finite_names(o.check_finite, shapes)
    n_points, n_seeds = points.n, len(seeds)
    n_dev = jax.device_count()
    segments = getattr(train_fn, "segments", None)
    setting = Setting(
        segmentable=segments is not None,
        convolution="conv_general_dilated" in prims,
        platform=jax.default_backend(),
        n_devices=n_dev,
        steps=0 if segments is None else int(segments.steps(o.data)),
        runs=n_points * n_seeds,
    )
    plan = choose(forced, setting, (o.chunk_size or default_chunk_size(n_dev)) // n_dev or 1)
    per_device = plan.block_runs
    block = (
        (per_device, 1)
        if n_points >= per_device
        else (n_points, min(n_seeds, per_device // n_points))
    )
    check_size(n_points, n_seeds, block, shapes, len(points.coord_names()), path)

    store = None
    if path is not None:
        spec = dict(
            points.spec(),
            points=points,
            seeds=seeds.tolist(),
            outputs={k: [list(s.shape), s.dtype.name] for k, s in shapes.items()},
            settings=settings,
            data=_fingerprint(o.data, o.carry),
            computation=computation,
            block=list(block),
            metadata=_metadata(train_fn),
        )
        store = _open_store(path, spec)
        block = store.block
        if plan.vectorize == "unroll" and forced.vectorize is None and block[0] * block[1] > 16:
            reason = plan.reason + "; the store's blocks are too large to unroll: vmap"
            plan = plan._replace(vectorize="vmap", reason=reason)
    try:
        shape = n_blocks(n_points, n_seeds, block)
        done = store.done() if store is not None else np.zeros(shape, bool)
        # never more devices than blocks to run: a device left without one would compute a
        # copy of another's (in one process; processes share every call)
        used = min(plan.devices, max(1, int((~done).sum())))
        used = used if jax.process_count() == 1 else jax.device_count()
        plan = plan._replace(block_runs=block[0] * block[1], devices=used)
        sink: Any = store
        if store is None:
            sink = {
                k: np.full(
                    (n_points, n_seeds, *s.shape), np.nan if s.dtype.kind in "fc" else 0, s.dtype
                )
                for k, s in shapes.items()
            }
            sink["diverged"] = np.zeros((n_points, n_seeds), bool)
        work = Work(points, seeds, o.data, o.carry, block, done)
        t0 = time.perf_counter()
        segmented = plan.form == "segments"
        form = SegmentForm(segments, has_data, has_carry, plan.vectorize) if segmented else None
        program = block_program(train_fn, has_data, has_carry)
        runner = Runner(program, form, setting.steps, plan.segment_steps, o.compiler_options)
        label = o.progress and f"sweep ({plan.describe()})"
        waited, busy = run_blocks(runner, work, sink, label, check, plan.devices)
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
        plan=dict(plan._asdict(), label=plan.describe()),
        write_wait_seconds=waited,
        writer_busy_seconds=busy,
    )
    if store is None:
        diverged = sink.pop("diverged")
        done = np.ones_like(diverged)
        return SweepResult(points.axes, seeds, sink, diverged, done, meta, trials=points.trials)
    _sync("jaxmom_sweep_done")
    if jax.process_index() == 0:
        store.finish(meta, complete=True)
    store.close()
    _sync("jaxmom_sweep_finished")
    return SweepResult.load(store.path)


def _one_run(leaf):
    """A carried leaf ``[points, seeds, *S]`` as one run sees it: ``S``."""
    leaf = np.asarray(leaf)  # read on the host: the carry may be every run's whole state
    return jax.ShapeDtypeStruct(leaf.shape[2:], jax.dtypes.canonicalize_dtype(leaf.dtype))


def _fingerprint(data, carry=None) -> str | None:
    if data is None and carry is None:
        return None
    if carry is None:  # the digest of jaxmom 0.3's stores
        return fingerprint(str(jax.tree.structure(data)), jax.tree.leaves(data))
    tree = (data, carry)
    return fingerprint(str(jax.tree.structure(tree)), jax.tree.leaves(tree))


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
