"""Trainer hooks: before/after epoch and after each iteration, plus the run log.

``RunLog`` writes one row per epoch to ``log.csv`` and ``log.json`` and redraws
``log.png`` (losses and AP per epoch, matplotlib Agg); all three are written atomically.
"""
from __future__ import annotations

import csv
import io
import json
import math
import time
from pathlib import Path
from typing import Any

from ..errors import in_python
from ..fileio import atomic_write_bytes
from .. import threads as torch_cpu  # its functions looked up when called (tests set the thread count there)
from ..threads import BUSY_CPU_PCT, cpu_load_since, taken_from_threads_pct


class Hook:
    """Override any of these; ``trainer`` is the running Trainer (read its state freely)."""

    def before_epoch(self, trainer, epoch: int) -> None:
        pass

    def after_iter(self, trainer, epoch: int, it: int, losses: dict[str, float]) -> None:
        pass

    def after_epoch(self, trainer, epoch: int, row: dict[str, Any]) -> None:
        pass


LOSS_KEYS = ("total", "iou", "obj", "cls", "l1")


class RunLog(Hook):
    """Per-epoch CSV + JSON + PNG in the run folder (main process only)."""

    def __init__(self, out_dir: str | Path, rows: list[dict] | None = None, *, plot_every_s: float = 60.0) -> None:
        self.out = Path(out_dir)
        self.rows: list[dict] = list(rows or [])
        self.plot_every_s = plot_every_s
        self._last_plot = -math.inf

    def after_epoch(self, trainer, epoch: int, row: dict[str, Any]) -> None:
        self.rows = [r for r in self.rows if r["epoch"] < row["epoch"]] + [row]
        final = trainer is None or epoch + 1 >= trainer.recipe.train.epochs
        # Drawing costs ~1 s on a busy CPU: redraw on eval epochs, the last one, or once a minute.
        self.write(plot=final or "AP" in row or time.monotonic() - self._last_plot > self.plot_every_s)

    def write(self, plot: bool = True) -> None:
        keys: list[str] = []
        for r in self.rows:
            keys += [k for k in r if k not in keys]
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=keys)
        w.writeheader()
        for r in self.rows:
            w.writerow({k: r.get(k, "") for k in keys})
        atomic_write_bytes(self.out / "log.csv", lambda f: f.write(buf.getvalue().encode()))
        atomic_write_bytes(self.out / "log.json", lambda f: f.write(json.dumps(self.rows, indent=1).encode()))
        if plot:
            self.plot()
            self._last_plot = time.monotonic()

    def plot(self) -> None:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        epochs = [r["epoch"] for r in self.rows]
        fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
        for k in LOSS_KEYS:
            ys = [r.get(f"loss_{k}") for r in self.rows]
            if any(y not in (None, "") for y in ys):
                ax1.plot(epochs, [float("nan") if y in (None, "") else y for y in ys], label=k)
        ax1.set_xlabel("epoch")
        ax1.set_ylabel("loss")
        ax1.legend()
        ax1.set_title("training loss")
        ev = [r for r in self.rows if r.get("AP") not in (None, "")]
        for k in ("AP", "AP50"):
            ax2.plot([r["epoch"] for r in ev], [r[k] for r in ev], marker="o", label=k)
        ax2.set_xlabel("epoch")
        ax2.set_ylim(0, 1)
        ax2.legend()
        ax2.set_title("val AP (EMA model)")
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=80)
        plt.close(fig)
        atomic_write_bytes(self.out / "log.png", lambda f: f.write(buf.getvalue()))


def busy_cpu_note(load: dict | None, threads: int, epoch: int) -> str | None:
    """The line after ``epoch`` (0-based) when other processes took more than ``BUSY_CPU_PCT`` of
    the cores ``threads`` torch threads run on (``load``: ``bench.hostload.host_load``'s reading
    over the cores this process may use), else None. Other work on the cores the threads leave
    free takes nothing from them: only what exceeds those counts."""
    if taken_from_threads_pct(load, threads) <= BUSY_CPU_PCT:  # one thread waits for no other: 0
        return None
    cores = len(load["cpus"])
    one = in_python("--set train.threads=1", "machine=['train.threads=1']")
    return (f"note: other processes used {load['other_pct']:.0f}% of the {cores} cores during epoch {epoch + 1}; "
            f"beside other work epochs took 3-6x as long (measured on 2 cores): try {one} or OMP_WAIT_POLICY=PASSIVE "
            "in the environment (README: 'On a CPU shared with other work')")


class BusyCpuNote(Hook):
    """One line after the first epoch a run trains on the CPU when other processes took a large
    share of its cores (``busy_cpu_note``): torch's threads wait for each other by spinning, and
    beside other work an epoch took several times as long; ``train.threads=1`` or
    ``OMP_WAIT_POLICY=PASSIVE`` helped there, not alone, so it is said when it matters.

    Measured with the bench's ``hostload`` (Linux /proc; elsewhere quietly nothing), this
    process's data workers counted as its own. Nothing when torch runs one thread (``train.threads
    1``) or OMP_WAIT_POLICY is set: the user has chosen. Never an error: training goes on."""

    def __init__(self) -> None:
        self._epoch: int | None = None  # the epoch measured: the first this run trains
        self._start = None

    def before_epoch(self, trainer, epoch: int) -> None:
        if self._epoch is not None:
            return
        self._epoch = epoch
        # the user's own choice (train.threads 1; OMP_WAIT_POLICY or one thread anyway: busy_watch's None)
        if trainer.device.type != "cpu" or trainer.dist.enabled or trainer.recipe.train.threads == 1:
            return
        self._start = torch_cpu.busy_watch()

    def after_epoch(self, trainer, epoch: int, row: dict[str, Any]) -> None:
        if epoch != self._epoch or self._start is None:
            return
        start, self._start = self._start, None
        line = busy_cpu_note(cpu_load_since(start), torch_cpu.torch_thread_count(), epoch)
        if line:
            trainer.log(line)
