"""Writes the stores of tests/data/stores_v0_4 (run once with jaxmom 0.4.0, before the move to
subpackages): a store written by 0.4 must resume with today's code (tests/test_layout.py).

    python tests/data/make_v04_stores.py tests/data/stores_v0_4
"""

import sys

import jax
import numpy as np
import optax
from flax import nnx

import jaxmom

N_TRAIN = 48


def nnx_setup():
    """A Dropout + BatchNorm NNX model on a slice of digits, and its task."""
    x, y, xt, yt = jaxmom.load_digits()

    class Model(nnx.Module):
        def __init__(self, rngs):
            self.a = nnx.Linear(64, 8, rngs=rngs)
            self.bn = nnx.BatchNorm(8, rngs=rngs)
            self.drop = nnx.Dropout(0.1, rngs=rngs)
            self.b = nnx.Linear(8, 10, rngs=rngs)

        def __call__(self, x):
            return self.b(self.drop(nnx.relu(self.bn(self.a(x)))))

    task = jaxmom.nnx_task(
        Model,
        optax.softmax_cross_entropy_with_integer_labels,
        lambda beta, learning_rate: jaxmom.sgd_momentum(learning_rate, beta),
        batch_size=16,
        metrics={"accuracy": jaxmom.accuracy},
        drop_last=True,
    )
    return task, (x[:N_TRAIN], y[:N_TRAIN], xt[:32], yt[:32])


NNX_TRIALS = {
    "beta": np.array([0.0, 0.5, 0.9], np.float32),
    "learning_rate": np.array([0.1, 0.05, 0.01], np.float32),
}
CHAPTER = {"betas": [0.0, 0.9], "learning_rates": (0.01, 0.1), "seeds": (0, 1), "epochs": 2}


def main(folder: str) -> None:
    jaxmom.sweep(**CHAPTER, out=f"{folder}/chapter.zarr", progress=False, chunk_size=2)
    task, data = nnx_setup()
    jaxmom.trial_sweep(
        task.train_fn(6),
        NNX_TRIALS,
        (0, 1),
        data=data,
        chunk_size=2,
        out=f"{folder}/nnx.zarr",
        progress=False,
    )
    print(jax.__version__, jaxmom.__version__)


if __name__ == "__main__":
    main(sys.argv[1])
