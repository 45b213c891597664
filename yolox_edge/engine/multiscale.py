"""Multi-scale training sizes: which (H, W) inputs the trainer draws, for square and rectangular
training sizes alike.

Sizes are drawn in units of 32 px of the long side (``train.random_size`` = (lo, hi), or the
training size's long side +- ``train.multiscale_range``); the short side follows from the
training size's aspect ratio, rounded to a multiple of 32. The official YOLOX keeps the ratio
the same way but draws the first side (H); drawing the long side keeps ``random_size`` meaning
what it means for a square S (Nano's [10, 20]: 320-640) for landscape and portrait sizes alike.
A 416x320 run thus trains at 4:3-ish sizes around 416x320, never at squares the exported graph
would not see.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..config import SIZE_STEP as STEP  # every drawn side is a multiple of the largest stride
from ..errors import format_size


def size_range(hw: tuple[int, int], multiscale_range: int,
               random_size: tuple[int, int] | None) -> tuple[int, int] | None:
    """(lo, hi) in units of 32 of the long side, or None: training stays at ``hw``."""
    if random_size is not None:
        return int(random_size[0]), int(random_size[1])
    if multiscale_range > 0:
        base = max(hw) // STEP
        return max(base - multiscale_range, 1), base + multiscale_range
    return None


def size_at(units: int, hw: tuple[int, int]) -> tuple[int, int]:
    """(H, W) with the long side ``units`` x 32 and the aspect ratio of ``hw`` (the short side
    rounded to a multiple of 32, at least 32). ``units`` = the long side of ``hw`` gives ``hw``."""
    h, w = hw
    long_side, short = units * STEP, max(1, round(units * min(h, w) / max(h, w))) * STEP
    return (long_side, short) if h > w else (short, long_side)


def describe_sizes(hw: tuple[int, int], rng: tuple[int, int] | None) -> str:
    """The training sizes in words, as ``format_size`` writes sizes: ``trained at 128-192
    (multi-scale from 160)``, ``trained at 352x256-480x384 (multi-scale from 416x320, aspect kept)``."""
    if rng is None:
        return f"trained at {format_size(hw)}"
    lo, hi = (format_size(size_at(u, hw)) for u in rng)
    kept = "" if hw[0] == hw[1] else ", aspect kept"
    return f"trained at {lo}-{hi} (multi-scale from {format_size(hw)}{kept})"


def resize_batch(images: torch.Tensor, targets: torch.Tensor,
                 size: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    """A batch ([B, 3, H, W], targets [B, M, 5] class, x1, y1, x2, y2) resized to ``size`` (H, W),
    the boxes with it. x and y scale apart: a drawn size keeps the aspect only to a multiple of 32."""
    if size == tuple(images.shape[-2:]):
        return images, targets
    sy, sx = size[0] / images.shape[-2], size[1] / images.shape[-1]
    images = F.interpolate(images, size=size, mode="bilinear", align_corners=False)
    targets = targets.clone()
    targets[..., [1, 3]] *= sx
    targets[..., [2, 4]] *= sy
    return images, targets
