"""The points of a sweep: the product of a grid's axes, or a table of trials.

A grid ``{"beta": [b0, b1], "learning_rate": [l0, l1, l2]}`` has 6 points in C order (the last
axis fastest), indexed ``[beta, learning_rate]``. A table of trials ``{"beta": [...n],
"learning_rate": [...n]}`` has ``n`` points on one axis, ``trial``, and each column is a
coordinate along it. Both give ``train_fn`` the same thing: a dict of scalars by name.
"""

from __future__ import annotations

import jax
import numpy as np

from jaxmom.common import fingerprint

#: The one axis of a table of trials.
TRIAL = "trial"


class Points:
    """``axes``: the result's axes (name -> values); ``trials``: the table's columns (name ->
    ``[n]`` values along ``trial``), empty for a grid."""

    def __init__(self, axes: dict, trials: dict | None = None):
        self.axes = {k: np.asarray(v) for k, v in axes.items()}
        self.trials = {k: np.asarray(v) for k, v in (trials or {}).items()}
        self.shape = tuple(len(v) for v in self.axes.values())
        self.n = int(np.prod(self.shape, dtype=np.int64))  # 1 for a grid without axes

    @classmethod
    def table(cls, trials: dict) -> Points:
        n = len(next(iter(trials.values())))
        return cls({TRIAL: np.arange(n)}, trials)

    @property
    def hparams(self) -> dict:
        """What ``train_fn`` is given, name -> all values (grid axes, or the table's columns)."""
        return self.trials if self.trials else self.axes

    def values(self, idx: np.ndarray) -> dict[str, np.ndarray]:
        """Each hyperparameter at the flat points ``idx`` (any shape), in its JAX dtype."""
        cols = self.coords(idx)
        return {
            k: cols[k].astype(jax.dtypes.canonicalize_dtype(cols[k].dtype)) for k in self.hparams
        }

    def coords(self, idx: np.ndarray) -> dict[str, np.ndarray]:
        """Every per-point coordinate at the flat points ``idx``, as given: the grid's axes, or
        ``trial`` and the table's columns."""
        if self.trials:
            return {TRIAL: np.asarray(idx), **{k: v[idx] for k, v in self.trials.items()}}
        where = np.unravel_index(idx, self.shape) if self.shape else ()
        return {k: v[i] for (k, v), i in zip(self.axes.items(), where, strict=True)}

    def coord_names(self) -> list[str]:
        return [*self.axes, *self.trials]

    def spec(self) -> dict:
        """The store's record of the points. A grid: ``axes`` (name -> values). A table of
        trials: ``axes = {"trial": n}`` and ``trials`` (its columns' dtypes and a fingerprint of
        their values, which live in the store's coordinate arrays: opening a store of 10^9
        trials reads no table)."""
        if not self.trials:
            return dict(axes={k: v.tolist() for k, v in self.axes.items()}, trials=None)

        columns = {k: v.dtype.name for k, v in self.trials.items()}
        digest = fingerprint(str(columns), self.trials.values())
        return dict(axes={TRIAL: self.n}, trials=dict(columns=columns, fingerprint=digest))


def axis_values(axes: dict) -> dict[str, np.ndarray]:
    """A store's ``axes`` attribute as arrays: a list is the axis's values, an integer ``n``
    (the ``trial`` axis of a table) is ``0..n-1``."""
    return {
        k: np.arange(v) if isinstance(v, int) and not isinstance(v, bool) else np.asarray(v)
        for k, v in axes.items()
    }


def count_points(axes: dict) -> int:
    """The points of a store's ``axes`` attribute."""
    return int(np.prod([len(v) for v in axis_values(axes).values()], dtype=np.int64))
