"""Training augmentations that move the image and its boxes together (the YOLOX recipe).

All functions take BGR uint8 images, xyxy float32 pixel boxes [M, 4], class indices [M] and a
``numpy.random.Generator``; none of them touch global random state. Output sizes are an int S
(square) or (H, W), the order of ``PreprocessConfig.input_size``. Geometry goes through one
3x3 matrix per call and ``cv2.warpAffine`` (fast enough for CPU training at 416: a few ms per
Mosaic sample).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import cv2
import numpy as np

from ..errors import input_hw

PAD = 114  # the letterbox pad value of the preprocessing contract

Size = int | tuple[int, int]  # S, or (H, W)


@dataclass
class AugConfig:
    """Augmentation strengths; defaults are the official YOLOX values for S and larger.

    Nano: ``mosaic_prob=0.5, mosaic_scale=(0.5, 1.5), mixup_prob=0`` (see ``AUG_PRESETS``);
    Tiny: ``mosaic_scale=(0.5, 1.5), mixup_prob=0``. MixUp is applied to Mosaic samples only,
    blends 0.5/0.5 (no Beta draw) and jitters the pasted image's scale by ``mixup_scale``.
    The random affine (degrees, translate, shear, scale = ``mosaic_scale``) runs on Mosaic
    samples, as in the official code; HSV and flip run on every training sample.
    """

    mosaic_prob: float = 1.0
    mosaic_scale: tuple[float, float] = (0.1, 2.0)
    mixup_prob: float = 1.0
    mixup_scale: tuple[float, float] = (0.5, 1.5)
    degrees: float = 10.0
    translate: float = 0.1
    shear: float = 2.0
    hsv_prob: float = 1.0
    flip_prob: float = 0.5

    def __post_init__(self) -> None:
        for name in ("mosaic_scale", "mixup_scale"):
            v = tuple(float(x) for x in getattr(self, name))
            if len(v) != 2 or not 0 < v[0] <= v[1]:
                raise ValueError(f"aug.{name} must be [lo, hi] with 0 < lo <= hi (got {list(v)})")
            setattr(self, name, v)
        for name in ("mosaic_prob", "mixup_prob", "hsv_prob", "flip_prob"):
            if not 0.0 <= float(getattr(self, name)) <= 1.0:
                raise ValueError(f"aug.{name} must be a probability in [0, 1] (got {getattr(self, name)})")
        for name in ("degrees", "translate", "shear"):
            if float(getattr(self, name)) < 0:
                raise ValueError(f"aug.{name} must be >= 0 (got {getattr(self, name)})")

    def to_dict(self) -> dict:
        """Plain dict (the scale ranges as lists, as YAML and a checkpoint's recipe hold them)."""
        d = asdict(self)
        d["mosaic_scale"], d["mixup_scale"] = list(self.mosaic_scale), list(self.mixup_scale)
        return d


AUG_PRESETS: dict[str, AugConfig] = {
    "nano": AugConfig(mosaic_prob=0.5, mosaic_scale=(0.5, 1.5), mixup_prob=0.0),
    "tiny": AugConfig(mosaic_scale=(0.5, 1.5), mixup_prob=0.0),
    "large": AugConfig(),  # s, m, l, x, darknet53
}


def pad_to(img: np.ndarray, size: Size) -> np.ndarray:
    """Place a fitted image at the top-left of a ``size`` (S, or (H, W)) canvas of the pad value."""
    hw = input_hw(size)
    h, w = img.shape[:2]
    if (h, w) == hw:
        return img
    canvas = np.full((*hw, 3), PAD, np.uint8)
    canvas[:h, :w] = img
    return canvas


def affine_matrix(rng: np.random.Generator, out_size: Size, center: tuple[float, float], degrees: float,
                  translate: float, scale: tuple[float, float], shear: float) -> tuple[np.ndarray, float]:
    """3x3 matrix: move ``center`` to the output centre, rotate/scale/shear about it, translate
    (by up to ``translate`` of the output's width in x and of its height in y)."""
    out_h, out_w = input_hw(out_size)
    c = np.array([[1, 0, -center[0]], [0, 1, -center[1]], [0, 0, 1]], np.float64)
    s = rng.uniform(*scale)
    r = np.eye(3)
    r[:2] = cv2.getRotationMatrix2D(center=(0, 0), angle=rng.uniform(-degrees, degrees), scale=s)
    sh = np.eye(3)
    sh[0, 1] = math.tan(math.radians(rng.uniform(-shear, shear)))
    sh[1, 0] = math.tan(math.radians(rng.uniform(-shear, shear)))
    t = np.eye(3)
    t[0, 2] = out_w / 2 + rng.uniform(-translate, translate) * out_w
    t[1, 2] = out_h / 2 + rng.uniform(-translate, translate) * out_h
    return t @ sh @ r @ c, s


def transform_boxes(boxes: np.ndarray, m: np.ndarray, out_size: Size) -> np.ndarray:
    """Boxes through matrix ``m``: the axis-aligned hull of the four moved corners, clipped to
    ``out_size`` (S, or (H, W))."""
    if len(boxes) == 0:
        return boxes.reshape(0, 4).astype(np.float32)
    corners = boxes[:, [0, 1, 2, 3, 0, 3, 2, 1]].reshape(-1, 2)  # (x1,y1) (x2,y2) (x1,y2) (x2,y1)
    pts = corners @ m[:2, :2].T + m[:2, 2]
    pts = pts.reshape(-1, 4, 2)
    out = np.concatenate([pts.min(1), pts.max(1)], 1)
    out_h, out_w = input_hw(out_size)
    return np.clip(out, 0, [out_w, out_h, out_w, out_h]).astype(np.float32)


def box_candidates(before: np.ndarray, after: np.ndarray, wh_thr: float = 2, ar_thr: float = 20,
                   area_thr: float = 0.1) -> np.ndarray:
    """Keep boxes that stay visible: > wh_thr px, aspect < ar_thr, > area_thr of their scaled area.

    ``before`` is already scaled to the output (so the ratio measures how much was cut off).
    """
    w0, h0 = before[:, 2] - before[:, 0], before[:, 3] - before[:, 1]
    w1, h1 = after[:, 2] - after[:, 0], after[:, 3] - after[:, 1]
    ar = np.maximum(w1 / (h1 + 1e-16), h1 / (w1 + 1e-16))
    return (w1 > wh_thr) & (h1 > wh_thr) & (w1 * h1 / (w0 * h0 + 1e-16) > area_thr) & (ar < ar_thr)


def random_affine(img: np.ndarray, boxes: np.ndarray, labels: np.ndarray, out_size: Size,
                  rng: np.random.Generator, cfg: AugConfig, center: tuple[float, float] | None = None
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rotate/scale/shear/translate about ``center`` (default: image centre) into ``out_size``
    (S, or (H, W))."""
    if center is None:
        center = (img.shape[1] / 2, img.shape[0] / 2)
    m, s = affine_matrix(rng, out_size, center, cfg.degrees, cfg.translate, cfg.mosaic_scale, cfg.shear)
    out_h, out_w = input_hw(out_size)
    out = cv2.warpAffine(img, m[:2], dsize=(out_w, out_h), flags=cv2.INTER_LINEAR,
                         borderValue=(PAD, PAD, PAD))
    new = transform_boxes(boxes, m, out_size)
    keep = box_candidates(boxes * s, new) if len(boxes) else np.zeros(0, bool)
    return out, new[keep], labels[keep]


def mosaic(items: list[tuple[np.ndarray, np.ndarray, np.ndarray]], size: Size, rng: np.random.Generator,
           cfg: AugConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Four fitted images around a random centre of a 2H x 2W canvas, then the random affine to
    H x W (``size``: S, or (H, W)).

    ``items`` are (image fitted to ``size``, boxes, labels). Objects end up scaled by a factor
    drawn from ``cfg.mosaic_scale`` (the Mosaic scale jitter).
    """
    out_h, out_w = input_hw(size)
    h2, w2 = 2 * out_h, 2 * out_w
    canvas = np.full((h2, w2, 3), PAD, np.uint8)
    xc = int(rng.uniform(0.5 * out_w, 1.5 * out_w))
    yc = int(rng.uniform(0.5 * out_h, 1.5 * out_h))
    all_boxes, all_labels = [], []
    for k, (img, boxes, labels) in enumerate(items[:4]):
        h, w = img.shape[:2]
        if k == 0:    # top-left: the image's bottom-right corner sits at the centre
            x1, y1, x2, y2 = max(xc - w, 0), max(yc - h, 0), xc, yc
        elif k == 1:  # top-right
            x1, y1, x2, y2 = xc, max(yc - h, 0), min(xc + w, w2), yc
        elif k == 2:  # bottom-left
            x1, y1, x2, y2 = max(xc - w, 0), yc, xc, min(yc + h, h2)
        else:         # bottom-right
            x1, y1, x2, y2 = xc, yc, min(xc + w, w2), min(yc + h, h2)
        sx1 = w - (x2 - x1) if k in (0, 2) else 0
        sy1 = h - (y2 - y1) if k in (0, 1) else 0
        canvas[y1:y2, x1:x2] = img[sy1:sy1 + (y2 - y1), sx1:sx1 + (x2 - x1)]
        if len(boxes):
            b = boxes + np.array([x1 - sx1, y1 - sy1] * 2, np.float32)
            # Clip to the pasted region: parts of a box outside it are not in the canvas.
            b[:, [0, 2]] = b[:, [0, 2]].clip(x1, x2)
            b[:, [1, 3]] = b[:, [1, 3]].clip(y1, y2)
            all_boxes.append(b)
            all_labels.append(labels)
    boxes = np.concatenate(all_boxes) if all_boxes else np.zeros((0, 4), np.float32)
    labels = np.concatenate(all_labels) if all_labels else np.zeros(0, np.int64)
    ok = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
    # Centre the affine on the canvas centre, so the random mosaic centre lands anywhere in view.
    return random_affine(canvas, boxes[ok], labels[ok], (out_h, out_w), rng, cfg, center=(out_w, out_h))


def mixup(img: np.ndarray, boxes: np.ndarray, labels: np.ndarray,
          other: tuple[np.ndarray, np.ndarray, np.ndarray], rng: np.random.Generator,
          scale: tuple[float, float]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Blend a scale-jittered, maybe flipped ``other`` (fitted image, boxes, labels) 0.5/0.5 into img.

    As the official YOLOX MixUp: the other image is letterboxed to the output size, resized by
    a factor from ``scale``, randomly cropped back to the output size; its boxes that stay
    visible are added.
    """
    size_h, size_w = img.shape[:2]
    o_img, o_boxes, o_labels = other
    jit = rng.uniform(*scale)
    flip = rng.random() > 0.5
    cp = pad_to(o_img[:size_h, :size_w], (size_h, size_w))  # o_img is fitted to the output: no crop
    cp = cv2.resize(cp, (int(cp.shape[1] * jit), int(cp.shape[0] * jit)), interpolation=cv2.INTER_LINEAR)
    oh, ow = cp.shape[:2]
    ob = o_boxes * jit
    if flip:
        cp = cv2.flip(cp, 1)
        ob = np.stack([ow - ob[:, 2], ob[:, 1], ow - ob[:, 0], ob[:, 3]], 1) if len(ob) else ob
    padded = np.full((max(oh, size_h), max(ow, size_w), 3), PAD, np.uint8)
    padded[:oh, :ow] = cp
    yo = int(rng.integers(0, padded.shape[0] - size_h)) if padded.shape[0] > size_h else 0
    xo = int(rng.integers(0, padded.shape[1] - size_w)) if padded.shape[1] > size_w else 0
    crop = padded[yo:yo + size_h, xo:xo + size_w]
    moved = ob - np.array([xo, yo, xo, yo], np.float32)
    moved[:, [0, 2]] = moved[:, [0, 2]].clip(0, size_w)
    moved[:, [1, 3]] = moved[:, [1, 3]].clip(0, size_h)
    keep = box_candidates(ob, moved, wh_thr=5) if len(ob) else np.zeros(0, bool)
    # 0.5/0.5 blend in uint8 arithmetic: addWeighted rounds like the float formula does
    blended = cv2.addWeighted(img, 0.5, np.ascontiguousarray(crop), 0.5, 0.0)
    return (blended, np.concatenate([boxes, moved[keep].astype(np.float32)]),
            np.concatenate([labels, o_labels[keep]]))


def augment_hsv(img: np.ndarray, rng: np.random.Generator, hgain: int = 5, sgain: int = 30,
                vgain: int = 30) -> np.ndarray:
    """Official YOLOX HSV jitter (integer shifts, each of h/s/v on with probability 0.5), via LUTs."""
    gains = rng.uniform(-1, 1, 3) * [hgain, sgain, vgain] * rng.integers(0, 2, 3)
    dh, ds, dv = gains.astype(np.int16)
    if dh == 0 and ds == 0 and dv == 0:
        return img
    x = np.arange(256, dtype=np.int16)
    lut_h = ((x + dh) % 180).astype(np.uint8)
    lut_s = np.clip(x + ds, 0, 255).astype(np.uint8)
    lut_v = np.clip(x + dv, 0, 255).astype(np.uint8)
    h, s, v = cv2.split(cv2.cvtColor(img, cv2.COLOR_BGR2HSV))
    hsv = cv2.merge((cv2.LUT(h, lut_h), cv2.LUT(s, lut_s), cv2.LUT(v, lut_v)))
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)


def hflip(img: np.ndarray, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mirror left-right; x1' = W - x2, x2' = W - x1."""
    w = img.shape[1]
    out = cv2.flip(img, 1)
    if len(boxes):
        boxes = np.stack([w - boxes[:, 2], boxes[:, 1], w - boxes[:, 0], boxes[:, 3]], 1).astype(np.float32)
    return out, boxes


def drop_small(boxes: np.ndarray, labels: np.ndarray, min_side: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Drop boxes whose shorter side is <= ``min_side`` px (the official TrainTransform filter)."""
    if len(boxes) == 0:
        return boxes.reshape(0, 4).astype(np.float32), labels.reshape(0).astype(np.int64)
    keep = np.minimum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]) > min_side
    return boxes[keep], labels[keep]
