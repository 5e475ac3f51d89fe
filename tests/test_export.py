"""The programs users run lower for a GPU and a TPU on this CPU (``jax.export``): anything
CPU-only in them (a host callback, a dtype or an operation the platform lacks) fails here, in
CI, before anyone has an accelerator. CPU compiler options are set at compile time only."""

import jax
import jax.numpy as jnp
import optax
import pytest

import jaxmom
from jaxmom.chapter import DIGITS_LOSS, chapter_train_fn, digits_model
from jaxmom.chapter import _train as training
from jaxmom.engine._blocks import block_program

PLATFORMS = ["cuda", "tpu"]


def _lowers(fn, *args, **kwargs):
    for platform in PLATFORMS:
        exported = jax.export.export(fn, platforms=[platform])(*args, **kwargs)
        assert exported.platforms == (platform,)  # a host callback would not even lower


def test_the_chapter_sweep_block_lowers_for_gpu_and_tpu():
    x, y = jaxmom.make_dataset()
    hp = {k: jnp.zeros((1, 8), jnp.float32) for k in ("beta", "learning_rate")}
    seeds = jnp.zeros((1, 2), jnp.uint32)
    program = block_program(chapter_train_fn(12, 32, False, 1), True)
    _lowers(jax.jit(program), hp, seeds, None, (x, y))


def test_the_engine_block_over_an_nnx_model_lowers_for_gpu_and_tpu():
    train_fn = jaxmom.nnx_train_fn(
        digits_model,
        DIGITS_LOSS,
        lambda beta, learning_rate: jaxmom.sgd_momentum(learning_rate, beta),
        epochs=1,
        batch_size=32,
        metrics={"accuracy": jaxmom.accuracy},
    )
    data = (  # digits' shapes: 64 features, 10 classes
        jnp.zeros((96, 64)),
        jnp.zeros(96, jnp.int32),
        jnp.zeros((32, 64)),
        jnp.zeros(32, jnp.int32),
    )
    hp = {k: jnp.zeros((1, 4), jnp.float32) for k in ("beta", "learning_rate")}
    _lowers(jax.jit(block_program(train_fn, True)), hp, jnp.zeros((1, 1), jnp.uint32), None, data)


@pytest.mark.parametrize(
    "opt",
    [
        jaxmom.sgd_momentum(jnp.float32(0.01), jnp.float32(0.9)),
        optax.inject_hyperparams(jaxmom.sgd_momentum)(0.01, 0.9, nesterov=True),
    ],
    ids=["arrays", "inject_hyperparams"],
)
def test_train_lowers_for_gpu_and_tpu(opt):
    params, order = jaxmom.seed_inputs(0, epochs=2)
    x, y = jaxmom.make_dataset()
    opt_state = opt.init(params)
    run, consts = training._hoist(opt, params, opt_state)
    _lowers(run, consts, params, opt_state, order, x, y, epochs=2)
