"""Shared test set-up: loud rank promotion, a small hypothesis budget, optional torch."""

import jax
import pytest
from hypothesis import HealthCheck, settings

jax.config.update("jax_numpy_rank_promotion", "raise")

settings.register_profile(
    "jaxmom",
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
settings.load_profile("jaxmom")


@pytest.fixture(scope="session")
def torch():
    return pytest.importorskip("torch")
