"""An output of a sweep, ``[points, seeds, *shape]`` in memory or in a store, seen with the
grid's axes: ``[*grid, seeds, *shape]``, read only where it is indexed."""

from __future__ import annotations

import numpy as np


class GridArray:
    """An output ``[points, seeds, *S]`` (NumPy or zarr) seen as ``[*grid, seeds, *S]``.

    Indexing with integers, slices or integer arrays on the grid axes reads only the points
    asked for; ``np.asarray(a)`` reads it all.

    Args:
      data: the ``[points, seeds, *S]`` array, NumPy or zarr.
      grid_shape: the grid's shape, whose product is ``points``.
      source: where ``data`` lives (a store's path), for error messages.
    """

    def __init__(self, data, grid_shape: tuple[int, ...], source: str | None = None):
        self.data, self.grid_shape = data, tuple(grid_shape)
        self.shape = (*self.grid_shape, *data.shape[1:])
        self.dtype = data.dtype
        self.ndim = len(self.shape)
        self.source = source  # "output 'loss' of store 's.zarr'", for errors
        self.missing = None  # points -> raises if a finished block's chunk is missing
        self.locate = None  # points -> the damaged block (q, g) among them, for errors

    def _read(self, index, outer: bool = False, points=()):
        try:
            return np.asarray(self.data.oindex[index] if outer else self.data[index])
        except ValueError as e:  # a chunk failed its checksum or does not decode
            if self.source is None:
                raise
            block = self.locate(points) if self.locate is not None else None
            where = f" of block {block}" if block is not None else ""
            raise ValueError(
                f"{self.source}: a damaged chunk{where} ({e}); `jaxmom verify --repair` marks "
                "the damaged blocks, and the same sweep runs them again"
            ) from None

    def __getitem__(self, key):
        key = key if isinstance(key, tuple) else (key,)
        if any(k is Ellipsis for k in key):
            i = key.index(Ellipsis)
            key = key[:i] + (slice(None),) * (self.ndim - len(key) + 1) + key[i + 1 :]
        ng = len(self.grid_shape)
        grid_key = key[:ng] + (slice(None),) * max(0, ng - len(key))
        rest = key[ng:] or (slice(None),)
        picks = [np.arange(n)[k] for k, n in zip(grid_key, self.grid_shape, strict=True)]
        flat = np.ravel_multi_index(np.ix_(*(np.atleast_1d(p) for p in picks)), self.grid_shape)
        points = flat.ravel()
        if points.size and np.array_equal(points, np.arange(points[0], points[0] + points.size)):
            sel = slice(int(points[0]), int(points[0]) + points.size)
            out = self._read((sel, *rest), points=points)
        elif hasattr(self.data, "oindex"):
            out = self._read((points, *rest), outer=True, points=points)
        else:
            out = np.asarray(self.data[(points, *rest)])
        if self.missing is not None and out.dtype.kind == "f" and np.isnan(out).any():
            self.missing(points)  # NaN is zarr's fill value: a finished block's chunk gone?
        out = out.reshape(*flat.shape, *out.shape[1:])
        return out[tuple(0 if np.ndim(p) == 0 else slice(None) for p in picks)]

    def __array__(self, dtype=None, copy=None):
        out = self[...]
        return out if dtype is None else out.astype(dtype)

    def __len__(self):
        return self.shape[0]
