"""Grids of training runs in one compiled program: vmap, sharding, chunks, progress, resume.

:func:`sweep` trains the chapter's MLP for every (beta, learning rate, seed) of a grid. It is
:func:`jaxmom.train_scan`, the project's one training loop, under two ``vmap``s: the outer one
over seeds (each seed's initial parameters and batch order are computed once and shared by all
its runs), the inner one over (beta, learning rate) pairs, whose axis is sharded over every
device. Beta and the learning rate are arrays, so one compiled program serves any values.

:func:`grid_sweep` is the same machinery for any pure ``train_fn(hparams, key) -> metrics``.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import itertools
import json
import math
import os
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from jaxmom import _xla
from jaxmom._checks import check_beta, check_learning_rate, check_positive_int
from jaxmom.data import BatchOrder, _check_order_args, make_dataset, steps_per_epoch
from jaxmom.train import check_data, seed_inputs, train_scan
from jaxmom.transform import sgd_momentum

FORMAT = "jaxmom.sweep/1"
#: Runs per chunk and device when ``chunk_size`` is not given. On a CPU the per-step
#: intermediates of 512 runs stay in a core's cache (measured best of 128 to 8192 per device,
#: ``benchmarks/NOTES.md``); an accelerator wants all the parallel work it can get.
CPU_CHUNK_RUNS_PER_DEVICE = 512
ACCELERATOR_CHUNK_RUNS_PER_DEVICE = 65536


def default_chunk_size(n_devices: int | None = None) -> int:
    """Runs per chunk when ``sweep(chunk_size=None)``: a multiple of the device count."""
    n = len(jax.devices()) if n_devices is None else n_devices
    per = (
        CPU_CHUNK_RUNS_PER_DEVICE
        if jax.default_backend() == "cpu"
        else ACCELERATOR_CHUNK_RUNS_PER_DEVICE
    )
    return per * n


# -- the engine: chunks of the hyperparameter grid, sharded, with progress and checkpoints ----


def _mesh() -> Mesh:
    return Mesh(np.array(jax.devices()), ("runs",))


def _gather(x) -> np.ndarray:
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        return np.asarray(multihost_utils.process_allgather(x, tiled=True))
    return np.asarray(x)


def _put(host: np.ndarray, sharding: NamedSharding) -> jax.Array:
    return jax.make_array_from_callback(host.shape, sharding, lambda idx: host[idx])


@functools.cache
def _jit(chunk_fn, out_sharding):
    return _xla.jit(chunk_fn, out_shardings=out_sharding)


def _chunk_runs(n_hyper: int, n_seed: int, chunk_size: int | None, n_dev: int) -> int:
    """Hyperparameter points per chunk: ``chunk_size // n_seed``, a multiple of the devices."""
    per = n_hyper if chunk_size is None else max(1, chunk_size // n_seed)
    per = min(per, n_hyper)
    return n_dev * math.ceil(per / n_dev)


def _run_chunks(
    chunk_fn: Callable,
    hyper: dict[str, np.ndarray],
    seed_data,
    n_seed: int,
    *,
    chunk_runs: int,
    progress: bool,
    metrics: dict[str, np.ndarray] | None,
    done: np.ndarray,
    on_chunk: Callable[[dict[str, np.ndarray], np.ndarray], None] | None,
) -> dict[str, np.ndarray]:
    """Runs ``chunk_fn(hyper_chunk, seed_data) -> {name: [n_seed, chunk, ...]}`` over chunks.

    ``hyper`` holds 1-D arrays of length ``n_hyper``; the last chunk is padded with copies of
    the first point and the padding is dropped. ``metrics`` and ``done`` (one flag a chunk)
    come from a saved partial sweep, so finished chunks are skipped. ``on_chunk`` is called
    after each chunk with the metrics so far.
    """
    n_hyper = len(next(iter(hyper.values())))
    mesh = _mesh()
    hyper_sharding = NamedSharding(mesh, P("runs"))
    out_sharding = NamedSharding(mesh, P(None, "runs"))
    replicated = NamedSharding(mesh, P())
    seed_data = jax.device_put(seed_data, replicated)
    compiled = _jit(chunk_fn, out_sharding)

    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=n_hyper * n_seed, unit="run", desc="sweep", smoothing=0.1)
        bar.update(
            int(sum(min(chunk_runs, n_hyper - c * chunk_runs) for c in np.flatnonzero(done)))
            * n_seed
        )
    try:
        for c in range(len(done)):
            if done[c]:
                continue
            lo, hi = c * chunk_runs, min((c + 1) * chunk_runs, n_hyper)
            take = np.concatenate([np.arange(lo, hi), np.full(chunk_runs - (hi - lo), lo)])
            chunk = {k: _put(v[take], hyper_sharding) for k, v in hyper.items()}
            out = jax.tree.map(_gather, compiled(chunk, seed_data))
            if metrics is None:
                metrics = {
                    k: np.full((n_seed, n_hyper, *v.shape[2:]), np.nan, v.dtype)
                    for k, v in out.items()
                }
            for k, v in out.items():
                metrics[k][:, lo:hi] = v[:, : hi - lo]
            done[c] = True
            if on_chunk is not None:
                on_chunk(metrics, done)
            if bar is not None:
                bar.update((hi - lo) * n_seed)
    finally:
        if bar is not None:
            bar.close()
    return metrics


def grid_sweep(
    train_fn: Callable[[dict, jax.Array], object],
    grid: Mapping[str, Sequence],
    seeds: Sequence[int] = (0,),
    *,
    chunk_size: int | None = None,
    progress: bool = True,
) -> dict:
    """Any pure ``train_fn(hparams, key) -> metrics`` over every point of a grid and every seed.

    Args:
      train_fn: a pure function of a dict of scalar hyperparameters (traced) and a PRNG key
        (``jax.random.key(seed)``), returning a dict of arrays.
      grid: hyperparameter name -> 1-D sequence of values; the runs are their product.
      seeds: integer seeds.
      chunk_size: runs per compiled call (bounded memory); ``None`` runs the grid at once.
      progress: show a progress bar.

    Returns:
      ``{name: array [len(grid[g0]), len(grid[g1]), ..., n_seed, ...]}``.

    Example:
      >>> def train_fn(hp, key):   # your own model or optimizer
      ...     opt = optax.chain(jaxmom.momentum(hp["beta"], nesterov=True), optax.scale(-hp["lr"]))
      ...     ...
      ...     return {"loss": losses}
      >>> out = jaxmom.grid_sweep(train_fn, {"beta": betas, "lr": [0.01, 0.1]}, seeds=range(4))
    """
    names = list(grid)
    axes = [np.asarray(grid[k]) for k in names]
    for k, a in zip(names, axes, strict=True):
        if a.ndim != 1 or a.size == 0:
            raise ValueError(f"grid[{k!r}] must be a non-empty 1-D sequence, got shape {a.shape}")
    points = np.array(list(itertools.product(*(range(len(a)) for a in axes))), np.int64)
    hyper = {k: a[points[:, i]] for i, (k, a) in enumerate(zip(names, axes, strict=True))}
    seeds = np.asarray(seeds, np.int64)
    keys = jax.vmap(jax.random.key)(jnp.asarray(seeds))
    chunk_runs = _chunk_runs(len(points), len(seeds), chunk_size, len(jax.devices()))
    n_chunks = math.ceil(len(points) / chunk_runs)

    out = _run_chunks(
        _grid_chunk_fn(train_fn), hyper, keys, len(seeds), chunk_runs=chunk_runs, progress=progress,
        metrics=None, done=np.zeros(n_chunks, bool), on_chunk=None,
    )  # fmt: skip
    shape = [len(a) for a in axes]
    return {
        k: np.moveaxis(v.reshape(len(seeds), *shape, *v.shape[2:]), 0, len(shape))
        for k, v in out.items()
    }


@functools.lru_cache(maxsize=64)
def _grid_chunk_fn(train_fn):
    """One chunk function per ``train_fn``, so a second sweep of it reuses the compiled one."""

    def chunk_fn(hp, keys):
        return jax.vmap(lambda key: jax.vmap(lambda h: train_fn(h, key))(hp))(keys)

    return chunk_fn


# -- the chapter's sweep ----------------------------------------------------------------------


@dataclasses.dataclass
class SweepResult:
    """The runs of a (beta, learning rate, seed) grid.

    Attributes:
      betas, learning_rates, seeds: the grid's axes.
      step_losses: ``[n_beta, n_lr, n_seed, steps]``, every step's batch loss.
      epoch_losses: ``[n_beta, n_lr, n_seed, epochs]``.
      metadata: settings, versions, devices, wall time, and ``complete`` (False while chunks
        of a saved sweep are still to run: their losses are NaN).
    """

    betas: np.ndarray
    learning_rates: np.ndarray
    seeds: np.ndarray
    step_losses: np.ndarray
    epoch_losses: np.ndarray
    metadata: dict

    @property
    def final_loss(self) -> np.ndarray:
        """``[n_beta, n_lr, n_seed]``: the last epoch's loss."""
        return self.epoch_losses[..., -1]

    @property
    def diverged(self) -> np.ndarray:
        """``[n_beta, n_lr, n_seed]``: True where some step's loss is not finite."""
        return ~np.all(np.isfinite(self.step_losses), axis=-1)

    def best(self, k: int = 5) -> list[dict]:
        """The ``k`` (beta, learning rate) pairs with the lowest final loss, mean over seeds.

        A pair with a diverged (or not yet run) seed is left out.
        """
        mean = np.where(self.diverged.any(-1), np.inf, self.final_loss.mean(-1))
        mean = np.where(np.isfinite(mean), mean, np.inf)
        order = [f for f in np.argsort(mean, axis=None)[:k] if np.isfinite(mean.flat[f])]
        rows = []
        for flat in order:
            i, j = np.unravel_index(flat, mean.shape)
            rows.append(
                {
                    "beta": float(self.betas[i]),
                    "learning_rate": float(self.learning_rates[j]),
                    "final_loss": float(mean[i, j]),
                    "final_loss_std": float(self.final_loss[i, j].std()),
                }
            )
        return rows

    def summary(self) -> str:
        d = int(self.diverged.sum())
        lines = [
            f"{self.step_losses.shape[0] * self.step_losses.shape[1] * self.step_losses.shape[2]} "
            f"runs ({len(self.betas)} betas x {len(self.learning_rates)} lrs x "
            f"{len(self.seeds)} seeds), {d} diverged",
            f"{'beta':>8} {'lr':>10} {'final loss':>12} {'± std':>10}",
        ]
        for r in self.best():
            lines.append(
                f"{r['beta']:8.4f} {r['learning_rate']:10.4g} {r['final_loss']:12.6f} "
                f"{r['final_loss_std']:10.6f}"
            )
        return "\n".join(lines)

    # -- files --------------------------------------------------------------------------------

    def save(self, path: str | os.PathLike, *, done: np.ndarray | None = None) -> Path:
        """Writes ``.npz`` (no pickle) atomically: a temporary file, then a rename."""
        path = Path(path)
        meta = dict(self.metadata, format=FORMAT)
        arrays = {
            "betas": self.betas,
            "learning_rates": self.learning_rates,
            "seeds": self.seeds,
            "step_losses": self.step_losses,
            "epoch_losses": self.epoch_losses,
            "done": np.ones(1, bool) if done is None else done,
            "metadata": np.array(json.dumps(meta)),
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                np.savez(f, **arrays)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return path

    @classmethod
    def _load(cls, path) -> tuple[SweepResult, np.ndarray]:
        path = Path(path)
        try:
            with np.load(path, allow_pickle=False) as z:
                data = {k: z[k] for k in z.files}
            meta = json.loads(str(data.pop("metadata")))
        except FileNotFoundError:
            raise
        except Exception as e:
            raise ValueError(f"{path} is not a readable jaxmom sweep file: {e}") from e
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            raise ValueError(f"{path} is not a jaxmom sweep file (format {meta.get('format')!r})")
        missing = {"betas", "learning_rates", "seeds", "step_losses", "epoch_losses", "done"} - set(
            data
        )
        if missing:
            raise ValueError(
                f"{path} is not a complete jaxmom sweep file: missing {sorted(missing)}"
            )
        done = data.pop("done")
        return cls(metadata=meta, **data), done

    @classmethod
    def load(cls, path: str | os.PathLike) -> SweepResult:
        """Reads a file written by :meth:`save`; a corrupt or foreign file is a ``ValueError``."""
        return cls._load(path)[0]

    def to_csv(self, path: str | os.PathLike) -> Path:
        """One row per run: beta, learning_rate, seed, final_loss, diverged."""
        path = Path(path)
        rows = ["beta,learning_rate,seed,final_loss,diverged"]
        for i, j, k in np.ndindex(self.final_loss.shape):
            rows.append(
                f"{float(self.betas[i])!r},{float(self.learning_rates[j])!r},{int(self.seeds[k])},"
                f"{float(self.final_loss[i, j, k])!r},{bool(self.diverged[i, j, k])}"
            )
        path.write_text("\n".join(rows) + "\n")
        return path

    # -- plots --------------------------------------------------------------------------------

    def plot_final_loss(self, ax=None):
        """Final loss against beta: a line per learning rate, a band over seeds (min to max)."""
        import matplotlib.pyplot as plt

        ax = ax or plt.subplots(figsize=(7, 4))[1]
        for j, lr in enumerate(self.learning_rates):
            f = self.final_loss[:, j, :]
            ax.plot(self.betas, np.nanmedian(f, axis=-1), label=f"lr {lr:g}")
            ax.fill_between(self.betas, np.nanmin(f, axis=-1), np.nanmax(f, axis=-1), alpha=0.25)
        ax.set(xlabel="β", ylabel="final epoch loss", yscale="log")
        ax.legend(title="median, min–max over seeds")
        return ax

    def plot_heatmap(self, ax=None):
        """Median final loss over (beta, learning rate); diverged runs count as infinite."""
        import matplotlib.pyplot as plt

        ax = ax or plt.subplots(figsize=(7, 4))[1]
        f = np.where(self.diverged, np.inf, self.final_loss)
        z = np.log10(np.median(f, axis=-1)).T
        im = ax.imshow(
            np.where(np.isfinite(z), z, np.nan), aspect="auto", origin="lower", cmap="viridis",
            extent=(self.betas[0], self.betas[-1], -0.5, len(self.learning_rates) - 0.5),
        )  # fmt: skip
        ax.set_yticks(range(len(self.learning_rates)), [f"{lr:g}" for lr in self.learning_rates])
        ax.set(
            xlabel="β", ylabel="learning rate", title="log10 median final loss (blank: diverged)"
        )
        ax.figure.colorbar(im, ax=ax)
        return ax

    def plot_curves(self, ax=None, lr_index: int = 0, seed_index: int = 0, max_lines: int = 64):
        """Step-loss curves coloured by beta, for one learning rate and seed."""
        import matplotlib.pyplot as plt

        ax = ax or plt.subplots(figsize=(7, 4))[1]
        idx = np.unique(
            np.linspace(0, len(self.betas) - 1, min(max_lines, len(self.betas))).astype(int)
        )
        cmap = plt.get_cmap("viridis")
        for i in idx:
            b = self.betas[i]
            ax.plot(self.step_losses[i, lr_index, seed_index], color=cmap(b), lw=0.8)
        sm = plt.cm.ScalarMappable(cmap=cmap, norm=plt.Normalize(0, 1))
        ax.figure.colorbar(sm, ax=ax, label="β")
        ax.set(
            xlabel="step",
            ylabel="loss",
            yscale="log",
            title=f"lr {self.learning_rates[lr_index]:g}, seed {int(self.seeds[seed_index])}",
        )
        return ax

    def plot(self, path: str | os.PathLike) -> Path:
        """The three plots in one PNG."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(1, 3, figsize=(20, 4.5))
        self.plot_final_loss(axes[0])
        self.plot_heatmap(axes[1])
        self.plot_curves(axes[2])
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        plt.close(fig)
        return Path(path)


def _as_grid(values, name: str, check) -> np.ndarray:
    arr = np.atleast_1d(np.asarray(values, dtype=np.float64))
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D sequence, got shape {arr.shape}")
    check(arr, name)
    return arr.astype(np.float32)


def _as_seeds(seeds) -> np.ndarray:
    arr = np.atleast_1d(np.asarray(seeds))
    if arr.ndim != 1 or arr.size == 0 or not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"seeds must be a non-empty 1-D sequence of integers, got {seeds!r}")
    return arr.astype(np.int64)


def _fingerprint(x, y) -> str:
    h = hashlib.sha256(np.asarray(x).tobytes())
    h.update(np.asarray(y).tobytes())
    return h.hexdigest()[:16]


@functools.cache
def _seed_inputs(n: int, batch_size: int, epochs: int):
    return jax.jit(jax.vmap(lambda s: seed_inputs(s, n=n, batch_size=batch_size, epochs=epochs)))


@functools.cache
def _mlp_chunk_fn(nesterov: bool, epochs: int):
    """The chapter's runs: vmap over seeds (shared inputs) of vmap over (beta, lr)."""

    def chunk_fn(hp, seed_data):
        params, orders, x, y = seed_data

        def one_seed(p, order):
            def one_run(beta, lr):
                opt = sgd_momentum(lr, beta, nesterov=nesterov)
                res = train_scan(opt, p, order, (x, y), epochs)
                return {"step_losses": res.step_losses, "epoch_losses": res.epoch_losses}

            return jax.vmap(one_run)(hp["beta"], hp["lr"])

        return jax.vmap(one_seed)(params, BatchOrder(*orders))

    return chunk_fn


def sweep(
    betas: Sequence[float],
    learning_rates: Sequence[float] = (0.01,),
    seeds: Sequence[int] = (0,),
    *,
    epochs: int = 12,
    batch_size: int = 32,
    nesterov: bool = False,
    chunk_size: int | None = None,
    progress: bool = True,
    out: str | os.PathLike | None = None,
    data: tuple[jax.Array, jax.Array] | None = None,
) -> SweepResult:
    """Train the chapter's MLP for every (beta, learning rate, seed), vmapped and sharded.

    Run ``(beta_i, lr_j, seed_k)`` equals
    ``train(sgd_momentum(lr_j, beta_i, nesterov=nesterov), seed=seed_k, ...)``.

    Args:
      betas, learning_rates: the grid's axes (beta in [0, 1]; learning rates finite and > 0).
      seeds: integer seeds; see :func:`jaxmom.seed_inputs`.
      epochs, batch_size: as in :func:`jaxmom.train`.
      nesterov: Nesterov momentum.
      chunk_size: runs per compiled call, to bound memory; ``None``: :func:`default_chunk_size`
        (512 runs per device on a CPU, 65536 on an accelerator).
        Each chunk is rounded up to a multiple of the number of devices.
      progress: a progress bar (tqdm) over runs, with an ETA.
      out: an ``.npz`` path. Each finished chunk is saved atomically there; the same call
        again skips what is done. A file from different settings is an error, never mixed.
      data: ``(x, y)``; default the chapter's data set.

    Returns:
      A :class:`SweepResult`. Runs that diverge keep their non-finite losses and are flagged
      in ``diverged``; they do not affect any other run.
    """
    betas = _as_grid(betas, "betas", check_beta)
    learning_rates = _as_grid(learning_rates, "learning_rates", check_learning_rate)
    seeds = _as_seeds(seeds)
    epochs = check_positive_int(epochs, "epochs")
    if chunk_size is not None:
        check_positive_int(chunk_size, "chunk_size")
    x, y = check_data(make_dataset() if data is None else data)
    n, batch_size, epochs = _check_order_args(x.shape[0], batch_size, epochs)
    nb, nl, ns = len(betas), len(learning_rates), len(seeds)
    steps = epochs * steps_per_epoch(n, batch_size)

    n_dev = len(jax.devices())
    chunk_runs = _chunk_runs(nb * nl, ns, chunk_size or default_chunk_size(n_dev), n_dev)
    n_chunks = math.ceil(nb * nl / chunk_runs)
    settings = {
        "betas": betas.tolist(),
        "learning_rates": learning_rates.tolist(),
        "seeds": seeds.tolist(),
        "epochs": epochs,
        "batch_size": batch_size,
        "nesterov": bool(nesterov),
        "chunk_runs": chunk_runs,
        "n_devices": n_dev,
        "data": _fingerprint(x, y),
    }

    metrics, done = None, np.zeros(n_chunks, bool)
    if out is not None:  # a process killed while saving leaves its temporary file behind
        for stale in Path(out).parent.glob(f"{Path(out).name}*.tmp"):
            stale.unlink(missing_ok=True)
    if out is not None and Path(out).exists():
        prev, done = SweepResult._load(out)
        if prev.metadata.get("settings") != settings:
            old = prev.metadata.get("settings") or {}
            diff = sorted(k for k in settings if old.get(k) != settings[k])
            raise ValueError(
                f"{out} holds a sweep with other settings (differing: {', '.join(diff)}); "
                "use another --out path or delete the file"
            )
        metrics = {
            "step_losses": prev.step_losses.transpose(2, 0, 1, 3).reshape(ns, nb * nl, steps),
            "epoch_losses": prev.epoch_losses.transpose(2, 0, 1, 3).reshape(ns, nb * nl, epochs),
        }
        prev_wall = prev.metadata.get("wall_seconds", 0.0)
    else:
        prev_wall = 0.0

    t0 = time.perf_counter()

    def result(metrics, done) -> SweepResult:
        def grid(a):
            return a.reshape(ns, nb, nl, *a.shape[2:]).transpose(1, 2, 0, *range(3, a.ndim + 1))

        meta = {
            "settings": settings,
            "complete": bool(done.all()),
            "jax_version": jax.__version__,
            "devices": [str(d) for d in jax.devices()],
            "platform": jax.devices()[0].platform,
            "wall_seconds": prev_wall + time.perf_counter() - t0,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        return SweepResult(
            betas, learning_rates, seeds, grid(metrics["step_losses"]),
            grid(metrics["epoch_losses"]), meta,
        )  # fmt: skip

    if not done.all():
        params, orders = _seed_inputs(n, batch_size, epochs)(jnp.asarray(seeds))
        hb, hl = np.meshgrid(np.arange(nb), np.arange(nl), indexing="ij")
        hyper = {"beta": betas[hb.ravel()], "lr": learning_rates[hl.ravel()]}
        chunk_fn = _mlp_chunk_fn(bool(nesterov), epochs)

        def save(metrics, done):
            result(metrics, done).save(out, done=done)

        metrics = _run_chunks(
            chunk_fn, hyper, (params, tuple(orders), x, y), ns, chunk_runs=chunk_runs,
            progress=progress, metrics=metrics, done=done,
            on_chunk=save if out is not None and jax.process_index() == 0 else None,
        )  # fmt: skip
    return result(metrics, done)
