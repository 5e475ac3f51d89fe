"""The textbook chapter's port: its MLP (``Net``), data set, training (:func:`train`), the β
sweep (:func:`sweep`) with its fused Pallas kernel, and the digits task of its real-data
experiment."""

from jaxmom.chapter._data import DATA_SEED as DATA_SEED
from jaxmom.chapter._data import make_dataset as make_dataset
from jaxmom.chapter._digits import (
    DIGITS_LOSS as DIGITS_LOSS,
)
from jaxmom.chapter._digits import (
    digits as digits,
)
from jaxmom.chapter._digits import (
    digits_model as digits_model,
)
from jaxmom.chapter._model import MLP as MLP
from jaxmom.chapter._model import Net as Net
from jaxmom.chapter._model import apply_mlp as apply_mlp
from jaxmom.chapter._model import init_mlp as init_mlp
from jaxmom.chapter._sweep import (
    SearchPlan as SearchPlan,
)
from jaxmom.chapter._sweep import (
    as_axis as as_axis,
)
from jaxmom.chapter._sweep import (
    chapter_train_fn as chapter_train_fn,
)
from jaxmom.chapter._sweep import (
    search as search,
)
from jaxmom.chapter._sweep import (
    sweep as sweep,
)
from jaxmom.chapter._train import (
    mse_loss as mse_loss,
)
from jaxmom.chapter._train import (
    mse_value_and_grad as mse_value_and_grad,
)
from jaxmom.chapter._train import (
    seed_inputs as seed_inputs,
)
from jaxmom.chapter._train import (
    train as train,
)
from jaxmom.chapter._train import (
    train_scan as train_scan,
)
from jaxmom.chapter._train import (
    train_step as train_step,
)
from jaxmom.chapter._xla import (
    compiler_options as compiler_options,
)
from jaxmom.chapter._xla import (
    fully_optimised as fully_optimised,
)

__all__ = (
    "MLP",
    "Net",
    "apply_mlp",
    "digits",
    "init_mlp",
    "make_dataset",
    "mse_loss",
    "mse_value_and_grad",
    "seed_inputs",
    "sweep",
    "train",
    "train_scan",
    "train_step",
)
