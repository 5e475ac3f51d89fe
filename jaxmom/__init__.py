"""jaxmom: heavy-ball momentum for JAX and Optax, with the momentum chapter's experiments."""

from jaxmom.transform import MomentumState, heavy_ball, momentum, sgd_momentum

__version__ = "0.1.0"

__all__ = (
    "MomentumState",
    "heavy_ball",
    "momentum",
    "sgd_momentum",
)
