"""Generators of tiny synthetic datasets for the data tests (imported as a plain module)."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

COLORS = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0), (255, 0, 255), (0, 255, 255)]


def write_image(path: Path, w: int, h: int, boxes=(), colors=COLORS, bg: int = 40) -> np.ndarray:
    """A plain image with filled rectangles of distinct colours at xyxy ``boxes``; returns it."""
    img = np.full((h, w, 3), bg, np.uint8)
    for k, b in enumerate(boxes):
        x1, y1, x2, y2 = (int(round(v)) for v in b)
        img[max(y1, 0):y2, max(x1, 0):x2] = colors[k % len(colors)]
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), img)
    return img


def voc_xml(filename: str, w: int, h: int, objects) -> str:
    """A Pascal VOC XML; objects are (name, (xmin, ymin, xmax, ymax)) in VOC 1-based pixels."""
    objs = "".join(
        f"<object><name>{n}</name><difficult>0</difficult><bndbox><xmin>{b[0]}</xmin><ymin>{b[1]}</ymin>"
        f"<xmax>{b[2]}</xmax><ymax>{b[3]}</ymax></bndbox></object>" for n, b in objects)
    return (f"<annotation><filename>{filename}</filename><size><width>{w}</width><height>{h}</height>"
            f"<depth>3</depth></size>{objs}</annotation>")


def make_voc(root: Path, items: dict, names=("cat", "dog"), list_stems=None) -> Path:
    """items: stem -> (w, h, objects); writes images/, annotations/, optional list and data.yaml."""
    for stem, (w, h, objects) in items.items():
        boxes = [(b[0] - 1, b[1] - 1, b[2], b[3]) for _, b in objects]
        write_image(root / "images" / f"{stem}.png", w, h, boxes)
        (root / "annotations").mkdir(parents=True, exist_ok=True)
        (root / "annotations" / f"{stem}.xml").write_text(voc_xml(f"{stem}.png", w, h, objects))
    split = "{annotations: annotations, images: images"
    if list_stems is not None:
        (root / "list.txt").write_text("\n".join(list_stems) + "\n")
        split += ", list: list.txt"
    split += "}"
    (root / "data.yaml").write_text(f"format: voc\nnames: [{', '.join(names)}]\ntrain: {split}\nval: {split}\n")
    return root / "data.yaml"


def make_yolo(root: Path, items: dict, names=("cat", "dog")) -> Path:
    """items: stem -> (w, h, label text or None for no label file); layout images/ + labels/."""
    for stem, (w, h, text) in items.items():
        write_image(root / "images" / f"{stem}.png", w, h)
        if text is not None:
            (root / "labels").mkdir(parents=True, exist_ok=True)
            (root / "labels" / f"{stem}.txt").write_text(text)
    (root / "data.yaml").write_text(f"format: yolo\nnames: [{', '.join(names)}]\n"
                                    "train: {images: images}\nval: {images: images, labels: labels}\n")
    return root / "data.yaml"
