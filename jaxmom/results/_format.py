"""The store's format names and where each output lives in it: the leaf both the store and
its integrity checks read."""

from __future__ import annotations

FORMAT = "jaxmom.sweep/3"
#: The format whose chunks carry crc32c checksums.
CHECKSUMMED = FORMAT
#: The formats this version reads and resumes (``/2``: jaxmom 0.2, outputs under ``out/``).
READABLE = ("jaxmom.sweep/2", FORMAT)


def array_name(output: str, fmt: str) -> str:
    """Where output ``output`` lives in a store of format ``fmt``."""
    return f"out/{output}" if fmt == "jaxmom.sweep/2" else output.replace("/", ".")
