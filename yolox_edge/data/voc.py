"""Pascal VOC XML reader: a split is ``{annotations: DIR, images: DIR, list: FILE_OF_STEMS}``.

Without ``list`` every ``*.xml`` in the annotations folder is used. ``names`` in the spec fixes
the class order (required: an XML folder has no class order of its own). VOC coordinates are
1-based inclusive pixel indices; they become 0-based pixel edges: x1 = xmin - 1, x2 = xmax.
``difficult`` objects are kept (as the official YOLOX VOC loader does). A sample's size is its
image file's (read from the header); a ``<size>`` that differs is reported (``SIZE_MISMATCH``)
and the boxes are clipped to the file, as training and the COCO path do.
"""
from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

from ..errors import UserError, read_utf8_text
from . import check
from .index import cached_folder_split
from .preprocess import IMAGE_SUFFIXES, scan_images
from .sample import Sample
from .spec import READERS, DataSpec, Split, check_split_folders, split_entries


def parse_voc_xml(path: Path) -> tuple[str | None, int, int, list[tuple[str, list[float]]]]:
    """(filename, width, height, [(class name, [x1, y1, x2, y2])]) of one VOC XML file.

    Raises BadSample(EMPTY) for an empty file and BadSample(BAD_ANNOTATION) for broken XML.
    """
    text = path.read_bytes()
    if not text.strip():
        raise check.BadSample(check.EMPTY, path, "no XML inside; the image was skipped")
    try:
        root = ET.fromstring(text)
    except ET.ParseError as e:
        raise check.BadSample(check.BAD_ANNOTATION, path, f"not valid XML ({e}); the image was skipped") from None
    filename = (root.findtext("filename") or "").strip() or None

    def num(node, tag: str) -> float:
        v = node.findtext(tag)
        if v is None:
            raise check.BadSample(check.BAD_ANNOTATION, path, f"object without <{tag}>; the image was skipped")
        try:
            return float(v)
        except ValueError:
            raise check.BadSample(check.BAD_ANNOTATION, path,
                                  f"<{tag}> is not a number: {v!r}; the image was skipped") from None

    size = root.find("size")
    w = int(num(size, "width")) if size is not None and size.findtext("width") else 0
    h = int(num(size, "height")) if size is not None and size.findtext("height") else 0
    objects = []
    for obj in root.iter("object"):
        name = (obj.findtext("name") or "").strip()
        bb = obj.find("bndbox")
        if bb is None:
            raise check.BadSample(check.BAD_ANNOTATION, path, f"object {name!r} has no <bndbox>; the image was skipped")
        objects.append((name, [num(bb, "xmin") - 1, num(bb, "ymin") - 1, num(bb, "xmax"), num(bb, "ymax")]))
    return filename, w, h, objects


def _image_index(img_dir: Path) -> tuple[dict[str, list[str]], dict[str, str]]:
    """Stem -> image file names in the folder (one listing instead of a stat per sample), the
    JPEG/PNG/... ones first, then the .avif, .gif, ... this OpenCV decodes (``scan_images``); and
    stem -> the name of an image it cannot decode, for an XML whose image is only that one."""
    out: dict[str, list[str]] = {}
    unread: dict[str, str] = {}
    if img_dir.is_dir():
        found, left_out = scan_images(img_dir)
        for p in sorted(found, key=lambda p: p.suffix.lower() not in IMAGE_SUFFIXES):  # stable: names in order
            out.setdefault(p.stem, []).append(p.name)
        for p in left_out:
            unread.setdefault(p.stem, p.name)
    return out, unread


def _read_stems(list_path: Path, ann_dir: Path) -> list[str]:
    stems = []
    for line in read_utf8_text(list_path).splitlines():  # a BOM is not part of the first stem
        item = line.strip()
        if not item:
            continue
        parts = item.rsplit(None, 1)
        # VOC ImageSets/Main/<class>_train.txt lines are "stem flag"; flag -1 means absent. A
        # whole line naming an XML is a stem with spaces ("IMG 0001"), not a stem and a flag.
        if len(parts) == 2 and parts[1] in ("-1", "0", "1") and not (ann_dir / f"{item}.xml").is_file():
            if parts[1] == "-1":
                continue
            item = parts[0]
        stems.append(Path(item).stem if Path(item).suffix.lower() in IMAGE_SUFFIXES | {".xml"} else item)
    return stems


def build_voc_split(ann_dir: Path, img_dir: Path, list_path: Path | None, names: list[str]) -> Split:
    """Parse the XMLs of one split into samples (no cache; see read_voc)."""
    class_index = {n: i for i, n in enumerate(names)}
    problems: list[str] = []
    if list_path is not None:
        stems = _read_stems(list_path, ann_dir)
    else:
        stems = sorted(p.stem for p in ann_dir.glob("*.xml"))
    images, unread = _image_index(img_dir)
    samples: list[Sample] = []
    seen: dict[str, str] = {}
    used_images: dict[Path, Path] = {}
    for stem in stems:
        xml = ann_dir / f"{stem}.xml"
        if stem in seen:
            problems.append(check.problem(check.DUPLICATE, list_path or xml, f"{stem} is listed more than once"))
            continue
        seen[stem] = stem
        if not xml.is_file():
            problems.append(check.problem(check.MISSING, xml, f"annotation for {stem} not found"))
            continue
        try:
            filename, w, h, objects = parse_voc_xml(xml)
        except check.BadSample as e:
            problems.append(str(e))
            continue
        if filename and (img_dir / filename).is_file():
            image = img_dir / filename
        elif stem in images:
            image = img_dir / images[stem][0]
        elif stem in unread:
            problems.append(check.problem(check.UNREADABLE, img_dir / unread[stem], f"the image of {xml.name}, but this "
                                          f"OpenCV cannot decode {Path(unread[stem]).suffix.lower()} files: convert it "
                                          "to JPEG or PNG; the sample was skipped"))
            continue
        else:
            problems.append(check.problem(check.MISSING, img_dir / (filename or f"{stem}.jpg"),
                                          f"image of {xml.name} not found; the sample was skipped"))
            continue
        if image in used_images:
            problems.append(check.problem(check.DUPLICATE, xml, f"{image.name} is also annotated by "
                                          f"{used_images[image].name}; this copy was skipped"))
            continue
        used_images[image] = xml
        # The file's size is the truth, as for COCO (check.size_mismatch): clipping to a wrong <size>
        # (a converted or hand-edited XML) would cut boxes that fit the image, in training and in
        # eval's ground truth. One header read per image (0.04-0.15 ms), when the index is built.
        wh = check.image_size(image)
        if wh is None:
            if w <= 0 or h <= 0:  # some tools write <size> as 0, and there is no other size
                problems.append(check.problem(check.UNREADABLE, image, "header cannot be read; sample skipped"))
                continue
            # kept at <size>: the file checks name it (data check, training's count) and training skips it
        else:
            mismatch = check.size_mismatch(Sample(image, width=w, height=h), wh)  # None for a <size> of 0
            if mismatch:
                problems.append(mismatch)
            w, h = wh
        boxes, labels = [], []
        for name, box in objects:
            if name not in class_index:
                problems.append(check.problem(check.UNKNOWN_CLASS, xml, f"{name!r} is not in names "
                                              f"({', '.join(names[:10])}{'...' if len(names) > 10 else ''}); "
                                              "box dropped"))
                continue
            boxes.append(box)
            labels.append(class_index[name])
        boxes_a, labels_a, _ = check.clean_boxes(np.asarray(boxes, np.float32), np.asarray(labels, np.int64),
                                                 w, h, xml, problems=problems)
        samples.append(Sample(image, boxes_a, labels_a, image_id=len(samples) + 1, width=w, height=h))
    return Split(samples, list(names), problems)


def _collect_names(ann_dir: Path, limit: int = 2000) -> list[str]:
    found: set[str] = set()
    for i, xml in enumerate(sorted(ann_dir.glob("*.xml"))):
        if i >= limit:
            break
        try:
            found.update(n for n, _ in parse_voc_xml(xml)[3])
        except check.BadSample:
            pass
    return sorted(found)


def read_voc(spec: DataSpec, split: str) -> Split:
    """Read a VOC split through the index cache."""
    paths = split_entries(spec, split, ("annotations", "images"), ("list",),
                          "'annotations' (folder of XMLs) and 'images' (folder); 'list' (file of stems) is optional")
    ann_dir, img_dir, list_path = paths["annotations"], paths["images"], paths.get("list")
    folders = {"annotations": ann_dir, "images": img_dir}
    check_split_folders(spec, split, folders, list_path)
    if not spec.names:
        raise UserError(f"{spec.path}: a voc spec needs 'names: [...]' giving the class order; "
                        f"the annotations name: {', '.join(_collect_names(ann_dir)) or 'nothing'}")
    return cached_folder_split(spec, folders, list_path,
                               lambda: build_voc_split(ann_dir, img_dir, list_path, list(spec.names)))


READERS["voc"] = read_voc
