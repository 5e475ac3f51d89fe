"""The chapter's training fused into one Pallas kernel: in interpret mode (its semantics, on the
CPU) it equals the XLA path at every step, for any number of models, Nesterov, the masked last
batch and every record_every; under the engine's vmap a seed's models share one kernel."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxmom
from jaxmom.chapter import _fused as fused

EPOCHS = 2


@pytest.fixture(scope="module")
def seed():
    x, y = jaxmom.make_dataset()
    params, order = jaxmom.seed_inputs(jax.random.key(3), epochs=EPOCHS)  # 1000 = 31 x 32 + 8
    return params, order, x[order.indices, 0], y[order.indices, 0]


@pytest.mark.parametrize("nesterov", [False, True])
def test_the_kernel_equals_xla_at_every_step_for_any_number_of_models(seed, nesterov):
    params, order, xb, yb = seed
    m = fused.BLOCK + 3  # two programs, the second padded
    betas = jnp.linspace(0.0, 0.99, m, dtype=jnp.float32)
    lrs = jnp.geomspace(0.003, 0.3, m).astype(jnp.float32)
    got = fused.train_block(
        params, xb, yb, order.mask, betas, lrs, nesterov=nesterov, interpret=True
    )
    assert got.shape == (EPOCHS * 32, m)

    def xla(beta, lr):
        opt = jaxmom.sgd_momentum(lr, beta, nesterov=nesterov)
        return jaxmom.train_scan(opt, params, order, jaxmom.make_dataset(), EPOCHS).step_losses

    want = jax.jit(jax.vmap(xla))(betas, lrs).T
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-7)


def test_sweep_with_the_kernel_equals_sweep_with_xla():
    kw = dict(seeds=[0, 3], epochs=EPOCHS, progress=False, chunk_size=4)
    for nesterov, every in [(False, 1), (True, 4)]:
        xla = jaxmom.sweep(
            [0.0, 0.5, 0.9], [0.01, 0.1], kernel="xla", nesterov=nesterov, record_every=every, **kw
        )
        pallas = jaxmom.sweep(
            [0.0, 0.5, 0.9],
            [0.01, 0.1],
            kernel="pallas",
            nesterov=nesterov,
            record_every=every,
            **kw,
        )
        for name in ("step_losses", "epoch_losses", "final_loss"):
            np.testing.assert_allclose(pallas[name], xla[name], rtol=1e-4)
    assert jaxmom.chapter._sweep.resolve_kernel("auto") == "xla"  # no GPU here
    with pytest.raises(ValueError, match="kernel must be one of auto, xla, pallas"):
        jaxmom.sweep([0.9], kernel="triton")


def test_a_vmap_over_models_of_different_seeds_runs_a_kernel_each(seed):
    params, order, xb, yb = seed
    run = fused.fused_run(False, True)
    two = jax.tree.map(lambda a: jnp.stack([a, 2 * a]), params)
    beta, lr = jnp.float32(0.9), jnp.float32(0.05)
    got = jax.vmap(run, in_axes=(0, None, None, None, None, None))(
        two, xb, yb, order.mask, beta, lr
    )
    for i in range(2):
        one = jax.tree.map(lambda a, i=i: a[i], two)
        want = fused.train_block(one, xb, yb, order.mask, beta[None], lr[None], interpret=True)
        np.testing.assert_allclose(got[i], want[:, 0], rtol=1e-6)


@pytest.mark.parametrize("platform", ["cuda", "tpu"])
def test_the_kernel_lowers_for_gpu_and_tpu(platform):
    """Triton on CUDA (Mosaic GPU would stage 0.5 MB of blocks in shared memory), Mosaic on
    TPU; jax.export refuses a block shape the platform cannot take."""
    params = jaxmom.init_mlp(jax.random.key(0))
    rows = jnp.zeros((384, 32))
    fn = jax.jit(functools.partial(fused.train_block, nesterov=True, platform=platform))
    skip = [jax.export.DisabledSafetyCheck.custom_call("__gpu$xla.gpu.triton")]
    exported = jax.export.export(fn, platforms=[platform], disabled_checks=skip)(
        params, rows, rows, jnp.ones((384, 32), bool), jnp.zeros(4096), jnp.zeros(4096)
    )
    text = exported.mlir_module()
    assert ("triton" if platform == "cuda" else "tpu_custom_call") in text
