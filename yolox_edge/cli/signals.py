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


def finished() -> None:
    """From now on Ctrl-C and SIGTERM are ignored: for the process's own entry point only, once the
    command has returned and every output is in place, so the process ends with its exit status.

    Python's teardown after the last line (torch's and NNCF's finalizers) took 0.5-1 s; a Ctrl-C
    in it printed a KeyboardInterrupt traceback from an atexit callback after a run that had
    written everything, or (once Python had put the default handlers back) ended the process by
    SIGINT without a word, exit 130 after quantize or convert had finished. Ignored, not handled:
    a Python handler is reset to the default before the teardown ends. kill -9 still ends it."""
    if threading.current_thread() is not threading.main_thread():
        return
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
