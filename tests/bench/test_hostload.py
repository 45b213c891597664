"""Other load while the bench times: /proc/stat over the bench's cores, less its own CPU time."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from yolox_edge.bench.hostload import CpuSample, host_load, host_load_warning, read_cpu_ticks, sample, tree_cpu_s
from yolox_edge.bench.report import markdown_table

STAT = """cpu  900 0 90 900 0 0 0 30 0 0
cpu0 100 0 10 200 0 0 0 5 0 0
cpu1 200 0 20 300 0 0 0 5 0 0
cpu2 300 0 30 400 1 2 3 20 0 0
intr 1 2 3
"""


def test_ticks_are_summed_over_the_cores_asked_for(tmp_path):
    stat = tmp_path / "stat"
    stat.write_text(STAT)
    t = read_cpu_ticks({1, 2}, stat)
    assert (t["user"], t["system"], t["idle"], t["iowait"], t["irq"], t["softirq"], t["steal"]) == \
        (500, 50, 700, 1, 2, 3, 25)
    assert read_cpu_ticks({7}, stat) is None  # none of the cores listed
    assert read_cpu_ticks({0}, tmp_path / "missing") is None  # Android apps, macOS: unknown, not zero
    stat.write_text("cpu0 10 0 1 50 0 0 0\n")  # an old kernel without the steal column
    assert read_cpu_ticks({0}, stat)["steal"] == 0


def _s(own_s: float, **ticks: int) -> CpuSample:
    base = dict.fromkeys(("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal"), 0)
    return CpuSample({**base, **ticks}, own_s, 0.0, (0, 1))


def test_other_load_is_busy_time_less_our_own_and_steal_is_its_share():
    start = _s(10.0)
    # 2 cores x 1 s at 100 ticks/s = 200 ticks: 120 busy (we used 0.8 s of them), 20 stolen, 60 idle.
    end = CpuSample({**start.ticks, "user": 100, "system": 20, "steal": 20, "idle": 60}, 10.8, 1.0, (0, 1))
    load = host_load(start, end, hz=100)
    assert load == {"window_s": 1.0, "cpus": [0, 1], "other_pct": 20.0, "steal_pct": 10.0}
    assert "20% of cores 0-1" in host_load_warning(load) and "10% (steal)" in host_load_warning(load)
    # Tick sampling can charge us less than our own CPU time: never a negative share.
    assert host_load(start, CpuSample({**start.ticks, "user": 50, "idle": 150}, 11.0, 1.0, (0, 1)), hz=100)[
        "other_pct"] == 0.0
    assert host_load(None, end) is None and host_load(start, start, hz=100) is None  # no window
    assert host_load_warning({"other_pct": 3.0, "steal_pct": 1.0, "cpus": [0], "window_s": 5}) is None


def test_the_report_states_the_load_and_flags_a_busy_machine():
    row = {"label": "m", "threads": 1, "latency_ms": {"e2e": {"p50": 1, "p90": 1, "ips": 1}}, "baseline": False,
           "size_bytes": 1, "output_bytes_per_image": 1, "peak_rss_mb": None, "ap": None, "drift_pct": {}}
    res = {"rows": [row], "machine": {"cpu": "c", "arch": "a", "logical_cores": 2, "isa": [], "os": "o", "runtimes": {}},
           "config": {"modes": ["e2e"], "runs": 1, "warmup": 0, "image": "i"},
           "host_load": {"window_s": 90.0, "cpus": [0, 1], "other_pct": 35.2, "steal_pct": 0.4}}
    md = markdown_table(res)
    assert "Other load on cores 0-1 over the 90 s of timed runs: 35.2% other processes, 0.4% stolen" in md
    assert "Busy machine" in md
    res["host_load"]["other_pct"] = 1.0
    assert "Busy machine" not in markdown_table(res)
    del res["host_load"]  # a JSON from before the figure existed still renders
    assert "Other load" not in markdown_table(res)


@pytest.mark.skipif(not Path("/proc/stat").is_file(), reason="needs Linux /proc/stat")
def test_a_busy_neighbour_counts_and_our_own_work_does_not():
    before = os.sched_getaffinity(0)
    core = {min(before)}  # the bench pinned to one core, a neighbour spinning on the same one

    def window(busy_here: bool, neighbour: bool) -> float:
        child = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if neighbour else None
        try:
            if child:
                os.sched_setaffinity(child.pid, core)
                time.sleep(0.2)  # the child is up and spinning
            start = sample()
            t0 = time.perf_counter()
            while time.perf_counter() - t0 < 1.0:
                if not busy_here:
                    time.sleep(0.01)
            return host_load(start, sample())["other_pct"]
        finally:
            if child:
                child.kill()
                child.wait()

    os.sched_setaffinity(0, core)
    try:
        idle = window(busy_here=False, neighbour=False)  # what the rest of the machine puts on the core
        own = window(busy_here=True, neighbour=False)
        crowded = window(busy_here=False, neighbour=True)
    finally:
        os.sched_setaffinity(0, before)
    # ~0 % and ~100 % of the one core on a quiet machine; other work there (a test run beside
    # another job) shows in all three readings, and our own spinning only pushes it out
    assert own < idle + 30 and crowded > 60, (idle, own, crowded)


def _stat(proc: Path, pid: int, ppid: int, comm: str, utime: int, stime: int, cutime: int, cstime: int) -> None:
    (proc / str(pid)).mkdir()
    (proc / str(pid) / "stat").write_text(f"{pid} ({comm}) S {ppid} 0 0 0 0 0 0 0 0 0 {utime} {stime} {cutime} "
                                          f"{cstime} 20 0 1 0 100\n")


def test_our_tree_is_this_process_and_its_descendants_each_counted_once(tmp_path):
    """Training's data workers are ours, not other load: forked by us (their time in our cutime
    once waited for) or by a forkserver that is our child (Python 3.14's default)."""
    hz, me = os.sysconf("SC_CLK_TCK"), os.getpid()
    _stat(tmp_path, me, 1, "python", 100, 20, 30, 5)             # 30 + 5: workers of earlier epochs, waited for
    _stat(tmp_path, 900001, me, "python -c (forkserver)", 1, 1, 40, 0)  # a name with spaces and ')'
    _stat(tmp_path, 900002, 900001, "pt_data_worker", 50, 10, 0, 0)
    _stat(tmp_path, 900003, 1, "another job", 999, 999, 0, 0)
    (tmp_path / "self").mkdir()  # not a process
    assert tree_cpu_s(tmp_path) == pytest.approx((155 + 42 + 60) / hz)
    assert tree_cpu_s(tmp_path / "missing") is None


@pytest.mark.skipif(not Path("/proc/stat").is_file(), reason="needs Linux /proc")
def test_a_child_process_counts_as_our_own_with_children():
    before, plain = sample(children=True), sample()
    subprocess.run([sys.executable, "-c", "import time\nt = time.process_time()\n"
                    "while time.process_time() - t < 0.3: pass"], check=True)
    assert sample(children=True).own_s - before.own_s >= 0.25
    assert sample().own_s - plain.own_s < 0.25  # without: the child's time is other processes'
