"""How the library reports: progress bars (``progress=``) and lines (``log=``).

Every public function that reports takes ``progress: bool = True`` (its tqdm bars, and NNCF's
where it runs NNCF) and ``log: Callable[[str], None] | None = print`` (the function that receives
its human-readable lines; None: silent). ``line_sink`` turns ``log`` into a function to call;
``deprecated_keywords`` keeps the earlier spellings (``run_quantize(verbose=)``,
``run_pipeline(say=)``, ``evaluate_model(note=)``) working, with a DeprecationWarning.

Progress bars suit where they are written: live on a terminal, sparse lines in a log.
tqdm redraws a bar with carriage returns; in a log file (nohup, CI, ``> run.log 2>&1``) that
is hundreds of frames on one line. Off a terminal the bars here print one plain line at most
every ``LOG_INTERVAL_S`` seconds (and the last state), which a log reader can follow.
"""
from __future__ import annotations

import functools
import sys
import warnings
from typing import Any, Callable, Iterable

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


def _drop(line: str) -> None:
    """A ``log`` that keeps nothing."""


def line_sink(log: Callable[[str], None] | None) -> Callable[[str], None]:
    """``log`` as a function to call with each line: None (silent) becomes one that drops it."""
    return _drop if log is None else log


def _shown(value: object) -> str:
    return "print" if value is print else repr(value) if value is None or isinstance(value, bool) else "..."


def deprecated_keywords(**aliases: Callable[[Any], dict[str, Any]]) -> Callable:
    """Decorator keeping old keyword names working: ``aliases[old](value)`` gives the new keywords
    that ``old=value`` stands for. An old keyword warns (DeprecationWarning naming the new ones);
    an old keyword given with one of the new ones it maps to is a TypeError."""
    def wrap(fn: Callable) -> Callable:
        @functools.wraps(fn)
        def call(*args: Any, **kwargs: Any) -> Any:
            for old, translate in aliases.items():
                if old not in kwargs:
                    continue
                new = translate(kwargs.pop(old))
                both = [k for k in new if k in kwargs]
                if both:
                    raise TypeError(f"{fn.__name__}() got {old}= and {'= and '.join(both)}=; {old}= is the "
                                    f"deprecated spelling of {', '.join(f'{k}=' for k in new)}: pass only those")
                use = ", ".join(f"{k}={_shown(v)}" for k, v in new.items())
                warnings.warn(f"{fn.__name__}({old}=) is deprecated; pass {use} instead", DeprecationWarning,
                              stacklevel=2)
                kwargs.update(new)
            return fn(*args, **kwargs)
        return call
    return wrap
