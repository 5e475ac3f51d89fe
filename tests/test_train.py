"""The chapter's training (sections 5.5, 5.6): data, batch order, model and the scan loop."""

import importlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxmom
from jaxmom.bench._chapter import torch_loop

train_mod = importlib.import_module("jaxmom.chapter._train")


def f32(v):
    return jnp.float32(v)


# -- data and batch order -------------------------------------------------------------------


def test_dataset_is_the_chapters():
    x, y = jaxmom.make_dataset()
    assert x.shape == y.shape == (1000, 1)
    np.testing.assert_allclose(x[:, 0], np.linspace(-1, 1, 1000), atol=1e-6)
    resid = np.asarray(y - x**2)
    assert abs(resid.std() - 0.1) < 0.01 and abs(resid.mean()) < 0.01
    np.testing.assert_array_equal(y, jaxmom.make_dataset()[1])  # a fixed default key
    assert not np.array_equal(y, jaxmom.make_dataset(jax.random.key(7))[1])


def test_batch_order_permutes_every_epoch_and_masks_the_partial_batch():
    order = jaxmom.batch_order(jax.random.key(0), n=1000, batch_size=32, epochs=12)
    assert order.indices.shape == order.mask.shape == (384, 32)
    idx = np.asarray(order.indices).reshape(12, 32, 32)
    mask = np.asarray(order.mask).reshape(12, 32, 32)
    for e in range(12):
        assert sorted(idx[e][mask[e]].tolist()) == list(range(1000))
    assert mask[:, :31].all() and mask[:, 31, :8].all() and not mask[:, 31, 8:].any()
    assert not np.array_equal(idx[0], idx[1])  # a fresh permutation each epoch


def test_shuffle_is_uniform_and_the_same_under_vmap():
    # every permutation of 4 points equally often over 24,000 epochs (chi-square, 23 dof)
    perms = np.asarray(jaxmom.training._batches._permutations(jax.random.key(3), 4, 24_000))
    codes = (perms * np.array([64, 16, 4, 1])).sum(axis=1)
    counts = np.unique(codes, return_counts=True)[1]
    assert len(counts) == 24
    chi2 = float(((counts - 1000.0) ** 2 / 1000.0).sum())
    assert chi2 < 60.0  # p < 1e-4 above 56: only a biased shuffle fails
    # at the chapter's size the two sorts' keys rarely tie: the composition is no index sort
    perms = np.asarray(jaxmom.training._batches._permutations(jax.random.key(4), 1000, 64))
    assert all(sorted(p.tolist()) == list(range(1000)) for p in perms)
    # vmapped over keys, each run's order is its own key's
    keys = jax.random.split(jax.random.key(5), 3)
    batched = jax.jit(jax.vmap(lambda k: jaxmom.batch_order(k, 1000, 32, 2)))(keys)
    for i, k in enumerate(keys):
        np.testing.assert_array_equal(
            batched.indices[i], jaxmom.batch_order(k, 1000, 32, 2).indices
        )


def test_batch_order_drop_last():
    order = jaxmom.batch_order(jax.random.key(0), n=100, batch_size=32, epochs=3, drop_last=True)
    assert order.indices.shape == (9, 32) and bool(order.mask.all())
    per_epoch = np.asarray(order.indices).reshape(3, 96)
    assert all(len(set(row.tolist())) == 96 for row in per_epoch)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(batch_size=0), "batch_size=0"),
        (dict(batch_size=1001), "batch_size=1001"),
        (dict(epochs=0), "epochs=0"),
        (dict(n=0), "n=0"),
    ],
)
def test_batch_order_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        jaxmom.batch_order(jax.random.key(0), **kwargs)


# -- model ------------------------------------------------------------------------------------


def test_init_mlp_shapes_and_torch_init_bounds():
    p = jaxmom.init_mlp(jax.random.key(0))
    shapes = jax.tree.map(jnp.shape, p)
    assert shapes == {
        "hidden": {"kernel": (1, 20), "bias": (20,)},
        "predict": {"kernel": (20, 1), "bias": (1,)},
    }
    # U(-1/sqrt(fan_in), 1/sqrt(fan_in)): fan_in 1 for hidden, 20 for predict
    assert np.abs(p["hidden"]["kernel"]).max() <= 1.0 and np.abs(p["hidden"]["bias"]).max() <= 1.0
    assert np.abs(p["hidden"]["bias"]).max() > 0.5  # not Flax's zero biases
    assert np.abs(p["predict"]["kernel"]).max() <= 20**-0.5
    flax_init = jaxmom.init_mlp(jax.random.key(0), init="flax")
    assert not np.any(flax_init["hidden"]["bias"])
    with pytest.raises(ValueError, match="init='keras'"):
        jaxmom.init_mlp(jax.random.key(0), init="keras")


def test_apply_mlp_is_relu_mlp():
    p = jaxmom.init_mlp(jax.random.key(3))
    x = jnp.linspace(-1, 1, 7)[:, None]
    h = jnp.maximum(x @ p["hidden"]["kernel"] + p["hidden"]["bias"][None], 0)
    np.testing.assert_allclose(
        jaxmom.apply_mlp(p, x), h @ p["predict"]["kernel"] + p["predict"]["bias"][None], rtol=1e-6
    )


# -- the training loop against the chapter's PyTorch program ----------------------------------


@pytest.fixture(scope="module")
def chapter_inputs():
    params, order = jaxmom.seed_inputs(0)
    return params, order, jaxmom.make_dataset()


@pytest.mark.parametrize(
    "lr, beta, nesterov", [(0.01, 0.8, False), (0.01, 0.8, True), (0.05, 0.95, False)]
)
def test_step_losses_equal_the_chapters_pytorch_program(torch, chapter_inputs, lr, beta, nesterov):
    params, order, data = chapter_inputs
    # the chapter's section 5.5.2 program (DataLoader, Net, MSELoss, torch.optim.SGD)
    want = torch_loop(params, order, data, lr, beta, nesterov)
    got = jaxmom.train(
        jaxmom.sgd_momentum(f32(lr), f32(beta), nesterov=nesterov),
        params=params,
        order=order,
        data=data,
    )
    assert got.step_losses.shape == (384,)
    np.testing.assert_allclose(got.step_losses, want, rtol=1e-4)


def test_epoch_losses_are_the_mean_over_the_epochs_points(chapter_inputs):
    params, order, _ = chapter_inputs
    res = jaxmom.train(jaxmom.sgd_momentum(f32(0.01), f32(0.8)), params=params, order=order)
    counts = np.asarray(order.mask.sum(1)).reshape(12, 32)
    losses = np.asarray(res.step_losses, np.float64).reshape(12, 32)
    np.testing.assert_allclose(res.epoch_losses, (losses * counts).sum(1) / 1000, rtol=1e-5)


def test_heavy_ball_and_sgd_momentum_train_identically():
    a = jaxmom.train(jaxmom.heavy_ball(0.01, 0.8), seed=3)
    b = jaxmom.train(jaxmom.sgd_momentum(0.01, 0.8), seed=3)
    np.testing.assert_allclose(a.step_losses, b.step_losses, rtol=1e-5)
    jax.tree.map(
        lambda u, v: np.testing.assert_allclose(u, v, rtol=1e-4, atol=1e-6), a.params, b.params
    )


def test_momentum_beats_sgd_on_most_seeds():
    wins = 0
    for seed in range(5):
        sgd = jaxmom.train(jaxmom.sgd_momentum(f32(0.01), f32(0.0)), seed=seed).epoch_losses[-1]
        mom = jaxmom.train(jaxmom.sgd_momentum(f32(0.01), f32(0.8)), seed=seed).epoch_losses[-1]
        wins += bool(mom < sgd)
    assert wins >= 4


def _compilations():
    return sum(f._cache_size() for f in train_mod._COMPILED.values())


def test_new_beta_or_learning_rate_does_not_recompile():
    first = jaxmom.train(jaxmom.sgd_momentum(f32(0.02), f32(0.3)), seed=1)
    before = _compilations()
    second = jaxmom.train(jaxmom.sgd_momentum(f32(0.03), f32(0.9)), seed=1)
    assert _compilations() == before
    assert not np.allclose(first.step_losses[1:], second.step_losses[1:])  # the values did change
    jaxmom.train(jaxmom.sgd_momentum(0.03, 0.9), seed=1)  # Python floats: a new program
    assert _compilations() == before + 1


def test_one_optimizer_trains_float32_then_float64_parameters():
    opt = jaxmom.sgd_momentum(f32(0.02), f32(0.8))
    p32 = jaxmom.seed_inputs(0)[0]
    first = jaxmom.train(opt, params=p32, epochs=1)
    with jax.enable_x64(True):
        p64 = jax.tree.map(lambda a: jnp.asarray(a, jnp.float64), p32)
        second = jaxmom.train(opt, params=p64, epochs=1)  # the same optimizer object
        fresh = jaxmom.train(jaxmom.sgd_momentum(f32(0.02), f32(0.8)), params=p64, epochs=1)
        assert second.params["hidden"]["kernel"].dtype == jnp.float64
        np.testing.assert_array_equal(second.step_losses, fresh.step_losses)
    np.testing.assert_allclose(first.step_losses, second.step_losses, rtol=1e-4)
    again = jaxmom.train(opt, params=p32, epochs=1)  # and back, from the cache
    np.testing.assert_array_equal(again.step_losses, first.step_losses)


def test_seed_derives_params_and_order_not_data():
    p0, o0 = jaxmom.seed_inputs(0)
    p1, o1 = jaxmom.seed_inputs(1)
    assert not np.array_equal(o0.indices, o1.indices)
    assert not np.array_equal(p0["hidden"]["kernel"], p1["hidden"]["kernel"])
    res = jaxmom.train(jaxmom.sgd_momentum(f32(0.01), f32(0.8)), seed=0)
    same = jaxmom.train(jaxmom.sgd_momentum(f32(0.01), f32(0.8)), params=p0, order=o0)
    np.testing.assert_array_equal(res.step_losses, same.step_losses)


def test_train_step_and_loss_are_public_and_pure(chapter_inputs):
    params, order, (x, y) = chapter_inputs
    opt = jaxmom.sgd_momentum(0.01, 0.8)
    state = opt.init(params)
    losses = []
    for t in range(3):
        idx = order.indices[t]
        params, state, loss = jaxmom.train_step(opt, params, state, x[idx], y[idx], order.mask[t])
        losses.append(loss)
    res = jaxmom.train(opt, params=chapter_inputs[0], order=order)
    np.testing.assert_allclose(losses, res.step_losses[:3], rtol=1e-5)
    np.testing.assert_allclose(
        jaxmom.mse_loss(params, x[:5], y[:5]),
        jnp.mean((jaxmom.apply_mlp(params, x[:5]) - y[:5]) ** 2),
        rtol=1e-6,
    )


@pytest.mark.parametrize("hidden", [20, 7])
def test_hand_written_gradient_equals_autodiff(hidden):
    """mse_value_and_grad against jax.value_and_grad(mse_loss): masks, widths, under vmap."""
    kp, kx, ky = jax.random.split(jax.random.key(hidden), 3)
    # Four parameter sets, scaled so that many hidden units switch sign within the batch.
    params = jax.vmap(lambda k: jax.tree.map(lambda a: 3 * a, jaxmom.init_mlp(k, hidden)))(
        jax.random.split(kp, 4)
    )
    x = jax.random.uniform(kx, (32, 1), minval=-1, maxval=1)
    y = x**2 + 0.1 * jax.random.normal(ky, (32, 1))
    auto = jax.vmap(jax.value_and_grad(jaxmom.mse_loss), (0, None, None, None))
    hand = jax.vmap(jaxmom.mse_value_and_grad, (0, None, None, None))
    for mask in [None, jnp.arange(32) < 8, jnp.zeros(32, bool)]:
        want, got = auto(params, x, y, mask), hand(params, x, y, mask)
        assert jax.tree.structure(got) == jax.tree.structure(want)
        for g, w in zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True):
            assert g.shape == w.shape and g.dtype == w.dtype
            np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-6 * float(jnp.abs(w).max()))
        one = jaxmom.mse_value_and_grad(jax.tree.map(lambda a: a[1], params), x, y, mask)
        for g, w in zip(jax.tree.leaves(one), jax.tree.leaves(got), strict=True):
            np.testing.assert_allclose(g, w[1], rtol=1e-6, atol=1e-9)
    assert float(jnp.abs(got[1]["hidden"]["kernel"]).max()) == 0.0  # all masked: no gradient


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(batch_size=0), "batch_size=0"),
        (dict(batch_size=2000), "batch_size=2000"),
        (dict(epochs=0), "epochs=0"),
        (
            dict(data=(jnp.zeros((10, 1)), jnp.zeros((9, 1)))),
            r"y must have the shape of x \(10, 1\)",
        ),
        (dict(data=(jnp.zeros((10, 2)), jnp.zeros((10, 2)))), r"x must have shape \[n, 1\]"),
        (dict(data=jnp.zeros(3)), "data must be a pair"),
    ],
)
def test_train_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        jaxmom.train(jaxmom.sgd_momentum(0.01, 0.8), **kwargs)
