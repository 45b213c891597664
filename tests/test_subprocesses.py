"""default_sigchld: SIG_DFL while our children run, the previous handler restored after."""
from __future__ import annotations

import signal
import subprocess
import sys
import threading

from yolox_edge.subprocesses import default_sigchld


def test_default_sigchld_around_a_child_then_restored():
    calls = []

    def handler(signum, frame):
        calls.append(signum)

    old = signal.signal(signal.SIGCHLD, handler)
    try:
        with default_sigchld():
            assert signal.getsignal(signal.SIGCHLD) is signal.SIG_DFL
            subprocess.run([sys.executable, "-c", "pass"], check=True)
        assert calls == []  # the child's exit never reached the foreign handler
        assert signal.getsignal(signal.SIGCHLD) is handler
        seen = []

        def in_thread():
            with default_sigchld():  # only the main thread may change handlers: a no-op here
                seen.append(signal.getsignal(signal.SIGCHLD))

        t = threading.Thread(target=in_thread)
        t.start()
        t.join()
        assert seen == [handler]
    finally:
        signal.signal(signal.SIGCHLD, old)
