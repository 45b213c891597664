"""Progress bars: live on a terminal, a few plain lines in a log file."""
from __future__ import annotations

import io

from yolox_edge.progress import progress_bar


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_log_gets_lines_not_carriage_return_frames() -> None:
    log = io.StringIO()
    for _ in progress_bar(range(500), desc="eval", file=log, leave=False):  # the last state stays in a log
        pass
    text = log.getvalue()
    assert "\r" not in text
    lines = text.splitlines()
    assert 1 <= len(lines) <= 3 and lines[-1].startswith("eval: 100%") and "500/500" in lines[-1]


def test_a_terminal_gets_the_live_bar() -> None:
    tty = _Tty()
    for _ in progress_bar(range(50), desc="eval", file=tty, mininterval=0):
        pass
    assert tty.getvalue().count("\r") > 10  # redrawn in place


def test_disabled_writes_nothing() -> None:
    log = io.StringIO()
    for _ in progress_bar(range(5), file=log, disable=True):
        pass
    assert log.getvalue() == ""
