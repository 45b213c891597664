"""Progress bars that suit where they are written: live on a terminal, sparse lines in a log.

tqdm redraws a bar with carriage returns; in a log file (nohup, CI, ``> run.log 2>&1``) that
is hundreds of frames on one line. Off a terminal the bars here print one plain line at most
every ``LOG_INTERVAL_S`` seconds (and the last state), which a log reader can follow.
"""
from __future__ import annotations

import sys
from typing import Any, Iterable

from tqdm import tqdm

LOG_INTERVAL_S = 30.0


class _Lines:
    """A file for tqdm that turns each redrawn frame into a line of its own."""

    def __init__(self, stream) -> None:
        self.stream = stream

    def write(self, s: str) -> None:
        text = s.replace("\r", "").strip()
        if text:  # tqdm also writes blank frames to clear a bar (leave=False)
            self.stream.write(text + "\n")

    def flush(self) -> None:
        self.stream.flush()


def progress_bar(iterable: Iterable | None = None, **kw: Any) -> tqdm:
    """``tqdm(iterable, **kw)`` on a terminal; off one, a line every ``LOG_INTERVAL_S`` s."""
    stream = kw.pop("file", None) or sys.stderr
    if not getattr(stream, "isatty", lambda: False)():
        kw.setdefault("mininterval", LOG_INTERVAL_S)
        kw.setdefault("ncols", 100)  # no terminal to measure; keeps the lines short
        kw["leave"] = True  # a log keeps the last state (a terminal bar may vanish when done)
        stream = _Lines(stream)
    return tqdm(iterable, file=stream, **kw)
