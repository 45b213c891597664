"""One record for every dataset format."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


@dataclass
class Sample:
    """An image and its boxes: xyxy in pixels [M, 4] float32, class indices [M] int64.

    ``image_id`` is the dataset's own id (COCO image id; a running index elsewhere);
    ``crowd`` marks COCO crowd boxes [M] (ignored by training, kept for evaluation).
    """

    image: Path
    boxes: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.float32))
    labels: np.ndarray = field(default_factory=lambda: np.zeros((0,), np.int64))
    image_id: int = 0
    width: int = 0
    height: int = 0
    crowd: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.boxes = np.asarray(self.boxes, np.float32).reshape(-1, 4)
        self.labels = np.asarray(self.labels, np.int64).reshape(-1)
        if self.crowd is None:
            self.crowd = np.zeros(len(self.labels), bool)
