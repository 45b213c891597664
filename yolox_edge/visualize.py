"""Draw detections on an image and write it atomically."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from .errors import UserError
from .postprocess import Detections
from .progress import deprecated_keywords

__all__ = ["draw_detections", "draw_ground_truth", "write_image"]


def _color(i: int) -> tuple[int, int, int]:
    rng = np.random.default_rng(i * 7919 + 17)  # fixed colour per class
    return tuple(int(c) for c in rng.integers(64, 256, 3))


# The earlier form: draw_detections(img, det, names), by position.
@deprecated_keywords("names")
def draw_detections(img: np.ndarray, det: Detections, *, names: list[str]) -> np.ndarray:
    """A copy of ``img`` (BGR) with each detection of ``det`` as a coloured box, its class name
    (``names[label]``, ``Predictor.class_names``; the index where ``names`` has none) and score
    above it. ``names`` was positional: that form still works, with a DeprecationWarning."""
    out = img.copy()
    for box, score, label in zip(det.boxes, det.scores, det.labels):
        x1, y1, x2, y2 = (int(round(v)) for v in box)
        color = _color(int(label))
        cv2.rectangle(out, (x1, y1), (x2, y2), color, 2)
        text = f"{names[int(label)] if int(label) < len(names) else label} {score:.2f}"
        (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 0.5, 1)
        cv2.rectangle(out, (x1, max(y1 - th - 4, 0)), (x1 + tw + 2, max(y1, th + 4)), color, -1)
        cv2.putText(out, text, (x1 + 1, max(y1 - 3, th + 1)), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1)
    return out


# The earlier form: draw_ground_truth(img, boxes, labels, names), by position.
@deprecated_keywords("names")
def draw_ground_truth(img: np.ndarray, boxes: np.ndarray, labels: np.ndarray, *, names: list[str]) -> np.ndarray:
    """Labelled boxes (xyxy, image pixels) as thin white frames with the class name inside the
    bottom-left corner, so predictions drawn over them (coloured, name above) stay readable.
    ``names`` is a keyword, as ``draw_detections``'; the positional form still works, with a
    DeprecationWarning."""
    out = img.copy()
    for box, label in zip(boxes, labels):
        x1, y1, x2, y2 = (int(round(v)) for v in box)
        cv2.rectangle(out, (x1, y1), (x2, y2), (255, 255, 255), 1)
        text = names[int(label)] if int(label) < len(names) else str(label)
        cv2.putText(out, text, (x1 + 2, max(y2 - 3, 10)), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 255), 1)
    return out


def write_image(path: str | Path, img: np.ndarray, *, flush_folder: bool = True) -> Path:
    """Encode by suffix and write via a temp file + rename (``fileio.atomic_write_bytes``;
    ``flush_folder=False``: the caller flushes the folder once after many images)."""
    from .fileio import atomic_write_bytes

    path = Path(path)
    suffix = path.suffix or ".jpg"
    try:
        ok, buf = cv2.imencode(suffix, img)
    except cv2.error:  # OpenCV raises for some sizes and returns False for others
        ok = False
    if not ok:
        h, w = img.shape[:2]
        limit = " (JPEG takes at most 65500 pixels a side)" if suffix.lower() in (".jpg", ".jpeg") else ""
        raise UserError(f"{path}: OpenCV cannot encode a {w}x{h} image as {suffix}{limit}")
    atomic_write_bytes(path, lambda f: f.write(buf.tobytes()), flush_folder=flush_folder)
    return path
