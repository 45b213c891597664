"""YOLO txt reader: a split is ``{images: DIR, labels: DIR, list: FILE}`` (labels and list optional).

One ``labels/<stem>.txt`` per image, one line per object: ``class cx cy w h`` normalised to
[0, 1] (a polygon line ``class x1 y1 x2 y2 ...`` becomes its bounding box); a file with values
above 1 (pixels) is one problem line that says so. ``labels``
defaults to the images folder with its last ``images`` component replaced by ``labels`` (the
usual layout); the labels folder must exist (a misnamed one made every image a background
image). An image without a label file is a background image (the YOLO convention);
an empty label file is reported and kept as a background image; a label file without an
image is reported as a missing file. ``names`` in the spec gives the class order (required).
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ..errors import UserError, read_utf8_text
from . import check
from .index import cached_folder_split
from .preprocess import IMAGE_SUFFIXES, left_out_note, scan_images, walk_visible
from .sample import Sample
from .spec import READERS, DataSpec, Split, check_split_folders, split_entries


def default_labels_dir(img_dir: Path) -> Path:
    """images/train -> labels/train (the last 'images' component becomes 'labels')."""
    parts = list(img_dir.parts)
    for i in range(len(parts) - 1, -1, -1):
        if parts[i] == "images":
            parts[i] = "labels"
            return Path(*parts)
    return img_dir.parent / "labels"


def read_label_text(path: Path) -> str:
    """A label or list file's text: UTF-8, without the byte-order mark Windows Notepad writes
    (read as text it made the first line '\\ufeff0 0.5 ...', 'not numbers', and lost its box)."""
    return path.read_text(encoding="utf-8-sig", errors="replace")


# Above this a coordinate is not a fraction of the image: a box on the border rounds to 1.0001,
# and one drawn a little past it (1.02) keeps its own 'outside' line, clipped; pixel coordinates
# are in the tens and hundreds.
FRACTION_LIMIT = 1.1


def parse_yolo_txt(path: Path, num_classes: int, width: int, height: int, problems: list[str],
                   text: str | None = None) -> tuple[np.ndarray, np.ndarray, float]:
    """Pixel xyxy boxes and class indices of one label file (``text``: its content, when already
    read), and the largest coordinate value of its boxes as written (0 without boxes: above 1,
    they are not the fractions of the image YOLO labels hold); bad lines become problems."""
    boxes, labels = [], []
    largest = 0.0
    for n, line in enumerate((read_label_text(path) if text is None else text).splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        try:
            vals = [float(v) for v in parts]
        except ValueError:
            problems.append(check.problem(check.BAD_ANNOTATION, path, f"line {n}: not numbers: {line.strip()!r}; "
                                          "box dropped"))
            continue
        if not all(math.isfinite(v) for v in vals):  # float() takes 'nan' and 'inf'
            problems.append(check.problem(check.BAD_ANNOTATION, path, f"line {n}: not finite numbers: "
                                          f"{line.strip()!r}; box dropped"))
            continue
        cls = vals[0]
        if cls != int(cls) or not 0 <= cls < num_classes:
            problems.append(check.problem(check.UNKNOWN_CLASS, path, f"line {n}: class {parts[0]} is not in "
                                          f"0..{num_classes - 1} (names has {num_classes}); box dropped"))
            continue
        if len(vals) == 5:
            cx, cy, w, h = vals[1:]
            box = [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2]
        elif len(vals) >= 7 and len(vals) % 2 == 1:
            xs, ys = vals[1::2], vals[2::2]
            box = [min(xs), min(ys), max(xs), max(ys)]
        else:
            problems.append(check.problem(check.BAD_ANNOTATION, path, f"line {n}: expected 'class cx cy w h', "
                                          f"got {len(parts)} values; box dropped"))
            continue
        boxes.append([box[0] * width, box[1] * height, box[2] * width, box[3] * height])
        labels.append(int(cls))
        largest = max(largest, *vals[1:])
    return np.asarray(boxes, np.float32).reshape(-1, 4), np.asarray(labels, np.int64), largest


def clean_yolo_boxes(boxes: np.ndarray, labels: np.ndarray, width: int, height: int, label: Path,
                     largest: float, problems: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """:func:`check.clean_boxes` for one label file's boxes. A file with coordinates above 1 gets
    one NOT_FRACTIONS line saying what YOLO coordinates are, instead of a 'box outside the image'
    line per box that shows its pixels multiplied by the image size again (a 10k-image set in
    pixels printed a line for each of its boxes and nothing about the cause)."""
    if largest <= FRACTION_LIMIT:
        boxes, labels, _ = check.clean_boxes(boxes, labels, width, height, label, problems=problems)
        return boxes, labels
    box_problems: list[str] = []
    kept, kept_labels, _ = check.clean_boxes(boxes, labels, width, height, label, problems=box_problems)
    fate = f"{len(boxes) - len(kept)} of its {len(boxes)} box(es) dropped"
    clipped = sum(1 for p in box_problems if check.problem_kind(p) == check.OUTSIDE and not p.endswith("dropped"))
    if clipped:
        fate += f", {clipped} clipped to the image"
    hint = ("; these look like pixels: divide x and w by the image width, y and h by its height"
            if largest > 2 else "")
    problems.append(check.problem(check.NOT_FRACTIONS, label, f"values up to {largest:g} in a {width}x{height} "
                                  f"image, but YOLO coordinates are fractions of the image (0..1){hint}; {fate}"))
    return kept, kept_labels


def label_key(image: Path, img_dir: Path) -> str:
    """Where ``image``'s label file is, below the labels folder, without '.txt': its path below
    ``img_dir`` without the suffix (``seq1/b`` for images/train/seq1/b.jpg, as Ultralytics pairs
    them), or its stem for an image elsewhere (a list file's absolute path)."""
    try:
        rel = image.relative_to(img_dir)
    except ValueError:
        return image.stem
    return rel.with_name(rel.stem).as_posix()


def _list_images(img_dir: Path, list_path: Path | None, problems: list[str]) -> tuple[list[Path], set[str]]:
    """The split's images, and the ``label_key``s of the folder's images this OpenCV cannot decode
    (left out, named in one problem line: their label files are not orphans). Without a list file,
    the folder and its subfolders (not hidden ones), as Ultralytics reads them: a folder's .avif,
    .gif, .jfif, ... are read when this OpenCV decodes them, as ``predict DIR`` reads them; one
    beside a JPEG/PNG/... of its stem is that one's duplicate (``a.jpg`` kept before ``a.gif``,
    whatever the name order)."""
    if list_path is None:
        found, unread = scan_images(img_dir, recursive=True)
        if unread:
            problems.append(check.problem(check.UNREADABLE, img_dir, left_out_note(img_dir, unread)))
        usual: dict[str, Path] = {}  # label key -> the first (kept) JPEG/PNG/... of it
        for p in found:
            if p.suffix.lower() in IMAGE_SUFFIXES:
                usual.setdefault(label_key(p, img_dir), p)
        out = []
        for p in found:
            key = label_key(p, img_dir)
            if p.suffix.lower() not in IMAGE_SUFFIXES and key in usual:
                problems.append(check.problem(check.DUPLICATE, p, f"same stem as {usual[key].name} (both would "
                                              f"use {p.stem}.txt); skipped"))
            else:
                out.append(p)
        return out, {label_key(p, img_dir) for p in unread}
    return listed_images(img_dir, list_path), set()


def listed_images(img_dir: Path, list_path: Path) -> list[Path]:
    """The images a list file names: an absolute path as it is, any other entry by its file name in
    ``img_dir`` (``.jpg`` added to a bare stem)."""
    out = []
    for line in read_utf8_text(list_path).splitlines():  # a BOM is not part of the first name
        item = line.strip()
        if item:
            p = Path(item)
            out.append(p if p.is_absolute() else img_dir / (p.name if p.suffix else f"{item}.jpg"))
    return out


def _label_keys(lbl_dir: Path) -> list[str]:
    """The label files below ``lbl_dir`` (subfolders too, not hidden ones), as ``label_key``s."""
    keys = []
    for root, dirs, names in walk_visible(lbl_dir):
        below = Path(root).relative_to(lbl_dir)
        keys += [(below / n[:-4]).as_posix() for n in names if n.endswith(".txt")]
    return keys


def build_yolo_split(img_dir: Path, lbl_dir: Path, list_path: Path | None, names: list[str]) -> Split:
    """Parse the label files of one split (no cache; see read_yolo)."""
    problems: list[str] = []
    samples: list[Sample] = []
    by_key: dict[str, Path] = {}
    images, unread = _list_images(img_dir, list_path, problems)
    labelled = 0  # images with a label file (an empty one counts: it was written on purpose)
    for image in images:
        key = label_key(image, img_dir)
        if key in by_key:
            # Both images would take the same label file: keep the first, say so.
            problems.append(check.problem(check.DUPLICATE, image, f"same stem as {by_key[key].name} "
                                          f"(both would use {key}.txt); skipped"))
            continue
        by_key[key] = image
        if not image.is_file():
            problems.append(check.problem(check.MISSING, image, "listed image not found; skipped"))
            continue
        label = lbl_dir / f"{key}.txt"
        wh = check.image_size(image)
        if wh is None:
            problems.append(check.problem(check.UNREADABLE, image, "header cannot be read; skipped"))
            continue
        w, h = wh
        boxes = np.zeros((0, 4), np.float32)
        labels = np.zeros(0, np.int64)
        largest = 0.0
        if label.is_file():
            labelled += 1
            text = read_label_text(label)
            # An empty file is a background image, written on purpose (CVAT, Roboflow and Label Studio
            # write one for each image without objects): counted in the 'empty' column, not a problem.
            if text.strip():
                boxes, labels, largest = parse_yolo_txt(label, len(names), w, h, problems, text)
        boxes, labels = clean_yolo_boxes(boxes, labels, w, h, label, largest, problems)
        samples.append(Sample(image, boxes, labels, image_id=len(samples) + 1, width=w, height=h))
    if samples and not labelled:  # the loop above already looked for each label file
        problems.append(check.problem(check.MISSING, lbl_dir, f"no label file for any of the {len(samples)} "
                                      "images: all are background images; are the labels elsewhere?"))
    if lbl_dir.is_dir() and list_path is None:
        # classes.txt: the class list LabelImg's YOLO mode writes beside the labels, no orphan label
        for key in sorted(k for k in _label_keys(lbl_dir) if k not in by_key and k not in unread and k != "classes"):
            problems.append(check.problem(check.MISSING, img_dir / key, f"{key}.txt has no image in {img_dir}"))
    return Split(samples, list(names), problems, sizes_from_files=True)


def read_yolo(spec: DataSpec, split: str) -> Split:
    """Read a YOLO split through the index cache."""
    paths = split_entries(spec, split, ("images",), ("labels", "list"),
                          "'images' (folder); 'labels' (folder) and 'list' (file) are optional")
    img_dir, list_path = paths["images"], paths.get("list")
    lbl_dir = paths.get("labels") or default_labels_dir(img_dir)
    folders = {"images": img_dir, "labels": lbl_dir}
    check_split_folders(spec, split, folders, list_path, optional=("labels",))
    if not lbl_dir.is_dir():
        named = "named by" if paths.get("labels") else f"the default for images {img_dir}; set 'labels:' in"
        raise UserError(f"{lbl_dir}: labels folder not found ({named} {spec.path}, split {split!r}); without it "
                        "every image would be a background image")
    if not spec.names:
        raise UserError(f"{spec.path}: a yolo spec needs 'names: [...]' (class index i is the i-th name)")
    elsewhere = []  # a list's absolute paths outside images: the folder's signature does not see them
    if list_path is not None and list_path.is_file():
        try:
            elsewhere = [p for p in listed_images(img_dir, list_path) if not p.is_relative_to(img_dir)]
        except OSError:
            pass  # the build below reads the list again and says what is wrong with it
    return cached_folder_split(spec, folders, list_path,
                               lambda: build_yolo_split(img_dir, lbl_dir, list_path, list(spec.names)), elsewhere)


READERS["yolo"] = read_yolo
