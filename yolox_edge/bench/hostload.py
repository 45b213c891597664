"""How much of the bench's cores went to other work while it timed.

A latency measured while other processes ran, or while a VM's hypervisor gave the core to
another guest (*steal* time), does not repeat. Rows take turns, so such load spreads over
all rows within a run, but two runs of the same command can still differ by 20 % on a
shared host. The bench reads the kernel's CPU counters (/proc/stat) before and after the
timed runs, over the cores the process may use, and reports the share that was not its own,
so a reader can tell a run to trust from one to repeat. Where /proc/stat cannot be read
(Android apps since 8.0, macOS) the figure is unknown, not zero.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

from .cores import cpu_span

STAT_PATH = "/proc/stat"
# /proc/stat's columns after the cpu name; guest time is already counted in user and nice.
_FIELDS = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")
BUSY_WARN_PCT = 10.0  # other processes' share of the cores above which a run is flagged
STEAL_WARN_PCT = 5.0


@dataclass(frozen=True)
class CpuSample:
    """Kernel CPU counters (clock ticks, summed over ``cpus``) and this process's CPU time."""

    ticks: dict[str, int]
    own_s: float
    wall_s: float
    cpus: tuple[int, ...]


def read_cpu_ticks(cpus: set[int], path: str | Path = STAT_PATH) -> dict[str, int] | None:
    """The counters of /proc/stat's ``cpuN`` lines for ``cpus``, summed; None when unreadable."""
    try:
        text = Path(path).read_text()
    except OSError:
        return None
    total = dict.fromkeys(_FIELDS, 0)
    seen = 0
    for line in text.splitlines():
        name, _, rest = line.partition(" ")
        if not name.startswith("cpu") or not name[3:].isdigit() or int(name[3:]) not in cpus:
            continue
        values = rest.split()
        for k, v in zip(_FIELDS, values):  # old kernels have fewer columns (no steal)
            total[k] += int(v)
        seen += 1
    return total if seen else None


def sample(path: str | Path = STAT_PATH, *, children: bool = False) -> CpuSample | None:
    """Counters now, over the cores this process may run on. ``children``: its own time includes
    that of its child processes and theirs (``tree_cpu_s``: training's data workers), which would
    otherwise count as other processes' load."""
    cpus = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else set(range(os.cpu_count() or 1))
    ticks = read_cpu_ticks(cpus, path)
    if ticks is None:
        return None
    own = tree_cpu_s() if children else None
    return CpuSample(ticks, time.process_time() if own is None else own, time.perf_counter(), tuple(sorted(cpus)))


def tree_cpu_s(proc: str | Path = "/proc") -> float | None:
    """CPU seconds of this process and its descendants so far, those alive and those that ended;
    None where /proc cannot be read. Each process's /proc/PID/stat gives its own time and that of
    the children it has waited for, so summing the live ones of the tree counts each process once
    (a data worker forked by us, or by a forkserver, Python 3.14's default, that is our child)."""
    me = os.getpid()
    kids: dict[int, list[int]] = {}
    ticks: dict[int, int] = {}
    try:
        entries = [e.name for e in os.scandir(proc) if e.name.isdigit()]
    except OSError:
        return None
    for name in entries:
        try:
            text = Path(proc, name, "stat").read_text()
        except OSError:  # ended meanwhile, or not ours to read: not of our tree either way
            continue
        # the command name (field 2) may hold spaces and ')': the numbers start after the last ')'
        fields = text[text.rindex(")") + 2:].split()
        pid = int(name)
        kids.setdefault(int(fields[1]), []).append(pid)
        ticks[pid] = sum(int(v) for v in fields[11:15])  # utime, stime, cutime, cstime
    if me not in ticks:
        return None
    total, todo = 0, [me]
    while todo:
        pid = todo.pop()
        total += ticks[pid]
        todo.extend(kids.get(pid, ()))
    return total / os.sysconf("SC_CLK_TCK")


def host_load(start: CpuSample | None, end: CpuSample | None, *, hz: int | None = None) -> dict | None:
    """Between two samples: the share of the cores' time that other processes used and that the
    hypervisor stole, in %, and the window; None when either sample is missing or the window is
    under one tick per core."""
    if start is None or end is None or start.cpus != end.cpus:
        return None
    hz = hz or os.sysconf("SC_CLK_TCK")
    d = {k: end.ticks[k] - start.ticks[k] for k in _FIELDS}
    capacity = sum(d.values())  # every tick of every core in the window lands in one column
    if capacity < len(start.cpus):
        return None
    busy_s = (d["user"] + d["nice"] + d["system"] + d["irq"] + d["softirq"]) / hz
    # Ticks are sampled, so our own time can exceed the ticks charged by a little: clamp at 0.
    other_s = max(0.0, busy_s - (end.own_s - start.own_s))
    return {"window_s": round(end.wall_s - start.wall_s, 2), "cpus": list(start.cpus),
            "other_pct": round(100 * other_s * hz / capacity, 1), "steal_pct": round(100 * d["steal"] / capacity, 1)}


def host_load_warning(load: dict | None) -> str | None:
    """A line for the report when the cores were busy with other work during the timed runs."""
    if not load or (load["other_pct"] <= BUSY_WARN_PCT and load["steal_pct"] <= STEAL_WARN_PCT):
        return None
    return (f"Busy machine: while the bench timed, other processes used {load['other_pct']:.0f}% of cores "
            f"{cpu_span(load['cpus'])} and the hypervisor took {load['steal_pct']:.0f}% (steal). "
            "Latencies from this run may not repeat: close other apps (on a VM, a quieter host or time) and run again.")
