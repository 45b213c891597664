"""Time SimOTA and the full YOLOX loss on random head outputs.

    python -m yolox_edge.assign.bench [--batch 16] [--boxes 30] [--size 416] [--classes 80]

Random raw maps (the head's layout) and random gt boxes; reports the median time per
batch of the assignment alone, of the loss forward (assignment included) and of the loss
forward + backward to the maps. No model is run, so the numbers are the loss's own cost.
"""
from __future__ import annotations

import argparse
import os
import statistics
import time

import torch

from ..decode import STRIDES, cxcywh_to_xyxy, decode_boxes, flatten_maps, level_shapes, make_grid
from ..loss import YOLOXLoss
from .simota import DEFAULT_BUDGET, simota_assign


def random_batch(batch: int, boxes: int, size: int, classes: int, seed: int = 0):
    """Random raw maps (requires_grad) and padded targets [B, M, 5] for one batch."""
    g = torch.Generator().manual_seed(seed)
    maps = []
    for h, w in level_shapes((size, size)):
        m = torch.randn(batch, 5 + classes, h, w, generator=g)
        m[:, :4] *= 0.5
        m[:, 4:] -= 3.0  # logits near the head's prior, as early in training
        maps.append(m.requires_grad_())
    wh = torch.rand(batch, boxes, 2, generator=g) * (size * 0.5) + 8
    xy = torch.rand(batch, boxes, 2, generator=g) * (size - wh)
    cls = torch.randint(0, classes, (batch, boxes, 1), generator=g).float()
    return maps, torch.cat((cls, xy, xy + wh), -1)


def _median_ms(fn, repeats: int) -> tuple[float, float]:
    """Median wall and process-CPU milliseconds per call. On a loaded machine the CPU time
    (all threads summed) is the steadier figure; wall time is what a training step sees."""
    fn()  # warm-up
    wall, cpu = [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall.append((time.perf_counter() - t0) * 1e3)
        cpu.append((time.process_time() - c0) * 1e3)
    return statistics.median(wall), statistics.median(cpu)


def run(batch: int = 16, boxes: int = 30, size: int = 416, classes: int = 80, repeats: int = 10,
        budget: int = DEFAULT_BUDGET) -> dict:
    """Median (wall, CPU) milliseconds per batch: assign, loss forward, loss forward+backward."""
    maps, targets = random_batch(batch, boxes, size, classes)
    loss_fn = YOLOXLoss(classes, assign_budget=budget)
    raw = flatten_maps(maps).detach()
    grid, stride = make_grid([tuple(m.shape[-2:]) for m in maps], STRIDES)
    pred = cxcywh_to_xyxy(decode_boxes(raw[..., :4], grid, stride))
    mask = targets[..., 0] >= 0

    def assign():
        return simota_assign(pred, raw[..., 5:], raw[..., 4], targets[..., 1:], targets[..., 0].long(), mask,
                             (grid + 0.5) * stride, stride.squeeze(-1), budget=budget)

    def fwd():
        with torch.no_grad():
            loss_fn(maps, targets, use_l1=True)

    def fwd_bwd():
        loss_fn(maps, targets, use_l1=True)["total"].backward()

    return {"anchors": raw.shape[1], "num_fg": assign().num_fg,
            "assign_ms": _median_ms(assign, repeats), "loss_fwd_ms": _median_ms(fwd, repeats),
            "loss_fwd_bwd_ms": _median_ms(fwd_bwd, repeats)}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--boxes", type=int, default=30)
    p.add_argument("--size", type=int, default=416)
    p.add_argument("--classes", type=int, default=80)
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0 = leave as is)")
    p.add_argument("--budget", type=int, default=DEFAULT_BUDGET,
                   help="B*M*N above which assignment falls back to per-image on CPU")
    a = p.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    r = run(a.batch, a.boxes, a.size, a.classes, a.repeats, a.budget)
    print(f"batch {a.batch} x {a.boxes} boxes, {a.size}px ({r['anchors']} anchors), {a.classes} classes, "
          f"{torch.get_num_threads()} threads, fg {r['num_fg']}")
    print("                                 wall ms/batch   CPU ms/batch")
    for key, label in [("assign_ms", "simota assign"), ("loss_fwd_ms", "loss forward (+assign, L1 on)"),
                       ("loss_fwd_bwd_ms", "loss forward+backward")]:
        w, c = r[key]
        print(f"  {label:30s} {w:9.1f} {c:14.1f}")
    print(f"  load average {os.getloadavg()[0]:.1f} over {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
