"""The engine's caches of traced and compiled programs, emptied at once."""

from __future__ import annotations

import jax

from jaxmom.engine import _blocks, _checks, _pool, _segments


def clear_caches() -> None:
    """Forgets every program the engine traced or compiled in this process (and JAX's own
    caches), so the next sweep or search compiles as a first call would: what a benchmark
    that times each method with its compilation wants.

    Args:
      None.

    Returns:
      ``None``.

    Examples:
      >>> import jaxmom
      >>> jaxmom.engine.clear_caches()
    """
    _blocks.COMPILED.clear()
    _blocks._PLACED.clear()
    _blocks.block_program.cache_clear()
    _checks._TRACED.clear()
    _pool._program.cache_clear()
    for program in (_segments.init_program, _segments.advance_program, _segments.finish_program):
        program.cache_clear()
    jax.clear_caches()
