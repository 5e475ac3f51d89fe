"""A store's lock: one sweep (or one ``verify --repair``) writes a store at a time."""

from __future__ import annotations

import os
import socket
from pathlib import Path

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


class Lock:
    """An exclusive ``flock`` on ``PATH/.lock``; the owner's pid and host are written inside."""

    def __init__(self, path: Path):
        try:  # imported here, so that jaxmom imports where fcntl does not exist (Windows)
            import fcntl
        except ImportError:
            raise RuntimeError(
                f"writing the sweep store {str(path)!r} needs POSIX file locks (fcntl), which "
                "this platform lacks: sweep without out= (results stay in memory), or run "
                "under Linux, macOS or WSL"
            ) from None
        self.path = path / ".lock"
        try:  # never through a link: it could point anywhere outside the store
            self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT | _NOFOLLOW, 0o644)
        except OSError as e:
            if self.path.is_symlink():
                raise RuntimeError(
                    f"{str(self.path)!r} is a symbolic link, which jaxmom does not follow out of "
                    "its store: remove it, and the same command runs"
                ) from None
            raise RuntimeError(f"cannot open the lock {str(self.path)!r}: {e.strerror}") from None
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = os.pread(self.fd, 200, 0).decode(errors="replace").strip() or "unknown"
            os.close(self.fd)
            raise RuntimeError(
                f"the store {str(path)!r} is in use by another sweep ({owner}); wait for it to "
                "finish, or write to another path"
            ) from None
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, f"pid {os.getpid()} on {socket.gethostname()}".encode(), 0)

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing drops the flock
            self.fd = None  # type: ignore[assignment]
