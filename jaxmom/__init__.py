"""jaxmom: heavy-ball momentum for JAX and Optax, with the momentum chapter's experiments.

The layers, each a subpackage (the names users import are re-exported here):

- :mod:`jaxmom.optim`: the optax transforms (``momentum``, ``sgd_momentum``, ``heavy_ball``) and
  the rest of the family (``qhm``, ``qhadam``, ``aggmo``, ``demon``).
- :mod:`jaxmom.training`: the one training loop, batch orders, ``Task`` and ``nnx_task``.
- :mod:`jaxmom.engine`: the sweeps (grid, trials, halving, Optuna) and their spaces.
- :mod:`jaxmom.results`: the store and ``SweepResult`` (xarray, pandas, CSV, plots).
- :mod:`jaxmom.chapter`: the textbook chapter's model, data, ``train`` and ``sweep``.
- :mod:`jaxmom.theory`: closed forms on quadratics.
- ``jaxmom.bench`` and ``jaxmom.cli`` (not loaded by ``import jaxmom``): ``jaxmom bench`` and
  the ``jaxmom`` command.
"""

from jaxmom import theory
from jaxmom.chapter import (
    MLP,
    Net,
    apply_mlp,
    init_mlp,
    make_dataset,
    mse_loss,
    mse_value_and_grad,
    seed_inputs,
    sweep,
    train,
    train_scan,
    train_step,
)
from jaxmom.engine import (
    Choice,
    IntUniform,
    LogUniform,
    Plan,
    SweepTooLarge,
    Uniform,
    asha_sweep,
    grid_sweep,
    halving_sweep,
    optuna_sweep,
    pbt_sweep,
    product,
    sample,
    trial_sweep,
)
from jaxmom.optim import (
    AggMoState,
    MomentumState,
    QHAdamState,
    QHMState,
    aggmo,
    demon,
    heavy_ball,
    momentum,
    qhadam,
    qhm,
    scale_by_qhadam,
    sgd_aggmo,
    sgd_momentum,
    sgd_qhm,
)
from jaxmom.results import SweepResult
from jaxmom.training import (
    BatchOrder,
    NNXTask,
    Task,
    TrainResult,
    accuracy,
    batch_order,
    batch_window,
    load_digits,
    masked_mean,
    nnx_task,
    nnx_train_fn,
)

__version__ = "0.5.0"

__all__ = (
    "MLP",
    "AggMoState",
    "BatchOrder",
    "Choice",
    "IntUniform",
    "LogUniform",
    "MomentumState",
    "NNXTask",
    "Net",
    "Plan",
    "QHAdamState",
    "QHMState",
    "SweepResult",
    "SweepTooLarge",
    "Task",
    "TrainResult",
    "Uniform",
    "accuracy",
    "aggmo",
    "apply_mlp",
    "asha_sweep",
    "batch_order",
    "batch_window",
    "demon",
    "grid_sweep",
    "halving_sweep",
    "heavy_ball",
    "init_mlp",
    "load_digits",
    "make_dataset",
    "masked_mean",
    "momentum",
    "mse_loss",
    "mse_value_and_grad",
    "nnx_task",
    "nnx_train_fn",
    "optuna_sweep",
    "pbt_sweep",
    "product",
    "qhadam",
    "qhm",
    "sample",
    "scale_by_qhadam",
    "seed_inputs",
    "sgd_aggmo",
    "sgd_momentum",
    "sgd_qhm",
    "sweep",
    "theory",
    "train",
    "train_scan",
    "train_step",
    "trial_sweep",
)
