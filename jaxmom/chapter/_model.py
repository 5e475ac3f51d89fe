"""The chapter's ``Net`` (section 5.5.1) as a Flax NNX module, and its parameters as a dict.

``hidden = Linear(1, 20)``, ReLU, ``predict = Linear(20, 1)``. Training works on the plain
nested dict of parameters (``nnx.split`` once, ``nnx.merge`` inside the pure functions).
"""

from __future__ import annotations

import functools
import itertools

import jax
import jax.numpy as jnp
from flax import nnx

from jaxmom.common import check_positive_int

INITS = ("torch", "flax")


def _torch_uniform(fan_in: int):
    """PyTorch's ``nn.Linear`` init for weight and bias: U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
    bound = 1.0 / fan_in**0.5

    def init(key, shape, dtype=jnp.float32):
        return jax.random.uniform(key, shape, dtype, -bound, bound)

    return init


def _linear(fan_in: int, fan_out: int, init: str, rngs: nnx.Rngs) -> nnx.Linear:
    if init == "torch":
        u = _torch_uniform(fan_in)
        return nnx.Linear(fan_in, fan_out, kernel_init=u, bias_init=u, rngs=rngs)
    return nnx.Linear(fan_in, fan_out, rngs=rngs)


class Net(nnx.Module):
    """The chapter's network: ``predict(relu(hidden(x)))``, 1 -> ``hidden`` -> 1.

    Args:
      hidden: width of the hidden layer (the chapter's 20).
      rngs: the ``nnx.Rngs`` its weights are drawn from.
      init: ``"torch"`` (PyTorch's ``nn.Linear`` initialisation, as the chapter) or ``"flax"``.

    Examples:
      >>> import jax.numpy as jnp, jaxmom
      >>> from flax import nnx
      >>> jaxmom.Net(rngs=nnx.Rngs(0))(jnp.zeros((5, 1))).shape
      (5, 1)
    """

    def __init__(self, hidden: int = 20, *, rngs: nnx.Rngs, init: str = "torch"):
        if init not in INITS:
            raise ValueError(f"init must be one of {INITS}, got init={init!r}")
        self.hidden = _linear(1, hidden, init, rngs)
        self.predict = _linear(hidden, 1, init, rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.predict(nnx.relu(self.hidden(x)))


def init_mlp(key: jax.Array, hidden: int = 20, init: str = "torch") -> dict:
    """Initial parameters of :class:`Net` as a plain nested dict.

    Args:
      key: a JAX PRNG key.
      hidden: width of the hidden layer (the chapter's 20).
      init: ``"torch"`` (default: weights and biases from U(-1/sqrt(fan_in), 1/sqrt(fan_in)),
        as PyTorch's ``nn.Linear``, which the chapter's curves come from) or ``"flax"``
        (Flax's default: LeCun-normal kernels, zero biases).

    Returns:
      ``{"hidden": {"kernel": [1, hidden], "bias": [hidden]},
      "predict": {"kernel": [hidden, 1], "bias": [1]}}``.
    """
    hidden = check_positive_int(hidden, "hidden")
    if init not in INITS:
        raise ValueError(f"init must be one of {INITS}, got init={init!r}")
    return _init_mlp(key, hidden, init)


@functools.partial(jax.jit, static_argnums=(1, 2))
def _init_mlp(key, hidden, init):
    model = Net(hidden, rngs=nnx.Rngs(params=key), init=init)
    return nnx.to_pure_dict(nnx.state(model, nnx.Param))


@functools.cache
def _graphdef(hidden: int):
    abstract = nnx.eval_shape(lambda: Net(hidden, rngs=nnx.Rngs(0)))
    return nnx.split(abstract, nnx.Param)[0]


def apply_mlp(params: dict, x: jax.Array) -> jax.Array:
    """``Net`` applied to ``x`` with the parameters ``params``, as a pure function.

    Args:
      params: a nested dict as :func:`init_mlp` returns.
      x: ``[batch, 1]`` inputs.

    Returns:
      ``[batch, 1]`` predictions.

    Examples:
      >>> import jax, jax.numpy as jnp, jaxmom
      >>> jaxmom.apply_mlp(jaxmom.init_mlp(jax.random.key(0)), jnp.zeros((3, 1))).shape
      (3, 1)
    """
    hidden = params["hidden"]["kernel"].shape[-1]
    return nnx.merge(_graphdef(hidden), params)(x)


class MLP(nnx.Module):
    """A plain multilayer perceptron: ``Linear`` layers of ``sizes``, ReLU between them.

    ``MLP(64, 128, 10, rngs=nnx.Rngs(0))`` is the digits experiment's classifier (Flax's default
    initialisation: LeCun-normal kernels, zero biases).

    Args:
      *sizes: the input size, the hidden widths and the output size (at least two).
      rngs: the ``nnx.Rngs`` its weights are drawn from.
    """

    def __init__(self, *sizes: int, rngs: nnx.Rngs):
        if len(sizes) < 2:
            raise ValueError(f"MLP needs at least an input and an output size, got {sizes}")
        sizes = [check_positive_int(s, "sizes") for s in sizes]
        self.layers = nnx.List([nnx.Linear(a, b, rngs=rngs) for a, b in itertools.pairwise(sizes)])

    def __call__(self, x: jax.Array) -> jax.Array:
        for layer in self.layers[:-1]:
            x = nnx.relu(layer(x))
        return self.layers[-1](x)
