"""Fingerprints: short hashes that name what a store holds."""

from __future__ import annotations

import hashlib

import numpy as np


def fingerprint(text: str, arrays) -> str:
    """16 hex digits of SHA-256 over ``text`` and each array's shape, dtype and bytes."""
    h = hashlib.sha256(text.encode())
    for leaf in arrays:
        a = np.asarray(leaf)
        h.update(f"{a.shape}{a.dtype}".encode())
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()[:16]
