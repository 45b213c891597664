"""The inference preprocessing contract: one implementation for eval, calibration,
runtime and bundle; restated in every checkpoint and metadata.json.

Official YOLOX convention: letterbox (keep aspect, ratio r = min(H/h, W/w), image at the
top-left, pad 114), BGR, values 0..255 as float32, no mean/std, CHW.
"""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np

from ..errors import UserError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}
# Image formats that only some OpenCV builds decode (AVIF with libavif, GIF from 4.11 or 5, JPEG 2000,
# JPEG XL), and other names of JPEG (.jfif, a browser's download): a folder's are read when the
# installed OpenCV has a decoder for the file (``decodable_here``), else named in a note.
OTHER_IMAGE_SUFFIXES = {".avif", ".gif", ".jfif", ".jpe", ".jp2", ".j2k", ".jxl", ".pbm", ".pgm", ".ppm", ".pnm",
                        ".pam", ".pfm", ".ras", ".sr", ".hdr", ".pic", ".exr"}


def decodable_here(path: str | Path) -> bool:
    """Whether the installed OpenCV has a decoder for this file (by its content, as imread picks one).

    Asked of the build, not of a list: AVIF decodes with an OpenCV built with libavif (5.x wheels) and
    not with the 4.x wheels; an OpenCV without ``haveImageReader`` answers no."""
    have = getattr(cv2, "haveImageReader", None)
    try:
        return bool(have(str(path))) if have is not None else False
    except cv2.error:
        return False


def list_images(folder: Path, *, recursive: bool = False) -> list[Path]:
    """The images of a folder that this OpenCV reads, sorted (``scan_images``' first list)."""
    return scan_images(folder, recursive=recursive)[0]


def walk_visible(folder: Path | str):
    """``os.walk(folder)``, skipping hidden folders (names starting with '.'), and through links to
    folders beside it (a dataset assembled from linked batches, as Ultralytics' recursive glob
    reads it), each once. A link to a folder inside it, to it or to a folder above it is left out:
    its images would be read twice, under a name the labels folder may not have."""
    top = os.path.realpath(folder)
    seen: set[str] = set()
    for root, dirs, names in os.walk(folder, followlinks=True):
        keep = []
        for d in dirs:
            path = os.path.join(root, d)
            if d.startswith("."):
                continue
            if os.path.islink(path):
                real = os.path.realpath(path)
                # inside the tree (read already, under its own name), or the tree itself or a folder
                # above it (every image again under the link's name, and no end to the walk)
                if real == top or real.startswith(top + os.sep) or top.startswith(real + os.sep) or real in seen:
                    continue
                seen.add(real)
            keep.append(d)
        dirs[:] = keep
        yield root, dirs, names


def scan_images(folder: Path, *, recursive: bool = False) -> tuple[list[Path], list[Path]]:
    """(read, left_out): a folder's image files, in its subfolders too when ``recursive`` (which
    skips hidden folders and files, names starting with '.', below ``folder``), each list sorted.

    ``read``: the IMAGE_SUFFIXES files, and those of OTHER_IMAGE_SUFFIXES this OpenCV decodes
    (``decodable_here``: one header read each, about 10 us, paid by those files alone).
    ``left_out``: the OTHER_IMAGE_SUFFIXES files it cannot decode and HEIC/HEIF photos (no
    OpenCV build decodes them), for ``left_out_note``: predict, calibrate, the yolo and voc readers
    and so data check say them, where they were left out unsaid. Hidden files of another suffix
    are not images a user put there (macOS's ._IMG.avif resource forks)."""
    from .check import HEIF_SUFFIXES

    if recursive:
        named = []
        # .ipynb_checkpoints, .git, .thumbnails hold copies and caches, not images to sample: the
        # walk never descends into them
        for root, dirs, names in walk_visible(folder):
            named += [(Path(root) / n, False) for n in names if not n.startswith(".")
                      and os.path.isfile(os.path.join(root, n))]
    else:
        with os.scandir(folder) as it:  # DirEntry.is_file needs no extra stat: cheap on 100k-image folders
            named = [(folder / e.name, e.name.startswith(".")) for e in it
                     if os.path.splitext(e.name)[1].lower() in IMAGE_SUFFIXES | OTHER_IMAGE_SUFFIXES | HEIF_SUFFIXES
                     and e.is_file()]
    read, left_out = [], []
    for p, hidden in named:
        suffix = p.suffix.lower()
        if suffix in IMAGE_SUFFIXES:
            read.append(p)
        elif hidden:
            continue
        elif suffix in OTHER_IMAGE_SUFFIXES and decodable_here(p):
            read.append(p)
        elif suffix in OTHER_IMAGE_SUFFIXES or suffix in HEIF_SUFFIXES:
            left_out.append(p)
    return sorted(read), sorted(left_out)


def left_out_note(folder: Path, left_out: list[Path]) -> str:
    """One line naming ``scan_images``' left_out of ``folder`` (paths below it), '' for none."""
    from ..progress import first_few
    from .check import HEIF_SUFFIXES

    if not left_out:
        return ""
    names = [p.relative_to(folder).as_posix() for p in left_out]
    kinds = ", ".join(sorted({p.suffix.lower() for p in left_out}))
    heic = (" (HEIC: 'heif-convert IMG.HEIC IMG.jpg')" if any(p.suffix.lower() in HEIF_SUFFIXES for p in left_out)
            else "")
    return (f"{len(names)} image{'s' if len(names) != 1 else ''} this OpenCV cannot decode left out "
            f"({first_few(names, 3)}; {kinds}): convert to JPEG or PNG{heic}")


@dataclass(frozen=True)
class PreprocessConfig:
    """What a deployed model expects of its input."""

    input_size: tuple[int, int] = (416, 416)  # (height, width)
    letterbox: str = "top-left"
    pad_value: int = 114
    channel_order: str = "BGR"
    value_range: tuple[float, float] = (0.0, 255.0)
    mean: tuple[float, float, float] | None = None
    std: tuple[float, float, float] | None = None
    layout: str = "NCHW"

    def to_dict(self) -> dict:
        """JSON-ready form (lists for tuples), as metadata.json and checkpoints store it."""
        d = asdict(self)
        d["input_size"] = list(self.input_size)
        d["value_range"] = list(self.value_range)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "PreprocessConfig":
        # null is absent (the default), as the checks and the Android app read it: a null pad_value
        # otherwise reached np.full as None
        known = {k: d[k] for k in cls.__dataclass_fields__ if d.get(k) is not None}
        if isinstance(known.get("input_size"), int):  # S, as a checkpoint's size check takes it
            known["input_size"] = (known["input_size"],) * 2
        for key in ("input_size", "value_range", "mean", "std"):
            if known.get(key) is not None:
                known[key] = tuple(known[key])
        if known.get("input_size") is not None:  # 416.0 (a JSON writer's) is 416: it sizes arrays
            known["input_size"] = tuple(int(v) if isinstance(v, float) and v.is_integer() else v
                                        for v in known["input_size"])
        return cls(**known)


def check_pixel_input(pre: object, where: str, *, remedy: str | None = None) -> None:
    """UserError ``'{where} preprocess.FIELD ...'`` when a metadata.json ``preprocess`` section
    states a ``value_range`` other than [0, 255], a ``layout`` other than NCHW, a ``channel_order``
    other than BGR or RGB (absent or null: those) or a ``pad_value`` that is no pixel value (0..255).
    ``where`` names the file, e.g. ``'/x/metadata.json'`` or ``'b.zip: metadata.json'``; ``remedy``
    replaces what each message says to do (a checkpoint is not exported again: it was edited).

    Every yolox-edge runtime (``to_network``) and the Android app feed 0..255 pixels in planar
    NCHW whatever these fields say: a hand-edited or foreign metadata.json stating [0, 1] or NHWC
    gave wrong detections without a word. One check for both, so the loaders and ``verify`` say
    the same."""
    def get(key: str):
        return pre.get(key) if isinstance(pre, dict) else None

    def number(x) -> bool:
        return isinstance(x, (int, float)) and not isinstance(x, bool)

    def refuse(what: str, fix: str) -> UserError:
        return UserError(f"{where} preprocess.{what}; {remedy or fix}")

    vr, layout, pad, order = get("value_range"), get("layout"), get("pad_value"), get("channel_order")
    if pad is not None and not (number(pad) and float(pad).is_integer() and 0 <= pad <= 255):
        # the letterbox canvas is uint8: 300 stopped predict with an OverflowError traceback
        raise refuse(f"pad_value {pad!r} is not a pixel value (a whole number from 0 to 255): yolox-edge and the "
                     "Android app refuse it", "export the model again (pad 114)")
    if vr is not None and not (isinstance(vr, (list, tuple)) and len(vr) == 2 and all(map(number, vr))
                               and vr[0] == 0 and vr[1] == 255):
        raise refuse(f"value_range {vr!r} is not [0, 255] (yolox-edge and the Android app feed 0..255 pixels as "
                     "they are): both refuse it", "export a model that takes 0..255 pixels, as 'yolox-edge export' "
                     "writes it")
    if layout is not None and layout != "NCHW":
        raise refuse(f"layout {layout!r} is not NCHW (yolox-edge and the Android app fill planar input): both "
                     "refuse it", "export the model with NCHW input, as 'yolox-edge export' writes it")
    mean, std = get("mean"), get("std")
    for key, v in (("mean", mean), ("std", std)):
        if v is not None and not (isinstance(v, (list, tuple)) and len(v) == 3 and all(map(number, v))
                                  and (key == "mean" or all(x > 0 for x in v))):
            raise refuse(f"{key} {v!r} is not null or three numbers{' above 0' if key == 'std' else ''}",
                         "export the model again (no mean/std)")
    if (mean is None) != (std is None):
        raise refuse(f"{'mean' if std is None else 'std'} is given without {'std' if std is None else 'mean'}",
                     "export the model again (no mean/std)")
    box = get("letterbox")
    if box is not None and box != "top-left":
        # every runtime and the app put the image at the top-left of its canvas whatever this says
        raise refuse(f"letterbox {box!r} is not top-left (yolox-edge and the Android app letterbox to the top-left): "
                     "both refuse it", "export the model again (top-left)")
    if order is not None and order not in ("BGR", "RGB"):
        # anything else was fed as BGR without a word
        raise refuse(f"channel_order {order!r} is neither BGR nor RGB: yolox-edge and the Android app refuse it",
                     "export the model again (BGR)")


def read_image(path: str | Path) -> np.ndarray:
    """Read an image as BGR uint8, or raise a UserError naming the file: refused by training's rule,
    in its words (``check.read_problem``: empty, truncated, unreadable image)."""
    from .check import cannot_open, read_problem

    p = Path(path)
    if p.is_dir():  # 'not found' sent the user looking for a path that is there
        raise UserError(f"{p}: a folder, not an image file; give one image (predict takes a folder of them)")
    if not p.is_file():
        raise UserError(f"{p}: image not found; check the path")
    try:
        data = np.fromfile(str(p), dtype=np.uint8)
    except OSError as e:  # no read permission, an I/O error: named as training names it
        raise UserError(str(cannot_open(p, e))) from None
    img = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    # A JPEG or PNG cut off (a copy stopped part-way) may decode (grey rows below a JPEG's cut on
    # some OpenCV builds, a PNG without its IEND chunk on all), and the model ran on it where
    # training skipped it as truncated. The file is in memory already: its first and last bytes
    # settle it for nearly every image, and only a JPEG without its end marker there is walked.
    bad = read_problem(p, data, img is not None)
    if bad is not None:
        raise UserError(bad)
    return img


def as_bgr8(img: np.ndarray) -> np.ndarray:
    """An image array as the BGR uint8 HxWx3 the models take, converted the way ``read_image``
    converts files (gray -> BGR, BGRA -> BGR, 16-bit -> 8-bit); the array itself when it already
    is one. A float image is refused: 0..1 and 0..255 cannot be told apart, and guessing wrong
    finds nothing without a word."""
    if not isinstance(img, np.ndarray):
        raise UserError(f"expected an image as a numpy array (BGR uint8 HxWx3) or a path, got {type(img).__name__}")
    if img.size == 0:
        raise UserError(f"empty image (shape {img.shape}); nothing to detect in")
    if img.dtype == np.uint16:
        img = (img >> 8).astype(np.uint8)  # what OpenCV's IMREAD_COLOR does to a 16-bit file
    elif img.dtype != np.uint8:
        raise UserError(f"image of dtype {img.dtype}: pass BGR uint8 0..255 (a 0..1 float image: "
                        "(img * 255).round().astype(np.uint8); RGB: img[..., ::-1])")
    if img.ndim == 2 or (img.ndim == 3 and img.shape[2] == 1):
        return cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
    if img.ndim == 3 and img.shape[2] == 4:
        return cv2.cvtColor(img, cv2.COLOR_BGRA2BGR)
    if img.ndim != 3 or img.shape[2] != 3:
        raise UserError(f"image of shape {img.shape}: expected HxW (gray), HxWx3 (BGR) or HxWx4 (BGRA)")
    return img


def letterbox(img: np.ndarray, input_hw: tuple[int, int], pad_value: int = 114) -> tuple[np.ndarray, float]:
    """Resize keeping aspect ratio, place at the top-left of a pad-filled canvas."""
    h, w = img.shape[:2]
    r = min(input_hw[0] / h, input_hw[1] / w)
    nh, nw = max(1, int(h * r)), max(1, int(w * r))  # a 1x1200 strip still keeps one row
    canvas = np.full((input_hw[0], input_hw[1], 3), pad_value, dtype=np.uint8)
    canvas[:nh, :nw] = cv2.resize(img, (nw, nh), interpolation=cv2.INTER_LINEAR)
    return canvas, r


def letterbox_pixels(img: np.ndarray, cfg: PreprocessConfig = PreprocessConfig()) -> tuple[np.ndarray, float]:
    """BGR uint8 HxWx3 -> the letterboxed uint8 HxWx3 canvas (still BGR) and the ratio.

    The first half of ``preprocess``; backends that convert pixels inside the compiled
    model (``Backend.takes_pixels``) take this canvas as it is.
    """
    if img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"expected an HxWx3 BGR image, got shape {img.shape}")
    return letterbox(img, cfg.input_size, cfg.pad_value)


def to_network(canvas: np.ndarray, cfg: PreprocessConfig = PreprocessConfig()) -> np.ndarray:
    """Letterboxed BGR uint8 HxWx3 -> float32 [3, H, W] (channel order, mean/std applied)."""
    planes = cv2.split(canvas)
    if cfg.channel_order == "RGB":
        planes = planes[::-1]
    # HWC -> CHW one contiguous plane at a time: casting the strided transpose directly
    # costs 1.9 ms at 416x416 with warm caches, this 0.23 ms (~0.25 ms less per image in an
    # end-to-end loop, where the caches are cold after each inference).
    x = np.empty((3, *canvas.shape[:2]), np.float32)
    for i, plane in enumerate(planes):
        x[i] = plane
    if cfg.mean is not None:
        x = (x - np.asarray(cfg.mean, np.float32)[:, None, None]) / np.asarray(cfg.std, np.float32)[:, None, None]
    return np.ascontiguousarray(x)


def preprocess(img: np.ndarray, cfg: PreprocessConfig = PreprocessConfig()) -> tuple[np.ndarray, float]:
    """BGR uint8 HxWx3 -> float32 [3, H, W] network input and the letterbox ratio."""
    canvas, r = letterbox_pixels(img, cfg)
    return to_network(canvas, cfg), r


def boxes_to_image(boxes: np.ndarray, ratio: float, image_hw: tuple[int, int]) -> np.ndarray:
    """Network-input xyxy boxes -> original image pixels (undo the letterbox, clip)."""
    with np.errstate(over="ignore"):  # a box near float32's max (an undertrained model's) becomes inf, clipped below
        out = np.asarray(boxes, np.float32) / ratio
    out[:, [0, 2]] = out[:, [0, 2]].clip(0, image_hw[1])
    out[:, [1, 3]] = out[:, [1, 3]].clip(0, image_hw[0])
    return out
