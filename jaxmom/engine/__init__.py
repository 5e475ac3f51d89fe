"""The one sweep engine: any pure train function over a grid, a table of trials, successive
halving rungs or an Optuna study, vmapped and sharded over every device, written block by block.

- :func:`grid_sweep` / :func:`trial_sweep`: every run of a grid or a table of trials.
- :func:`sample`, :func:`product` and the spaces (:class:`Uniform`, :class:`LogUniform`,
  :class:`IntUniform`, :class:`Choice`): random and quasi-random search.
- :func:`halving_sweep`: successive halving and Hyperband over a :class:`jaxmom.Task`.
- :func:`asha_sweep`: asynchronous successive halving on a pool of lanes, one compiled program.
- :func:`pbt_sweep`: population-based training on the same pool: schedules of hyperparameters.
- :func:`optuna_sweep`: an Optuna study's sampler, asked and told in vectorized batches.
- :class:`Plan`: how a sweep's steps run (one scan or segments, vmapped or unrolled, devices).
"""

from jaxmom.engine._asha import asha_sweep as asha_sweep
from jaxmom.engine._caches import clear_caches as clear_caches
from jaxmom.engine._checks import SweepTooLarge as SweepTooLarge
from jaxmom.engine._halving import (
    check_halving_size as check_halving_size,
)
from jaxmom.engine._halving import (
    halving_sweep as halving_sweep,
)
from jaxmom.engine._halving import (
    rung_steps as rung_steps,
)
from jaxmom.engine._halving_folder import check_halving_path as check_halving_path
from jaxmom.engine._halving_folder import rung_stores as rung_stores
from jaxmom.engine._optuna import optuna_sweep as optuna_sweep
from jaxmom.engine._pbt import pbt_sweep as pbt_sweep
from jaxmom.engine._plans import Plan as Plan
from jaxmom.engine._spaces import (
    METHODS as METHODS,
)
from jaxmom.engine._spaces import (
    Choice as Choice,
)
from jaxmom.engine._spaces import (
    IntUniform as IntUniform,
)
from jaxmom.engine._spaces import (
    LogUniform as LogUniform,
)
from jaxmom.engine._spaces import (
    Uniform as Uniform,
)
from jaxmom.engine._spaces import (
    product as product,
)
from jaxmom.engine._spaces import (
    sample as sample,
)
from jaxmom.engine._sweeps import grid_sweep as grid_sweep
from jaxmom.engine._sweeps import trial_sweep as trial_sweep

__all__ = (
    "Choice",
    "IntUniform",
    "LogUniform",
    "Plan",
    "SweepTooLarge",
    "Uniform",
    "asha_sweep",
    "clear_caches",
    "grid_sweep",
    "halving_sweep",
    "optuna_sweep",
    "pbt_sweep",
    "product",
    "sample",
    "trial_sweep",
)
