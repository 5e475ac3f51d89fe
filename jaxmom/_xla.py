"""Compiler settings for the training programs.

On a CPU, XLA's default fusions for the small batched layers of the chapter's MLP (YNNPACK
reductions and the new fusion emitters) write every ``[runs, batch, hidden]`` intermediate to
memory; with both turned off for these programs a 1024-run sweep ran 1.9x faster on a 2-core
CPU. With the step written for fusion (:func:`jaxmom.mse_value_and_grad`), asking LLVM for
512-bit vectors (XLA asks for 256 by default) gave another 1.2x on an AVX-512 CPU; where the
CPU has narrower vectors LLVM splits them. Measurements: ``benchmarks/NOTES.md``. The options
are set per compilation, never process-wide, and only where the backend is a CPU and the
installed XLA knows them.
"""

from __future__ import annotations

import functools

import jax

CPU_OPTIONS = {
    "xla_cpu_experimental_ynn_fusion_type": "",
    "xla_cpu_use_fusion_emitters": False,
    "xla_cpu_prefer_vector_width": 512,
}


@functools.cache
def _cpu_options_known() -> bool:
    try:
        jax.jit(lambda v: v + 1).lower(1.0).compile(CPU_OPTIONS)
    except Exception:  # an XLA without these options: keep its defaults
        return False
    return True


def compiler_options() -> dict | None:
    """The options for a training program on the default backend (``None``: XLA's defaults)."""
    if jax.default_backend() == "cpu" and _cpu_options_known():
        return dict(CPU_OPTIONS)
    return None


def jit(fn, **kwargs):
    """``jax.jit`` with :func:`compiler_options`."""
    return jax.jit(fn, compiler_options=compiler_options(), **kwargs)
