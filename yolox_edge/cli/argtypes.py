"""argparse value types with ranges, so a bad number stops at parse time (exit 2, one line)
instead of as a traceback, or a silently odd run, minutes later."""
from __future__ import annotations

import argparse
from typing import Callable

from ..errors import MAX_INPUT_SIDE


def _int(s: str) -> int:
    try:
        return int(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, not {s!r}") from None


def _float(s: str) -> float:
    try:
        v = float(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, not {s!r}") from None
    if v != v:  # NaN passes every comparison below
        raise argparse.ArgumentTypeError(f"expected a number, not {s!r}")
    return v


def positive(s: str) -> int:
    """A whole number >= 1 (counts, sizes, threads)."""
    v = _int(s)
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, not {s!r}")
    return v


def app_count(s: str) -> int:
    """A whole number from 1 to 2^31-1: a count the Android app reads as a 32-bit int (--max-det)."""
    from ..thresholds import APP_INT_MAX

    v = _int(s)
    if not 1 <= v <= APP_INT_MAX:
        raise argparse.ArgumentTypeError(f"expected a whole number from 1 to {APP_INT_MAX} (the app reads it as "
                                          f"a 32-bit integer), not {s!r}")
    return v


def _sides(s: str) -> list[int]:
    """The whole numbers of ``S`` or ``WxH`` (one or two, each at least 1), or [] when ``s`` is not that."""
    parts = s.strip().lower().split("x")
    try:
        vals = [int(p) for p in parts]
    except ValueError:
        return []
    return vals if len(vals) in (1, 2) and min(vals) >= 1 else []


def img_size(s: str) -> int | tuple[int, int]:
    """``S`` (square, an int) or ``WIDTHxHEIGHT`` such as ``416x320`` (returned as (H, W), the
    order of ``PreprocessConfig.input_size``); ``416x416`` is 416. Multiples of the stride are
    checked later, where the model's strides are known."""
    vals = _sides(s)
    if vals and max(vals) > MAX_INPUT_SIDE:
        raise argparse.ArgumentTypeError(f"at most {MAX_INPUT_SIDE} pixels a side (memory grows with the square of "
                                         f"the size), not {s!r}; for larger images, tile them")
    if vals:
        if len(vals) == 1 or vals[0] == vals[1]:
            return vals[0]
        w, h = vals
        return h, w
    raise argparse.ArgumentTypeError(
        f"expected a size S (e.g. 416) or WIDTHxHEIGHT (e.g. 416x320), whole numbers of at least 1, not {s!r}")


def frame_size(s: str) -> tuple[int, int]:
    """``WIDTHxHEIGHT`` such as ``640x480``, returned as (width, height): a camera's frame size,
    which has no square shorthand (cameras give 4:3 or 16:9)."""
    vals = _sides(s)
    if len(vals) == 2:
        return vals[0], vals[1]
    raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT (e.g. 640x480), whole numbers of at least 1, not {s!r}")


def non_negative(s: str) -> int:
    """A whole number >= 0 (warm-up runs, layers kept in float)."""
    v = _int(s)
    if v < 0:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 0, not {s!r}")
    return v


def unit_interval(s: str) -> float:
    """A number in [0, 1] (score and IoU thresholds)."""
    v = _float(s)
    if not 0.0 <= v <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a number from 0 to 1, not {s!r}")
    return v


def positive_float(s: str) -> float:
    """A finite number > 0 (learning rates, --fps: 'inf' would pace nothing and write Infinity,
    which is not JSON)."""
    v = _float(s)
    if not 0 < v < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a finite number above 0, not {s!r}")
    return v


def non_negative_float(s: str) -> float:
    """A finite number >= 0 (percentages: a tolerance, a regression threshold)."""
    v = _float(s)
    if not 0 <= v < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a finite number of at least 0, not {s!r}")
    return v


def file_named(*suffixes: str) -> Callable[[str], str]:
    """An output file name ending in one of ``suffixes``: a report flag given a checkpoint's name
    (``--md model.pt``) replaced the checkpoint with a table."""
    def parse(s: str) -> str:
        if not s.lower().endswith(suffixes):
            raise argparse.ArgumentTypeError(f"expected a file name ending in {' or '.join(suffixes)}, not {s!r}")
        return s
    parse.__name__ = "file name"
    return parse


def int_list(minimum: int) -> Callable[[str], list[int]]:
    """A comma list of whole numbers, each >= ``minimum``, at least one."""
    def parse(s: str) -> list[int]:
        parts = [p.strip() for p in s.split(",") if p.strip()]
        try:
            vals = [int(p) for p in parts]
        except ValueError:
            vals = []
        if not vals or min(vals) < minimum:
            raise argparse.ArgumentTypeError(
                f"expected a comma list of whole numbers of at least {minimum} (e.g. 1,2), not {s!r}")
        return vals
    parse.__name__ = "int_list"  # argparse names the type in its messages
    return parse
