"""The optax transforms: heavy-ball momentum, and SGD with it (as ``optax.sgd`` and
``torch.optim.SGD``); and the rest of the momentum family optax lacks: quasi-hyperbolic momentum
(QHM, QHAdam), aggregated momentum (AggMo) and decaying momentum (Demon's schedule)."""

from jaxmom.optim._aggmo import AggMoState as AggMoState
from jaxmom.optim._aggmo import aggmo as aggmo
from jaxmom.optim._aggmo import sgd_aggmo as sgd_aggmo
from jaxmom.optim._alias import heavy_ball as heavy_ball
from jaxmom.optim._alias import sgd_momentum as sgd_momentum
from jaxmom.optim._demon import demon as demon
from jaxmom.optim._qhadam import QHAdamState as QHAdamState
from jaxmom.optim._qhadam import qhadam as qhadam
from jaxmom.optim._qhadam import scale_by_qhadam as scale_by_qhadam
from jaxmom.optim._qhm import QHMState as QHMState
from jaxmom.optim._qhm import qhm as qhm
from jaxmom.optim._qhm import sgd_qhm as sgd_qhm
from jaxmom.optim._transform import MomentumState as MomentumState
from jaxmom.optim._transform import ScalarOrSchedule as ScalarOrSchedule
from jaxmom.optim._transform import momentum as momentum

__all__ = (
    "AggMoState",
    "MomentumState",
    "QHAdamState",
    "QHMState",
    "ScalarOrSchedule",
    "aggmo",
    "demon",
    "heavy_ball",
    "momentum",
    "qhadam",
    "qhm",
    "scale_by_qhadam",
    "sgd_aggmo",
    "sgd_momentum",
    "sgd_qhm",
)
