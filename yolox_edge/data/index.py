"""A cached index of a parsed split, so a 100k-image dataset is not re-parsed every run.

The cache lives beside the data in ``.yolox_edge_cache/`` and falls back to
``~/.cache/yolox_edge`` when that folder is not writable (``YOLOX_EDGE_CACHE`` overrides
both). It is keyed on the split's definition and on path + mtime + size of every file the
reader looked at (and its ctime: an edit that keeps mtime and size, as rsync -t or tar can,
still changes it), written atomically, and stored as a numpy ``.npz`` read back with
``allow_pickle=False`` (no pickle).
"""
from __future__ import annotations

import hashlib
import json
import os
import stat
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from ..fileio import atomic_write_bytes
from .sample import Sample
from .spec import Split

INDEX_VERSION = 14  # 2: EXIF-rotated MPO/PNG/WebP sizes, NaN label lines; 3: problem wording;
# 4: voc sizes (and clipping) from the image files, not <size>; 5: a BOM before a label file's first line;
# 6: one 'coordinates above 1' line for a YOLO file in pixels, not one per box; 7: a COCO split's category_ids;
# 8: a COCO bbox with a zero or negative side said with its annotation id and the json's own [x, y, w, h];
# 9: a yolo/voc folder's .avif, .gif, .jfif, ... read when this OpenCV decodes them, else named in one line;
# 10: an image Pillow cannot size (.hdr, .exr) sized by OpenCV, not skipped;
# 11: meta, problems and coco_gt as UTF-8 JSON bytes (as numpy str they took 4 bytes a character);
# 12: the image paths so too (as numpy str each took 4 bytes a character of the longest path)
# 13: an empty YOLO label file is a background image, not a problem; a COCO json without annotations named
# 14: a VOC size that is the file's turned a quarter said as its EXIF orientation
CACHE_DIRNAME = ".yolox_edge_cache"


def _hash_folder(h, folder: Path | str) -> None:
    """Each file of ``folder`` and of its subfolders, as the readers walk them (``walk_visible``:
    hidden ones, the cache's own among them, left out; links to folders followed, once)."""
    from .preprocess import walk_visible

    for root, dirs, names in walk_visible(folder):
        h.update(f"{root}\0folder\n".encode())
        for name in sorted(names):
            path = os.path.join(root, name)
            try:
                st = os.stat(path)
            except OSError:  # a dangling link: no file, as the readers find it
                continue
            if stat.S_ISREG(st.st_mode):
                h.update(f"{path}\0{st.st_mtime_ns}\0{st.st_ctime_ns}\0{st.st_size}\n".encode())


def file_signature(paths: Iterable[Path]) -> str:
    """Hash of (path, mtime_ns, ctime_ns, size) of each file; a folder stands for every file inside
    it and its subfolders (a YOLO split reads its images' subfolders).

    ctime is set by the kernel on every write and cannot be set back by tools that restore
    mtime, so a same-size edit with its mtime restored is still seen."""
    h = hashlib.sha1()
    for p in sorted(Path(x) for x in paths):
        if p.is_dir():
            _hash_folder(h, p)
        elif p.exists():
            st = p.stat()
            h.update(f"{p}\0{st.st_mtime_ns}\0{st.st_ctime_ns}\0{st.st_size}\n".encode())
        else:
            h.update(f"{p}\0missing\n".encode())
    return h.hexdigest()


def _writable(folder: Path) -> bool:
    """True when ``folder`` (or its nearest existing parent) accepts new files.

    Permission bits are honoured even for root: a dataset folder marked read-only (as shared
    reference data is) must not grow a cache folder.
    """
    p = folder
    while not p.exists():
        p = p.parent
    try:
        mode = p.stat().st_mode
    except OSError:
        return False
    return bool(mode & stat.S_IWUSR) and os.access(p, os.W_OK)


def cache_dir(data_root: Path) -> Path:
    """Where the index of a dataset rooted at ``data_root`` is kept."""
    env = os.environ.get("YOLOX_EDGE_CACHE")
    if env:
        return Path(env)
    beside = Path(data_root) / CACHE_DIRNAME
    if _writable(beside):
        return beside
    return Path.home() / ".cache" / "yolox_edge"


def _utf8(obj: object) -> np.ndarray:
    """``obj`` as UTF-8 JSON bytes in a uint8 array. A numpy str array holds 4 bytes a character
    (UTF-32): a 120k-image COCO json's ground truth made a 660 MB cache file that took seconds to decode."""
    return np.frombuffer(json.dumps(obj).encode(), np.uint8)


def _from_utf8(a: np.ndarray) -> object:
    return json.loads(a.tobytes())


def _pack(split: Split, meta: dict) -> dict[str, np.ndarray]:
    """The arrays of the cache file (``np.savez``) for ``split`` (its ``coco_gt`` as given: ``cached_coco``
    strips it first)."""
    n = [len(s.labels) for s in split.samples]
    arrays = {
        "meta": _utf8({**meta, "names": split.names, "sizes_from_files": split.sizes_from_files,
                       "category_ids": split.category_ids}),
        "images": _utf8([str(s.image) for s in split.samples]),
        "ids": np.array([s.image_id for s in split.samples], np.int64),
        "sizes": np.array([[s.width, s.height] for s in split.samples], np.int64).reshape(-1, 2),
        "counts": np.array(n, np.int64),
        "boxes": (np.concatenate([s.boxes for s in split.samples]) if split.samples else np.zeros((0, 4)))
        .astype(np.float32),
        "labels": (np.concatenate([s.labels for s in split.samples]) if split.samples else np.zeros(0))
        .astype(np.int64),
        "crowd": (np.concatenate([s.crowd for s in split.samples]) if split.samples else np.zeros(0))
        .astype(bool),
        "problems": _utf8(split.problems),
    }
    if split.coco_gt is not None:
        arrays["coco_gt"] = _utf8(split.coco_gt)
    return arrays


def _unpack(path: Path) -> tuple[Split, dict]:
    with np.load(path, allow_pickle=False) as z:
        meta = _from_utf8(z["meta"])
        offsets = np.concatenate([[0], np.cumsum(z["counts"])])
        boxes, labels, crowd = z["boxes"], z["labels"], z["crowd"]
        samples = [
            Sample(Path(img), boxes[a:b], labels[a:b], image_id=int(i), width=int(wh[0]), height=int(wh[1]),
                   crowd=crowd[a:b])
            for img, i, wh, a, b in zip(_from_utf8(z["images"]), z["ids"], z["sizes"], offsets[:-1], offsets[1:])
        ]
        problems = _from_utf8(z["problems"])
        coco_gt = _from_utf8(z["coco_gt"]) if "coco_gt" in z.files else None
    ids = meta.get("category_ids")
    return Split(samples, list(meta["names"]), problems, coco_gt=coco_gt,
                 sizes_from_files=bool(meta.get("sizes_from_files", False)),
                 category_ids=[int(i) for i in ids] if ids is not None else None), meta


_GT_ANN_KEYS = ("id", "image_id", "category_id", "bbox", "area", "iscrowd")


def _strip_gt(gt: dict) -> dict:
    """The parts of a COCO json that box evaluation reads (segmentation polygons are most of its size)."""
    return {"images": gt.get("images", []), "categories": gt.get("categories", []),
            "annotations": [{k: a[k] for k in _GT_ANN_KEYS if k in a} for a in gt.get("annotations", [])]}


def cached_split(key: dict, watched: list[Path], data_root: Path, build: Callable[[], Split]) -> Split:
    """Return the split from the cache when ``key`` and the watched files are unchanged, else build it.

    ``key`` describes the split (format, paths, names); ``watched`` are the files/folders whose
    path + mtime + size invalidate the cache. A cache that cannot be read or written is ignored:
    the index is an optimisation, never a reason to fail.
    """
    key_json = _key_json(key, INDEX_VERSION)
    path = cache_dir(data_root) / _cache_name(key_json)
    sig = file_signature(watched)
    if path.is_file():
        try:
            split, meta = _unpack(path)
            if meta.get("signature") == sig and meta.get("key") == key_json:
                split.from_cache = True  # type: ignore[attr-defined]  # lets tests and logs see a hit
                return split
        except (OSError, ValueError, KeyError, json.JSONDecodeError):
            pass
    split = build()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        arrays = _pack(split, {"signature": sig, "key": key_json})
        # straight into the file: through a BytesIO the file was held in memory twice more
        atomic_write_bytes(path, lambda f: np.savez(f, **arrays))
    except OSError:
        pass
    else:
        _remove_earlier_versions(path.parent, key)
    return split


def _key_json(key: dict, version: int) -> str:
    return json.dumps({**key, "version": version}, sort_keys=True, default=str)


def _cache_name(key_json: str) -> str:
    return hashlib.sha1(key_json.encode()).hexdigest()[:20] + ".npz"


def _remove_earlier_versions(folder: Path, key: dict) -> None:
    """Delete this split's caches of earlier INDEX_VERSIONs (named by the same key): never read
    again, each version left one behind (a COCO train split's is tens of MB). Only names this key
    gives are touched."""
    for version in range(1, INDEX_VERSION):
        try:
            (folder / _cache_name(_key_json(key, version))).unlink()
        except OSError:  # not there (most), or not ours to delete: the cache is never a reason to fail
            pass


def cached_folder_split(spec, folders: dict[str, Path], list_path: Path | None,
                        build: Callable[[], Split], elsewhere: Iterable[Path] = ()) -> Split:
    """A split read from folders (and an optional list file) through the cache, keyed on the
    spec's format, the resolved paths, the class names and the OpenCV version (which of a folder's
    .avif, .gif, ... are read depends on the decoders it was built with: ``scan_images``).
    ``elsewhere``: files the split reads outside those folders (a list file's absolute paths),
    watched one by one: an image replaced there kept its old size in the cache."""
    import cv2

    key = {"format": spec.format, **{k: d.resolve() for k, d in folders.items()},
           "list": list_path.resolve() if list_path else None, "names": spec.names, "opencv": cv2.__version__}
    watched = [*folders.values()] + ([list_path] if list_path else []) + list(elsewhere)
    return cached_split(key, watched, spec.path.parent, build)


COCO_CACHE_MIN_BYTES = 8 << 20  # below this json.loads takes well under a second: not worth a cache file


def cached_coco(spec, split: str, parse: Callable[..., Split]) -> Split:
    """COCO reader through the index: only for large annotation files, keyed on the json file.

    The cached ``coco_gt`` keeps images, categories and the box fields of the annotations
    (id, image_id, category_id, bbox, area, iscrowd): all that COCO box AP reads. The run that
    parses the json returns it so too, parsed without the polygons (``parse``'s ``boxes_only``): after
    parsing a 120k-image json with them, a run (training, eval) went on holding 2.9 GB, now 1.1 GB.
    """
    paths = spec.split_paths(split)
    ann, img = paths.get("annotations"), paths.get("images")
    if (ann is None or img is None or not ann.is_file() or not img.is_dir()
            or ann.stat().st_size < COCO_CACHE_MIN_BYTES):
        return parse(spec, split)  # small, or broken: the reader gives the right message
    key = {"format": "coco", "annotations": ann.resolve(), "images": img.resolve(), "names": spec.names}

    def build() -> Split:
        split_read = parse(spec, split, boxes_only=True)
        if split_read.coco_gt is not None:
            split_read.coco_gt = _strip_gt(split_read.coco_gt)
        return split_read

    return cached_split(key, [ann], spec.path.parent, build)
