"""The lane pool: a fixed set of lanes on every device, each holding one (trial, seed) run of a
:class:`jaxmom.Task`, advanced a segment at a time by one compiled program.

The program takes, per slot (a trial's lanes, one per seed), its hyperparameters, a mode
(hold, a whole segment of ``steps`` steps, or a run's last, shorter segment of ``rest`` steps)
and a reset flag: a reset slot starts a new run from ``task.init`` (with ``jax.random.key`` of
its lane's seed, as :func:`jaxmom.trial_sweep` does) inside the same program, before it is
advanced. It gives back the state and ``task.evaluate`` of every lane. So a whole search, with
any number of trials, rungs and decisions, is one compiled program per pool size.

The state lives on the devices between calls, laid out as the engine's blocks are
(``[D, k, m, ...]``: devices, seeds, slots), with PRNG keys as their key data, so the host can
start it from zeros, save it and load it without compiling anything.
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from jaxmom.engine._blocks import _compile, _placed
from jaxmom.engine._checks import named_leaves
from jaxmom.engine._plans import STEP_COPIES, UNROLL_RUNS, Setting, choose
from jaxmom.engine._segments import SegmentForm, _each

HOLD, FULL, LAST = 0, 1, 2
#: Lanes per device when ``lanes=None``, at most (a search may fit a smaller pool).
DEFAULT_LANES = {"cpu": 64}
ACCELERATOR_LANES = 1024


class PoolSpec(NamedTuple):
    """What a pool's program computes: ``task``'s runs in segments of ``steps`` steps (and a
    last one of ``rest``, 0 for none), advanced by ``task.segment`` (``form="segments"``) or
    ``task.advance`` (``"scan"``), its lanes vmapped or unrolled (``vectorize``)."""

    task: Any
    steps: int
    rest: int
    form: str
    vectorize: str
    has_data: bool


def storable(a):
    """A state leaf as the pool keeps it: PRNG keys as their key data."""
    return jax.random.key_data(a) if jnp.issubdtype(a.dtype, jax.dtypes.prng_key) else a


def restore(like, a):
    """A kept leaf back in the type of ``like`` (a ``ShapeDtypeStruct`` of the task's state)."""
    if jnp.issubdtype(like.dtype, jax.dtypes.prng_key):
        impl = getattr(like.dtype, "_impl", None)
        return jax.random.wrap_key_data(a.astype(jnp.uint32), impl=impl)
    return a.astype(like.dtype)


def program_for(spec: PoolSpec, like, mesh):
    """The pool's program, the same object for the same task, state types and devices (so its
    compiled form is found again by a second search)."""
    leaves, tree = jax.tree.flatten(like)
    return _program(spec, tree, tuple(leaves), mesh)


@functools.lru_cache(maxsize=16)
def _program(spec: PoolSpec, tree, leaves, mesh):
    """``(state, hp, mode, reset, source, seeds, data) -> (state, {name: [D, k, m, ...]})``:
    first each slot takes the state of the slot ``source`` names (flat slot numbers; its own
    for none: population-based training's exploit), then the ``reset`` slots start anew."""
    like = jax.tree.unflatten(tree, leaves)
    task = spec.task
    advance = task.segment if spec.form == "segments" else task.advance
    form = SegmentForm(None, spec.has_data, False, spec.vectorize)
    mesh = mesh if spec.vectorize == "unroll" else None

    def kept(state):
        return jax.tree.map(storable, state)

    def fresh(h, seed, data):
        return kept(task.init(h[0], jax.random.key(seed), data))

    def one(h, _, data, s):
        hp, mode = h
        state = jax.tree.map(restore, like, s)
        if spec.rest:
            last = advance(state, hp, data, spec.rest)
            full = kept(advance(last, hp, data, spec.steps - spec.rest))
            pick = [mode == LAST, mode == FULL]
            new = jax.tree.map(lambda a, b, c: jnp.select(pick, [a, b], c), kept(last), full, s)
        else:
            full = kept(advance(state, hp, data, spec.steps))
            new = jax.tree.map(lambda b, c: jnp.where(mode == FULL, b, c), full, s)
        return new, named_leaves(task.evaluate(jax.tree.map(restore, like, new), hp, data))

    def program(state, hp, mode, reset, source, seeds, data):
        def copy(state):  # a gather by flat slot, over every device's slots
            def leaf(a):
                d, k, m = a.shape[:3]
                flat = jnp.swapaxes(a, 1, 2).reshape(d * m, k, *a.shape[3:])
                taken = flat[source.reshape(-1)].reshape(d, m, k, *a.shape[3:])
                return jnp.swapaxes(taken, 1, 2)

            return jax.tree.map(leaf, state)

        moved = source.reshape(-1) != jnp.arange(source.size)
        state = jax.lax.cond(moved.any(), copy, lambda s: s, state)

        def restart(state):
            new = _each(form, mesh, fresh, data, (hp, mode), seeds)
            mask = reset[:, None, :]  # [D, 1, m]: every seed of a slot
            return jax.tree.map(
                lambda n, o: jnp.where(mask.reshape(mask.shape + (1,) * (o.ndim - 3)), n, o),
                new,
                state,
            )

        state = jax.lax.cond(reset.any(), restart, lambda s: s, state)
        return _each(form, mesh, one, data, (hp, mode), seeds, state)

    return program


class Pool:
    """The lanes of ``slots`` slots on each of ``devices`` devices, with ``seeds`` (one lane
    per seed in every slot), and the one compiled program that advances them.

    ``like``: the task state's types; ``hp_dtypes``: the hyperparameters' dtypes by name.
    """

    def __init__(
        self, spec: PoolSpec, like, hp_dtypes: dict, seeds, data, devices: int, options=None
    ):
        self.spec, self.like, self.hp_dtypes = spec, like, hp_dtypes
        self.seeds = np.asarray(seeds, np.uint32)
        self.data = data
        self.n_devices = devices
        mesh = Mesh(np.array(jax.devices()[:devices]), ("blocks",))
        self.sharding = NamedSharding(mesh, P("blocks"))
        self.placed = _placed(data, NamedSharding(mesh, P()))
        self.program = program_for(spec, like, mesh)
        self.compiled: dict = {}
        self.options = dict(options or {})  # XLA's options, over CPU_OPTIONS on a CPU
        self.state = None
        self.slots = 0
        self.label = ""  # a few words for progress bars
        self.counts = dict(busy=0, computed=0)  # lane-steps run for a trial, and computed

    @property
    def capacity(self) -> int:
        """Slots over every device."""
        return self.slots * self.n_devices

    def zeros(self, slots: int) -> dict:
        """A host state of ``slots`` slots per device, all zeros (no lane holds a run)."""
        d, k = self.n_devices, len(self.seeds)
        kept = jax.eval_shape(lambda like: jax.tree.map(storable, like), self.like)
        return jax.tree.map(lambda a: np.zeros((d, k, slots, *a.shape), a.dtype), kept)

    def load(self, host_state) -> None:
        """Puts a host state (``[D, k, slots, ...]`` leaves) on the devices."""
        self.slots = jax.tree.leaves(host_state)[0].shape[2]
        self.state = jax.device_put(host_state, self.sharding)

    def host_state(self):
        """The state, copied to the host."""
        return jax.tree.map(np.asarray, self.state)

    def arrays(self) -> dict:
        """The state on the host as a checkpoint holds it: ``{"pool/i": leaf i}``."""
        return {f"pool/{i}": a for i, a in enumerate(jax.tree.leaves(self.host_state()))}

    def load_arrays(self, arrays: dict) -> None:
        """Puts back a state saved by :meth:`arrays`."""
        like = self.zeros(1)
        leaves = [arrays[f"pool/{i}"] for i in range(len(jax.tree.leaves(like)))]
        self.load(jax.tree.unflatten(jax.tree.structure(like), leaves))

    def run_to(self, hp: dict, live, count: int, end: int, reset=None, source=None):
        """Segments of the ``live`` slots from ``count`` steps to ``end`` (a last, shorter one
        where the spec's ``rest`` ends a run), the others held; ``reset`` and ``source`` apply
        to the first. Returns the last segment's outputs, as :meth:`step`'s."""
        spec = self.spec
        while count < end:
            last = bool(spec.rest) and end - count == spec.rest
            mode = np.where(live, LAST if last else FULL, HOLD)
            reset = np.zeros(self.capacity, bool) if reset is None else reset
            outs = self.step(hp, mode, reset, source)
            reset = source = None
            count += spec.rest if last else spec.steps
        return outs

    def step(self, hp: dict, mode: np.ndarray, reset: np.ndarray, source=None) -> dict:
        """One segment: ``hp`` ``{name: [capacity]}``, ``mode`` and ``reset`` ``[capacity]``
        (flat slots). Returns ``evaluate``'s outputs ``{name: [capacity, k, ...]}`` (host).
        ``source`` ``[capacity]``: the slot whose state each slot takes first (``None``: its
        own). ``counts`` adds the slot-steps it ran for a trial and those it computed."""
        d, m = self.n_devices, self.slots
        hp = {n: np.asarray(v, self.hp_dtypes[n]).reshape(d, m) for n, v in hp.items()}
        mode = np.asarray(mode, np.int32).reshape(d, m)
        reset = np.asarray(reset, bool).reshape(d, m)
        source = np.arange(d * m) if source is None else np.asarray(source)
        source = source.astype(np.int32).reshape(d, m)
        seeds = np.broadcast_to(self.seeds, (d, len(self.seeds)))
        inputs = jax.device_put((hp, mode, reset, source, seeds), self.sharding)
        args = (self.state, *inputs, self.placed)
        fn = self.compiled.get(m)
        if fn is None:
            options = self.options
            if jax.default_backend() == "cpu":
                options = {**CPU_OPTIONS, **options}
            local = len(self.sharding.addressable_devices)
            fn = _compile(self.program, args, options, local, self.sharding, donate=(0,))
            self.compiled[m] = fn
        self.state, outs = fn(*args)
        s = self.spec
        self.counts["busy"] += int(np.where(mode == FULL, s.steps, (mode == LAST) * s.rest).sum())
        self.counts["computed"] += self.capacity * s.steps
        outs = jax.device_get(outs)
        return {
            n: np.swapaxes(v, 1, 2).reshape(d * m, *v.shape[1:2], *v.shape[3:])
            for n, v in outs.items()
        }


#: XLA:CPU's backend at optimisation level 1 compiled the digits search's pool program in 1.7 s
#: instead of 3.5 s, and ran its segments as fast (7.2 against 7.1 ms, 16 lanes on 2 cores).
CPU_OPTIONS = {"xla_backend_optimization_level": 1}


def layout(setting: tuple, forced, lanes: int | None, fit):
    """A search's pool: its program (a :class:`PoolSpec`, ``has_data`` left to the caller),
    the plan (``block_runs`` the lanes per device) and the slots per device.

    ``setting``: ``(task, the primitives of its run, seeds, runs, rung steps)``; ``forced``:
    the :class:`jaxmom.Plan` given; ``lanes``: lanes per device given, or ``None`` for the
    platform's cap, lowered to ``fit(segment_steps, devices)`` slots per device."""
    task, primitives, k, runs, rungs = setting
    platform = jax.default_backend()
    rule = Setting(
        segmentable=task.segment is not None,
        convolution="conv_general_dilated" in primitives,
        platform=platform,
        n_devices=jax.device_count(),
        steps=rungs[-1],
        runs=runs,
    )
    chosen = choose(forced, rule, 1)
    unrolled = chosen.vectorize == "unroll"
    cap = lanes or (UNROLL_RUNS if unrolled else DEFAULT_LANES.get(platform, ACCELERATOR_LANES))
    per_device = max(1, cap // k)
    budget = rungs[0]
    if chosen.form == "segments":
        budget = max(1, STEP_COPIES // (per_device * k if unrolled else 1))
    steps = forced.segment_steps or max(d for d in range(1, budget + 1) if rungs[0] % d == 0)
    if rungs[0] % steps:
        raise ValueError(f"plan segment_steps={steps} must divide min_steps={rungs[0]}")
    if lanes is None:
        per_device = max(1, min(per_device, fit(steps, chosen.devices)))
    chosen = chosen._replace(block_runs=per_device * k, segment_steps=steps)
    spec = PoolSpec(task, steps, rungs[-1] % steps, chosen.form, chosen.vectorize, False)
    return spec, chosen, per_device
