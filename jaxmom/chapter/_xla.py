"""Compiler settings for the training programs.

On a CPU, XLA's default fusions for the small batched layers of the chapter's MLP (YNNPACK
reductions and the new fusion emitters) write every ``[runs, batch, hidden]`` intermediate to
memory; with both turned off for these programs a 1024-run sweep ran 1.9x faster on a 2-core
CPU. With the step written for fusion (:func:`jaxmom.mse_value_and_grad`), asking LLVM for
512-bit vectors (XLA asks for 256 by default) gave another 1.2x on an AVX-512 CPU; where the
CPU has narrower vectors LLVM splits them. Measurements: ``benchmarks/NOTES.md``. The options
are set per compilation, never process-wide, and only where the backend is a CPU and the
installed XLA knows them.

A small sweep spends most of its first call compiling: for one of at most
:data:`QUICK_MODEL_STEPS` model-steps (a tenth of a second of running here), ``quick=True``
asks XLA's backend for optimisation level 1, which compiled the chapter's block in a third of
the time (0.34 s against 1.0 s on a 2-core CPU) and ran it 1.3x slower. The choice follows
from the sweep's own size (its grid, seeds and steps), so a resumed sweep compiles its blocks
as the first call did, on any number of devices. A benchmark of the steady state sets the
threshold to 0 (``jaxmom bench`` does).
"""

from __future__ import annotations

import contextlib
import functools

import jax

CPU_OPTIONS: dict[str, str | bool | int] = {
    "xla_cpu_experimental_ynn_fusion_type": "",
    "xla_cpu_use_fusion_emitters": False,
    "xla_cpu_prefer_vector_width": 512,
}


@functools.cache
def _cpu_options_known() -> bool:
    try:
        jax.jit(lambda v: v + 1).lower(1.0).compile(CPU_OPTIONS)  # type: ignore[arg-type]
    except Exception:  # an XLA without these options: keep its defaults
        return False
    return True


#: Sweeps of at most this many model-steps (runs x steps) compile for speed of compiling.
QUICK_MODEL_STEPS = 1_000_000


def quick(model_steps: int) -> bool:
    """Whether a sweep of ``model_steps`` compiles at optimisation level 1 (see above)."""
    return model_steps <= QUICK_MODEL_STEPS


@contextlib.contextmanager
def fully_optimised():
    """Within it, every sweep compiles at XLA's full optimisation, whatever its size: what a
    benchmark of the steady state wants (``jaxmom bench`` times with it)."""
    global QUICK_MODEL_STEPS
    before, QUICK_MODEL_STEPS = QUICK_MODEL_STEPS, 0
    try:
        yield
    finally:
        QUICK_MODEL_STEPS = before


def compiler_options(quick: bool = False) -> dict | None:
    """The options for a training program on the default backend (``None``: XLA's defaults);
    ``quick``: a small program, compiled at optimisation level 1 (see above)."""
    if jax.default_backend() == "cpu" and _cpu_options_known():
        return dict(CPU_OPTIONS, **({"xla_backend_optimization_level": 1} if quick else {}))
    return None


def jit(fn, **kwargs):
    """``jax.jit`` with :func:`compiler_options`."""
    return jax.jit(fn, compiler_options=compiler_options(), **kwargs)
