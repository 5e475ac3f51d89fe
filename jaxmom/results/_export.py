"""A sweep's result in the tools people already use: xarray, pandas and CSV.

* :func:`to_xarray` — an ``xarray.Dataset`` with dims ``[*grid axes, "seed", ...]`` named by the
  axes, the axis values (as given) as coordinates (a table of trials: dim ``trial``, each column
  a coordinate along it), every output as a variable, ``diverged`` and ``done``; lazy over a
  store (a selection reads only what it needs), and chunked through dask where it is installed,
  so a result larger than memory reduces chunk by chunk.
* :func:`to_dataframe` — one row per run, as Optuna's ``trials_dataframe()``.
* :func:`to_csv` — the same rows in a CSV file, quoted by Python's ``csv`` writer, written a
  block of rows at a time (linear in the runs).

xarray and pandas are optional (``pip install 'jaxmom[xarray]'``): writing a store needs neither.
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import numpy as np

from jaxmom.common import atomic_path, check_output_file

INSTALL = "pip install 'jaxmom[xarray]'"


def _need(module: str):
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise ImportError(f"this needs {module}, which is not installed: {INSTALL}") from None


def _scalars(res) -> list[str]:
    """The outputs with one value per run."""
    return [k for k, v in res.outputs.items() if v.ndim == len(res.run_shape)]


def _columns(res, lo: int, hi: int) -> dict[str, np.ndarray]:
    """The table's columns for grid points ``lo:hi`` (every seed of each): axis values, seed,
    scalar outputs, diverged."""
    n_seed = len(res.seeds)
    pts = np.arange(lo, hi)
    cols = {name: np.repeat(v, n_seed) for name, v in res.points.coords(pts).items()}
    cols["seed"] = np.tile(res.seeds, len(pts))
    for name in _scalars(res):
        cols[name] = np.asarray(res.outputs[name].data[lo:hi]).ravel()
    cols["diverged"] = res.diverged.reshape(-1, n_seed)[lo:hi].ravel()
    return cols


def _header(res) -> list[str]:
    names = [*res.axes, *res.trials, "seed", *_scalars(res), "diverged"]
    if len(set(names)) != len(names):
        raise ValueError(f"an axis shares its name with an output or 'seed': {names}")
    return names


def to_dataframe(res):
    """One row per run: the axis values, the seed, every scalar output and ``diverged``."""
    pd = _need("pandas")
    _header(res)
    return pd.DataFrame(_columns(res, 0, res.n_points))


def to_csv(res, path: str | os.PathLike, *, rows_per_write: int = 1 << 16) -> Path:
    """The rows of :func:`to_dataframe` as CSV, quoted by Python's ``csv`` writer (an axis named
    ``"lr, warm"`` is one field); written atomically, a block of rows at a time."""
    path = check_output_file(path, "csv")
    header = _header(res)
    step = max(1, rows_per_write // len(res.seeds))
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(header)
        for lo in range(0, res.n_points, step):
            cols = _columns(res, lo, min(lo + step, res.n_points))
            writer.writerows(zip(*(c.astype(str) for c in cols.values()), strict=True))
    return path


def to_xarray(res, chunks=None):
    """The result as an ``xarray.Dataset`` (see the module's docstring).

    Args:
      res: a :class:`jaxmom.SweepResult`.
      chunks: ``None`` (lazy reads from a store, without dask), or dask chunks (``"auto"`` or
        ``{dim: size}``), which need dask.
    """
    xr = _need("xarray")
    dims = [*res.axes, "seed"]
    coords = {name: (name, values) for name, values in res.axes.items()}
    coords.update({name: ("trial", values) for name, values in res.trials.items()})
    coords["seed"] = ("seed", res.seeds)
    data_vars = {}
    for name, arr in res.outputs.items():
        extra = [f"{name}_{i}" for i in range(arr.ndim - len(dims))]
        data_vars[name] = xr.Variable([*dims, *extra], _lazy(arr, xr))
    data_vars["diverged"] = (dims, res.diverged)
    data_vars["done"] = (dims, res.done)
    attrs = {"settings": json.dumps(res.metadata.get("settings")), "complete": int(res.complete)}
    attrs["metadata"] = json.dumps(res.metadata, default=str)
    ds = xr.Dataset(data_vars, coords, attrs)
    if chunks is not None:
        _need("dask")
        ds = ds.chunk(chunks)
    return ds


def _lazy(arr, xr):
    """An output as xarray reads it: in memory as it is, from a store through a lazily indexed
    array that reads only what a selection asks for."""
    if isinstance(arr.data, np.ndarray):
        return np.asarray(arr)
    from xarray.backends import BackendArray
    from xarray.core import indexing

    class _Outputs(BackendArray):
        def __init__(self, grid_array):
            self.grid_array, self.shape, self.dtype = grid_array, grid_array.shape, grid_array.dtype

        def __getitem__(self, key):
            return indexing.explicit_indexing_adapter(
                key, self.shape, indexing.IndexingSupport.BASIC, self._read
            )

        def _read(self, key):
            return self.grid_array[key]

    return indexing.LazilyIndexedArray(_Outputs(arr))
