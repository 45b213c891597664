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
                    "val: {annotations: train.json, images: images}\n")
    return spec


@pytest.fixture
def synthetic_coco(tmp_path: Path):
    """``synthetic_coco(n_images, **kw) -> data.yaml`` in a fresh temp folder."""
    counter = iter(range(1000))

    def make(n_images: int = 4, **kw) -> Path:
        return make_synthetic_coco(tmp_path / f"data{next(counter)}", n_images, **kw)

    return make


@pytest.fixture(autouse=True)
def _one_torch_thread(one_torch_thread):
    """Every engine test runs torch on one thread (see tests/conftest.py)."""


TINY_RECIPE = """\
model: {variant: test}
data: {workers: 0}
aug: {mosaic_prob: 0.5, mosaic_scale: [0.5, 1.5], mixup_prob: 0.0, degrees: 0.0, shear: 0.0}
train: {epochs: 3, batch: 4, warmup_epochs: 1, no_aug_epochs: 1, eval_interval: 1, multiscale_range: 0,
        threads: 1, basic_lr_per_img: 0.00125}
"""


@pytest.fixture
def tiny_recipe(tmp_path: Path) -> Path:
    """A recipe YAML for the `test` variant: 3 short epochs, one thread, no workers."""
    p = tmp_path / "tiny.yaml"
    p.write_text(TINY_RECIPE)
    return p
