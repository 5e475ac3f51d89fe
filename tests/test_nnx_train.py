"""jaxmom.nnx_train_fn against a direct Flax NNX training loop on the same batches."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

import jaxmom


class MLP(nnx.Module):
    def __init__(self, rngs: nnx.Rngs):
        self.hidden = nnx.Linear(6, 16, rngs=rngs)
        self.out = nnx.Linear(16, 3, rngs=rngs)

    def __call__(self, x):
        return self.out(jax.nn.relu(self.hidden(x)))


EPOCHS, BATCH = 3, 16
LOSS = optax.softmax_cross_entropy_with_integer_labels


@pytest.fixture(scope="module")
def data():
    kx, kw, kt = jax.random.split(jax.random.key(0), 3)
    x = jax.random.normal(kx, (70, 6))  # 70 = 4 batches of 16 and a partial one of 6
    labels = jnp.argmax(x @ jax.random.normal(kw, (6, 3)), axis=1)
    xt = jax.random.normal(kt, (30, 6))
    return x, labels, xt, jnp.argmax(xt @ jax.random.normal(kw, (6, 3)), axis=1)


@pytest.fixture(scope="module")
def train_fn():
    return jaxmom.nnx_train_fn(
        MLP,
        LOSS,
        lambda beta, learning_rate: jaxmom.sgd_momentum(learning_rate, beta),
        epochs=EPOCHS,
        batch_size=BATCH,
        metrics={"accuracy": jaxmom.accuracy},
        record_every=1,
    )


class Regularized(nnx.Module):
    """BatchNorm and Dropout: state a step updates, and a stream of keys a step draws from."""

    def __init__(self, rngs: nnx.Rngs):
        self.hidden = nnx.Linear(6, 16, rngs=rngs)
        self.norm = nnx.BatchNorm(16, rngs=rngs)
        self.drop = nnx.Dropout(0.3, rngs=rngs)
        self.out = nnx.Linear(16, 3, rngs=rngs)

    def __call__(self, x):
        return self.out(self.drop(jax.nn.relu(self.norm(self.hidden(x)))))


class CNN(nnx.Module):
    """A small CNN on digits as 8x8x1 images, with BatchNorm and Dropout."""

    def __init__(self, rngs: nnx.Rngs):
        self.conv = nnx.Conv(1, 8, (3, 3), rngs=rngs)
        self.norm = nnx.BatchNorm(8, rngs=rngs)
        self.drop = nnx.Dropout(0.2, rngs=rngs)
        self.out = nnx.Linear(8 * 4 * 4, 10, rngs=rngs)

    def __call__(self, x):
        h = jax.nn.relu(self.norm(self.conv(x.reshape(-1, 8, 8, 1))))
        h = nnx.avg_pool(h, (2, 2), strides=(2, 2))
        return self.out(self.drop(h.reshape(h.shape[0], -1)))


def _direct_nnx_loop(beta, lr, seed, data, make=MLP, epochs=EPOCHS, batch=BATCH):
    """What a user writes by hand: nnx.Optimizer, nnx.value_and_grad, a Python loop, training
    mode for the steps and evaluation mode for the held-out metrics."""
    x, y, xt, yt = data
    k_model, k_order = jax.random.split(jax.random.key(seed))
    model = make(nnx.Rngs(k_model))
    model.train()
    opt = nnx.Optimizer(model, optax.sgd(lr, momentum=beta), wrt=nnx.Param)
    n = x.shape[0]
    order = jaxmom.batch_window(k_order, n, batch, 0, epochs * -(-n // batch))

    @nnx.jit
    def step(model, opt, idx, mask):
        def loss_fn(model):
            per = LOSS(model(x[idx]), y[idx])
            return jnp.sum(per * mask) / jnp.sum(mask)

        loss, grads = nnx.value_and_grad(loss_fn)(model)
        opt.update(model, grads)
        return loss

    losses = [float(step(model, opt, i, m)) for i, m in zip(order.indices, order.mask, strict=True)]
    model.eval()
    logits = model(xt)
    return np.array(losses), float(jnp.mean(LOSS(logits, yt))), float(jaxmom.accuracy(logits, yt))


def test_train_fn_equals_a_direct_nnx_loop(train_fn, data):
    res = jaxmom.grid_sweep(
        train_fn,
        {"beta": [0.0, 0.9], "learning_rate": [0.05, 0.2]},
        seeds=[0, 3],
        data=data,
        progress=False,
    )
    assert res["step_losses"].shape == (2, 2, 2, EPOCHS * 5)
    for i, beta in enumerate([0.0, 0.9]):
        for j, lr in enumerate([0.05, 0.2]):
            for k, seed in enumerate([0, 3]):
                losses, test_loss, acc = _direct_nnx_loop(beta, lr, seed, data)
                np.testing.assert_allclose(res["step_losses"][i, j, k], losses, rtol=2e-5)
                np.testing.assert_allclose(res["test_loss"][i, j, k], test_loss, rtol=2e-5)
                assert res["test_accuracy"][i, j, k] == pytest.approx(acc)
    # the epoch loss is the mean over the epoch's 70 real examples, the partial batch included
    step = np.asarray(res["step_losses"][1, 0, 0]).reshape(EPOCHS, 5)
    want = (step[:, :4].sum(1) * BATCH + step[:, 4] * 6) / 70
    np.testing.assert_allclose(res["epoch_losses"][1, 0, 0], want, rtol=1e-5)
    assert res["test_accuracy"][1, 1].mean() > 0.6  # it learned


def test_bad_inputs_are_named(train_fn, data):
    with pytest.raises(TypeError, match="loss must be callable"):
        jaxmom.nnx_train_fn(MLP, None, lambda **k: None, epochs=1, batch_size=4)
    with pytest.raises(ValueError, match="batch_size must be an integer"):
        jaxmom.nnx_train_fn(MLP, LOSS, lambda **k: None, epochs=1, batch_size=0)
    with pytest.raises(ValueError, match="data must be"):
        jaxmom.grid_sweep(
            train_fn, {"beta": [0.9], "learning_rate": [0.1]}, data=data[:3], progress=False
        )
    mean_loss = jaxmom.nnx_train_fn(
        MLP,
        lambda o, t: jnp.mean(LOSS(o, t)),
        lambda beta: jaxmom.sgd_momentum(0.1, beta),
        epochs=1,
        batch_size=BATCH,
    )
    with pytest.raises(ValueError, match="one value per example"):
        jaxmom.grid_sweep(mean_loss, {"beta": [0.9]}, data=data[:2], progress=False)


def _sgd(beta, learning_rate):
    return jaxmom.sgd_momentum(learning_rate, beta)


@pytest.mark.parametrize("make", [Regularized, CNN], ids=["dropout+batchnorm", "cnn digits"])
def test_dropout_and_batchnorm_train_as_a_direct_nnx_loop(make, data):
    if make is CNN:
        x, y, xt, yt = jaxmom.load_digits()
        data, epochs, batch = (x[:300], y[:300], xt[:100], yt[:100]), 2, 32
    else:
        epochs, batch = EPOCHS, BATCH
    train_fn = jaxmom.nnx_train_fn(
        make,
        LOSS,
        _sgd,
        epochs=epochs,
        batch_size=batch,
        metrics={"accuracy": jaxmom.accuracy},
        record_every=1,
    )
    res = jaxmom.grid_sweep(
        train_fn,
        {"beta": [0.9], "learning_rate": [0.05]},
        seeds=[0, 1],
        data=data,
        progress=False,
    )
    for k, seed in enumerate([0, 1]):
        losses, test_loss, acc = _direct_nnx_loop(0.9, 0.05, seed, data, make, epochs, batch)
        np.testing.assert_allclose(res["step_losses"][0, 0, k], losses, rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(res["test_loss"][0, 0, k], test_loss, rtol=1e-4)
        assert res["test_accuracy"][0, 0, k] == pytest.approx(acc)
    # the engine's run is a direct call of the train function
    hp = {"beta": jnp.float32(0.9), "learning_rate": jnp.float32(0.05)}
    direct = jax.jit(train_fn)(hp, jax.random.key(1), data)
    np.testing.assert_allclose(res["step_losses"][0, 0, 1], direct["step_losses"], rtol=1e-5)
    np.testing.assert_allclose(res["test_loss"][0, 0, 1], direct["test_loss"], rtol=1e-5)


def test_a_dropout_run_is_a_pure_function_of_its_key(data):
    train_fn = jax.jit(
        jaxmom.nnx_train_fn(Regularized, LOSS, _sgd, epochs=1, batch_size=BATCH, record_every=1)
    )
    hp = {"beta": jnp.float32(0.9), "learning_rate": jnp.float32(0.05)}
    a, b = (train_fn(hp, jax.random.key(2), data) for _ in range(2))
    np.testing.assert_array_equal(a["step_losses"], b["step_losses"])  # same key, same run
    c = train_fn(hp, jax.random.key(3), data)
    assert not np.allclose(a["step_losses"], c["step_losses"])
    # with the same key and dropout off (rate 0) the run differs: the training used dropout
    make = lambda rngs: _without_dropout(Regularized(rngs))  # noqa: E731
    no_drop = jax.jit(
        jaxmom.nnx_train_fn(make, LOSS, _sgd, epochs=1, batch_size=BATCH, record_every=1)
    )
    d = no_drop(hp, jax.random.key(2), data)
    assert not np.allclose(a["step_losses"], d["step_losses"])


def _without_dropout(model):
    model.drop.rate = 0.0
    return model
