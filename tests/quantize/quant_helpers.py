"""Helpers shared by the INT8 tests (imported by basename: tests are not a package)."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np


def write_images(folder: Path, n: int, seed: int = 0, size: tuple[int, int] = (72, 96)) -> list[Path]:
    """Smooth random images (blurred noise) so activations look like natural-image ones."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        img = cv2.GaussianBlur(rng.integers(0, 256, (*size, 3), dtype=np.uint8), (9, 9), 0)
        p = folder / f"img_{i:02d}.jpg"
        cv2.imwrite(str(p), img)
        paths.append(p)
    return paths


class Stop(Exception):
    """Raised by ``stop``: where a test stops the run it checks the start of."""


def stop(*args, **kwargs):
    """Patch it over the first call a test does not need: the run ends there with ``Stop``."""
    raise Stop
