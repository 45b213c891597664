"""COCO json reader: class index i is the i-th category id in sorted order."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..errors import UserError
from .sample import Sample
from .spec import READERS, DataSpec, Split


def read_coco(spec: DataSpec, split: str) -> Split:
    paths = spec.split_paths(split)
    ann_path, img_dir = paths.get("annotations"), paths.get("images")
    if ann_path is None or img_dir is None:
        raise UserError(f"{spec.path}: coco split {split!r} needs 'annotations' (json) and 'images' (dir)")
    if not ann_path.is_file():
        raise UserError(f"{ann_path}: annotation file not found (named by {spec.path}, split {split!r})")
    try:
        gt = json.loads(ann_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise UserError(f"{ann_path}: not valid COCO json ({e}); check the file") from None
    if not isinstance(gt, dict) or "images" not in gt or "categories" not in gt:
        raise UserError(f"{ann_path}: not a COCO instances file (needs 'images' and 'categories')")
    cats = sorted(gt["categories"], key=lambda c: c["id"])
    cat_index = {c["id"]: i for i, c in enumerate(cats)}
    names = spec.names or [c["name"] for c in cats]
    if len(names) != len(cats):
        raise UserError(f"{spec.path}: names lists {len(names)} classes, {ann_path} has {len(cats)} categories")
    problems: list[str] = []
    by_image: dict[int, list[dict]] = {}
    for a in gt.get("annotations", []):
        by_image.setdefault(a["image_id"], []).append(a)
    samples = []
    for im in gt["images"]:
        boxes, labels, crowd = [], [], []
        for a in by_image.get(im["id"], []):
            if a["category_id"] not in cat_index:
                problems.append(f"{ann_path}: annotation {a.get('id')} has unknown category {a['category_id']}")
                continue
            x, y, w, h = a["bbox"]
            boxes.append([x, y, x + w, y + h])
            labels.append(cat_index[a["category_id"]])
            crowd.append(bool(a.get("iscrowd", 0)))
        samples.append(Sample(Path(img_dir) / im["file_name"], np.asarray(boxes, np.float32), labels,
                              image_id=int(im["id"]), width=int(im.get("width", 0)),
                              height=int(im.get("height", 0)), crowd=np.asarray(crowd, bool)))
    return Split(samples, names, problems, coco_gt=gt)


def read_coco_indexed(spec: DataSpec, split: str) -> Split:
    """read_coco through the cached index when the json is large (see data/index.py)."""
    from .index import cached_coco

    return cached_coco(spec, split, read_coco)


READERS["coco"] = read_coco_indexed
