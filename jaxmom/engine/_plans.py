"""How a sweep's steps run: its :class:`Plan`, chosen per model and platform by a rule, or
forced with ``plan=``.

A plan never changes which runs a sweep computes, only how: the same runs, and a store resumes
under any plan (its fingerprint holds the computation, not the plan). What it sets:

* ``form``: ``"scan"``, every step of a block in one compiled ``lax.scan``; or ``"segments"``,
  a host loop over one compiled program of a few steps written out (no ``while`` loop), for
  train functions that carry :class:`jaxmom.training.Segments` (:meth:`jaxmom.Task.train_fn`
  of a task with ``segment``, :func:`jaxmom.nnx_task`, :func:`jaxmom.nnx_train_fn`);
* ``vectorize``: ``"vmap"``, a block's runs vectorized; or ``"unroll"``, written one after
  another in the program (XLA runs their independent operations side by side);
* ``devices``: how many devices share the blocks (never more than there are blocks: a device
  is never given a copy of another's work);
* ``block_runs``: runs per block (a store keeps the block it was created with);
* ``segment_steps``: steps per segment.

The rule (``benchmarks/models_cpu_2core.json``, docs/performance.md): on a CPU, a run with a
convolution runs in segments, its runs unrolled 4 per block (inside a ``while`` loop XLA:CPU
takes a slow path for a convolution's weight gradient, and a vmapped convolution is slower per
run than separate ones); everything else, and every run on an accelerator, is one ``scan``,
vmapped. Both use every device.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

from jaxmom.common import check_positive_int

FORMS = ("scan", "segments")
VECTORIZE = ("vmap", "unroll")
#: Runs per block when they are unrolled, and the step copies one segment program may hold
#: (its compile time grows with them).
UNROLL_RUNS = 4
STEP_COPIES = 16


class Plan(NamedTuple):
    """How a sweep runs (see :mod:`jaxmom.engine._plans`), as ``plan=`` forces it: ``None``
    fields are chosen by the rule, so ``jaxmom.Plan(form="segments")`` forces one field and
    leaves the rest to it.

    Attributes:
      form: ``"scan"`` or ``"segments"``.
      vectorize: ``"vmap"`` or ``"unroll"`` (segments only).
      devices: devices that share the blocks.
      block_runs: runs per block, per device and call.
      segment_steps: steps per segment.
    """

    form: str | None = None
    vectorize: str | None = None
    devices: int | None = None
    block_runs: int | None = None
    segment_steps: int | None = None


class Chosen(NamedTuple):
    """The plan a sweep runs, every field decided (``segment_steps`` 0 for a scan), and why."""

    form: str
    vectorize: str
    devices: int
    block_runs: int
    segment_steps: int
    reason: str

    def describe(self) -> str:
        """A few words for the progress bar, e.g. ``"segments of 4, 4 unrolled, 1 device"``."""
        form = "scan" if self.form == "scan" else f"segments of {self.segment_steps}"
        runs = f"{self.block_runs} {'unrolled' if self.vectorize == 'unroll' else 'vmapped'}"
        return f"{form}, {runs}, {self.devices} device{'s' if self.devices != 1 else ''}"


def check_plan(plan) -> Plan:
    """``plan=`` as a :class:`Plan`: ``None``/``"auto"`` (the rule), ``"scan"``/``"segments"``
    (the form), a :class:`Plan` or a mapping of its fields. A clear error names a bad value."""
    if plan is None or plan == "auto":
        return Plan()
    if isinstance(plan, str):
        if plan not in FORMS:
            raise ValueError(f"plan must be 'auto', one of {FORMS} or a jaxmom.Plan, got {plan!r}")
        return Plan(form=plan)
    if isinstance(plan, Mapping) and not isinstance(plan, Plan):
        unknown = sorted(set(plan) - set(Plan._fields))
        if unknown:
            raise ValueError(f"plan has no field {unknown[0]!r}; its fields are {Plan._fields}")
        plan = Plan(**plan)
    if not isinstance(plan, Plan):
        raise TypeError(f"plan must be 'auto', one of {FORMS} or a jaxmom.Plan, got {plan!r}")
    if plan.form is not None and plan.form not in FORMS:
        raise ValueError(f"plan form must be one of {FORMS}, got {plan.form!r}")
    if plan.vectorize is not None and plan.vectorize not in VECTORIZE:
        raise ValueError(f"plan vectorize must be one of {VECTORIZE}, got {plan.vectorize!r}")
    for name in ("devices", "block_runs", "segment_steps"):
        value = getattr(plan, name)
        if value is not None:
            check_positive_int(value, f"plan {name}")
    return plan


class Setting(NamedTuple):
    """What the rule looks at: whether the train function has segments and a convolution, the
    platform, the devices there are, the steps of a run (0 when unknown) and the runs."""

    segmentable: bool
    convolution: bool
    platform: str
    n_devices: int
    steps: int
    runs: int


def choose(plan: Plan, setting: Setting, default_block: int) -> Chosen:
    """The plan a sweep runs, and why: the given fields, the rest by the rule."""
    s = setting
    conv_cpu = s.convolution and s.platform == "cpu"
    if plan.form == "segments" and not s.segmentable:
        raise ValueError(
            "plan form 'segments' needs a train function cut into segments (Task.train_fn of a "
            "task with segment=, jaxmom.nnx_task, jaxmom.nnx_train_fn); this one runs as a scan"
        )
    if plan.devices is not None and plan.devices > s.n_devices:
        raise ValueError(f"plan devices={plan.devices} is more than the {s.n_devices} there are")
    if conv_cpu:
        reason = "a convolution on a CPU: segments written out, runs unrolled"
    else:
        reason = "no convolution on a CPU: one scan, vmapped"
    form = plan.form or ("segments" if conv_cpu and s.segmentable else "scan")
    if plan.vectorize == "unroll" and form != "segments":
        raise ValueError("plan vectorize 'unroll' needs form 'segments' (a scan vmaps its runs)")
    vectorize = plan.vectorize or ("unroll" if conv_cpu and form == "segments" else "vmap")
    devices = plan.devices or s.n_devices
    block_runs = plan.block_runs or (UNROLL_RUNS if vectorize == "unroll" else default_block)
    block_runs = min(block_runs, -(-s.runs // devices))  # every device it uses has a block
    steps = 0
    if form == "segments":
        copies = block_runs if vectorize == "unroll" else 1
        steps = plan.segment_steps or segment_steps(s.steps, max(1, STEP_COPIES // copies))
    if any(getattr(plan, f) is not None for f in Plan._fields):
        reason = "forced: " + ", ".join(
            f"{f}={getattr(plan, f)!r}" for f in Plan._fields if getattr(plan, f) is not None
        )
    return Chosen(form, vectorize, devices, block_runs, steps, reason)


def segment_steps(total: int, budget: int) -> int:
    """Steps per segment: at most ``budget``, a divisor of ``total`` (no second program for a
    remainder) unless that would halve the segment."""
    if total <= budget:
        return max(total, 1)
    for k in range(budget, max(budget // 2, 1) - 1, -1):
        if total % k == 0:
            return k
    return budget
