"""Old keyword spellings, kept for one minor version with a warning that names the new one."""

from __future__ import annotations

import warnings

#: The release from which an old spelling is refused.
REMOVED_IN = "0.6"


def renamed(fn: str, old_kwargs: dict, renames: dict[str, str]) -> dict:
    """``{new name: value}`` for each old spelling in ``old_kwargs`` (a function's ``**kwargs``),
    each with a ``DeprecationWarning`` naming the new one; any other name is the ``TypeError``
    Python would raise."""
    out = {}
    for old, value in old_kwargs.items():
        if old not in renames:
            raise TypeError(f"{fn}() got an unexpected keyword argument {old!r}")
        new = renames[old]
        warnings.warn(
            f"{fn}({old}=...) is deprecated: use {new}= (the old name stops working in "
            f"jaxmom {REMOVED_IN})",
            DeprecationWarning,
            stacklevel=3,
        )
        out[new] = value
    return out
