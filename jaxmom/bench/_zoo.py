"""The models of ``jaxmom bench --task models``: what users bring, on 8x8 digits (``[batch, 8,
8, 1]`` images, 10 classes), each a Flax NNX module built from ``nnx.Rngs``.

- ``mlp``: the digits MLP, 64 -> 64 -> 10;
- ``cnn``: the CNN of Flax's NNX MNIST tutorial (two 3x3 convolutions of 32 and 64 features,
  each followed by average pooling, then dense layers of 256 and 10); only the first dense
  layer's input changed, for 8x8 images;
- ``cnn_bn_dropout``: the same with BatchNorm after each convolution and Dropout (0.1) before
  the last layer;
- ``attention``: the 8 rows of a digit as 8 tokens of 8 pixels, embedded to 32, one
  ``nnx.MultiHeadAttention`` (4 heads) with a residual, mean-pooled, then a dense layer.

And the two loops users write to train them: :func:`flax_loop` (Flax's tutorial) and
:func:`vmap_scan` (a hand-written ``jax.jit(jax.vmap(scan))``).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from jaxmom.optim import sgd_momentum
from jaxmom.training import batch_window


class MLP(nnx.Module):
    def __init__(self, rngs: nnx.Rngs):
        self.hidden = nnx.Linear(64, 64, rngs=rngs)
        self.out = nnx.Linear(64, 10, rngs=rngs)

    def __call__(self, x):
        return self.out(nnx.relu(self.hidden(x.reshape(x.shape[0], -1))))


def _pool(x):
    return nnx.avg_pool(x, window_shape=(2, 2), strides=(2, 2))


class CNN(nnx.Module):
    def __init__(self, rngs: nnx.Rngs):
        self.conv1 = nnx.Conv(1, 32, kernel_size=(3, 3), rngs=rngs)
        self.conv2 = nnx.Conv(32, 64, kernel_size=(3, 3), rngs=rngs)
        self.linear1 = nnx.Linear(2 * 2 * 64, 256, rngs=rngs)
        self.linear2 = nnx.Linear(256, 10, rngs=rngs)

    def __call__(self, x):
        x = _pool(nnx.relu(self.conv1(x)))
        x = _pool(nnx.relu(self.conv2(x)))
        return self.linear2(nnx.relu(self.linear1(x.reshape(x.shape[0], -1))))


class CNNBatchNormDropout(nnx.Module):
    def __init__(self, rngs: nnx.Rngs):
        self.conv1 = nnx.Conv(1, 32, kernel_size=(3, 3), rngs=rngs)
        self.bn1 = nnx.BatchNorm(32, rngs=rngs)
        self.conv2 = nnx.Conv(32, 64, kernel_size=(3, 3), rngs=rngs)
        self.bn2 = nnx.BatchNorm(64, rngs=rngs)
        self.linear1 = nnx.Linear(2 * 2 * 64, 256, rngs=rngs)
        self.dropout = nnx.Dropout(0.1, rngs=rngs)
        self.linear2 = nnx.Linear(256, 10, rngs=rngs)

    def __call__(self, x):
        x = _pool(nnx.relu(self.bn1(self.conv1(x))))
        x = _pool(nnx.relu(self.bn2(self.conv2(x))))
        x = nnx.relu(self.linear1(x.reshape(x.shape[0], -1)))
        return self.linear2(self.dropout(x))


class Attention(nnx.Module):
    def __init__(self, rngs: nnx.Rngs):
        self.embed = nnx.Linear(8, 32, rngs=rngs)
        self.attention = nnx.MultiHeadAttention(4, 32, decode=False, rngs=rngs)
        self.out = nnx.Linear(32, 10, rngs=rngs)

    def __call__(self, x):
        tokens = self.embed(x.reshape(x.shape[0], 8, 8))
        tokens = tokens + self.attention(tokens)
        return self.out(jax.numpy.mean(nnx.relu(tokens), axis=1))


MODELS = {"mlp": MLP, "cnn": CNN, "cnn_bn_dropout": CNNBatchNormDropout, "attention": Attention}
BATCH = 32
LOSS = optax.softmax_cross_entropy_with_integer_labels


def optimizer(beta, learning_rate):
    return sgd_momentum(learning_rate, beta)


def digits():
    """The first 1,024 digits, ``[n, 8, 8, 1]`` in [0, 1] and their labels."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x = (d.images / 16.0).astype(np.float32)[:1024, ..., None]
    return jnp.asarray(x), jnp.asarray(d.target[:1024].astype(np.int32))


def hparams(n: int) -> dict:
    """``n`` runs' hyperparameters: beta 0.9, learning rates log-spaced in [0.01, 0.1]."""
    return {"beta": np.full(n, 0.9), "learning_rate": np.geomspace(0.01, 0.1, n)}


# the loops users write, beside which jaxmom is measured

_TX = optax.inject_hyperparams(sgd_momentum)(learning_rate=0.01, momentum=0.9)


@nnx.jit
def _train_step(m, opt, xb, yb):
    """The tutorial's train step."""

    def loss_fn(m):
        return jnp.mean(LOSS(m(xb), yb))

    loss, grads = nnx.value_and_grad(loss_fn)(m)
    opt.update(m, grads)
    return loss


def _keys(seed=0):
    return jax.random.split(jax.random.key(seed))


def _order(k_order, n: int, steps: int):
    return batch_window(k_order, n, BATCH, 0, steps, False).indices


def flax_loop(model, hp: dict, data, steps: int, runs: int) -> np.ndarray:
    """The tutorial's loop, run after run: ``[runs, steps]`` losses. Its batches are NumPy
    arrays, as a data loader gives them (an eager JAX gather a step cost milliseconds)."""
    x, y = np.asarray(data[0]), np.asarray(data[1])

    out = np.zeros((runs, steps), np.float32)
    for r in range(runs):
        k_model, k_order = _keys()
        m = model(nnx.Rngs(k_model))
        opt = nnx.Optimizer(m, _TX, wrt=nnx.Param)  # one optax object: one compiled step
        opt.opt_state.hyperparams["learning_rate"][...] = hp["learning_rate"][r]
        opt.opt_state.hyperparams["momentum"][...] = hp["beta"][r]
        order = np.asarray(_order(k_order, x.shape[0], steps))
        for t in range(steps):
            out[r, t] = _train_step(m, opt, x[order[t]], y[order[t]])
    return out


def vmap_scan(model, hp: dict, data, steps: int) -> jax.Array:
    """A hand-written ``jax.jit(jax.vmap(scan))`` over the runs: ``[runs, steps]`` losses."""
    fn = _vmap_scan(model, steps)
    return fn(jnp.float32(hp["beta"]), jnp.float32(hp["learning_rate"]), *data)


@functools.cache
def _vmap_scan(model, steps: int):
    def run(beta, learning_rate, x, y):
        k_model, k_order = _keys()
        graphdef, params, rest = nnx.split(model(nnx.Rngs(k_model)), nnx.Param, ...)
        opt = optimizer(beta, learning_rate)

        def step(carry, idx):
            params, rest, state = carry

            leaves, tree = jax.tree.flatten(rest)  # bare arrays: NNX makes the variables

            def loss_fn(p, leaves):
                m = nnx.merge(graphdef, p, jax.tree.unflatten(tree, leaves))
                return jnp.mean(LOSS(m(x[idx]), y[idx])), nnx.state(m, nnx.Not(nnx.Param))

            (loss, rest), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, leaves)
            updates, state = opt.update(grads, state, params)
            return (optax.apply_updates(params, updates), rest, state), loss

        order = _order(k_order, x.shape[0], steps)
        return jax.lax.scan(step, (params, rest, opt.init(params)), order)[1]

    return jax.jit(jax.vmap(run, in_axes=(0, 0, None, None)))
