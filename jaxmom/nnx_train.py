"""Any Flax NNX model as a :func:`jaxmom.grid_sweep` train function, in a few lines.

    train_fn = jaxmom.nnx_train_fn(
        lambda rngs: MLP(rngs),                                   # the model
        optax.softmax_cross_entropy_with_integer_labels,          # per-example loss
        lambda beta, learning_rate: jaxmom.sgd_momentum(learning_rate, beta),
        epochs=10, batch_size=32, metrics={"accuracy": jaxmom.accuracy},
    )
    res = jaxmom.grid_sweep(train_fn, {"beta": betas, "learning_rate": lrs}, seeds=range(4),
                            data=(x_train, y_train, x_test, y_test))

The run of ``key`` builds the model from ``nnx.Rngs(k_model)`` and its batch order from
``k_order`` (``k_model, k_order = jax.random.split(key)``, as :func:`jaxmom.seed_inputs`), so
both are computed once per seed for every grid point. The model is split once
(``nnx.split(model, nnx.Param, ...)``) and trained by :func:`jaxmom.train_scan`, the project's
one training loop, with autodiff's gradient of the masked mean loss, as Flax trains it:

* ``nnx.Param`` variables are trained by the optimizer;
* every other variable a layer updates (``nnx.BatchStat`` of ``BatchNorm``, the counters of
  ``nnx.Rngs`` streams) is carried from step to step, so each step draws fresh keys for
  ``Dropout`` from the run's own stream: a run stays a pure function of
  ``(hparams, key, data)``, and two seeds draw differently;
* the steps run in training mode (``model.train()``), the held-out metrics in evaluation mode
  (``model.eval()``: no dropout, ``BatchNorm`` on its running averages).

A padded last batch (``n`` not a multiple of ``batch_size``) is masked out of the loss, but a
layer that computes batch statistics sees its padding rows; ``drop_last=True`` drops that batch.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from jaxmom._checks import check_positive_int
from jaxmom.data import batch_order, steps_per_epoch
from jaxmom.training import masked_mean, train_scan


def accuracy(logits: jax.Array, labels: jax.Array) -> jax.Array:
    """The fraction of ``labels`` [n] (integers) that are the argmax of ``logits`` [n, classes]."""
    return jnp.mean(jnp.argmax(logits, axis=-1) == labels)


def nnx_train_fn(
    model: Callable[[nnx.Rngs], nnx.Module],
    loss: Callable[[jax.Array, jax.Array], jax.Array],
    optimizer: Callable[..., optax.GradientTransformation],
    *,
    epochs: int,
    batch_size: int,
    metrics: Mapping[str, Callable[[jax.Array, jax.Array], jax.Array]] | None = None,
    record_every: int = 0,
    return_params: bool = False,
    drop_last: bool = False,
):
    """A ``train_fn(hparams, key, data)`` for :func:`jaxmom.grid_sweep` that trains an NNX model.

    Args:
      model: ``rngs -> nnx.Module``, e.g. ``lambda rngs: nnx.Linear(64, 10, rngs=rngs)``.
      loss: ``(model output, targets) -> [batch]``, one loss per example (e.g.
        ``optax.softmax_cross_entropy_with_integer_labels``); a step minimises its mean over
        the batch's real examples (the last partial batch of an epoch is kept and masked).
      optimizer: called with the grid's hyperparameters by name (traced scalars), e.g.
        ``lambda beta, learning_rate: jaxmom.sgd_momentum(learning_rate, beta)``.
      epochs: passes over the training set; each reshuffles it.
      batch_size: examples a step.
      metrics: ``name -> fn(outputs, targets)`` evaluated on the held-out set after training,
        as outputs ``test_<name>`` (e.g. ``{"accuracy": jaxmom.accuracy}``).
      record_every: also output the loss of every k-th step as ``step_losses`` (0: not).
      return_params: also output the final parameters (``params/...``).
      drop_last: drop the last partial batch of each epoch instead of padding and masking it
        (for models with batch statistics, which would see the padding).

    Returns:
      ``train_fn(hparams, key, data)`` with ``data = (x, y)`` or ``(x, y, x_test, y_test)``,
      arrays with examples on their first axis. Its outputs: ``final_loss`` (the mean training
      loss of the last epoch), ``epoch_losses`` [epochs] and, with held-out data, ``test_loss``
      and ``test_<metric>``.
    """
    epochs = check_positive_int(epochs, "epochs")
    batch_size = check_positive_int(batch_size, "batch_size")
    record_every = check_positive_int(record_every, "record_every", minimum=0)
    metrics = dict(metrics or {})
    for name, fn in [("model", model), ("loss", loss), ("optimizer", optimizer)]:
        if not callable(fn):
            raise TypeError(f"{name} must be callable, got {fn!r}")

    def train_fn(hp, key, data):
        if len(data) not in (2, 4):
            raise ValueError(
                f"data must be (x, y) or (x, y, x_test, y_test), got {len(data)} arrays"
            )
        x, y = data[:2]
        n = x.shape[0]
        if y.shape[0] != n:
            raise ValueError(f"x and y must hold the same examples, got {x.shape} and {y.shape}")
        if batch_size > n:
            raise ValueError(f"batch_size={batch_size} is more than the {n} training examples")
        k_model, k_order = jax.random.split(key)
        module = model(nnx.Rngs(k_model))
        module.train()
        graphdef, params, rest = nnx.split(module, nnx.Param, ...)
        module.eval()
        eval_graphdef = nnx.graphdef(module)
        order = batch_order(k_order, n, batch_size, epochs, drop_last=drop_last)

        def value_and_grad(p, state, xb, yb, mask):
            # the state goes in as bare arrays, so that its variables are made (and may be
            # updated) inside the gradient's trace: NNX refuses to mutate a variable of another
            leaves, tree = jax.tree.flatten(state)

            def mean_loss(p, leaves):
                m = nnx.merge(graphdef, p, jax.tree.unflatten(tree, leaves))
                per_example = loss(m(xb), yb)
                if per_example.shape != (xb.shape[0],):
                    raise ValueError(
                        f"loss must give one value per example, shape ({xb.shape[0]},), got "
                        f"{per_example.shape}"
                    )
                return masked_mean(per_example, mask), nnx.split(m, nnx.Param, ...)[2]

            return jax.value_and_grad(mean_loss, has_aux=True)(p, leaves)

        res = train_scan(
            optimizer(**hp), params, order, (x, y), epochs,
            value_and_grad=value_and_grad, model_state=rest,
        )  # fmt: skip
        out = {"final_loss": res.epoch_losses[-1], "epoch_losses": res.epoch_losses}
        if record_every:
            out["step_losses"] = res.step_losses[::record_every]
        if len(data) == 4:
            x_test, y_test = data[2:]
            outputs = nnx.merge(eval_graphdef, res.params, res.model_state)(x_test)
            out["test_loss"] = jnp.mean(loss(outputs, y_test))
            for name, fn in metrics.items():
                out[f"test_{name}"] = fn(outputs, y_test)
        if return_params:
            out["params"] = res.params.to_pure_dict()
        return out

    train_fn.steps = lambda n: epochs * steps_per_epoch(n, batch_size, drop_last)
    return train_fn
