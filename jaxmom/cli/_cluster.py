"""A sweep over several processes, and the faults of one: a partner that never joins, a
partner that dies, a coordinator address that is not one.

JAX's distributed runtime ends such faults in a C++ abort: a partner that never joins aborts
process 0 after ``initialization_timeout`` (300 s by default), a dead partner makes the next
collective raise, and the interpreter's exit then waits for the dead process and aborts. Here:

* :func:`check_coordinator` checks ``HOST:PORT`` before JAX starts;
* :func:`join` waits ``init_timeout`` seconds for the others under a watchdog of its own, which
  ends the process with one line (exit 2) before JAX would abort it;
* :func:`stop` ends a process whose partner failed: one line, exit 2, at once (``os._exit``,
  not the interpreter's exit, which would wait for the dead partner).
"""

from __future__ import annotations

import os
import sys
import threading

#: Default seconds to wait for every process to join.
INIT_TIMEOUT = 30


def check_coordinator(text: str) -> str:
    """``text`` if it is ``HOST:PORT`` with a port in 1..65535, else ``ValueError`` naming it."""
    host, sep, port = str(text).rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"--coordinator must be HOST:PORT (e.g. 127.0.0.1:23456), got {text!r}")
    return text


def join(coordinator: str, num_processes: int, process_id: int, init_timeout: int) -> None:
    """``jax.distributed.initialize``, or one line and exit 2 if the others have not joined in
    ``init_timeout`` seconds."""
    import jax

    def give_up():
        stop(
            f"process {process_id}: the other processes did not join within {init_timeout} s "
            f"(coordinator {coordinator}, {num_processes} processes): start every one with the "
            f"same command and its --process-id 0..{num_processes - 1} (or a larger "
            "--init-timeout); nothing was computed"
        )

    watchdog = threading.Timer(init_timeout, give_up)
    watchdog.daemon = True
    watchdog.start()
    try:  # JAX's own deadline later than ours: its abort never comes first
        jax.distributed.initialize(
            coordinator, num_processes, process_id, initialization_timeout=init_timeout + 60
        )
    finally:
        watchdog.cancel()


def partner_failed(error: BaseException) -> bool:
    """Whether ``error`` says that another process of the sweep is gone."""
    text = str(error)
    return any(
        s in text
        for s in (
            "Gloo",
            "gloo",
            "Connection reset",
            "DEADLINE_EXCEEDED",
            "UNAVAILABLE",
            "Socket closed",
            "heartbeat",
            "coordination service",
        )
    )


def stop(message: str, code: int = 2) -> None:
    """Prints ``message`` (one line, the process's last) and ends the process now, skipping the
    interpreter's exit (whose ``jax.distributed.shutdown`` would wait for a dead partner, then
    abort)."""
    sys.stdout.flush()
    sys.stderr.flush()
    # JAX's runtime threads may still log (a dead peer's gRPC errors): from here on they write
    # to /dev/null, so the message is the process's last line.
    err = os.dup(2)
    os.dup2(os.open(os.devnull, os.O_WRONLY), 2)
    os.write(err, (message.replace("\n", " ") + "\n").encode())
    os._exit(code)
