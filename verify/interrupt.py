"""Ctrl-C and SIGTERM: stop within seconds, cancel running probes, still write the reports.

A verifier run can sit for minutes in probes (RBAC propagation waits, Run Command). When
the user presses Ctrl-C, or CI cancels the job with SIGTERM, the run must stop promptly
AND leave things tidy: the probe processes killed, the reports written and marked
INTERRUPTED, and no temporary file behind (the sandbox's TLS key, stashed tokens, probe
outputs). Python's default SIGTERM kills the process without running any of that, so
both signals get one handler here that:

* sets :data:`CANCELLED`, which every probe launcher polls (verify.targets.probing), so a
  running probe child is killed within a fraction of a second;
* raises :class:`Interrupted` in the main thread, once, so the runner unwinds through its
  ``finally`` blocks and the CLI writes the reports;
* ignores further signals while that cleanup runs, so a second Ctrl-C cannot cut it short.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

#: Set once a stop was asked for; launchers poll it and kill what they started.
CANCELLED = threading.Event()
#: Seconds between polls of :data:`CANCELLED` while waiting for a probe process.
POLL_SECONDS = 0.1
EXIT_CODES = {"SIGINT": 130, "SIGTERM": 143}


class Interrupted(KeyboardInterrupt):
    """The run was stopped by a signal; ``signal_name`` says which."""

    def __init__(self, signal_name: str) -> None:
        super().__init__(signal_name)
        self.signal_name = signal_name

    @property
    def exit_code(self) -> int:
        return EXIT_CODES.get(self.signal_name, 130)


class CancelledError(RuntimeError):
    """A probe was stopped because the run was interrupted."""


def check_cancelled(what: str) -> None:
    """Raise :class:`CancelledError` if the run was interrupted (call before starting work)."""
    if CANCELLED.is_set():
        raise CancelledError(f"{what}: cancelled, the run was interrupted")


@contextmanager
def interruptible() -> Iterator[None]:
    """SIGINT and SIGTERM raise :class:`Interrupted` (once) inside the block.

    Only the main thread may install signal handlers; elsewhere (a test calling the CLI
    from a worker thread) the block runs with the handlers it has.
    """
    CANCELLED.clear()
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    fired: list[str] = []

    def handler(signum: int, frame: FrameType | None) -> None:
        CANCELLED.set()
        if fired:  # already unwinding: let the cleanup finish
            return
        name = signal.Signals(signum).name
        fired.append(name)
        raise Interrupted(name)

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def fast_exit(code: int) -> None:
    """Run the exit callbacks (multiprocessing removes its fork-server directory there),
    flush, and end the process without the interpreter's slow teardown."""
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)
