"""The official YOLOX learning-rate schedule ("yoloxwarmcos"), per iteration.

Quadratic warm-up from ``warmup_lr_start`` to ``lr`` over the warm-up iterations, cosine
from ``lr`` down to ``min_lr_ratio * lr`` by the start of the no-augmentation stage, then
constant at the minimum through the last ``no_aug_iters`` iterations.
"""
from __future__ import annotations

import math
from dataclasses import dataclass


def yolox_warm_cos_lr(lr: float, min_lr_ratio: float, total_iters: int, warmup_iters: int,
                      warmup_lr_start: float, no_aug_iters: int, it: int) -> float:
    """Learning rate at iteration ``it`` (0-based); the official formula."""
    min_lr = lr * min_lr_ratio
    if warmup_iters > 0 and it <= warmup_iters:
        return (lr - warmup_lr_start) * (it / float(warmup_iters)) ** 2 + warmup_lr_start
    if it >= total_iters - no_aug_iters:
        return min_lr
    span = max(total_iters - warmup_iters - no_aug_iters, 1)
    return min_lr + 0.5 * (lr - min_lr) * (1.0 + math.cos(math.pi * (it - warmup_iters) / span))


@dataclass(frozen=True)
class WarmCosSchedule:
    """``yolox_warm_cos_lr`` bound to a run: epochs are converted to iterations here."""

    lr: float
    epochs: int
    iters_per_epoch: int
    warmup_epochs: float = 5.0
    warmup_lr_start: float = 0.0
    min_lr_ratio: float = 0.05
    no_aug_epochs: int = 15

    @property
    def total_iters(self) -> int:
        return self.epochs * self.iters_per_epoch

    @property
    def warmup_iters(self) -> int:
        return int(round(self.warmup_epochs * self.iters_per_epoch))

    @property
    def no_aug_iters(self) -> int:
        return self.no_aug_epochs * self.iters_per_epoch

    def __call__(self, it: int) -> float:
        return yolox_warm_cos_lr(self.lr, self.min_lr_ratio, self.total_iters, self.warmup_iters,
                                 self.warmup_lr_start, self.no_aug_iters, it)


def clamp_no_aug_epochs(no_aug_epochs: int, epochs: int, warmup_epochs: float) -> int:
    """Keep the no-aug stage inside short runs: at most half the epochs after warm-up,
    at least one epoch when asked for any (so a 10-epoch run still closes Mosaic)."""
    if no_aug_epochs <= 0 or epochs <= 1:
        return 0
    room = max(epochs - int(math.ceil(warmup_epochs)), 1)
    return max(1, min(no_aug_epochs, room // 2 if room > 1 else 1))
