"""How the library reports: progress bars (``progress=``) and lines (``log=``).

Every public function that reports takes ``progress: bool = True`` (its tqdm bars, and NNCF's
where it runs NNCF) and ``log: Callable[[str], None] | None = print`` (the function that receives
its human-readable lines; None: silent). ``line_sink`` turns ``log`` into a function to call;
``deprecated_keywords`` keeps the earlier spellings (``run_quantize(verbose=)``,
``run_pipeline(say=)``, ``evaluate_model(note=)``, ``export_model(nms_iou=)``) and the earlier
positional calls (``export_model(ckpt, "onnx", "out")``) working, with a DeprecationWarning: the
library's one shim for its changed signatures; ``renamed_attribute`` does the same for an attribute
read or set under its earlier name (``QuantizeOptions.nms_iou``).

Progress bars suit where they are written: live on a terminal, sparse lines in a log.
tqdm redraws a bar with carriage returns; in a log file (nohup, CI, ``> run.log 2>&1``) that
is hundreds of frames on one line. Off a terminal the bars here print one plain line at most
every ``LOG_INTERVAL_S`` seconds (and the last state), which a log reader can follow.
Work of unknown length (a live camera) has no bar: ``StatusLine`` is one line redrawn in place
on a terminal, and the same sparse plain lines in a log.
"""
from __future__ import annotations

import dataclasses
import functools
import inspect
import shutil
import sys
import time
import warnings
from typing import Any, Callable, Iterable, Sequence

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


def is_terminal(stream) -> bool:
    """Whether ``stream`` is a terminal (redrawing in place works there, not in a log file)."""
    return bool(getattr(stream, "isatty", lambda: False)())


def progress_bar(iterable: Iterable | None = None, **kw: Any) -> tqdm:
    """``tqdm(iterable, **kw)`` on a terminal; off one, a line every ``LOG_INTERVAL_S`` s.

    Iterate over it (``for x in progress_bar(xs)``: tqdm closes it as the loop is left, however),
    or, updated by hand, use it as a context (``with progress_bar(total=n) as bar:``). A bar left
    open by a Ctrl-C in its loop was closed only when Python freed the stopped frames, after the
    command's stop line: in a log, its last line then came below 'interrupted'."""
    stream = kw.pop("file", None) or sys.stderr
    if not is_terminal(stream):
        kw.setdefault("mininterval", LOG_INTERVAL_S)
        kw.setdefault("ncols", 100)  # no terminal to measure; keeps the lines short
        kw["leave"] = True  # a log keeps the last state (a terminal bar may vanish when done)
        stream = _Lines(stream)
    return tqdm(iterable, file=stream, **kw)


class StatusLine:
    """One line of live status (frames, rate) for work of unknown length.

    On a terminal the line is redrawn in place at most every ``interval`` seconds, cut to the
    terminal's width (a wrapped line cannot be redrawn with a carriage return); off one, a plain
    line at most every ``LOG_INTERVAL_S`` seconds. Ask ``due()`` before building the text, so a
    fast loop does not format lines nobody sees; ``close()`` ends the line, before a summary.
    """

    def __init__(self, file=None, enabled: bool = True, interval: float = 0.5) -> None:
        self.stream = file or sys.stderr
        self.enabled = enabled
        self.tty = is_terminal(self.stream)
        self.interval = interval if self.tty else LOG_INTERVAL_S
        self._next = 0.0  # the first call is due at once
        self._width = 0  # of the line on screen, to blank a longer earlier one

    def due(self, now: float | None = None) -> bool:
        """Whether ``show`` would write now."""
        return self.enabled and (time.monotonic() if now is None else now) >= self._next

    def show(self, text: str, now: float | None = None) -> None:
        """Write ``text`` if due (in place on a terminal, as a new line in a log)."""
        now = time.monotonic() if now is None else now
        if not self.due(now):
            return
        self._next = now + self.interval
        if not self.tty:
            self.stream.write(text + "\n")
        else:
            text = text[:max(20, shutil.get_terminal_size().columns - 1)]
            self.stream.write("\r" + text.ljust(self._width))
            self._width = len(text)
        self.stream.flush()

    def close(self) -> None:
        """End the line drawn in place, so what is printed next starts on a line of its own."""
        if self._width:
            self.stream.write("\n")
            self.stream.flush()
            self._width = 0


def _drop(line: str) -> None:
    """A ``log`` that keeps nothing."""


def counted(n: int, noun: str) -> str:
    """'1 detection', '3 detections', '0 frames': a count for a line a user reads."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


def first_few(items: Sequence[str], shown: int) -> str:
    """'a, b, c and 4 more': the first ``shown`` items of a list for a line a user reads."""
    more = len(items) - shown
    return ", ".join(items[:shown]) + (f" and {more} more" if more > 0 else "")


def line_sink(log: Callable[[str], None] | None) -> Callable[[str], None]:
    """``log`` as a function to call with each line: None (silent) becomes one that drops it."""
    return _drop if log is None else log


def _shown(value: object) -> str:
    return "print" if value is print else repr(value) if value is None or isinstance(value, bool) else "..."


def _call_name(fn: Callable) -> str:
    """How a warning names ``fn``'s call: ``Detections.to_list`` for a method, the class for its
    ``__init__`` (``QuantizeOptions(nms_iou=)``: a bare ``__init__`` or ``to_list`` says nothing of
    whose); a function defined inside another by its own name."""
    name = fn.__qualname__
    return fn.__name__ if "<locals>" in name else name.removesuffix(".__init__")


def deprecated_keywords(*moved: str, **aliases: Callable[[Any], dict[str, Any]]) -> Callable:
    """Decorator keeping earlier call forms working, each with a DeprecationWarning naming the new one.

    ``aliases[old](value)`` gives the new keywords that ``old=value`` stands for; an old keyword
    given with one of the new ones it maps to is a TypeError. ``moved`` names, in their earlier
    order, the parameters that were positional after the function's present positional ones and
    are now keyword-only: ``export_model(ckpt, "onnx", "out")`` under ``@deprecated_keywords("format",
    "out")`` is ``export_model(ckpt, format="onnx", out="out")``. One wrapper does both, so the
    warning points at the caller's line. On a method (or a dataclass's ``__init__``) ``self``
    counts among the present positional ones."""
    def wrap(fn: Callable) -> Callable:
        params = inspect.signature(fn).parameters.values()
        kept = sum(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) for p in params)
        name = _call_name(fn)

        @functools.wraps(fn)
        def call(*args: Any, **kwargs: Any) -> Any:
            if len(args) > kept + len(moved):
                raise TypeError(f"{name}() takes at most {kept + len(moved)} positional arguments "
                                f"({kept} without the deprecated ones) but {len(args)} were given")
            if len(args) > kept:
                names = moved[:len(args) - kept]
                both = [k for k in names if k in kwargs]
                if both:
                    raise TypeError(f"{name}() got multiple values for {', '.join(both)}")
                warnings.warn(f"{name}(): passing {', '.join(names)} by position is deprecated; pass "
                              f"{', '.join(f'{k}=' for k in names)} by keyword", DeprecationWarning, stacklevel=2)
                kwargs.update(zip(names, args[kept:]))
                args = args[:kept]
            for old, translate in aliases.items():
                if old not in kwargs:
                    continue
                new = translate(kwargs.pop(old))
                both = [k for k in new if k in kwargs]
                if both:
                    raise TypeError(f"{name}() got {old}= and {'= and '.join(both)}=; {old}= is the "
                                    f"deprecated spelling of {', '.join(f'{k}=' for k in new)}: pass only those"
                                    + _replace_hint(args, new))
                use = ", ".join(f"{k}={_shown(v)}" for k, v in new.items())
                warnings.warn(f"{name}({old}=) is deprecated; pass {use} instead", DeprecationWarning,
                              stacklevel=2)
                kwargs.update(new)
            return fn(*args, **kwargs)
        return call
    return wrap


def _replace_hint(args: tuple, new: dict[str, Any]) -> str:
    """For a dataclass's ``__init__``: ``dataclasses.replace(obj, nms_iou=0.5)`` passes every field,
    the new name's among them, so it lands in the conflict above though its caller gave one keyword.
    The wrapper cannot tell that call from ``QuantizeOptions(iou=0.45, nms_iou=0.6)``, which must stay
    an error; the message says what to write instead."""
    if not (args and dataclasses.is_dataclass(args[0])):
        return ""
    return (f"; from dataclasses.replace(), which passes every field, call replace(obj, "
            f"{', '.join(f'{k}=...' for k in new)}) instead")


def renamed(new: str) -> Callable[[Any], dict[str, Any]]:
    """An alias for ``deprecated_keywords``: the old keyword is ``new=`` under another name."""
    return lambda value: {new: value}


class renamed_attribute:
    """A class attribute standing for the attribute ``new`` under its earlier name: reading or
    setting ``obj.old`` reads or sets ``obj.new``, with a DeprecationWarning naming it
    (``QuantizeOptions.nms_iou is deprecated; use QuantizeOptions.iou instead``). Not annotated, so
    on a dataclass it is no field: ``fields()``, ``asdict()``, repr and == are the new names' alone.
    Not for a torch module: tracing reads every attribute ``dir()`` lists, and each read would warn."""

    def __init__(self, new: str) -> None:
        self.new = new
        self.message = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.message = f"{owner.__name__}.{name} is deprecated; use {owner.__name__}.{self.new} instead"

    def __get__(self, obj: object, owner: type | None = None) -> Any:
        if obj is None:
            return self  # looked up on the class (help(), inspect): no instance, no warning
        warnings.warn(self.message, DeprecationWarning, stacklevel=2)
        return getattr(obj, self.new)

    def __set__(self, obj: object, value: Any) -> None:
        warnings.warn(self.message, DeprecationWarning, stacklevel=2)
        setattr(obj, self.new, value)
