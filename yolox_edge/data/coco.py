"""COCO json reader: class index i is the i-th category id in sorted order (``Split.category_ids``
keeps that order, so the ids travel with the model to its checkpoint, exports and predictions)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..errors import UserError
from .check import BAD_ANNOTATION, DEGENERATE, DUPLICATE, UNKNOWN_CLASS, problem
from .sample import Sample
from .spec import READERS, DataSpec, Split, check_split_folders, split_entries


def read_coco(spec: DataSpec, split: str, *, boxes_only: bool = False) -> Split:
    """One split of a COCO json. ``boxes_only``: the annotations' segmentation polygons are
    dropped as the json is parsed (``coco_gt`` is then what the index keeps, see data/index.py)."""
    paths = split_entries(spec, split, ("annotations", "images"), (), "'annotations' (json) and 'images' (dir)")
    ann_path, img_dir = paths["annotations"], paths["images"]
    if not ann_path.is_file():
        raise UserError(f"{ann_path}: annotation file not found (named by {spec.path}, split {split!r})")
    # one line for a wrong 'images:' path, not a 'missing file' problem for every image it holds
    check_split_folders(spec, split, {"images": Path(img_dir)}, None)
    try:
        # bytes: json finds the encoding and skips a BOM (as text it did not)
        gt = json.loads(ann_path.read_bytes(), object_hook=_without_polygons if boxes_only else None)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise UserError(f"{ann_path}: not valid COCO json ({e}); check the file") from None
    if not isinstance(gt, dict) or "images" not in gt or "categories" not in gt:
        raise UserError(f"{ann_path}: not a COCO instances file (needs 'images' and 'categories')")
    seen: dict[int, str] = {}
    for i, c in enumerate(gt["categories"]):  # the class list itself: no guessing past a broken one
        # true/false is no id (bad_annotation refuses it as a category_id, so no box could name it)
        if not isinstance(c, dict) or not isinstance(c.get("id"), int) or isinstance(c["id"], bool) \
                or not isinstance(c.get("name"), str):
            raise UserError(f"{ann_path}: category {i} needs an integer 'id' and a 'name' (has {c!r:.80}); "
                            "fix the categories list")
        # An id twice gave two classes for one id (the first never labelled), and the checkpoint,
        # which keeps one distinct id per class, was refused with a traceback after an epoch.
        if c["id"] in seen:
            raise UserError(f"{ann_path}: category id {c['id']} is listed twice ({seen[c['id']]!r} and "
                            f"{c['name']!r}); give each category its own id in the categories list")
        seen[c["id"]] = c["name"]
    cats = sorted(gt["categories"], key=lambda c: c["id"])
    cat_index = {c["id"]: i for i, c in enumerate(cats)}
    json_names = [c["name"] for c in cats]
    names = spec.names or json_names
    if len(names) != len(cats):
        raise UserError(f"{spec.path}: names lists {len(names)} classes, {ann_path} has {len(cats)} categories")
    # names rename the classes by position (class i: the i-th id in sorted order); a name that the
    # json gives another category is a list written in the json's own order, and would swap classes
    moved = [n for i, n in enumerate(names) if n in json_names and json_names[i] != n]
    if moved:
        raise UserError(f"{spec.path}: names puts {moved[0]!r} at class {names.index(moved[0])}, but in {ann_path} it is "
                        f"category id {cats[json_names.index(moved[0])]['id']}, class {json_names.index(moved[0])} (class "
                        f"i is the i-th category id in sorted order: {', '.join(json_names[:8])}"
                        f"{', ...' if len(json_names) > 8 else ''}); leave names out, or list them in that order")
    problems: list[str] = []
    by_image: dict[int, list[dict]] = {}
    if "annotations" not in gt and gt["images"]:  # an image_info_*.json (test-dev's): no labels at all
        problems.append(problem(BAD_ANNOTATION, ann_path, "no 'annotations' list: every image is a background "
                                "image; is this the instances file?"))
    for a in gt.get("annotations", []):
        why = bad_annotation(a)
        if why:  # skipped and counted, as the other readers do with a broken label line
            problems.append(problem(BAD_ANNOTATION, ann_path, f"annotation {_id(a)}: {why}; skipped"))
            continue
        by_image.setdefault(a["image_id"], []).append(a)
    samples = []
    files_of: dict[int, str] = {}  # image id -> the file that took it first
    for n, im in enumerate(gt["images"]):
        if not isinstance(im, dict) or not isinstance(im.get("id"), int) or not isinstance(im.get("file_name"), str):
            problems.append(problem(BAD_ANNOTATION, ann_path, f"image entry {n} needs an integer 'id' and a "
                                    "'file_name'; skipped"))
            continue
        if files_of.get(im["id"]) == im["file_name"]:
            # The same entry again: kept, it trained twice an epoch and, in a val split, had its
            # detections scored twice against one set of boxes (a perfect model's AP 1.0 -> 0.96)
            problems.append(problem(DUPLICATE, ann_path, f"image id {im['id']} ({im['file_name']}) is listed "
                                    "more than once; the repeat skipped"))
            continue
        first = files_of.setdefault(im["id"], im["file_name"])
        if first != im["file_name"]:
            # Annotations name an image by id: a second file with the id would train on the
            # first one's boxes (and score against them)
            problems.append(problem(DUPLICATE, ann_path, f"image id {im['id']} is used by {first} and "
                                    f"{im['file_name']}; {im['file_name']} skipped (give each image its own id)"))
            continue
        boxes, labels, crowd = [], [], []
        for a in by_image.get(im["id"], []):
            if a["category_id"] not in cat_index:
                problems.append(problem(UNKNOWN_CLASS, ann_path, f"annotation {_id(a)}: category_id "
                                        f"{a['category_id']} is not in categories; box dropped"))
                continue
            x, y, w, h = a["bbox"]
            flat = flat_sides(w, h)
            if flat:  # said here, where the json's own bbox and the annotation id are known
                problems.append(problem(DEGENERATE, f"{ann_path} [{im['file_name']}]", f"annotation {_id(a)}: "
                                        f"bbox {json.dumps(a['bbox'])} (x, y, w, h) has {flat}; dropped"))
                continue
            boxes.append([x, y, x + w, y + h])
            labels.append(cat_index[a["category_id"]])
            crowd.append(bool(a.get("iscrowd", 0)))
        samples.append(Sample(Path(img_dir) / im["file_name"], np.asarray(boxes, np.float32), labels,
                              image_id=int(im["id"]), width=_dim(im.get("width")),
                              height=_dim(im.get("height")), crowd=np.asarray(crowd, bool)))
    known = {im.get("id") for im in gt["images"] if isinstance(im, dict)}
    for image_id, anns in by_image.items():
        if image_id not in known:  # dropped with nothing said, while data check counted the boxes as fine
            problems.append(problem(BAD_ANNOTATION, ann_path, f"{len(anns)} annotation(s) (first: {_id(anns[0])}) "
                                    f"name image_id {image_id}, which is not in images; dropped"))
    return Split(samples, names, problems, coco_gt=gt, category_ids=[c["id"] for c in cats])


def _without_polygons(d: dict) -> dict:
    """json object_hook: an annotation without its segmentation, dropped as soon as it is parsed.
    Polygons are most of a COCO json and box AP never reads them; kept until the end, those of a
    120k-image json took 1.8 GB more at the peak and made the parse half again as long."""
    if "bbox" in d:
        d.pop("segmentation", None)
    return d


def _dim(v: object) -> int:
    """An image entry's width or height ("480" too); 0 (unknown: taken from the file) when absent,
    null or not a number."""
    try:
        f = float(v)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return 0
    return int(f) if np.isfinite(f) and f > 0 else 0


def _id(a: object) -> object:
    return a.get("id", "?") if isinstance(a, dict) else "?"


def flat_sides(w: float, h: float) -> str:
    """'a negative width', 'a zero height', 'a negative width and a zero height' ... of a COCO
    bbox's w and h; '' when both are above 0 (or not numbers: NaN and infinity have their own line)."""
    return " and ".join(f"{'a negative' if v < 0 else 'a zero'} {name}" for name, v in (("width", w), ("height", h))
                        if v <= 0)


def bad_annotation(a: object) -> str | None:
    """Why an annotation entry cannot be used, or None."""
    if not isinstance(a, dict):
        return "not an object"
    for key in ("image_id", "category_id", "bbox"):
        if key not in a:
            return f"no {key!r}"
    for key in ("image_id", "category_id"):  # a list here raised TypeError (unhashable) mid-read
        if not isinstance(a[key], int) or isinstance(a[key], bool):
            return f"{key} must be an integer, not {a[key]!r:.40}"
    box = a["bbox"]
    if not isinstance(box, list) or len(box) != 4 or not all(isinstance(v, (int, float)) for v in box):
        return f"bbox must be 4 numbers [x, y, w, h], not {box!r:.60}"
    return None


def read_coco_indexed(spec: DataSpec, split: str) -> Split:
    """read_coco through the cached index when the json is large (see data/index.py)."""
    from .index import cached_coco

    return cached_coco(spec, split, read_coco)


READERS["coco"] = read_coco_indexed
