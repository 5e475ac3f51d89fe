"""The one training loop, batch orders, tasks and data sets: any model's run as a pure function.

- :func:`train_step` / :func:`train_scan`: one step, and a whole run as one ``lax.scan``.
- :func:`batch_order` / :func:`batch_window`: a DataLoader's shuffle as arrays.
- :class:`Task`: a run cut into init, advance and evaluate, so it can be paused and resumed;
  :func:`nnx_task` makes one for any Flax NNX model; :class:`Segments`, a train function cut
  for the engine's segment plan.
"""

from jaxmom.training._batches import (
    BatchOrder as BatchOrder,
)
from jaxmom.training._batches import (
    batch_order as batch_order,
)
from jaxmom.training._batches import (
    batch_window as batch_window,
)
from jaxmom.training._batches import (
    check_order_args as check_order_args,
)
from jaxmom.training._batches import (
    permutations_of as permutations_of,
)
from jaxmom.training._batches import (
    steps_per_epoch as steps_per_epoch,
)
from jaxmom.training._datasets import load_digits as load_digits
from jaxmom.training._loop import (
    TrainResult as TrainResult,
)
from jaxmom.training._loop import (
    epoch_means as epoch_means,
)
from jaxmom.training._loop import (
    masked_mean as masked_mean,
)
from jaxmom.training._loop import (
    train_scan as train_scan,
)
from jaxmom.training._loop import (
    train_step as train_step,
)
from jaxmom.training._nnx import (
    NNXTask as NNXTask,
)
from jaxmom.training._nnx import (
    accuracy as accuracy,
)
from jaxmom.training._nnx import (
    nnx_task as nnx_task,
)
from jaxmom.training._nnx import (
    nnx_train_fn as nnx_train_fn,
)
from jaxmom.training._task import Segments as Segments
from jaxmom.training._task import Task as Task

__all__ = (
    "BatchOrder",
    "NNXTask",
    "Segments",
    "Task",
    "TrainResult",
    "accuracy",
    "batch_order",
    "batch_window",
    "epoch_means",
    "load_digits",
    "masked_mean",
    "nnx_task",
    "nnx_train_fn",
    "steps_per_epoch",
    "train_scan",
    "train_step",
)
