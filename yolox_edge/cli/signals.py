"""SIGTERM as a stop the CLI can report, like Ctrl-C.

systemd, ``docker stop`` and ``timeout`` send SIGTERM. Unhandled, it ends the process without a
word: a training run (its last.pt is intact, written atomically) gave no hint that --resume
continues it, and a live recording lost its MP4 index.
"""
from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from typing import Iterator


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where Python is when it comes, as Ctrl-C's KeyboardInterrupt is."""


@contextlib.contextmanager
def sigterm_stops() -> Iterator[None]:
    """SIGTERM raises Terminated for a while (signal handlers can only be set in the main thread)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum, frame):
        raise Terminated

    old = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


def finished(code: int) -> None:
    """From now on Ctrl-C and SIGTERM end the process at once with ``code``: for the process's own
    entry point only, once the command has returned and every output is in place.

    Python's teardown after the last line (torch's and NNCF's finalizers) took 0.5-1 s; a Ctrl-C
    in it printed a KeyboardInterrupt traceback from an atexit callback after a run that had
    written everything, and a SIGTERM made it exit 143. Ending at once (os._exit: nothing is left
    to write) keeps the command's status and keeps a stuck teardown stoppable, which ignoring the
    signals would not. In the last moments of the teardown Python puts the default handlers back."""
    if threading.current_thread() is not threading.main_thread():
        return
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()

    def leave(signum, frame) -> None:
        os._exit(code)

    signal.signal(signal.SIGINT, leave)
    signal.signal(signal.SIGTERM, leave)
