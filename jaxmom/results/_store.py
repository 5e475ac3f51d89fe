"""The on-disk store of a sweep: a zarr v3 group written one block of runs at a time.

Layout (``PATH`` is a folder any zarr v3 reader opens; ``xr.open_zarr(PATH)`` shows it)::

    zarr.json            attributes: format, axes (name -> values as given), seeds, block,
                         outputs (name -> shape, dtype), settings, data fingerprint, metadata;
                         and the consolidated metadata of every array (one read opens it all)
    NAME                 [point, seed, *shape]: each output (a nested output's path joined by
                         ".": "params.hidden.kernel"), chunks of one block; its attribute
                         ``coordinates`` names the axis arrays
    AXIS                 [point]: the value of grid axis AXIS at each point (written with the
                         point's block; NaN or 0 where no block has run yet); for a table of
                         trials (``trial_sweep``), ``trial`` and each column of the table,
                         written whole when the store is created (``axes`` is then
                         ``{"trial": n}`` and ``trials`` the columns' dtypes and fingerprint)
    seed                 [seed]: the seeds
    status               [point, seed] int8: -1 not run (the fill value), 0 finished,
                         1 diverged (a non-finite value in a checked output); written after the
                         block's outputs, so a block whose status chunk exists is done, and a
                         block is either done or run again
    .lock                held (``flock``) by the sweep writing the store

Points run over the grid in C order (the last axis fastest), so
``xr.open_zarr(PATH).set_index(point=[*axes]).unstack("point")`` gives the grid; the same dataset
comes lazily and already unstacked from ``SweepResult.load(PATH).to_xarray()``. Stores of jaxmom
0.2 (format ``jaxmom.sweep/2``: outputs under ``out/``, no axis arrays) still load and resume.

A block is ``block = (points, seeds)`` runs, the work of one device in one compiled call and one
chunk file per output: writing it costs its own size and never touches another block. zarr
writes each chunk to a temporary file and renames it, so a kill at any moment leaves every block
either whole or not done. The lock is an ``flock``: the kernel drops it when its process dies,
so a killed sweep never leaves the store locked; a second sweep on a locked store is refused.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from jaxmom.common import check_parent
from jaxmom.results._format import FORMAT, READABLE, array_name
from jaxmom.results._integrity import (
    check_attrs,
    damaged_blocks,
    done_blocks,
    open_array,
    stale_partials,
    unmark,
)
from jaxmom.results._lock import Lock
from jaxmom.results._points import Points, axis_values


def consolidate(path: Path) -> None:
    """Writes every array's metadata into the root ``zarr.json`` (xarray opens it without a
    listing, so without warnings), quietly: zarr warns that v3 has no such standard yet."""
    import warnings

    import zarr

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            zarr.consolidate_metadata(path)
        except OSError as e:
            if e.errno not in CANNOT_WRITE:  # an array's zarr.json missing: damage
                raise _damaged(path, e) from None
            raise OSError(
                e.errno,
                f"writing the metadata of the store {str(path)!r} failed: {e.strerror or e}; "
                "nothing in it is damaged: every finished block is kept, and the same call "
                "resumes once it can write there",
            ) from None
        except (ValueError, TypeError, KeyError) as e:  # an array's zarr.json damaged
            raise _damaged(path, e) from None


#: The errors of a disk that cannot take a write now (full, over quota, read-only, refused):
#: the store is whole, and the same call resumes once it can write.
CANNOT_WRITE = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EFBIG}


def _damaged(path: Path, e: Exception) -> ValueError:
    return ValueError(
        f"the store {str(path)!r} has damaged metadata ({e!r}): it cannot be resumed; "
        "delete it to start over"
    )


#: What must match for a sweep to resume into an existing store (``block`` is the store's own):
#: ``computation`` is a fingerprint of what ``train_fn`` computes (its jaxpr and constants).
IDENTITY = ("axes", "trials", "seeds", "outputs", "settings", "data", "computation")


def check_store_path(path: str | os.PathLike, name: str = "out") -> Path:
    """``path`` as a ``Path`` if a store can be created or resumed there, else ``ValueError``."""
    path = Path(path)
    if not path.is_dir():  # a new store needs its folder; an existing one needs only itself
        check_parent(path, name)
    if path.exists():
        if not path.is_dir():
            raise ValueError(f"{name} {str(path)!r} is a file, not a jaxmom sweep store")
        # a store killed while its first file was renamed into place holds only zarr's
        # temporary file (and the lock): it is created again
        foreign = {p.name for p in path.iterdir() if not p.name.endswith(".partial")} - {".lock"}
        if foreign and _format(path) not in READABLE:
            raise ValueError(f"{name} {str(path)!r} exists and is not a jaxmom sweep store")
        if not os.access(path, os.W_OK | os.X_OK):
            raise ValueError(f"{name} {str(path)!r} is not writable")
    return path


def _format(path: Path) -> str | None:
    try:
        meta = json.loads((path / "zarr.json").read_text())
        return meta["attributes"]["format"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


class Store:
    """A sweep's store, open for writing blocks. Create or resume with :meth:`open`."""

    def __init__(self, path: Path, group, lock: Lock | None):
        self.path, self.group, self.lock = path, group, lock
        attrs = check_attrs(path, dict(group.attrs))
        self.attrs = attrs
        self.block = tuple(attrs["block"])
        fmt = attrs["format"]
        self.axes = axis_values(attrs["axes"])
        # a grid's axis values are written with each block; a table's columns at creation
        grid = fmt != READABLE[0] and not attrs.get("trials")
        with writing():
            self.outputs = {
                k: open_array(group, array_name(k, fmt), path) for k in attrs["outputs"]
            }
            self.status = open_array(group, "status", path)
            self.coords = {k: open_array(group, k, path) for k in self.axes} if grid else {}

    @classmethod
    def open(cls, path, spec: dict, *, create: bool = True) -> Store:
        """Creates the store for ``spec``, or opens the one there if it holds the same sweep.

        ``spec``: ``axes`` and ``trials`` (:meth:`jaxmom.results.Points.spec`), ``seeds``,
        ``outputs`` ({name: [shape, dtype]}), ``settings``, ``data``, ``computation``,
        ``block`` and ``metadata``; and ``points`` (the :class:`~jaxmom.results.Points`, whose
        table of trials is written at creation; default: the grid of ``axes``).
        ``create=False`` (the other processes of a distributed sweep) opens a store that
        process 0 created, without taking the lock.
        """
        import zarr

        path = Path(path)
        lock = None
        if create:
            path.mkdir(exist_ok=True)
            lock = Lock(path)
        try:
            if create and not (path / "zarr.json").exists():
                group = cls._create(path, spec)
            else:
                group = zarr.open_group(path, mode="r+")
                _check_identity(path, check_attrs(path, dict(group.attrs)), spec)
                if create and "status" not in group:  # killed while creating: nothing written
                    group = cls._create(path, spec)
            if create:
                for stale in stale_partials(path):  # one walk, which also refuses links
                    stale.unlink(missing_ok=True)
                consolidate(path)  # again: a kill may have come before it
                group = zarr.open_group(path, mode="r+")
                # a done block with a chunk missing or truncated, or a status chunk that does
                # not read, is run again, not kept
                unmark(path, damaged_blocks(path, dict(group.attrs), read_status=True))
            return cls(path, group, lock)
        except BaseException:
            if lock is not None:
                lock.release()
            raise

    @staticmethod
    def _create(path: Path, spec: dict):
        """The attributes first, the ``status`` array last: a store killed while being created
        is recognised as this sweep's and created again."""
        import zarr
        from zarr.codecs import Crc32cCodec

        points = spec.get("points") or Points(axis_values(spec["axes"]))  # a grid, by default
        n_points = points.n
        n_seeds = len(spec["seeds"])
        m, k = spec["block"]
        attrs = {key: spec.get(key) for key in (*IDENTITY, "block", "metadata")}
        names = [array_name(o, FORMAT) for o in spec["outputs"]]
        taken = [*names, *points.coord_names(), "seed", "status"]
        if len(set(taken)) != len(taken):
            clash = next(n for n in taken if taken.count(n) > 1)
            raise ValueError(
                f"the store would hold two arrays named {clash!r} (outputs, axes, 'seed' and "
                "'status' share one folder; nested outputs are joined by '.'): rename one"
            )
        group = zarr.open_group(path, mode="a", attributes=dict(attrs, format=FORMAT))
        crc = (Crc32cCodec(),)  # every chunk checksummed: damage is found when it is read
        # CF's list of coordinates is space-separated: an axis named with a space stays a
        # variable there (to_xarray() makes it a coordinate all the same)
        coord_names = points.coord_names()
        coordinates: dict[str, Any] = {
            "coordinates": " ".join(a for a in coord_names if len(a.split()) == 1)
        }
        table = points.coords(np.arange(n_points)) if points.trials else {}
        for name in coord_names:
            dt = (table[name] if table else points.axes[name]).dtype
            with writing():
                arr = group.create_array(
                    name,
                    shape=(n_points,),
                    chunks=(m,),
                    dtype=dt,
                    dimension_names=("point",),
                    fill_value=np.nan if dt.kind in "fc" else 0,
                    overwrite=True,
                    compressors=crc,
                )
            if table:  # a table's columns whole, before the status array marks it created
                arr[:] = table[name]
        seeds = group.create_array(
            "seed",
            shape=(n_seeds,),
            dtype=np.asarray(spec["seeds"]).dtype,
            overwrite=True,
            dimension_names=("seed",),
        )
        seeds[:] = np.asarray(spec["seeds"])
        for (shape, dtype), name in zip(spec["outputs"].values(), names, strict=True):
            dt = np.dtype(dtype)
            group.create_array(
                name,
                shape=(n_points, n_seeds, *shape),
                chunks=(m, k, *shape),
                dtype=dt,
                fill_value=np.nan if dt.kind in "fc" else 0,
                overwrite=True,
                compressors=crc,  # no compression: losses barely compress (15% with zstd)
                dimension_names=("point", "seed", *(f"{name}_{i}" for i in range(len(shape)))),
                attributes=coordinates,
            )
        group.create_array(
            "status",
            shape=(n_points, n_seeds),
            chunks=(m, k),
            dtype="i1",
            fill_value=-1,
            dimension_names=("point", "seed"),
            overwrite=True,
            attributes=coordinates,
            compressors=crc,
        )
        return group

    def done(self) -> np.ndarray:
        """``[point blocks, seed blocks]``: True where the block's runs are stored (its status
        chunk exists: one listing of a folder per point block)."""
        return done_blocks(self.path, self.status.shape, self.block)

    def write_block(self, q: int, g: int, outputs: dict[str, np.ndarray], diverged: np.ndarray):
        """Stores block ``(q, g)``: ``outputs[name]`` and ``diverged`` are ``[points, seeds, ...]``
        of that block (fewer at the grid's edges); then marks it done."""
        m, k = self.block
        rows = slice(q * m, q * m + diverged.shape[0])
        cols = slice(g * k, g * k + diverged.shape[1])
        for name, arr in self.outputs.items():
            arr[rows, cols] = outputs[name]
        if self.coords:  # each axis's value at the block's points (the same for every g)
            for name, values in Points(self.axes).coords(np.arange(rows.start, rows.stop)).items():
                self.coords[name][rows] = values
        self.status[rows, cols] = diverged.astype(np.int8)

    def finish(self, metadata: dict, complete: bool) -> None:
        """Records ``metadata`` (merged with what was there) and whether every block is done."""
        meta = dict(self.attrs.get("metadata") or {}, **metadata)
        self.group.attrs.update({"metadata": meta, "complete": bool(complete)})
        consolidate(self.path)

    def close(self) -> None:
        if self.lock is not None:
            self.lock.release()


@contextlib.contextmanager
def writing():
    """Arrays opened inside write every chunk, even one that holds only the fill value (NaN):
    zarr skips those by default, and a finished block whose runs all diverged would then have
    no chunk, so it would read as missing and be run again on every resume. (zarr reads the
    setting when an array is opened; ``Array.with_config`` is newer than jaxmom's zarr floor.)"""
    import zarr

    with zarr.config.set({"array.write_empty_chunks": True}):
        yield


def _check_identity(path: Path, attrs: dict, spec: dict) -> None:
    if attrs.get("format") not in READABLE:
        raise ValueError(f"{str(path)!r} is not a jaxmom sweep store")
    want = json.loads(json.dumps({k: spec.get(k) for k in IDENTITY}))
    if "computation" not in attrs:  # a store of jaxmom 0.2, which did not record it
        want.pop("computation")
    differ = [k for k in want if attrs.get(k) != want[k]]
    if differ == ["computation"]:
        raise ValueError(
            f"{str(path)!r} holds the runs of another computation: train_fn (its code, its "
            "constants, or how this JAX version traces it) differs from the one that wrote the "
            "store, and mixing the two would be silently wrong. Use another path, or delete the "
            "store to start over"
        )
    if differ:
        raise ValueError(
            f"{str(path)!r} holds a sweep with other settings (differing: {', '.join(differ)}); "
            "use another path, or delete the store to start over"
        )
