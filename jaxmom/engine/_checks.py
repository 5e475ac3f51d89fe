"""What :func:`jaxmom.grid_sweep` checks before any compute: the grid, the seeds, the settings,
the outputs' shapes (traced, not run), and whether the results fit in memory or on disk."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Mapping
from typing import NamedTuple

import jax
import numpy as np

from jaxmom.common import fingerprint


class SweepTooLarge(ValueError):
    """A sweep whose results, or one compiled call of it, would not fit this machine's memory or
    disk: refused before any compute, with what to change (``out=``, ``chunk_size``, fewer
    recorded values). A ``ValueError``: the input asks too much; nothing failed to allocate."""


def named_leaves(tree) -> dict[str, jax.Array]:
    """A pytree of arrays as ``{"a/b/0": leaf}``, by key path (a bare array is ``"output"``)."""
    leaves = jax.tree_util.tree_leaves_with_path(tree)
    return {jax.tree_util.keystr(p, simple=True, separator="/") or "output": v for p, v in leaves}


def check_grid(grid, what: str = "grid") -> dict[str, np.ndarray]:
    if not isinstance(grid, Mapping):
        raise TypeError(f"grid must be a dict of axis name -> values, got {type(grid).__name__}")
    axes = {}
    for name, values in grid.items():
        if not isinstance(name, str) or not name:
            raise TypeError(f"{what} names must be non-empty strings, got {name!r}")
        arr = np.asarray(values)
        if arr.ndim != 1 or arr.size == 0:
            raise ValueError(
                f"{what}[{name!r}] must be a non-empty 1-D sequence, got shape {arr.shape}"
            )
        if arr.dtype.kind == "b":
            raise ValueError(
                f"{what}[{name!r}] holds bools, which must be static: run one sweep per value with "
                f"{name} bound in train_fn (e.g. functools.partial(train_fn, {name}=True))"
            )
        if arr.dtype.kind not in "iuf":
            raise ValueError(f"{what}[{name!r}] must hold numbers (int or float), got {arr.dtype}")
        with np.errstate(over="ignore", under="ignore"):
            cast = arr.astype(jax.dtypes.canonicalize_dtype(arr.dtype))
        lost = (np.isfinite(arr) & ~np.isfinite(cast)) | ((arr != 0) & (cast == 0))
        if arr.dtype.kind in "iu":
            lost |= cast.astype(np.int64) != arr
        if lost.any():
            raise ValueError(
                f"{what}[{name!r}] value {arr[lost][0].item()!r} does not fit {cast.dtype}, the "
                "dtype it runs in (enable jax_enable_x64 for 64-bit values)"
            )
        axes[name] = arr
    return axes


def check_trials(trials) -> dict[str, np.ndarray]:
    """A table of trials: columns of numbers, all of one length; ``trial`` names its axis."""
    if not isinstance(trials, Mapping) or not trials:
        raise TypeError(
            "trials must be a non-empty dict of column name -> 1-D values of one length (e.g. "
            f"from jaxmom.sample), got {trials!r:.80}"
        )
    columns = check_grid(trials, "trials")
    lengths = {k: len(v) for k, v in columns.items()}
    if len(set(lengths.values())) > 1:
        raise ValueError(
            f"the columns of trials must have one length, got {lengths} (a grid of axes: "
            "pass jaxmom.product(grid))"
        )
    if "trial" in columns:
        raise ValueError("'trial' names the axis of a table of trials: rename that column")
    return columns


def check_seeds(seeds) -> np.ndarray:
    if isinstance(seeds, int | np.integer):  # the CLI's --seeds N means 0..N-1: say which
        raise TypeError(
            f"seeds must be a sequence of seeds, got seeds={seeds!r}: pass range({seeds}) for "
            f"{seeds} seeds (as --seeds {seeds} means), or [{seeds}] for that one seed"
        )
    arr = np.atleast_1d(np.asarray(seeds))
    if arr.ndim != 1 or arr.size == 0 or arr.dtype.kind not in "iu":
        raise ValueError(f"seeds must be a non-empty 1-D sequence of integers, got {seeds!r}")
    if arr.dtype.kind == "u" and arr.max() >= 2**32:  # before a cast could wrap it
        raise ValueError(f"seeds must lie in [0, 2**32) (jax.random.key's range), got {arr.max()}")
    arr = arr.astype(np.int64)
    if arr.min() < 0 or arr.max() >= 2**32:
        bad = arr[(arr < 0) | (arr >= 2**32)][0]
        raise ValueError(f"seeds must lie in [0, 2**32) (jax.random.key's range), got {bad}")
    if len(np.unique(arr)) != len(arr):
        raise ValueError(f"seeds must be distinct, got {arr.tolist()[:20]}")
    return arr


def output_shapes(train_fn, hp_dtypes, data, has_data, carry=None):
    """One run traced (no compute): the shapes of its outputs, and a fingerprint of what it
    computes (its jaxpr and constants); a clear error if the outputs are not arrays or
    ``train_fn`` does not take its arguments. ``carry``: one run's carried input, if any."""
    check_data_leaves(data)
    cache = (train_fn, tuple(hp_dtypes.items()), has_data, jax.config.jax_enable_x64)
    cache += tuple(_aval(x) for x in (data, carry))
    if cache in _TRACED:
        return _TRACED[cache]
    hp = {k: jax.ShapeDtypeStruct((), d) for k, d in hp_dtypes.items()}
    key = jax.eval_shape(lambda: jax.random.key(0))
    args = (hp, key, data) if has_data else (hp, key)
    args += () if carry is None else (carry,)
    call = "train_fn(hparams, key, data)" if has_data else "train_fn(hparams, key)"
    try:
        closed, tree = jax.make_jaxpr(train_fn, return_shape=True)(*args)
    except jax.errors.ConcretizationTypeError as e:
        raise TypeError(
            f"{call} needs the concrete value of a traced hyperparameter ({_first_line(e)}): a "
            "swept value is an array inside the compiled run, so Python cannot branch on it. "
            "An optax schedule whose peak is swept (optax compares it to 0) is one case: scale a "
            "unit schedule by it, lambda step: learning_rate * "
            "optax.warmup_cosine_decay_schedule(0.0, 1.0, ...)(step)"
        ) from None
    except KeyError as e:
        missing = e.args[0] if e.args else None
        if isinstance(missing, str) and missing not in hp:
            raise ValueError(
                f"{call} reads hparams[{missing!r}], which the sweep does not have: its axes "
                f"or columns are {sorted(hp)}"
            ) from None
        raise
    except TypeError as e:
        raise TypeError(f"{call} failed: {e}") from e
    bad = [x for x in jax.tree.leaves(tree) if not isinstance(x, jax.ShapeDtypeStruct)]
    if bad or not jax.tree.leaves(tree):
        raise TypeError(f"train_fn must return a pytree of arrays, got {tree!r}")
    shapes = named_leaves(tree)
    stored = {k: jax.ShapeDtypeStruct(s.shape, _storage_dtype(s.dtype)) for k, s in shapes.items()}
    traced = Traced(stored, computation(closed), primitives(closed.jaxpr))
    if len(_TRACED) >= 32:
        _TRACED.pop(next(iter(_TRACED)))
    _TRACED[cache] = traced
    return traced


#: The traces of the last train functions: a repeated sweep traces nothing again.
_TRACED: dict = {}


def _aval(tree) -> tuple:
    leaves, structure = jax.tree.flatten(tree)
    dtypes = (x.dtype if hasattr(x, "dtype") else np.result_type(x) for x in leaves)
    return structure, tuple((np.shape(x), str(d)) for x, d in zip(leaves, dtypes, strict=True))


class Traced(NamedTuple):
    """What tracing one run tells: its stored output ``shapes`` (by name), the fingerprint of
    its ``computation``, and the names of the ``primitives`` it runs (sub-programs included)."""

    shapes: dict
    computation: str
    primitives: frozenset


def primitives(jaxpr) -> frozenset:
    """The names of every primitive of ``jaxpr`` and of the programs inside its loops,
    conditionals and calls."""
    names: set[str] = set()
    todo = [jaxpr]
    while todo:
        j = todo.pop()
        for eqn in j.eqns:
            names.add(eqn.primitive.name)
            for v in eqn.params.values():
                for sub in v if isinstance(v, (tuple, list)) else (v,):
                    inner = getattr(sub, "jaxpr", sub)
                    if hasattr(inner, "eqns"):
                        todo.append(inner)
    return frozenset(names)


def _first_line(e: Exception) -> str:
    return str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__


def check_data_leaves(data) -> None:
    """A ``TypeError`` naming the first leaf of ``data`` that is not an array of numbers (an
    object array, a string), before anything is traced."""
    for path, leaf in jax.tree_util.tree_leaves_with_path(data):
        kind = np.asarray(leaf).dtype.kind if not isinstance(leaf, jax.Array) else "f"
        if kind not in "biufc":
            where = jax.tree_util.keystr(path) or "data"
            raise TypeError(
                f"data{where if where != 'data' else ''} must be an array of numbers, got "
                f"{type(leaf).__name__} of dtype {np.asarray(leaf).dtype}"
            )


def computation(closed) -> str:
    """A fingerprint of a closed jaxpr: its text (without the memory addresses some parameters
    print) and its constants' bytes. The same code gives the same fingerprint in a new process;
    another computation (a fixed bug, other constants) gives another."""
    text = re.sub(r" at 0x[0-9a-fA-F]+", "", str(closed.jaxpr))
    return fingerprint(text, closed.consts)


def _storage_dtype(dtype) -> np.dtype:
    """float16/bfloat16 outputs are kept as float32 (zarr and NumPy know it everywhere)."""
    dtype = np.dtype(dtype)
    return (
        np.dtype(np.float32)
        if dtype.kind not in "biufc" or (dtype.itemsize < 4 and dtype.kind == "f")
        else dtype
    )


def check_finite_names(check_finite, shapes) -> tuple[str, ...]:
    if check_finite is None:
        return tuple(k for k, s in shapes.items() if s.dtype.kind in "fc")
    names = (check_finite,) if isinstance(check_finite, str) else tuple(check_finite)
    unknown = [n for n in names if n not in shapes]
    if unknown:
        raise ValueError(
            f"check_finite names {unknown[0]!r}, not an output of train_fn ({list(shapes)})"
        )
    return names


def _disk_bytes(n_points: int, n_seeds: int, block, shapes, n_axes: int, fs_block: int) -> int:
    """What a new store's chunk files take on disk: every block writes one file per output and
    one for its status, plus (per point block) one per axis; each file is its bytes and a
    4-byte checksum, rounded up to whole file-system blocks."""
    m, k = block
    n_q, n_g = -(-n_points // m), -(-n_seeds // k)

    def file(nbytes: int) -> int:
        return -(-(nbytes + 4) // fs_block) * fs_block

    per_block = file(m * k) + sum(
        file(m * k * int(np.prod(s.shape)) * s.dtype.itemsize) for s in shapes.values()
    )
    return n_q * n_g * per_block + n_q * n_axes * file(m * 8)


def check_size(n_points: int, n_seeds: int, block, shapes, n_axes: int, path) -> None:
    n_runs = n_points * n_seeds
    per_run = 1 + sum(int(np.prod(s.shape)) * s.dtype.itemsize for s in shapes.values())
    total = n_runs * per_run
    advice = (
        "record fewer values per run (every k-th step, or epoch losses only) or sweep fewer runs"
    )
    if path is None:
        avail = available_memory()
        if avail and total > 0.75 * avail:
            raise SweepTooLarge(
                f"the results of {n_runs:,} runs take {gb(total)}, more than this machine's "
                f"{gb(avail)} of free memory can hold: pass out=PATH to keep them on disk, "
                f"or {advice}"
            )
    elif not path.exists():  # a resume needs less; a full disk then ends in one clear line
        parent = path.absolute().parent
        fs_block = os.statvfs(parent).f_frsize if hasattr(os, "statvfs") else 4096
        disk = _disk_bytes(n_points, n_seeds, block, shapes, n_axes, fs_block)
        free = shutil.disk_usage(parent).free
        if disk > free:
            raise ValueError(
                f"the results of {n_runs:,} runs take {gb(disk)} on disk (one file per output "
                f"and block, at least a {fs_block}-byte file-system block each), the disk under "
                f"{str(path)!r} has {gb(free)} free: {advice}, or a larger chunk_size"
            )


def available_memory() -> int | None:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def gb(n: float) -> str:
    return f"{n / 2**30:.2f} GiB" if n >= 2**28 else f"{n / 2**20:.1f} MiB"
