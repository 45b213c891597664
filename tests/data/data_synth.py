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


def make_broken_coco(root: Path) -> Path:
    """A COCO set (train = val) with one of each problem a COCO json and its images can have.

    big.png is recorded as 40x30 but the file is 80x60, with a box that fits only the file.
    Returns data.yaml.
    """
    import json

    im = root / "im"
    for n in "abcdefg":
        write_image(im / f"{n}.png", 40, 30)
    write_image(im / "big.png", 80, 60)
    (im / "bad.png").write_bytes(b"junk" * 20)                                     # unreadable
    write_image(im / "cut.jpg", 40, 30)
    data = (im / "cut.jpg").read_bytes()
    (im / "cut.jpg").write_bytes(data[: len(data) // 2])                            # truncated
    images = [{"id": i + 1, "file_name": f"{n}.png", "width": 40, "height": 30} for i, n in enumerate("abcdefg")]
    images += [{"id": 20, "file_name": "big.png", "width": 40, "height": 30},
               {"id": 21, "file_name": "bad.png", "width": 40, "height": 30},
               {"id": 22, "file_name": "cut.jpg", "width": 40, "height": 30},
               {"id": 23, "file_name": "gone.png", "width": 40, "height": 30},     # missing
               {"id": 1, "file_name": "dupe.png", "width": 40, "height": 30}]      # id taken
    anns = [[1, 1, [30, 5, 20, 10]],              # partly outside: clipped
            [2, 1, [1, 1, 0, 5]],                 # zero area
            [3, 1, [float("nan"), 1, 5, 5]],      # not a number
            [4, 1, [50, 40, 10, 10]],             # wholly outside
            [5, 9, [1, 1, 5, 5]],                 # unknown category
            [6, 1, "x"],                          # bad bbox
            [7, 1, [1, 1, 5, 5]],
            [20, 1, [50, 40, 10, 10]],            # outside 40x30, inside the real 80x60
            [99, 1, [1, 1, 5, 5]]]                # image_id not in images
    gt = {"images": images, "categories": [{"id": 1, "name": "car"}],
          "annotations": [{"id": k + 1, "image_id": i, "category_id": c, "bbox": b} for k, (i, c, b) in enumerate(anns)]}
    gt["annotations"][6]["id"] = 6                # annotation id used twice
    (root / "gt.json").write_text(json.dumps(gt))
    (root / "data.yaml").write_text("format: coco\ntrain: {annotations: gt.json, images: im}\n"
                                    "val: {annotations: gt.json, images: im}\n")
    return root / "data.yaml"
