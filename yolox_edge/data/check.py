"""Sample checks shared by the readers, the training dataset and ``yolox-edge data check``.

One code path: the readers report annotation problems with :func:`problem` and clean boxes
with :func:`clean_boxes`; the dataset decodes images with :func:`load_image` and skips what
it rejects; :func:`split_problems` runs the same functions over every sample of a split and
lists the results, for ``data check`` and for the count training opens with.
A problem is one string ``"FILE: KIND: detail"`` (``Split.problems``); :func:`problem_kind`
recovers the kind for the summary table.
"""
from __future__ import annotations

from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Callable, Iterable, Iterator

import cv2
import numpy as np

from ..errors import BadArgument, UserError
from ..progress import deprecated_keywords, renamed
from .sample import Sample

if TYPE_CHECKING:
    from .spec import DataSpec, Split

UNREADABLE = "unreadable image"
TRUNCATED = "truncated image"
# The one wording of a file cut short (training, data check, predict, eval and calibrate say it)
CUT_SHORT = "file ends before the image data does; re-copy or re-export it"
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
# A YOLO label file with values above 1 (pixels, most often): one line for the file, not one per box
NOT_FRACTIONS = "coordinates above 1"
KINDS = (UNREADABLE, TRUNCATED, MISSING, OUTSIDE, DEGENERATE, UNKNOWN_CLASS, EMPTY, DUPLICATE,
         BAD_ANNOTATION, SIZE_MISMATCH, NOT_FRACTIONS)


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


def _truncated(head: bytes, tail: bytes) -> bool:
    """True when an encoded JPEG/PNG stops before its end marker (``head``: the file's first
    bytes, 8 or more, ``tail``: its last 4 KiB).

    OpenCV decodes a cut JPEG without an error (grey bottom rows), so check the marker.
    Some writers append bytes after the JPEG end marker: accept it within the last 4 KiB.
    """
    tail = tail.rstrip(b"\x00")
    if head[:2] == b"\xff\xd8":  # by content, not by name: a non-JPEG .jpg is 'unreadable'
        return b"\xff\xd9" not in tail
    if head[:8] == b"\x89PNG\r\n\x1a\n":
        return b"IEND" not in tail[-64:]
    return False


_TAIL_BYTES = 4096


def _as_bytes(a: bytes | np.ndarray) -> bytes:
    """A slice of a file in memory as bytes (the callers pass numpy arrays or bytes)."""
    return a.tobytes() if isinstance(a, np.ndarray) else bytes(a)


def jpeg_cut_short(data: bytes | np.ndarray) -> bool:
    """True when ``data`` (a whole file in memory) is a JPEG whose data stops before its end marker.

    OpenCV decodes such a file without an error (grey rows below the cut), and a model then runs
    on them. The end marker in the last 4 KiB answers for nearly every file at no cost. Without
    it the segments are walked to the marker that ends the image data: a phone's motion photo
    (a video appended after the JPEG) ends there and is whole; a search for the marker's two
    bytes anywhere would also find the end of the EXIF thumbnail of a cut file. A file whose
    segments do not parse is not called cut here (the decoder's verdict stands)."""
    if _as_bytes(data[:2]) != b"\xff\xd8" or b"\xff\xd9" in _as_bytes(data[-_TAIL_BYTES:]).rstrip(b"\x00"):
        return False  # the whole file is copied below only for the few that get there
    buf = _as_bytes(data)
    i, n = 2, len(buf)
    while i + 1 < n:
        if buf[i] != 0xFF:
            return False  # no marker where one must be: damaged, not cut
        m = buf[i + 1]
        if m == 0xFF:  # fill byte before a marker
            i += 1
            continue
        if m == 0xD9:
            return False  # the end of the image data: whole (what follows is another file's)
        if 0xD0 <= m <= 0xD7 or m == 0x01:  # markers without a length
            i += 2
            continue
        if i + 4 > n:
            return True
        i += 2 + int.from_bytes(buf[i + 2:i + 4], "big")
        if m == 0xDA:  # entropy-coded data runs to the next marker that is not a stuffed 0xFF00 or a restart
            while True:
                j = buf.find(b"\xff", i)
                if j < 0 or j + 1 >= n:
                    return True
                nxt = buf[j + 1]
                if nxt == 0 or 0xD0 <= nxt <= 0xD7 or nxt == 0xFF:
                    i = j + 1 if nxt == 0xFF else j + 2
                    continue
                i = j
                break
    return True


def png_cut_short(data: bytes | np.ndarray) -> bool:
    """True when ``data`` (a whole file in memory) is a PNG whose chunks stop before its IEND chunk.

    The IEND chunk in the last 64 bytes answers for nearly every file at no cost. Without it the
    chunks are walked (each names its length): a whole PNG with bytes appended after IEND (some
    apps add their own data) decodes whole and is whole; training called it truncated where
    predict read it. A file whose chunks do not parse is not called cut here (the decoder's
    verdict stands)."""
    if _as_bytes(data[:8]) != b"\x89PNG\r\n\x1a\n" or b"IEND" in _as_bytes(data[-64:]).rstrip(b"\x00"):
        return False  # the whole file is copied below only for the few that get there
    buf = _as_bytes(data)
    i, n = 8, len(buf)
    while i + 8 <= n:
        kind = buf[i + 4:i + 8]
        if not kind.isalpha() or not kind.isascii():
            return False  # no chunk where one must be: damaged, not cut
        if kind == b"IEND":
            return False  # the end of the image: whole (what follows is another file's or an app's)
        i += 12 + int.from_bytes(buf[i:i + 4], "big")  # length, type, data, CRC
    return True


HEAD_BYTES = 12  # enough for every signature image_format knows (WebP's is at bytes 8-11)


def image_format(head: bytes) -> str | None:
    """The image format a file's first ``HEAD_BYTES`` bytes announce ('JPEG', 'PNG', ...), or None.

    For the message about a file that does not decode: one that starts as a JPEG is a JPEG cut
    short or damaged, not 'not an image'."""
    if head[:2] == b"\xff\xd8":
        return "JPEG"
    if head[:8] == b"\x89PNG\r\n\x1a\n":
        return "PNG"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WebP"
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return "TIFF"
    if head[:2] == b"BM":
        return "BMP"
    return None


# HEIC/HEIF, an iPhone's default photo format: OpenCV's wheels have no decoder for it (ISO-BMFF
# brands at bytes 8-11)
_HEIF_BRANDS = {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1"}
HEIF_SUFFIXES = {".heic", ".heif"}
CONVERT_HEIF = ("OpenCV cannot decode HEIC; convert to JPEG (e.g. 'heif-convert IMG.HEIC IMG.jpg'; an iPhone "
                "writes JPEG with Settings > Camera > Formats > Most Compatible)")


def undecodable_detail(head: bytes) -> str:
    """Why a file that does not decode is refused, by what its first bytes say it is."""
    if head[4:8] == b"ftyp" and head[8:12] in _HEIF_BRANDS:
        return f"a HEIC/HEIF photo (an iPhone's default format): {CONVERT_HEIF}"
    fmt = image_format(head)
    if fmt:
        return f"a {fmt} file, but truncated or damaged (it does not decode); re-copy or re-export it"
    # not a closed list since AVIF, GIF, JPEG 2000, ... are read where this OpenCV build decodes them
    # (preprocess.OTHER_IMAGE_SUFFIXES, decodable_here)
    return ("not an image this OpenCV decodes (JPEG, PNG, BMP, WebP and TIFF, and AVIF, GIF and others where its "
            "build has the decoder); convert it to JPEG or PNG")


def _check_bytes(p: Path, size: int, head: bytes, tail: bytes, whole: Callable[[], bytes | np.ndarray]) -> None:
    """BadSample for an empty or truncated file: what load_image and the header check both refuse.

    ``whole`` gives the whole file, asked only of a JPEG or PNG without its end marker in ``tail``: a
    phone's motion photo (a video after the JPEG) is whole by its segments (``jpeg_cut_short``), a PNG
    with bytes after its IEND chunk by its chunks (``png_cut_short``); training and data check
    skipped them as truncated."""
    if size == 0:
        raise BadSample(UNREADABLE, p, "empty file")
    if _cut_short(head, tail, whole):
        raise BadSample(TRUNCATED, p, CUT_SHORT)


def _cut_short(head: bytes, tail: bytes, whole: Callable[[], bytes | np.ndarray]) -> bool:
    """Whether a JPEG or PNG file stops before its end (``_check_bytes``' arguments): by its chunks
    or segments (``png_cut_short``, ``jpeg_cut_short``), walked only when its end marker is not in
    ``tail``."""
    if not _truncated(head, tail):
        return False
    return jpeg_cut_short(whole()) if head[:2] == b"\xff\xd8" else png_cut_short(whole())


def read_problem(path: str | Path, data: np.ndarray, decoded: bool) -> str | None:
    """The problem line ``load_image`` raises for ``data`` (the whole file ``path``, in memory, which
    OpenCV decoded or not: ``decoded``), else None: ``read_image`` (predict, eval, calibrate) refuses
    by it, so a file is refused by one rule in one wording everywhere. An empty file or a JPEG or
    PNG cut short is refused even where OpenCV decodes it (a PNG without its IEND chunk decodes;
    training skipped it as truncated where predict read it); one that does not decode is an
    unreadable image. On a good image it looks at its first and last bytes only."""
    try:
        _check_bytes(Path(path), data.size, data[:8].tobytes(), data[-_TAIL_BYTES:].tobytes(), lambda: data)
    except BadSample as e:
        return str(e)
    return None if decoded else str(_undecodable(Path(path), data[:HEAD_BYTES].tobytes()))


def cannot_open(path: str | Path, err: OSError) -> BadSample:
    """The UNREADABLE problem of a file that exists but cannot be read (no permission, an I/O error)."""
    return BadSample(UNREADABLE, path, f"cannot be opened ({err.strerror or err})")


def _missing(p: Path) -> BadSample:
    return BadSample(MISSING, p, "image not found; fix the path or remove the annotation")


def _undecodable(p: Path, head: bytes) -> BadSample:
    return BadSample(UNREADABLE, p, undecodable_detail(head))


_REDUCED = {2: cv2.IMREAD_REDUCED_COLOR_2, 4: cv2.IMREAD_REDUCED_COLOR_4, 8: cv2.IMREAD_REDUCED_COLOR_8}


def load_image(path: str | Path, reduce: int = 1) -> np.ndarray:
    """Decode an image as BGR uint8, or raise BadSample (missing, unreadable, truncated).

    ``reduce`` in (2, 4, 8) asks the decoder for a 1/reduce image (JPEG decodes in a fraction
    of the time: a 12 MP photo for a 416 input); the caller resizes from whatever comes back.
    """
    p = Path(path)
    if not p.is_file():
        raise _missing(p)
    try:
        data = np.fromfile(str(p), dtype=np.uint8)
    except OSError as e:  # no read permission, an I/O error: skipped and named like any other bad image
        raise cannot_open(p, e) from None
    _check_bytes(p, data.size, data[:8].tobytes(), data[-_TAIL_BYTES:].tobytes(), lambda: data)
    img = cv2.imdecode(data, _REDUCED.get(reduce, cv2.IMREAD_COLOR))
    if img is None:
        raise _undecodable(p, data[:HEAD_BYTES].tobytes())
    return img


def check_image_file(path: str | Path, size: bool = True) -> tuple[int, int] | None:
    """Header-only :func:`load_image`: the same BadSample for a missing, empty, truncated or
    unreadable file, without decoding; returns (width, height) as load_image would decode it
    (None when ``size`` is False: the caller already has it from the header).

    Reads 8 bytes, the last 4 KiB (the whole file only for a JPEG or PNG without its end marker there) and
    the header: under 0.1 ms an image (a cached COCO image)
    where decoding takes about 5 ms, so training can check every image before it starts. It misses an image
    damaged between its header and its end marker; training skips that one when it decodes it.
    """
    p = Path(path)
    try:
        f = open(p, "rb")  # one open for the end marker and the header, not two (measured: 75 us against 90-100)
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        raise _missing(p) from None
    except OSError as e:
        raise cannot_open(p, e) from None
    with f:
        head = f.read(HEAD_BYTES)
        n = f.seek(0, 2)
        f.seek(max(0, n - _TAIL_BYTES))
        tail = f.read()

        def whole() -> bytes:  # only for the rare JPEG or PNG without its end marker at the end
            f.seek(0)
            return f.read()

        _check_bytes(p, n, head, tail, whole)
        if not size:
            return None
        f.seek(0)
        wh = image_size(p, f)
    if wh is None:
        raise _undecodable(p, head)
    return wh


def image_size(path: str | Path, file: BinaryIO | None = None) -> tuple[int, int] | None:
    """(width, height) as OpenCV will decode it, from the header; None when it cannot be read.

    OpenCV applies the EXIF orientation (phone photos): orientations 5-8 swap width and height.
    That holds for JPEG, which Pillow calls MPO when the phone stored a second picture in the file
    (a depth map, a preview); whether OpenCV rotates a PNG, WebP or TIFF by its EXIF depends on
    its version and on the decoder, so such a (rare) file is decoded once to find out. A file
    Pillow cannot read (a Radiance .hdr, an OpenEXR this OpenCV decodes) is decoded once too, only
    then: Pillow's header read is the fast path. ``file``: ``path`` already open, at its start
    (read from it, not opened again).
    """
    try:
        from PIL import Image  # header only: fast enough to index 100k images

        with Image.open(path if file is None else file) as im:
            w, h = int(im.size[0]), int(im.size[1])
            orientation = im.getexif().get(0x0112, 1)
            fmt = im.format
    except Exception:  # noqa: BLE001 - not an image Pillow reads: OpenCV's verdict stands
        return _decoded_size(path, file)
    if orientation not in (5, 6, 7, 8):
        return w, h
    if fmt in ("JPEG", "MPO"):
        return h, w
    return _decoded_size(path, file)


def _decoded_size(path: str | Path, file: BinaryIO | None = None) -> tuple[int, int] | None:
    """(width, height) of the image OpenCV decodes from ``path`` (``file``: it, open, read from its
    start), as ``load_image`` decodes it; None when it decodes nothing (the caller names the file)."""
    try:
        if file is not None:
            file.seek(0)
            data = np.frombuffer(file.read(), np.uint8)
        else:
            data = np.fromfile(str(path), dtype=np.uint8)
        img = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    except Exception:  # noqa: BLE001 - any failure means "unreadable", reported by the caller
        return None
    return None if img is None else (int(img.shape[1]), int(img.shape[0]))


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


def already_clean(samples: list[Sample]) -> np.ndarray:
    """Per sample, whether :func:`clean_sample` would keep all its boxes as they are and say nothing:
    each one finite, with a positive width and height, and inside its image (when its size is known).
    Found for all the samples at once: clean_sample on each of a 120k-image split's took ~10 s, in
    numpy calls on arrays of a few boxes, where nearly every sample needs nothing."""
    counts = np.array([len(s.boxes) for s in samples], np.int64)
    if not counts.any():
        return np.ones(len(samples), bool)
    boxes = np.concatenate([s.boxes for s in samples]).astype(np.float32, copy=False)
    wh = np.repeat(np.array([(s.width, s.height) for s in samples], np.float32).reshape(-1, 2), counts, axis=0)
    with np.errstate(invalid="ignore"):  # NaN compares false: not ok
        ok = np.isfinite(boxes).all(1) & (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
        inside = (boxes[:, :2] >= 0).all(1) & (boxes[:, 2] <= wh[:, 0]) & (boxes[:, 3] <= wh[:, 1])
    ok &= inside | ~(wh > 0).all(1)  # no size known: clean_boxes clips nothing
    bad = np.bincount(np.repeat(np.arange(len(samples)), counts), weights=~ok, minlength=len(samples))
    return bad == 0


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


def size_mismatch(sample: Sample, file_wh: tuple[int, int]) -> str | None:
    """The problem line when the image file is not the size its annotation records, else None.

    Training decodes the file and clips the boxes to the file's size: boxes are pixel coordinates
    in the annotation, so with a wrong recorded width/height (a hand-edited or converted COCO
    json or VOC XML) the boxes that fit the real image are right and are kept. The VOC reader
    calls it as it reads each header (its samples then carry the file's size); for COCO the file
    checks of :func:`split_problems` do.
    """
    w, h = file_wh
    if sample.width <= 0 or sample.height <= 0 or (w, h) == (sample.width, sample.height):
        return None
    if (w, h) == (sample.height, sample.width):
        # a phone photo whose EXIF orientation turns it (as OpenCV and training read it), labelled in
        # a tool that drew on the stored pixels: correcting the size alone would leave every box turned
        return problem(SIZE_MISMATCH, sample.image, f"annotated {sample.width}x{sample.height}, the file is {w}x{h} "
                       "as its EXIF orientation turns it (as training reads it): the boxes were most likely drawn on "
                       "the unturned pixels; strip the file's orientation tag (exiftool -Orientation= FILE), or save "
                       "it upright and label it again")
    return problem(SIZE_MISMATCH, sample.image, f"annotated {sample.width}x{sample.height}, the file is {w}x{h}; "
                   f"training uses the file's size (boxes clipped to {w}x{h}); correct its width/height in the "
                   "annotations (and its boxes, if the image was resized after labelling)")


def _file_checks(samples: list[Sample], decode: bool, sizes_known: bool, threads: int, progress: bool,
                 desc: str) -> list[tuple[str | None, tuple[int, int] | None]]:
    """(problem or None, file (width, height) or None when unusable) per sample, in order.

    ``decode`` decodes every image (as training will; threads: cv2 releases the GIL), else only
    headers and end markers are read (:func:`check_image_file`). ``sizes_known``: the reader took
    the sizes from the headers (yolo), so a header-only check does not read them again.
    """
    from ..progress import progress_bar

    def one(s: Sample) -> tuple[str | None, tuple[int, int] | None]:
        try:
            if decode:
                img = load_image(s.image)
                wh = (int(img.shape[1]), int(img.shape[0]))
            else:
                wh = check_image_file(s.image, size=not sizes_known) or (s.width, s.height)
        except BadSample as e:
            return str(e), None
        return size_mismatch(s, wh), wh

    return list(progress_bar(in_order(one, samples, max(1, threads)), total=len(samples), desc=desc, unit="img",
                             disable=not progress, leave=False))


def in_order(fn: Callable, items: Iterable, threads: int, *, ahead: int = 4) -> Iterator:
    """``fn`` of each item on ``threads`` threads, yielded in the items' order, at most ``ahead`` per
    thread queued. ``Executor.map`` queued every item first: on 200,000 samples the first result
    came after 6.4 s (the bar sat at 0) and the queue took 375 MiB; so, at once and 46 MiB in all.
    Stopping early (an exception, Ctrl-C) cancels what is queued."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(threads) as pool:
        queued: deque = deque()
        try:
            for item in items:
                queued.append(pool.submit(fn, item))
                if len(queued) >= ahead * threads:
                    yield queued.popleft().result()
            while queued:
                yield queued.popleft().result()
        finally:
            for f in queued:
                f.cancel()


def split_problems(spec: DataSpec, name: str, split: Split, *, decode: bool = True, threads: int = 4,
                   progress: bool = False) -> tuple[list[str], list[Sample]]:
    """Every problem of split ``name`` as read by ``read_split``, and its samples as training uses them.

    The one list behind ``yolox-edge data check`` and the count training opens with: the reader's
    problems, duplicate ids, boxes outside the image or empty (clipped/dropped against the size
    training uses: the file's), and image files that are missing, unreadable, truncated or not the
    size annotated. ``decode=False`` reads headers only (see :func:`check_image_file`).
    """
    where = spec.split_paths(name).get("annotations", spec.path)
    probs = list(split.problems)
    probs += duplicate_problems(split.samples, split.coco_gt, where)
    files = _file_checks(split.samples, decode, split.sizes_from_files, threads, progress, f"check {name}")
    sized = []
    for s, (_, wh) in zip(split.samples, files):
        if wh is not None and wh != (s.width, s.height):  # clip as training will: to the file
            s = Sample(s.image, s.boxes, s.labels, image_id=s.image_id, width=wh[0], height=wh[1], crowd=s.crowd)
        sized.append(s)
    # Readers other than voc/yolo (coco) leave boxes as written: clean them here, same function, where
    # a box needs it (the others come back from it as they are, with nothing said).
    clean = already_clean(sized)
    samples = [s if ok else clean_sample(s, probs, where) for s, ok in zip(sized, clean)]
    probs += [p for p, _ in files if p]
    return probs, samples


# The earlier forms: check_dataset(spec_path, splits) and spec_path= (the data spec, named data as
# every other call names it).
@deprecated_keywords("splits", spec_path=renamed("data"))
def check_dataset(data: str | Path, *, splits: list[str] | None = None, decode: bool = True,
                  threads: int = 4, progress: bool = True) -> dict:
    """Counts per split, class and box-size histograms, and every problem (one string each), of the
    data spec ``data`` (its ``splits``, default all).

    ``decode=False`` reads image headers and end markers only (fast; misses an image damaged
    between the two).
    ``threads`` (at least 1) read the images. ``splits`` was positional, ``spec_path=`` the name of
    ``data``: those forms still work, with a DeprecationWarning.
    """
    from ..threads import check_threads
    from .spec import load_spec, read_split

    # 0 or -1 was taken as 1 without a word, and None failed deep in the pool as a TypeError
    if threads is None:
        raise BadArgument("threads must be a whole number of at least 1 (the threads reading images), not None")
    check_threads(threads)
    spec = load_spec(data)
    if not spec.splits:  # an empty table, 'problems: 0' and exit 0 read as a clean dataset
        raise UserError(f"{spec.path}: names no split, so there is nothing to check; add its train: and val: "
                        "splits (README, 'Data spec')")
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
        probs, samples = split_problems(spec, name, split, decode=decode, threads=threads, progress=progress)
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
    unread = list(report.get("unreadable_splits", {}))
    # a bare 'problems: 0' under a split that could not be read at all read as a clean dataset
    scope = (f" in the split(s) read; not checked: {', '.join(unread)} (cannot be read, above)"
             if unread else "")
    lines += ["", f"problems: {len(probs)}" + ("" if not probs else "  (" + ", ".join(
        f"{k}: {v}" for k, v in report["problem_kinds"].items()) + ")") + scope]
    lines += [f"  {p}" for p in probs]
    return "\n".join(lines)
