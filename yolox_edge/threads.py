"""torch's and OpenCV's thread counts are process-wide: library calls that change them give them back."""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

from .errors import BadArgument


def check_threads(threads: object) -> None:
    """BadArgument unless ``threads`` is None (the library's own count) or a whole number >= 1."""
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
        raise BadArgument(f"threads must be a whole number of at least 1 (None: each library's own count), not {threads!r}")


@contextmanager
def torch_threads(n: int | None = None) -> Iterator[None]:
    """Run the block with torch at ``n`` threads (None or 0: as it is) and put the caller's count
    back afterwards, also when the block changed it itself (``train.threads``). Nothing is set
    when nothing changed, so a per-inference call costs two reads."""
    import torch

    before = torch.get_num_threads()
    if n and n != before:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)


@contextmanager
def cpu_threads(n: int | None = None) -> Iterator[None]:
    """``torch_threads(n)`` with OpenCV's thread pool at ``n`` too (None or 0: as it is), both put
    back afterwards: for work that decodes and resizes images with OpenCV (a calibration set),
    whose pool otherwise takes every core whatever ``train.threads`` says."""
    import cv2

    before = cv2.getNumThreads()
    if n and n != before:
        cv2.setNumThreads(n)
    try:
        with torch_threads(n):
            yield
    finally:
        if cv2.getNumThreads() != before:
            cv2.setNumThreads(before)
