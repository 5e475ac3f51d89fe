"""Any Flax NNX model as a :class:`jaxmom.Task` or a :func:`jaxmom.grid_sweep` train function.

    train_fn = jaxmom.nnx_train_fn(
        lambda rngs: MLP(rngs),                                   # the model
        optax.softmax_cross_entropy_with_integer_labels,          # per-example loss
        lambda beta, learning_rate: jaxmom.sgd_momentum(learning_rate, beta),
        epochs=10, batch_size=32, metrics={"accuracy": jaxmom.accuracy},
    )
    res = jaxmom.grid_sweep(train_fn, {"beta": betas, "learning_rate": lrs}, seeds=range(4),
                            data=(x_train, y_train, x_test, y_test))

The run of ``key`` builds the model from ``nnx.Rngs(k_model)`` and its batch order from
``k_order`` (``k_model, k_order = jax.random.split(key)``): the batches of step ``t`` are those
of :func:`jaxmom.batch_window` (epoch ``e`` shuffled with ``fold_in(k_order, e)``), so they
depend on the key and the step alone, and a run advanced in pieces (:func:`nnx_task`, for
successive halving) is the run trained at once. The model is built, and the first epochs'
order drawn, once per seed for every grid point. The model is split once
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

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from jaxmom.common import check_positive_int
from jaxmom.training._batches import batch_window, steps_per_epoch
from jaxmom.training._loop import epoch_means, masked_mean, train_scan
from jaxmom.training._task import Segments, Task


def accuracy(logits: jax.Array, labels: jax.Array) -> jax.Array:
    """The fraction of ``labels`` that are the argmax of ``logits``: a metric of
    :func:`nnx_task`.

    Args:
      logits: ``[n, classes]``.
      labels: ``[n]`` integers.

    Returns:
      A scalar in [0, 1].

    Examples:
      >>> import jax.numpy as jnp, jaxmom
      >>> float(jaxmom.accuracy(jnp.array([[0.0, 1.0], [2.0, 1.0]]), jnp.array([1, 1])))
      0.5
    """
    return jnp.mean(jnp.argmax(logits, axis=-1) == labels)


def nnx_task(
    model: Callable[[nnx.Rngs], nnx.Module],
    loss: Callable[[jax.Array, jax.Array], jax.Array],
    optimizer: Callable[..., optax.GradientTransformation],
    *,
    batch_size: int,
    metrics: Mapping[str, Callable[[jax.Array, jax.Array], jax.Array]] | None = None,
    drop_last: bool = False,
) -> NNXTask:
    """A :class:`jaxmom.Task` that trains a Flax NNX model: a run that can be paused.

    Args:
      model: ``rngs -> nnx.Module``, e.g. ``lambda rngs: nnx.Linear(64, 10, rngs=rngs)``.
      loss: ``(model output, targets) -> [batch]``, one loss per example (e.g.
        ``optax.softmax_cross_entropy_with_integer_labels``); a step minimises its mean over
        the batch's real examples (the last partial batch of an epoch is kept and masked).
      optimizer: called with the hyperparameters by name (traced scalars), e.g.
        ``lambda beta, learning_rate: jaxmom.sgd_momentum(learning_rate, beta)``.
      batch_size: examples a step.
      metrics: ``name -> fn(outputs, targets)`` evaluated on the held-out set, as outputs
        ``test_<name>`` (e.g. ``{"accuracy": jaxmom.accuracy}``).
      drop_last: drop the last partial batch of each epoch instead of padding and masking it
        (for models with batch statistics, which would see the padding).

    Returns:
      An :class:`NNXTask`. Its ``data`` is ``(x, y)`` or ``(x, y, x_test, y_test)``, arrays
      with examples on their first axis (the held-out pair may be a validation split). Its
      state: the parameters, the rest of the model's state, the optimizer's state, the order
      key, the step and the epoch's running loss. ``evaluate`` gives ``final_loss`` (the mean
      training loss of the last finished epoch; before one has finished, of the steps so far)
      and, with held-out data, ``test_loss`` and ``test_<metric>``.
    """
    batch_size = check_positive_int(batch_size, "batch_size")
    metrics = dict(metrics or {})
    for name, fn in [("model", model), ("loss", loss), ("optimizer", optimizer)]:
        if not callable(fn):
            raise TypeError(f"{name} must be callable, got {fn!r}")

    @functools.cache
    def graphdefs():
        """The model's structure in training and in evaluation mode (no arrays made)."""
        abstract = nnx.eval_shape(lambda: model(nnx.Rngs(0)))
        abstract.train()
        train_def = nnx.graphdef(abstract)
        abstract.eval()
        return train_def, nnx.graphdef(abstract)

    def init(hp, key, data):
        _check_data(data, batch_size)
        k_model, k_order = jax.random.split(key)
        module = model(nnx.Rngs(k_model))
        module.train()
        _, params, rest = nnx.split(module, nnx.Param, ...)
        zero = jnp.zeros((), jnp.float32)
        running = {"sum": zero, "count": zero, "last": zero, "epochs": jnp.zeros((), jnp.int32)}
        opt_state = optimizer(**hp).init(params)
        step = jnp.zeros((), jnp.int32)
        return dict(params=params, model=rest, opt=opt_state, key=k_order, step=step, loss=running)

    def run(state, hp, data, steps: int, unroll: bool = False):
        """``advance``, and the step losses and batch sizes of the steps it ran (``unroll``:
        the steps written out, :class:`jaxmom.Task`'s ``segment``)."""
        x, y = _check_data(data, batch_size)
        n = x.shape[0]
        order = batch_window(state["key"], n, batch_size, state["step"], steps, drop_last)
        res = train_scan(
            optimizer(**hp),
            state["params"],
            order,
            (x, y),
            1,
            opt_state=state["opt"],
            value_and_grad=_value_and_grad(graphdefs()[0], loss),
            model_state=state["model"],
            unroll=unroll,
        )
        counts = order.mask.sum(axis=1).astype(jnp.float32)
        spe = steps_per_epoch(n, batch_size, drop_last)
        running = _epoch_running_loss(state["loss"], state["step"], res.step_losses, counts, spe)
        new = dict(state, params=res.params, model=res.model_state, opt=res.opt_state)
        new.update(step=state["step"] + steps, loss=running)
        return new, res.step_losses, counts

    def advance(state, hp, data, steps: int):
        return run(state, hp, data, check_positive_int(steps, "steps"))[0]

    def segment(state, hp, data, steps: int):
        return run(state, hp, data, check_positive_int(steps, "steps"), unroll=True)[0]

    def evaluate(state, hp, data):
        running = state["loss"]
        partial = running["sum"] / jnp.maximum(running["count"], 1.0)
        out = {"final_loss": jnp.where(running["epochs"] > 0, running["last"], partial)}
        if len(data) == 4:
            x_test, y_test = data[2:]
            outputs = nnx.merge(graphdefs()[1], state["params"], state["model"])(x_test)
            out["test_loss"] = jnp.mean(loss(outputs, y_test))
            for name, fn in metrics.items():
                out[f"test_{name}"] = fn(outputs, y_test)
        return out

    spe = functools.partial(steps_per_epoch, batch_size=batch_size, drop_last=drop_last)
    return NNXTask(init, advance, evaluate, segment, run=run, steps_per_epoch=spe)


@dataclass(frozen=True, eq=False)
class NNXTask(Task):
    """:func:`nnx_task`'s task: a :class:`jaxmom.Task` whose :meth:`train_fn` can also record
    the epoch and step losses and the final parameters. Made by :func:`nnx_task`, not by hand.

    Args:
      init, advance, evaluate: as :class:`jaxmom.Task`'s.
      run: the whole training as one function, with its per-step losses.
      steps_per_epoch: ``n -> `` the steps of one epoch over ``n`` examples.
    """

    run: Callable | None = None
    steps_per_epoch: Callable | None = None  # n -> steps of one epoch

    def train_fn(
        self,
        steps: int | None = None,
        *,
        epochs: int | None = None,
        record_every: int = 0,
        return_params: bool = False,
    ) -> Callable:
        """``train_fn(hparams, key, data)`` of a run of ``steps`` steps, or ``epochs`` epochs
        (whose steps follow from the data's size). Its outputs: ``evaluate``'s, and with
        ``epochs`` ``epoch_losses`` [epochs] (the mean training loss of each); with
        ``record_every=k`` the loss of every k-th step (``step_losses``); with
        ``return_params`` the final parameters (``params/...``)."""
        if (steps is None) == (epochs is None):
            raise ValueError(f"give steps or epochs, got steps={steps!r}, epochs={epochs!r}")
        if steps is not None:
            steps = check_positive_int(steps, "steps")
        if epochs is not None:
            epochs = check_positive_int(epochs, "epochs")
        record_every = check_positive_int(record_every, "record_every", minimum=0)
        return _nnx_train_fn(self, steps, epochs, record_every, bool(return_params))


@functools.cache
def _nnx_train_fn(task: NNXTask, steps, epochs, record_every: int, return_params: bool):
    task_run: Callable = task.run  # type: ignore[assignment]

    def n_steps(n):
        return steps if epochs is None else epochs * task.steps_per_epoch(n)

    def total_steps(data):
        return n_steps(_check_data(data, 1)[0].shape[0])

    def train_fn(hp, key, data):
        start = task.init(hp, key, data)
        state, step_losses, counts = task_run(start, hp, data, total_steps(data))
        return _outputs(state, hp, data, step_losses, counts)

    def seg_init(hp, key, data, carry):
        zeros = jnp.zeros((total_steps(data),), jnp.float32)
        return dict(run=task.init(hp, key, data), losses=zeros, counts=zeros)

    def seg_advance(state, hp, data, steps: int):
        run, step_losses, counts = task_run(state["run"], hp, data, steps, unroll=True)
        start = state["run"]["step"]
        put = functools.partial(jax.lax.dynamic_update_slice_in_dim, start_index=start, axis=0)
        losses = put(state["losses"], step_losses.astype(jnp.float32))
        return dict(run=run, losses=losses, counts=put(state["counts"], counts))

    def seg_finish(state, hp, data):
        return _outputs(state["run"], hp, data, state["losses"], state["counts"])

    def _outputs(state, hp, data, step_losses, counts):
        out = task.evaluate(state, hp, data)
        if epochs is not None:
            out["epoch_losses"] = epoch_means(step_losses, counts, epochs)
        if record_every:
            out["step_losses"] = step_losses[::record_every]
        if return_params:
            out["params"] = state["params"].to_pure_dict()
        return out

    train_fn.steps = n_steps  # type: ignore[attr-defined]
    train_fn.segments = Segments(seg_init, seg_advance, seg_finish, total_steps)  # type: ignore[attr-defined]
    return train_fn


def _check_data(data, batch_size: int):
    if data is None or len(data) not in (2, 4):
        got = "None" if data is None else f"{len(data)} arrays"
        raise ValueError(f"data must be (x, y) or (x, y, x_test, y_test), got {got}")
    x, y = data[:2]
    n = x.shape[0]
    if y.shape[0] != n:
        raise ValueError(f"x and y must hold the same examples, got {x.shape} and {y.shape}")
    if batch_size > n:
        raise ValueError(f"batch_size={batch_size} is more than the {n} training examples")
    return x, y


def _value_and_grad(graphdef, loss):
    """A step's ``((mean loss, model state), grads)`` for :func:`jaxmom.train_scan`."""

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

    return value_and_grad


def _epoch_running_loss(running, start, step_losses, counts, spe: int):
    """The running epoch loss after the steps ``start ..`` of ``step_losses``: ``sum`` and
    ``count`` of the epoch under way, ``last`` the mean of the last finished one, ``epochs``
    how many have finished."""
    steps = step_losses.shape[0]
    t = start + jnp.arange(steps)
    seg = t // spe - start // spe  # the window's epochs, 0 the one under way at start
    n_seg = -(-steps // spe) + 1
    sums = jax.ops.segment_sum(step_losses * counts, seg, n_seg).at[0].add(running["sum"])
    cnts = jax.ops.segment_sum(counts, seg, n_seg).at[0].add(running["count"])
    ends = (t + 1) % spe == 0
    last_seg = jnp.max(jnp.where(ends, seg, -1))
    safe = jnp.maximum(last_seg, 0)
    last = jnp.where(last_seg >= 0, sums[safe] / jnp.maximum(cnts[safe], 1.0), running["last"])
    finished = running["epochs"] + jnp.sum(ends).astype(jnp.int32)
    now = (start + steps) // spe - start // spe  # the epoch under way after the window
    return {"sum": sums[now], "count": cnts[now], "last": last, "epochs": finished}


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
    """A ``train_fn(hparams, key, data)`` for :func:`jaxmom.grid_sweep` that trains an NNX model
    ``epochs`` epochs: ``nnx_task(model, loss, optimizer, batch_size=..., metrics=...,
    drop_last=...).train_fn(epochs=epochs, record_every=..., return_params=...)``.

    Its outputs: ``final_loss`` (the mean training loss of the last epoch), ``epoch_losses``
    [epochs], with held-out data ``test_loss`` and ``test_<metric>``, and as asked
    ``step_losses`` (every ``record_every``-th step) and ``params/...``. See :func:`nnx_task`.

    Args:
      model, loss, optimizer, batch_size, metrics, drop_last: as :func:`nnx_task`'s.
      epochs: epochs each run trains.
      record_every: keep the loss of every k-th step (0: none).
      return_params: also return the final parameters, as ``params/...`` outputs.

    Returns:
      ``train_fn(hparams, key, data) -> {name: array}``.
    """
    epochs = check_positive_int(epochs, "epochs")
    task = nnx_task(
        model, loss, optimizer, batch_size=batch_size, metrics=metrics, drop_last=drop_last
    )
    return task.train_fn(epochs=epochs, record_every=record_every, return_params=return_params)
