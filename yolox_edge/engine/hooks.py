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

from ..fileio import atomic_write_bytes


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
