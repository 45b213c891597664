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


# Other processes' share of the cores torch's threads run on above which training (the first
# epoch), quantize and convert say how to run beside them. Not the bench's 10 %: none is timed to the
# millisecond, and a desktop's background work (an editor, a browser) often takes that much of a
# small machine without torch's threads stalling. They stall when another process holds a core
# one of them needs, and each parallel step then waits for the slowest; a quarter (half a core of
# a 2-core machine) is well above background work and below a CPU-bound job beside them, such as
# the test suite that README's slowdowns were measured beside.
BUSY_CPU_PCT = 25.0


def taken_from_threads_pct(load: dict | None, threads: int) -> float:
    """Percent of the cores ``threads`` torch threads run on that other processes took (``load``:
    ``bench.hostload.host_load``'s reading over the cores this process may use); 0 without a
    reading or for one thread (it waits for no other). Other work on the cores the threads leave
    free takes nothing from them: only what exceeds those counts."""
    if not load or threads < 2:
        return 0.0
    cores = len(load["cpus"])
    threads = min(threads, cores)
    others = load["other_pct"] / 100 * cores  # in cores
    return 100 * max(0.0, others - (cores - threads)) / threads


def cpu_load_sample():
    """``bench.hostload.sample(children=True)`` (this process's workers counted as its own), or None
    where it cannot be read (not Linux): a reading of the machine's load must not end a run."""
    try:
        from .bench import hostload  # imported when first used: the bench package loads the runtimes

        return hostload.sample(children=True)
    except Exception:
        return None


def cpu_load_since(start) -> dict | None:
    """``bench.hostload.host_load`` from ``start`` (``cpu_load_sample``) to now, or None."""
    if start is None:
        return None
    try:
        from .bench import hostload

        return hostload.host_load(start, hostload.sample(children=True))
    except Exception:
        return None


def torch_thread_count() -> int:
    """torch's thread count now (torch imported when first asked)."""
    import torch

    return torch.get_num_threads()


def busy_watch():
    """A load sample to compare against after a run of torch work (``busy_cpu_line``), or None when
    there is nothing to say, so nothing is measured: torch at one thread waits for no other, and
    OMP_WAIT_POLICY set is the user's own choice."""
    import os

    if "OMP_WAIT_POLICY" in os.environ or torch_thread_count() < 2:
        return None
    return cpu_load_sample()


def busy_cpu_line(load: dict | None, threads: int, *, during: str, measured: str, fix: str) -> str | None:
    """The note a command says after its torch work when other processes took more than
    ``BUSY_CPU_PCT`` of the cores its ``threads`` threads ran on (``load``: ``cpu_load_since``'s
    reading), else None: ``during`` what (``"while quantizing"``), what was ``measured`` beside other
    work, and the ``fix`` flag to try besides OMP_WAIT_POLICY=PASSIVE."""
    if taken_from_threads_pct(load, threads) <= BUSY_CPU_PCT:
        return None
    return (f"note: other processes used {load['other_pct']:.0f}% of the {len(load['cpus'])} cores {during}; "
            f"beside other work torch's threads wait for each other ({measured}): try {fix} or "
            "OMP_WAIT_POLICY=PASSIVE in the environment")

