"""A small generated detection dataset (shapes on textured backgrounds), in COCO format.

The embedded default of the main job: nothing is downloaded, and a Nano learns it in minutes
on a CPU, so the whole pipeline (train, quantize, export, bench, bundle) runs anywhere.
"""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from ..fileio import atomic_write_bytes
from ..progress import deprecated_keywords

CLASSES = ["circle", "square", "triangle"]


def _background(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    base = rng.integers(40, 215, 3)
    gx = np.linspace(-1, 1, w, dtype=np.float32)[None, :, None]
    gy = np.linspace(-1, 1, h, dtype=np.float32)[:, None, None]
    tilt = rng.uniform(-40, 40, (2, 3)).astype(np.float32)
    img = base + gx * tilt[0] + gy * tilt[1] + rng.normal(0, 8, (h, w, 3))
    return np.clip(img, 0, 255).astype(np.uint8)


def _draw(img: np.ndarray, rng: np.random.Generator, cls: int, box: tuple[int, int, int, int]) -> None:
    x1, y1, x2, y2 = box
    color = tuple(int(c) for c in rng.integers(0, 256, 3))
    if cls == 0:
        cv2.ellipse(img, ((x1 + x2) // 2, (y1 + y2) // 2), ((x2 - x1) // 2, (y2 - y1) // 2), 0, 0, 360, color, -1)
    elif cls == 1:
        cv2.rectangle(img, (x1, y1), (x2 - 1, y2 - 1), color, -1)
    else:
        pts = np.array([[(x1 + x2) // 2, y1], [x1, y2 - 1], [x2 - 1, y2 - 1]], np.int32)
        cv2.fillPoly(img, [pts], color)


@deprecated_keywords("h", "w", "seed")  # synthetic_scene(480, 640, 0), the earlier form
def synthetic_scene(*, h: int = 480, w: int = 640, seed: int = 0) -> np.ndarray:
    """A deterministic BGR uint8 test image (``h`` x ``w``) with a few coloured shapes: what
    ``demo`` and ``bench`` run on when no image is given."""
    rng = np.random.default_rng(seed)
    img = np.full((h, w, 3), 200, np.uint8)
    img[:] = np.linspace(120, 230, w, dtype=np.uint8)[None, :, None]
    for _ in range(5):
        x, y = int(rng.integers(0, w - 120)), int(rng.integers(0, h - 120))
        color = tuple(int(c) for c in rng.integers(0, 255, 3))
        if rng.random() < 0.5:
            cv2.rectangle(img, (x, y), (x + int(rng.integers(40, 120)), y + int(rng.integers(40, 120))), color, -1)
        else:
            cv2.circle(img, (x + 50, y + 50), int(rng.integers(20, 50)), color, -1)
    return img


def make_image(rng: np.random.Generator, h: int, w: int, max_objects: int = 4):
    """One image with 1..max_objects non-overlapping shapes; returns (img, boxes xyxy, labels)."""
    img = _background(rng, h, w)
    boxes, labels = [], []
    for _ in range(int(rng.integers(1, max_objects + 1)) * 4):  # a few tries per wanted object
        if len(boxes) >= max_objects:
            break
        s = int(rng.integers(min(h, w) // 8, min(h, w) // 3))
        ar = rng.uniform(0.7, 1.4)
        bw, bh = max(8, int(s * ar)), max(8, int(s / ar))
        x1, y1 = int(rng.integers(0, w - bw)), int(rng.integers(0, h - bh))
        b = np.array([x1, y1, x1 + bw, y1 + bh], np.float32)
        if boxes:
            other = np.array(boxes)
            ix = np.clip(np.minimum(other[:, 2], b[2]) - np.maximum(other[:, 0], b[0]), 0, None)
            iy = np.clip(np.minimum(other[:, 3], b[3]) - np.maximum(other[:, 1], b[1]), 0, None)
            if (ix * iy > 0).any():
                continue
        cls = int(rng.integers(0, len(CLASSES)))
        _draw(img, rng, cls, (x1, y1, x1 + bw, y1 + bh))
        boxes.append(b)
        labels.append(cls)
    return img, np.array(boxes, np.float32).reshape(-1, 4), np.array(labels, np.int64)


def make_shapes_dataset(out: str | Path, *, n_train: int = 96, n_val: int = 24, size: tuple[int, int] = (256, 320),
                        seed: int = 0) -> Path:
    """Write train/val images + COCO json + data.yaml under ``out``; returns the data.yaml path."""
    out = Path(out)
    rng = np.random.default_rng(seed)
    for split, n in (("train", n_train), ("val", n_val)):
        (out / split).mkdir(parents=True, exist_ok=True)
        images, anns = [], []
        for i in range(n):
            img, boxes, labels = make_image(rng, *size)
            name = f"{split}_{i:04d}.jpg"
            ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 92])
            (out / split / name).write_bytes(buf.tobytes())
            images.append({"id": i + 1, "file_name": name, "height": size[0], "width": size[1]})
            for b, c in zip(boxes, labels):
                w, h = float(b[2] - b[0]), float(b[3] - b[1])
                anns.append({"id": len(anns) + 1, "image_id": i + 1, "category_id": int(c) + 1, "iscrowd": 0,
                             "bbox": [float(b[0]), float(b[1]), w, h], "area": w * h})
        cats = [{"id": k + 1, "name": n} for k, n in enumerate(CLASSES)]
        gt = json.dumps({"images": images, "annotations": anns, "categories": cats})
        atomic_write_bytes(out / f"{split}.json", lambda f: f.write(gt.encode()))
    spec = ("# Generated by yolox_edge.data.synthetic (shapes on textured backgrounds)\n"
            "format: coco\n"
            "train: {annotations: train.json, images: train}\n"
            "val:   {annotations: val.json, images: val}\n")
    atomic_write_bytes(out / "data.yaml", lambda f: f.write(spec.encode()))
    return out / "data.yaml"
