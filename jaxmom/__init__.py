"""jaxmom: heavy-ball momentum for JAX and Optax, with the momentum chapter's experiments."""

from jaxmom import theory
from jaxmom.alias import heavy_ball, sgd_momentum
from jaxmom.chapter_sweep import sweep
from jaxmom.data import BatchOrder, batch_order, batch_window, load_digits, make_dataset
from jaxmom.engine import grid_sweep, trial_sweep
from jaxmom.halving import halving_sweep
from jaxmom.model import MLP, Net, apply_mlp, init_mlp
from jaxmom.nnx_train import NNXTask, accuracy, nnx_task, nnx_train_fn
from jaxmom.optuna_bridge import optuna_sweep
from jaxmom.result import SweepResult
from jaxmom.search import Choice, IntUniform, LogUniform, Uniform, product, sample
from jaxmom.task import Task
from jaxmom.training import (
    TrainResult,
    masked_mean,
    mse_loss,
    mse_value_and_grad,
    seed_inputs,
    train,
    train_scan,
    train_step,
)
from jaxmom.transform import MomentumState, momentum

__version__ = "0.4.0"

__all__ = (
    "MLP",
    "BatchOrder",
    "Choice",
    "IntUniform",
    "LogUniform",
    "MomentumState",
    "NNXTask",
    "Net",
    "SweepResult",
    "Task",
    "TrainResult",
    "Uniform",
    "accuracy",
    "apply_mlp",
    "batch_order",
    "batch_window",
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
    "product",
    "sample",
    "seed_inputs",
    "sgd_momentum",
    "sweep",
    "theory",
    "train",
    "train_scan",
    "train_step",
    "trial_sweep",
)
