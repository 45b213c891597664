"""Running child processes from a process that may have used torch DataLoader workers."""
from __future__ import annotations

import contextlib
import signal
import threading
from typing import Iterator


@contextlib.contextmanager
def default_sigchld() -> Iterator[None]:
    """Default SIGCHLD disposition while we start and wait for our own children.

    A torch DataLoader with worker processes leaves its SIGCHLD handler installed in the
    main process for good; when a child of ours exited (or was killed) under it, the
    process died with SIGSEGV inside waitpid (seen with pnnx after training, and with a
    killed training child in the test suite). Only the main thread may set handlers.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    try:
        yield
    finally:
        signal.signal(signal.SIGCHLD, old)
