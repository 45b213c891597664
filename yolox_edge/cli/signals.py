"""SIGTERM as a stop the CLI can report, like Ctrl-C.

systemd, ``docker stop`` and ``timeout`` send SIGTERM. Unhandled, it ends the process without a
word: a training run (its last.pt is intact, written atomically) gave no hint that --resume
continues it, and a live recording lost its MP4 index.
"""
from __future__ import annotations

import contextlib
import signal
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
