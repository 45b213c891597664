"""Sample checks shared by the readers, the training dataset and ``yolox-edge data check``.

One code path: the readers report annotation problems with :func:`problem` and clean boxes
with :func:`clean_boxes`; the dataset decodes images with :func:`load_image` and skips what
it rejects; ``data check`` runs the same functions over every sample and lists the results.
A problem is one string ``"FILE: KIND: detail"`` (``Split.problems``); :func:`problem_kind`
recovers the kind for the summary table.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from ..errors import UserError
from .sample import Sample

UNREADABLE = "unreadable image"
TRUNCATED = "truncated image"
MISSING = "missing file"
# Kinds name the problem; the detail says what became of the box ("clipped to ...", "dropped"):
# a box outside the image may be clipped or, with nothing of it inside, dropped.
OUTSIDE = "box outside the image"
DEGENERATE = "zero or negative area box"
UNKNOWN_CLASS = "unknown class"
EMPTY = "empty annotation file"
DUPLICATE = "duplicate id"
BAD_ANNOTATION = "bad annotation"
SIZE_MISMATCH = "image size differs from annotation"
KINDS = (UNREADABLE, TRUNCATED, MISSING, OUTSIDE, DEGENERATE, UNKNOWN_CLASS, EMPTY, DUPLICATE,
         BAD_ANNOTATION, SIZE_MISMATCH)


class BadSample(UserError):
    """A sample training cannot use; ``kind`` is one of ``KINDS``, ``path`` the file to fix."""

    def __init__(self, kind: str, path: str | Path, detail: str = "") -> None:
        self.kind, self.path = kind, Path(path)
        super().__init__(problem(kind, path, detail))


def problem(kind: str, path: str | Path, detail: str = "") -> str:
    """The one-line problem text: names the file first, then the kind."""
    return f"{path}: {kind}" + (f": {detail}" if detail else "")


def problem_kind(text: str) -> str:
    """The kind of a problem string made by :func:`problem` ('other' for foreign ones)."""
    for kind in KINDS:
        if f": {kind}" in text:
            return kind
    return "other"


def _truncated(data: np.ndarray) -> bool:
    """True when an encoded JPEG/PNG stops before its end marker.

    OpenCV decodes a cut JPEG without an error (grey bottom rows), so check the marker.
    Some writers append bytes after the JPEG end marker: accept it within the last 4 KiB.
    """
    tail = data[-4096:].tobytes().rstrip(b"\x00")
    head = data[:8].tobytes()
    if head[:2] == b"\xff\xd8":  # by content, not by name: a non-JPEG .jpg is 'unreadable'
        return b"\xff\xd9" not in tail
    if head == b"\x89PNG\r\n\x1a\n":
        return b"IEND" not in tail[-64:]
    return False


_REDUCED = {2: cv2.IMREAD_REDUCED_COLOR_2, 4: cv2.IMREAD_REDUCED_COLOR_4, 8: cv2.IMREAD_REDUCED_COLOR_8}


def load_image(path: str | Path, reduce: int = 1) -> np.ndarray:
    """Decode an image as BGR uint8, or raise BadSample (missing, unreadable, truncated).

    ``reduce`` in (2, 4, 8) asks the decoder for a 1/reduce image (JPEG decodes in a fraction
    of the time: a 12 MP photo for a 416 input); the caller resizes from whatever comes back.
    """
    p = Path(path)
    if not p.is_file():
        raise BadSample(MISSING, p, "image not found; fix the path or remove the annotation")
    data = np.fromfile(str(p), dtype=np.uint8)
    if data.size == 0:
        raise BadSample(UNREADABLE, p, "empty file")
    if _truncated(data):
        raise BadSample(TRUNCATED, p, "file ends before the image data does; re-copy or re-export it")
    img = cv2.imdecode(data, _REDUCED.get(reduce, cv2.IMREAD_COLOR))
    if img is None:
        raise BadSample(UNREADABLE, p, "not a decodable image (JPEG, PNG, BMP, WebP or TIFF)")
    return img


def image_size(path: str | Path) -> tuple[int, int] | None:
    """(width, height) as OpenCV will decode it, from the header; None when it cannot be read.

    OpenCV applies the EXIF orientation (phone photos): orientations 5-8 swap width and height.
    That holds for JPEG, which Pillow calls MPO when the phone stored a second picture in the file
    (a depth map, a preview); whether OpenCV rotates a PNG, WebP or TIFF by its EXIF depends on
    its version and on the decoder, so such a (rare) file is decoded once to find out.
    """
    try:
        from PIL import Image  # header only: fast enough to index 100k images

        with Image.open(path) as im:
            w, h = int(im.size[0]), int(im.size[1])
            orientation = im.getexif().get(0x0112, 1)
            fmt = im.format
        if orientation not in (5, 6, 7, 8):
            return w, h
        if fmt in ("JPEG", "MPO"):
            return h, w
        img = cv2.imdecode(np.fromfile(str(path), dtype=np.uint8), cv2.IMREAD_COLOR)
        return None if img is None else (int(img.shape[1]), int(img.shape[0]))
    except Exception:  # noqa: BLE001 - any failure means "unreadable", reported by the caller
        return None


EDGE_SLACK_PX = 0.5  # rounding, not an annotation mistake


def clean_boxes(boxes: np.ndarray, labels: np.ndarray, width: int, height: int, where: str | Path,
                crowd: np.ndarray | None = None, problems: list[str] | None = None
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Drop boxes that are not numbers or have zero or negative area, clip the rest to the image.

    Appends one problem per dropped or clipped box to ``problems`` when given, saying which
    happened (a box wholly outside the image is one 'outside' problem, dropped, not also a
    'zero area' one after clipping); a box at most ``EDGE_SLACK_PX`` outside is clipped without
    one (normalised YOLO labels that touch the border round to 195.0001 in a 195-pixel image).
    Returns the kept (boxes, labels, crowd). ``width``/``height`` <= 0 (unknown) skip the
    clipping. Running it again on its own output finds nothing, so callers may apply it at
    every stage.
    """
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4).copy()
    labels = np.asarray(labels, np.int64).reshape(-1)
    crowd = np.zeros(len(labels), bool) if crowd is None else np.asarray(crowd, bool).reshape(-1)
    finite = np.isfinite(boxes).all(1)
    # NaN compares false everywhere: without this it passed the outside test and was called 'zero area'
    with np.errstate(invalid="ignore"):
        empty = finite & ~((boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1]))
    outside = np.zeros(len(boxes), bool)
    clipped = boxes
    if width > 0 and height > 0 and len(boxes):
        lo = np.zeros(4, np.float32)
        hi = np.array([width, height, width, height], np.float32)
        with np.errstate(invalid="ignore"):
            outside = finite & ~empty & ((boxes < lo - EDGE_SLACK_PX) | (boxes > hi + EDGE_SLACK_PX)).any(1)
        clipped = np.clip(boxes, lo, hi)
    keep = finite & (clipped[:, 2] > clipped[:, 0]) & (clipped[:, 3] > clipped[:, 1])
    if problems is not None:
        for i in np.flatnonzero(~finite | empty | outside):  # in box order, one line per box
            b = _fmt(boxes[i])
            if not finite[i]:
                what = "is not a number" if np.isnan(boxes[i]).any() else "is infinite"
                problems.append(problem(BAD_ANNOTATION, where, f"box {b} {what}; dropped"))
            elif empty[i]:
                problems.append(problem(DEGENERATE, where, f"box {b}; dropped"))
            elif keep[i]:
                problems.append(problem(OUTSIDE, where, f"box {b} in a {width}x{height} image; "
                                        f"clipped to {_fmt(clipped[i])}"))
            else:
                problems.append(problem(OUTSIDE, where, f"box {b} in a {width}x{height} image; nothing of "
                                        "it is inside: dropped"))
    return clipped[keep], labels[keep], crowd[keep]


def _fmt(b: np.ndarray) -> str:
    return "[" + ", ".join(f"{v:g}" for v in np.round(b, 1)) + "]"


def clean_sample(sample: Sample, problems: list[str] | None = None, where: str | Path | None = None) -> Sample:
    """A copy of ``sample`` with boxes clipped to its recorded size and empty boxes dropped."""
    # a COCO json holds every image: name the image after the annotation file
    where = f"{where} [{sample.image.name}]" if where and Path(where) != sample.image else sample.image
    boxes, labels, crowd = clean_boxes(sample.boxes, sample.labels, sample.width, sample.height,
                                       where, sample.crowd, problems)
    return Sample(sample.image, boxes, labels, image_id=sample.image_id, width=sample.width,
                  height=sample.height, crowd=crowd)


def training_targets(sample: Sample, img_wh: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Boxes and labels training may use for an image of (w, h): crowd dropped, clipped, non-empty."""
    keep = ~np.asarray(sample.crowd, bool).reshape(-1)
    boxes, labels, _ = clean_boxes(sample.boxes[keep], sample.labels[keep], img_wh[0], img_wh[1],
                                   sample.image)
    return boxes, labels


def duplicate_problems(samples: list[Sample], coco_gt: dict | None = None, where: str | Path = "") -> list[str]:
    """Problems for repeated image ids / image files (and repeated COCO annotation ids)."""
    out: list[str] = []
    seen_ids: dict[int, Path] = {}
    seen_paths: set[Path] = set()
    for s in samples:
        if s.image_id in seen_ids and seen_ids[s.image_id] != s.image:
            out.append(problem(DUPLICATE, where or s.image, f"image id {s.image_id} is used by "
                               f"{seen_ids[s.image_id].name} and {s.image.name}"))
        seen_ids.setdefault(s.image_id, s.image)
        if s.image in seen_paths:
            out.append(problem(DUPLICATE, s.image, "image listed more than once"))
        seen_paths.add(s.image)
    if coco_gt is not None:
        ann_ids: set = set()
        for a in coco_gt.get("annotations", []):
            if "id" in a and a["id"] in ann_ids:
                out.append(problem(DUPLICATE, where, f"annotation id {a['id']} is used more than once; "
                               "its boxes are all kept"))
            ann_ids.add(a.get("id"))
    return out


# -- the whole-dataset check behind `yolox-edge data check` ----------------------------------
SIZE_BINS = (0, 8, 16, 32, 64, 128, 256, 512)  # sqrt(box area) in image pixels


def _size_histogram(sides: np.ndarray) -> dict[str, int]:
    edges = list(SIZE_BINS) + [np.inf]
    counts = np.histogram(sides, bins=edges)[0] if len(sides) else np.zeros(len(SIZE_BINS), int)
    labels = [f"{lo}-{hi}" if np.isfinite(hi) else f">={lo}" for lo, hi in zip(edges[:-1], edges[1:])]
    return {k: int(v) for k, v in zip(labels, counts)}


def _decode_problems(samples: list[Sample], threads: int, progress: bool, desc: str) -> list[str]:
    """Decode every image (threads: cv2 releases the GIL) and report what load_image rejects."""
    from concurrent.futures import ThreadPoolExecutor

    from ..progress import progress_bar

    def one(s: Sample) -> str | None:
        try:
            img = load_image(s.image)
        except BadSample as e:
            return str(e)
        h, w = img.shape[:2]
        if s.width > 0 and s.height > 0 and (w, h) != (s.width, s.height):
            return problem(SIZE_MISMATCH, s.image, f"annotated {s.width}x{s.height}, file is {w}x{h}; "
                           "boxes are clipped to the file")
        return None

    with ThreadPoolExecutor(max(1, threads)) as pool:
        results = list(progress_bar(pool.map(one, samples), total=len(samples), desc=desc, unit="img",
                            disable=not progress, leave=False))
    return [r for r in results if r]


def check_dataset(spec_path: str | Path, splits: list[str] | None = None, *, decode: bool = True,
                  threads: int = 4, progress: bool = True) -> dict:
    """Counts per split, class and box-size histograms, and every problem (one string each).

    ``decode=False`` only checks that image files exist (fast, misses corrupt images).
    """
    from .spec import load_spec, read_split

    spec = load_spec(spec_path)
    for name in splits or []:  # asked for by the user: their mistake, not the data's
        spec.require_split(name)
    report: dict = {"spec": str(spec.path), "format": spec.format, "splits": {}, "problems": [],
                    "unreadable_splits": {}}
    for name in splits or list(spec.splits):
        try:
            split = read_split(spec, name)
        except UserError as e:  # reported with the others; the CLI exits 2 (train/eval would stop here)
            report["unreadable_splits"][name] = e.args[0]
            continue
        probs = list(split.problems)
        where = spec.split_paths(name).get("annotations", spec.path)
        probs += duplicate_problems(split.samples, split.coco_gt, where)
        # Readers other than voc/yolo (coco) leave boxes as written: clean them here, same function.
        samples = [clean_sample(s, probs, where) for s in split.samples]
        if decode:
            probs += _decode_problems(samples, threads, progress, f"check {name}")
        else:
            probs += [problem(MISSING, s.image, "image not found") for s in samples if not s.image.is_file()]
        labels = np.concatenate([s.labels for s in samples]) if samples else np.zeros(0, np.int64)
        boxes = np.concatenate([s.boxes for s in samples]) if samples else np.zeros((0, 4), np.float32)
        sides = np.sqrt(np.clip((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]), 0, None))
        counts = np.bincount(labels, minlength=len(split.names)) if len(labels) else np.zeros(len(split.names))
        report["splits"][name] = {
            "images": len(samples), "boxes": int(len(labels)),
            "background_images": sum(1 for s in samples if len(s.labels) == 0),
            "crowd_boxes": int(sum(int(s.crowd.sum()) for s in samples)),
            "classes": {n: int(c) for n, c in zip(split.names, counts)},
            "box_sizes": _size_histogram(sides),
            "problems": len(probs),
        }
        report["problems"] += probs
    report["problems"] = list(dict.fromkeys(report["problems"]))  # same problem from two splits: once
    kinds: dict[str, int] = {}
    for p in report["problems"]:
        kinds[problem_kind(p)] = kinds.get(problem_kind(p), 0) + 1
    report["problem_kinds"] = kinds
    return report


def format_report(report: dict, max_classes: int = 30) -> str:
    """The human-readable report printed by ``yolox-edge data check``."""
    lines = [f"{report['spec']} ({report['format']})", ""]
    lines.append(f"{'split':<8}{'images':>8}{'boxes':>8}{'empty':>8}{'crowd':>8}{'problems':>10}")
    for name, s in report["splits"].items():
        lines.append(f"{name:<8}{s['images']:>8}{s['boxes']:>8}{s['background_images']:>8}"
                     f"{s['crowd_boxes']:>8}{s['problems']:>10}")
    for name, s in report["splits"].items():
        lines += ["", f"[{name}] boxes per class:"]
        classes = sorted(s["classes"].items(), key=lambda kv: -kv[1])
        for cname, c in classes[:max_classes]:
            lines.append(f"  {cname:<24}{c:>8}")
        if len(classes) > max_classes:
            lines.append(f"  ... {len(classes) - max_classes} more classes")
        lines.append(f"[{name}] box size, sqrt(area) in image pixels:")
        lines.append("  " + "  ".join(f"{k}: {v}" for k, v in s["box_sizes"].items()))
    for name, why in report.get("unreadable_splits", {}).items():
        lines += ["", f"[{name}] cannot be read: {why}"]
    probs = report["problems"]
    lines += ["", f"problems: {len(probs)}" + ("" if not probs else "  (" + ", ".join(
        f"{k}: {v}" for k, v in report["problem_kinds"].items()) + ")")]
    lines += [f"  {p}" for p in probs]
    return "\n".join(lines)
