"""Output paths: checked before any compute, written atomically with the usual permissions."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


def check_output_file(path: str | os.PathLike, name: str = "path") -> Path:
    """``path`` as a ``Path`` if a file can be written there, else a ``ValueError`` naming it.

    Refused: a missing or read-only folder, a parent that is not a folder, a path that is a
    folder, an existing file that cannot be replaced.
    """
    path = Path(path)
    check_parent(path, name)
    if path.is_dir():
        raise ValueError(f"{name} {str(path)!r} is a folder, not a file")
    if path.exists() and not os.access(path, os.W_OK):
        raise ValueError(f"{name} {str(path)!r} exists and is not writable")
    return path


def check_parent(path: Path, name: str) -> None:
    parent = path.absolute().parent
    if not parent.exists():
        raise ValueError(f"{name} {str(path)!r}: folder {str(parent)!r} does not exist")
    if not parent.is_dir():
        raise ValueError(f"{name} {str(path)!r}: {str(parent)!r} is not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ValueError(f"{name} {str(path)!r}: folder {str(parent)!r} is not writable")


def umask() -> int:
    """The process's umask, read without changing it (``/proc/self/status`` on Linux): setting
    it to 0 and back, the only portable way, would race with a thread creating files. Where
    there is no ``/proc``, a file made and removed tells it."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    with tempfile.TemporaryDirectory() as d:  # mkdir applies the umask to 0o777
        probe = Path(d) / "probe"
        probe.mkdir(0o777)
        return 0o777 & ~probe.stat().st_mode & 0o777


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike):
    """Yields a temporary path beside ``path``; on success it replaces ``path`` (mode 0666 less
    the umask, like ``open``), on failure it is removed. A reader never sees half a file."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.absolute().parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~umask())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Writes ``text`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return Path(path)
