"""Ready-made training tasks for sweeps and benchmarks, beyond the chapter's toy.

:func:`digits`: scikit-learn's handwritten digits, an NNX MLP 64 -> ``hidden`` -> 10 with ReLU,
cross-entropy, ``sgd_momentum(learning_rate, beta)`` over the grid axes ``beta`` and
``learning_rate``; outputs ``final_loss``, ``epoch_losses``, ``test_loss``, ``test_accuracy``.
"""

from __future__ import annotations

import optax

from jaxmom.chapter._model import MLP
from jaxmom.optim import sgd_momentum
from jaxmom.training import accuracy, load_digits, nnx_train_fn

#: The digits task's loss, one value per example.
DIGITS_LOSS = optax.softmax_cross_entropy_with_integer_labels


def digits_model(rngs, hidden: int = 128) -> MLP:
    """The digits task's classifier: an MLP 64 -> ``hidden`` -> 10."""
    return MLP(64, hidden, 10, rngs=rngs)


def digits_optimizer(beta, learning_rate):
    return sgd_momentum(learning_rate, beta)


def digits(epochs: int = 5, batch_size: int = 32, hidden: int = 128, **kwargs):
    """The digits experiment's task: an MLP on scikit-learn's digits, trained with
    :func:`jaxmom.sgd_momentum`.

    Args:
      epochs, batch_size: the training's length and batches.
      hidden: the MLP's width.
      **kwargs: for :func:`jaxmom.nnx_train_fn` (``record_every``, ``return_params``).

    Returns:
      ``(train_fn, data)`` for :func:`jaxmom.grid_sweep` over ``beta`` and ``learning_rate``.
    """
    train_fn = nnx_train_fn(
        lambda rngs: digits_model(rngs, hidden),
        DIGITS_LOSS,
        digits_optimizer,
        epochs=epochs,
        batch_size=batch_size,
        metrics={"accuracy": accuracy},
        **kwargs,
    )
    return train_fn, load_digits()
