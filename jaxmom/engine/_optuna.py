"""Optuna's samplers, in batches: :func:`optuna_sweep` asks a study for a batch of trials,
runs the batch as one :func:`jaxmom.trial_sweep` (one compiled program for every batch), and
tells every value back, so the study's sampler (TPE, QMC, CMA-ES, ...), its storage,
``trials_dataframe()``, Optuna's plots and optuna-dashboard see every trial.

Optuna is optional (``pip install 'jaxmom[bench]'``).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from jaxmom.common import check_parent, check_positive_int, renamed
from jaxmom.engine._checks import output_shapes
from jaxmom.engine._plans import Plan, check_plan
from jaxmom.engine._spaces import Choice, IntUniform, LogUniform, Uniform, check_space
from jaxmom.engine._sweeps import trial_sweep
from jaxmom.training import Task

INSTALL = "pip install 'jaxmom[bench]'"


def distributions(space: Mapping) -> dict:
    """A jaxmom search space as Optuna distributions, by name."""
    import optuna.distributions as od

    check_space(space)
    out: dict[str, Any] = {}
    for name, dim in space.items():
        if isinstance(dim, LogUniform):
            out[name] = od.FloatDistribution(dim.low, dim.high, log=True)
        elif isinstance(dim, Uniform):
            out[name] = od.FloatDistribution(dim.low, dim.high)
        elif isinstance(dim, IntUniform):
            out[name] = od.IntDistribution(dim.low, dim.high)
        elif isinstance(dim, Choice):
            out[name] = od.CategoricalDistribution(list(dim.values))
    return out


def value_dtype(distribution) -> np.dtype:
    """The NumPy dtype of an Optuna distribution's values."""
    import optuna.distributions as od

    if isinstance(distribution, od.CategoricalDistribution):
        return np.asarray(distribution.choices).dtype
    return np.dtype(np.int64 if isinstance(distribution, od.IntDistribution) else np.float64)


def optuna_sweep(
    study,
    task_or_train_fn: Task | Callable,
    space: Mapping,
    n_trials: int,
    seeds: Sequence[int] = (0,),
    *,
    metric: str,
    steps: int | None = None,
    trials_per_batch: int = 256,
    data=None,
    out: str | os.PathLike | None = None,
    chunk_size: int | None = None,
    progress: bool = True,
    compiler_options: Mapping | None = None,
    check_finite: Sequence[str] | None = None,
    settings: Mapping | None = None,
    plan: Plan | Mapping | str | None = None,
    **deprecated,
):
    """Runs ``n_trials`` trials of ``study``'s own sampler, ``trials_per_batch`` at a time.

    Args:
      study: an ``optuna.Study``; its direction says whether ``metric`` is minimised.
      task_or_train_fn: a :class:`jaxmom.Task` (trained ``steps`` steps) or a train function
        of :func:`jaxmom.trial_sweep`.
      space: name -> :class:`jaxmom.Uniform`, ``LogUniform``, ``IntUniform`` or ``Choice``.
      n_trials: trials in all.
      seeds: every trial runs with each; its value is the metric's mean over them.
      metric: a scalar output, the value told to the study.
      steps: the steps of a Task's run.
      trials_per_batch: trials asked, run and told together (the sampler sees the values of
        the batches before, as a parallel Optuna study does). Formerly ``batch_size``, which
        still works until jaxmom 0.6 with a ``DeprecationWarning``.
      data, chunk_size, compiler_options, check_finite, settings, plan: as
        :func:`jaxmom.trial_sweep`'s (a run with a non-finite ``check_finite`` output fails).
      out: a folder; the batch whose first trial is number ``n`` is the store
        ``out/trials{n:05d}.zarr``, written block by block. The same call with a new study of
        the same sampler (seeded) asks the same trials again, so an interrupted search
        resumes from its stores, computing only what is missing; a batch whose trials differ
        from its store's is refused, never mixed.
      progress: a progress bar over the trials.

    An interruption leaves no trial RUNNING: Ctrl-C or an error fails the batch's trials, a
    kill leaves them to the next call on this host, which fails them; either way the next
    call runs them again first (enqueued, ``user_attrs["retried_from"]`` naming the failed
    trial), as Optuna's ``RetryFailedTrialCallback`` would.

    Returns:
      ``study``, with ``n_trials`` more trials: the value of each, or state FAIL for a run that
      diverged (its seeds' values are kept in the trial's user attribute ``values``).
    """
    try:
        import optuna
    except ImportError:
        raise ImportError(f"optuna_sweep needs optuna, which is not installed: {INSTALL}") from None

    trials_per_batch = renamed("optuna_sweep", deprecated, {"batch_size": "trials_per_batch"}).get(
        "trials_per_batch", trials_per_batch
    )
    if not isinstance(study, optuna.Study):
        raise TypeError(f"study must be an optuna.Study (optuna.create_study()), got {study!r}")
    if len(study.directions) != 1:
        raise ValueError(
            f"study has {len(study.directions)} objectives; optuna_sweep tells each trial one "
            "value (the metric's mean over seeds): create the study with one direction"
        )
    n_trials = check_positive_int(n_trials, "n_trials")
    batch_size = check_positive_int(trials_per_batch, "trials_per_batch")
    folder = None if out is None else _check_folder(out)
    check_plan(plan)
    dists = distributions(space)
    if isinstance(task_or_train_fn, Task):
        if steps is None:
            raise ValueError("a Task needs steps=: how many steps each trial trains")
        train_fn = task_or_train_fn.train_fn(steps)
    elif callable(task_or_train_fn):
        train_fn = task_or_train_fn
    else:
        raise TypeError(
            f"task_or_train_fn must be a jaxmom.Task or a train function, got {task_or_train_fn!r}"
        )
    _check_metric(train_fn, dists, data, metric)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=n_trials, unit="trial", desc="optuna_sweep")
    retry_interrupted(study)
    owner = f"{socket.gethostname()}:{os.getpid()}"
    done = 0
    while done < n_trials:
        k = min(batch_size, n_trials - done)
        trials = [study.ask(dists) for _ in range(k)]
        for t in trials:  # so that a rerun knows the trials a kill left running
            t.set_user_attr(ASKED, owner)
        table = {n: np.array([t.params[n] for t in trials]) for n in dists}
        # the last batch padded to the others' size: one compiled program for all
        table = {
            n: np.concatenate([v, np.repeat(v[-1:], batch_size - k)]) for n, v in table.items()
        }
        try:
            res = trial_sweep(
                train_fn,
                table,
                seeds,
                data=data,
                chunk_size=chunk_size,
                progress=False,
                out=None if folder is None else folder / f"trials{trials[0].number:05d}.zarr",
                compiler_options=compiler_options,
                check_finite=check_finite,
                settings=settings,
                plan=plan,
            )
        except BaseException:  # Ctrl-C, a full disk: none of the batch is left RUNNING
            for t in trials:
                t.set_user_attr(INTERRUPTED, True)
                study.tell(t, state=optuna.trial.TrialState.FAIL)
            raise
        values = np.asarray(res[metric], np.float64)[:k]
        bad = np.asarray(res.diverged[:k].any(-1) | ~np.isfinite(values).all(-1))
        for t, v, b in zip(trials, values, bad.tolist(), strict=True):
            t.set_user_attr("values", v.tolist())
            if b:
                study.tell(t, state=optuna.trial.TrialState.FAIL)
            else:
                study.tell(t, float(v.mean()))
        done += k
        if bar is not None:
            bar.update(k)
    if bar is not None:
        bar.close()
    return study


#: The user attributes of the trials optuna_sweep asks (who asked: host and process) and of
#: those an interruption failed; the study's attribute RETRIED lists those retried since.
ASKED, INTERRUPTED, RETRIED = "jaxmom_asked_by", "jaxmom_interrupted", "jaxmom_retried"


def retry_interrupted(study) -> int:
    """Fails the trials an earlier ``optuna_sweep`` left RUNNING (its process was killed: it
    was on this host and is gone) and enqueues each trial an interruption failed, so that the
    next asks run them again first, as Optuna's ``RetryFailedTrialCallback`` does. Returns how
    many are enqueued."""
    import optuna

    state = optuna.trial.TrialState
    retried = set(study.user_attrs.get(RETRIED, []))
    again = []
    for t in study.get_trials(deepcopy=False, states=(state.RUNNING, state.FAIL)):
        asker = t.user_attrs.get(ASKED)
        if asker is None or t.number in retried:
            continue
        if t.state == state.RUNNING:
            host, _, pid = asker.rpartition(":")
            if host != socket.gethostname() or _alive(int(pid)):
                continue  # another optuna_sweep's, maybe running now
            study.tell(t.number, state=state.FAIL)
        elif not t.user_attrs.get(INTERRUPTED):
            continue  # failed by its own values (diverged): not retried
        again.append(t)
    for t in again:
        study.enqueue_trial(t.params, user_attrs={"retried_from": t.number})
    if again:
        study.set_user_attr(RETRIED, sorted(retried | {t.number for t in again}))
    return len(again)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        pass
    return True


def _check_folder(out) -> Path:
    """``out`` as a folder to hold the batches' stores: made if it is new."""
    path = Path(out)
    if path.exists() and not path.is_dir():
        raise ValueError(f"out {str(path)!r} is a file: give a folder for the batches' stores")
    if not path.exists():
        check_parent(path, "out")
        path.mkdir()
    return path


def _check_metric(train_fn, dists, data, metric: str) -> None:
    """``metric`` must be a scalar output of one run: traced, not run."""
    import jax

    hp_dtypes = {n: jax.dtypes.canonicalize_dtype(value_dtype(d)) for n, d in dists.items()}
    shapes = output_shapes(train_fn, hp_dtypes, data, data is not None).shapes
    scalars = [k for k, v in shapes.items() if v.shape == ()]
    if metric not in scalars:
        raise ValueError(f"metric must be a scalar output of the runs ({scalars}), got {metric!r}")
