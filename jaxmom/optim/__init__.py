"""The optax transforms: heavy-ball momentum, and SGD with it (as ``optax.sgd`` and
``torch.optim.SGD``)."""

from jaxmom.optim._alias import heavy_ball as heavy_ball
from jaxmom.optim._alias import sgd_momentum as sgd_momentum
from jaxmom.optim._transform import (
    MomentumState as MomentumState,
)
from jaxmom.optim._transform import (
    ScalarOrSchedule as ScalarOrSchedule,
)
from jaxmom.optim._transform import (
    momentum as momentum,
)

__all__ = ("MomentumState", "ScalarOrSchedule", "heavy_ball", "momentum", "sgd_momentum")
