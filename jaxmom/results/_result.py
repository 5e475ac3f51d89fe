"""A sweep's result: named grid axes, every output of every run, divergence flags, exports.

Runs are indexed ``[*grid axes in order, seed]``; an output of shape ``S`` per run is an array
``[*grid axes, seed, *S]``. In memory (a sweep without ``out=``) the outputs are NumPy arrays;
opened from a store (:meth:`SweepResult.load`) they are read lazily, so a result larger than
memory can be read slice by slice: ``res.outputs["step_losses"][3, :, 0]`` reads one slice.
"""

from __future__ import annotations

import functools
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from jaxmom.common import check_output_file
from jaxmom.results import _export as export
from jaxmom.results import _plots as plots
from jaxmom.results import _plots_pbt as plots_pbt
from jaxmom.results._format import READABLE, array_name
from jaxmom.results._grid_array import GridArray
from jaxmom.results._integrity import (
    check_attrs,
    damaged_block,
    damaged_blocks,
    missing_chunks,
    open_array,
    unmark,
)
from jaxmom.results._metric import metric_mode
from jaxmom.results._points import Points, axis_values
from jaxmom.results._store import Store, check_store_path


class SweepResult:
    """The runs of a grid of hyperparameters and seeds.

    Attributes:
      axes: axis name -> its values, as given (``0.9`` stays ``0.9``); a table of trials
        (:func:`jaxmom.trial_sweep`) has one axis, ``trial``.
      trials: a table's columns, name -> ``[n]`` values along ``trial`` (``{}`` for a grid).
      seeds: the seeds.
      outputs: output name -> :class:`GridArray` ``[*grid, seed, *shape]``. Nested outputs are
        named by their path: ``"params/hidden/kernel"``. ``res["name"]`` and ``res.name`` (for
        names that are identifiers) read an output whole as a NumPy array.
      diverged: ``[*grid, seed]``: True where a checked output of the run holds a non-finite
        value (which outputs count is the sweep's ``check_finite``).
      done: ``[*grid, seed]``: True where the run has finished; a partly finished store gives
        NaN outputs for the rest, and they do not count as diverged.
      metadata: settings, versions, devices, wall time.
    """

    #: A halving or ASHA search's decisions and best after every segment, a population's
    #: hyperparameters and family tree (``halving_sweep``, ``asha_sweep``, ``pbt_sweep``).
    rungs: Any = None
    trace: Any = None
    history: Any = None

    def __init__(
        self, axes, seeds, outputs, diverged, done, metadata, path=None, status=None, trials=None
    ):
        self.axes = {k: np.asarray(v) for k, v in axes.items()}
        self._trials = trials or {}  # arrays, or a store's coordinate arrays (read when asked)
        self.seeds = np.asarray(seeds)
        self.grid_shape = tuple(len(v) for v in self.axes.values())
        self.path = None if path is None else Path(path)
        self.outputs = {
            k: GridArray(v, self.grid_shape, path and f"output {k!r} of the store {str(path)!r}")
            for k, v in outputs.items()
        }
        self.run_shape = (*self.grid_shape, len(self.seeds))
        self.n_points = int(np.prod(self.grid_shape, dtype=np.int64))  # 1 without grid axes
        self._status = status  # a store's status array, read when first asked (lazy)
        self._flags = None
        self.metadata = metadata
        if status is None:
            shaped = (np.asarray(diverged), np.asarray(done))
            self._flags = tuple(a.reshape(self.run_shape) for a in shaped)

    @property
    def trials(self) -> dict[str, np.ndarray]:
        self._trials = {k: np.asarray(v[...]) for k, v in self._trials.items()}
        return self._trials

    @property
    def points(self):
        """The sweep's :class:`~jaxmom.results.Points`: its grid, or its table of trials."""

        return Points(self.axes, self.trials)

    def coords_at(self, idx) -> dict:
        """The hyperparameters of grid point ``idx`` (a tuple of axis indices), by name: the
        axes' values, or for a trial its number and the table's columns."""
        flat = np.ravel_multi_index(idx, self.grid_shape) if self.grid_shape else 0
        return {k: v.item() for k, v in self.points.coords(np.asarray(flat)).items()}

    @property
    def diverged(self) -> np.ndarray:
        return self._status_flags()[0]

    @diverged.setter
    def diverged(self, value) -> None:
        self._flags = (np.asarray(value).reshape(self.run_shape), self.done)

    @property
    def done(self) -> np.ndarray:
        return self._status_flags()[1]

    def _status_flags(self):
        if self._flags is None and self._status is not None:
            try:
                status = np.asarray(self._status[...]).reshape(self.run_shape)
            except ValueError as e:  # a status chunk failed its checksum
                raise ValueError(
                    f"the status of the store {str(self.path)!r} is damaged ({e}): `jaxmom "
                    f"verify --repair {self.path}` marks the damaged blocks, and the same sweep "
                    "runs them again"
                ) from None
            self._flags = (status == 1, status >= 0)
        return self._flags

    @property
    def complete(self) -> bool:
        return bool(self.done.all())

    def __getitem__(self, name: str) -> np.ndarray:
        return np.asarray(self.outputs[name])

    def __getattr__(self, name: str):
        outputs = self.__dict__.get("outputs", {})
        if name in outputs:
            return np.asarray(outputs[name])
        raise AttributeError(f"{type(self).__name__} has no attribute or output {name!r}")

    def tree(self) -> dict:
        """The outputs as a nested dict of NumPy arrays, by their ``/``-separated names."""
        tree: dict = {}
        for name in self.outputs:
            *parents, leaf = name.split("/")
            node = tree
            for p in parents:
                node = node.setdefault(p, {})
            node[leaf] = self[name]
        return tree

    # -- summaries ----------------------------------------------------------------------------

    def _metric(self, metric: str) -> np.ndarray:
        if metric not in self.outputs or self.outputs[metric].ndim != len(self.run_shape):
            scalars = [k for k, v in self.outputs.items() if v.ndim == len(self.run_shape)]
            raise ValueError(
                f"metric must be one scalar output per run ({scalars}), got {metric!r}"
            )
        return self[metric]

    def best(self, k: int = 5, metric: str = "final_loss", mode: str | None = None) -> list[dict]:
        """The ``k`` best grid points by ``metric``, mean over seeds, best first.

        ``mode="min"`` ranks the lowest first (a loss), ``"max"`` the highest (an accuracy);
        ``None`` picks by the name: ``"max"`` for a name holding ``accuracy``, else ``"min"``.
        A point with a diverged or unfinished seed, or a non-finite mean, is left out.
        """
        value = self._metric(metric)
        sign = -1.0 if metric_mode(metric, mode) == "max" else 1.0
        bad = self.diverged.any(-1) | ~self.done.all(-1)
        mean = np.where(bad, np.inf, sign * value.mean(-1))
        mean = np.where(np.isfinite(mean), mean, np.inf)
        rows = []
        for flat in np.argsort(mean, axis=None, kind="stable")[:k]:
            if not np.isfinite(mean.flat[flat]):
                break
            idx = np.unravel_index(flat, mean.shape)
            row = self.coords_at(idx)
            row[metric] = float(sign * mean[idx])
            row[f"{metric}_std"] = float(value[idx].std())
            rows.append(row)
        return rows

    def summary(self, metric: str = "final_loss", mode: str | None = None) -> str:
        """How many runs, how many diverged, and the best points by ``metric`` (:meth:`best`)."""
        sizes = " x ".join(f"{len(v)} {k}{'s' * bool(self._trials)}" for k, v in self.axes.items())
        runs = self.n_points * len(self.seeds)
        lines = [
            f"{runs} runs ({sizes + ' x ' if sizes else ''}{len(self.seeds)} seeds), "
            f"{int(self.diverged.sum())} diverged"
            + ("" if self.complete else f", {runs - int(self.done.sum())} not yet run")
        ]
        if metric in self.outputs:
            names = (*self.axes, *self.trials, metric, "± std")
            lines.append(" ".join(f"{k:>14}" for k in names))
            for r in self.best(metric=metric, mode=mode):
                lines.append(" ".join(f"{v:>14.6g}" for v in r.values()))
        return "\n".join(lines)

    # -- files --------------------------------------------------------------------------------

    def to_csv(self, path: str | os.PathLike, *, rows_per_write: int = 1 << 16) -> Path:
        """One row per run: the axes, seed, every scalar output, diverged (quoted as CSV
        quotes). Linear in the runs; written atomically, a block of rows at a time."""
        return export.to_csv(self, path, rows_per_write=rows_per_write)

    def to_dataframe(self):
        """A ``pandas.DataFrame``, one row per run: the axes, seed, scalar outputs, diverged."""
        return export.to_dataframe(self)

    def to_xarray(self, chunks=None):
        """An ``xarray.Dataset`` with dims ``[*axes, "seed", ...]`` and the axis values as
        coordinates, lazy over a store: ``res.to_xarray().sel(beta=0.9).mean("seed")``. With
        ``chunks`` (dask) a result larger than memory reduces chunk by chunk."""
        return export.to_xarray(self, chunks)

    def save(self, path: str | os.PathLike) -> Path:
        """Writes the whole result to a new store at ``path`` (see :mod:`jaxmom.results`)."""

        path = check_store_path(path)
        outputs = {
            k: [list(v.shape[len(self.run_shape) :]), str(v.dtype)] for k, v in self.outputs.items()
        }

        points = Points.table(self.trials) if self.trials else Points(self.axes)
        spec = dict(
            points.spec(),
            points=points,
            seeds=self.seeds.tolist(),
            outputs=outputs,
            settings=self.metadata.get("settings"),
            data=self.metadata.get("data"),
            computation=self.metadata.get("computation"),
            block=[self.n_points, len(self.seeds)],
            metadata=self.metadata,
        )
        store = Store.open(path, spec)
        try:
            n_seed = len(self.seeds)
            store.write_block(
                0,
                0,
                {
                    k: self[k].reshape(-1, n_seed, *v.shape[len(self.run_shape) :])
                    for k, v in self.outputs.items()
                },
                self.diverged.reshape(-1, n_seed),
            )
            store.finish({}, complete=self.complete)
        finally:
            store.close()
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> SweepResult:
        """Opens a store (lazily) or a ``.npz`` file of jaxmom 0.1; else a ``ValueError``."""
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"no sweep at {str(path)!r}")
        if path.is_file():
            return _load_npz(path)

        try:
            import zarr

            group = zarr.open_group(path, mode="r")
            attrs: dict[str, Any] = dict(group.attrs)
            if attrs.get("format") not in READABLE:
                raise ValueError(f"format {attrs.get('format')!r}")
        except Exception as e:
            raise ValueError(f"{str(path)!r} is not a readable jaxmom sweep store: {e}") from e
        fmt = check_attrs(path, attrs)["format"]
        outputs = {k: open_array(group, array_name(k, fmt), path) for k in attrs["outputs"]}
        meta = dict(attrs.get("metadata") or {}, settings=attrs.get("settings"))
        status = open_array(group, "status", path)  # read when done or diverged is asked
        columns = (attrs.get("trials") or {}).get("columns", {})
        trials = {k: open_array(group, k, path) for k in columns}
        axes = axis_values(attrs["axes"])
        res = cls(axes, attrs["seeds"], outputs, None, None, meta, path, status, trials)
        for name, grid_array in res.outputs.items():
            grid_array.missing = functools.partial(
                missing_chunks, path, attrs, name, array_name(name, fmt)
            )
            grid_array.locate = functools.partial(damaged_block, path, attrs, array_name(name, fmt))
        return res

    def verify(self, *, repair: bool = False) -> list[tuple[int, int]]:
        """The finished blocks ``(point block, seed block)`` of this result's store whose
        chunks are missing, truncated or fail their checksum (every chunk is read). With
        ``repair=True`` they are marked not done, so the same sweep runs them again."""
        if self.path is None:
            raise ValueError("verify() checks a store: this result is in memory (no out=)")
        import zarr

        attrs = dict(zarr.open_group(self.path, mode="r").attrs)
        bad = damaged_blocks(self.path, attrs, read=True)
        if repair:
            unmark(self.path, bad)
        return bad

    # -- plots (see :mod:`jaxmom.results._plots`) ---------------------------------------------

    def plot_final_loss(self, ax=None, metric: str = "final_loss", mode: str | None = None):
        return plots.metric_lines(self, ax, metric, metric_mode(metric, mode))

    def plot_heatmap(self, ax=None, metric: str = "final_loss", mode: str | None = None):
        return plots.heatmap(self, ax, metric, metric_mode(metric, mode))

    def plot_curves(self, ax=None, index: int = 0, max_lines: int = 6):
        return plots.curves(self, ax, index, max_lines)

    def plot(
        self, path: str | os.PathLike, metric: str | None = None, mode: str | None = None
    ) -> Path:
        """Writes the plots that fit the sweep to a PNG (without pyplot).

        A population's (:func:`jaxmom.pbt_sweep`): its schedules and metric over time.

        Args:
          path: the PNG file.
          metric: the output drawn (default a halving sweep's own metric, else
            ``final_loss``): pass what :meth:`best` ranks by, e.g. ``"test_accuracy"``.
          mode: ``"min"`` or ``"max"``; ``None`` picks by the name, as :meth:`best` does.

        Returns:
          ``path``.
        """
        if self.history is not None:
            return plots_pbt.schedules(self, check_output_file(path, "plot"))
        return plots.overview(self, check_output_file(path, "plot"), metric, mode)


def _load_npz(path: Path) -> SweepResult:
    """A file written by jaxmom 0.1's ``SweepResult.save`` (format ``jaxmom.sweep/1``)."""
    try:
        with np.load(path, allow_pickle=False) as z:
            data = {k: z[k] for k in z.files}
        meta = json.loads(str(data["metadata"]))
        assert meta.get("format") == "jaxmom.sweep/1"
        betas, lrs, seeds = data["betas"], data["learning_rates"], data["seeds"]
        step, epoch = data["step_losses"], data["epoch_losses"]
        done_chunks, chunk_runs = data["done"], meta["settings"]["chunk_runs"]
    except Exception:
        raise ValueError(f"{str(path)!r} is not a jaxmom sweep store or file") from None
    n_points, n_seed = len(betas) * len(lrs), len(seeds)
    flat = {"step_losses": step, "epoch_losses": epoch, "final_loss": epoch[..., -1]}
    outputs = {k: v.reshape(n_points, n_seed, *v.shape[3:]) for k, v in flat.items()}
    done = np.ones(n_points, bool) if done_chunks.all() else np.repeat(done_chunks, chunk_runs)
    done = np.broadcast_to(done[:n_points, None], (n_points, n_seed))
    diverged = ~np.all(np.isfinite(outputs["step_losses"]), axis=-1) & done
    axes = {"beta": betas.astype(np.float64), "learning_rate": lrs.astype(np.float64)}
    return SweepResult(axes, seeds, outputs, diverged, done, meta)
