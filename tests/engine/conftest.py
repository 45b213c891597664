"""Fixtures for the trainer tests: a tiny synthetic COCO dataset written to disk."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

COLORS = [(0, 0, 230), (230, 60, 0)]  # BGR: class 0 red squares, class 1 blue squares


def make_synthetic_coco(root: Path, n_images: int, *, size: tuple[int, int] = (64, 80), seed: int = 0,
                        val_same: bool = True) -> Path:
    """Write ``n_images`` JPEGs with one or two coloured boxes each plus a COCO spec; returns data.yaml."""
    rng = np.random.default_rng(seed)
    (root / "images").mkdir(parents=True, exist_ok=True)
    images, anns = [], []
    h, w = size
    for i in range(n_images):
        img = np.full((h, w, 3), 100, np.uint8)
        img += rng.integers(0, 20, img.shape, dtype=np.uint8)  # mild texture so images differ
        for j in range(1 + i % 2):
            c = (i + j) % 2
            bw, bh = rng.integers(18, 34, 2)
            x0 = int(rng.integers(0, w - bw)) if j == 0 else int(w - bw - 1)
            y0 = int(rng.integers(0, h - bh))
            cv2.rectangle(img, (x0, y0), (x0 + int(bw) - 1, y0 + int(bh) - 1), COLORS[c], -1)
            anns.append({"id": len(anns) + 1, "image_id": i + 1, "category_id": c + 1,
                         "bbox": [x0, y0, int(bw), int(bh)], "area": int(bw * bh), "iscrowd": 0})
        name = f"img_{i:03d}.jpg"
        cv2.imwrite(str(root / "images" / name), img, [cv2.IMWRITE_JPEG_QUALITY, 95])
        images.append({"id": i + 1, "file_name": name, "width": w, "height": h})
    gt = {"images": images, "annotations": anns,
          "categories": [{"id": 1, "name": "red"}, {"id": 2, "name": "blue"}]}
    (root / "train.json").write_text(json.dumps(gt))
    spec = root / "data.yaml"
    spec.write_text("format: coco\n"
                    "train: {annotations: train.json, images: images}\n"
                    f"val: {{annotations: train.json, images: images}}\n")
    return spec


@pytest.fixture
def synthetic_coco(tmp_path: Path):
    """``synthetic_coco(n_images, **kw) -> data.yaml`` in a fresh temp folder."""
    counter = iter(range(1000))

    def make(n_images: int = 4, **kw) -> Path:
        return make_synthetic_coco(tmp_path / f"data{next(counter)}", n_images, **kw)

    return make
