"""A search's folder on the lane pool: ``search.json`` (what the search is: refused on resume
with other settings) and its checkpoint, ``checkpoint.npz``: the host's bookkeeping and the
pool's lanes at a segment boundary, checksummed. The one before it is kept as
``checkpoint.prev.npz`` until the next is whole, so a kill or a damaged file at any moment
loses at most the segments since the last checkpoint, never the search.
"""

from __future__ import annotations

import hashlib
import os
import re
import time
from pathlib import Path

import numpy as np

from jaxmom.common import check_parent
from jaxmom.engine._halving_folder import claim
from jaxmom.results import CANNOT_WRITE

MARK = "search.json"
CHECKPOINT, PREVIOUS = "checkpoint.npz", "checkpoint.prev.npz"
OURS = re.compile(r"(search\.json|checkpoint(\.prev)?\.npz|\..*\.(partial|tmp))")


def open_search(path, record: dict, name: str = "out") -> Path:
    """``path`` as a search's folder: created (a new folder in a writable one) or, when a
    search wrote it, checked to hold this one (``record``)."""
    path = Path(path)
    if not path.exists():
        check_parent(path, name)
    elif not path.is_dir():
        raise ValueError(f"{name} {str(path)!r} is a file, not a search's folder")
    elif not (path / MARK).is_file():
        if any(not OURS.fullmatch(p.name) for p in path.iterdir()):
            raise ValueError(f"{name} {str(path)!r} exists and is not a search's folder")
    claim(path, record, MARK, "a search")
    return path


def _digest(arrays: dict) -> str:
    h = hashlib.sha256()
    for k in sorted(arrays):
        a = np.ascontiguousarray(arrays[k])
        h.update(f"{k}:{a.dtype.str}:{a.shape};".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def save(path: Path, arrays: dict) -> None:
    """Writes a checkpoint atomically (a temporary file, synced, renamed), keeping the one
    before it until this one is in place; a disk that cannot take it is one line."""
    tmp = path / f".{CHECKPOINT}.tmp"
    try:
        with open(tmp, "wb") as f:
            np.savez(f, __digest__=np.array(_digest(arrays)), **arrays)
            f.flush()
            os.fsync(f.fileno())
        if (path / CHECKPOINT).exists():
            os.replace(path / CHECKPOINT, path / PREVIOUS)
        os.replace(tmp, path / CHECKPOINT)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        if e.errno not in CANNOT_WRITE:
            raise
        raise OSError(
            e.errno,
            f"writing the search's checkpoint in {str(path)!r} failed: {e.strerror or e}; the "
            f"last one is kept (nothing before it is lost), and the same call resumes from it "
            "once it can write there",
        ) from None


class Checkpoints:
    """Saves a search's checkpoints to ``path`` (``None``: none) every ``seconds`` and never
    more than a tenth of the time (a search of millions of trials rewrites its records less
    often), or when forced (at the end)."""

    def __init__(self, path: Path | None, seconds: float):
        self.path, self.seconds = path, seconds
        self.last, self.took = time.perf_counter(), 0.0  # the last one's end and its time

    def __call__(self, arrays, force: bool = False) -> None:
        """``arrays()`` gives what to save."""
        wait = max(self.seconds, 10 * self.took)
        if self.path is not None and (force or time.perf_counter() - self.last >= wait):
            t = time.perf_counter()
            save(self.path, arrays())
            self.last = time.perf_counter()
            self.took = self.last - t


def load(path: Path) -> dict | None:
    """The newest whole checkpoint's arrays, or ``None`` for a search not begun. A damaged
    newest one falls back to the one before; both damaged is an error that says what to do."""
    problems = []
    for name in (CHECKPOINT, PREVIOUS):
        file = path / name
        if not file.exists():
            continue
        try:
            with np.load(file, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
            digest = str(arrays.pop("__digest__"))
            if digest != _digest(arrays):
                raise ValueError("its checksum does not match")
            return arrays
        except Exception as e:  # a truncated zip, a bad member, a wrong checksum
            problems.append(f"{name}: {e}")
    if problems:
        raise ValueError(
            f"the checkpoints of the search in {str(path)!r} are damaged ({'; '.join(problems)}):"
            " delete them to run the search again from the start"
        )
    return None
