"""Predictor: image in original pixels -> preprocess -> backend -> postprocess -> Detections."""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Callable

import numpy as np

from ..data.preprocess import PreprocessConfig, as_bgr8, boxes_to_image, letterbox_pixels, preprocess, read_image
from ..decode_np import decode_numpy
from ..errors import UserError, check_input_size, flag_value, format_size, input_hw
from ..postprocess import Detections, filter_nms_numpy, postprocess_numpy
from ..thresholds import APP_CONF, APP_MAX_DET, APP_NMS_IOU, check_thresholds
from .base import Backend, ModelInfo


class Predictor:
    """Runs any backend with the shared preprocessing and the postprocess its graph leaves."""

    def __init__(self, backend: Backend, info: ModelInfo, *, conf: float = APP_CONF, iou: float = APP_NMS_IOU,
                 agnostic: bool = False, max_det: int = APP_MAX_DET,
                 preprocess_fn: Callable[[np.ndarray, PreprocessConfig], tuple[np.ndarray, float]] = preprocess
                 ) -> None:
        check_thresholds(conf, iou, max_det)
        self.backend, self.info = backend, info
        self.conf, self.iou, self.agnostic, self.max_det = conf, iou, agnostic, max_det
        self.preprocess_fn = preprocess_fn  # the bench's baseline swaps in the official demo's

    def static_input_size(self) -> tuple[int, int] | None:
        """The one input size the model takes (a static export), or None when it takes any."""
        fixed = getattr(self.backend, "fixed_input", None)
        return tuple(fixed) if fixed else None

    def set_input_size(self, size: int | tuple[int, int]) -> None:
        """Run at another input size (an int, or (H, W)); only backends with dynamic shapes accept it."""
        check_input_size(size, self.info.strides)
        hw = input_hw(size)
        fixed = self.static_input_size()
        if fixed and fixed != hw:
            raise UserError(f"this {self.backend.name} model has a fixed input {fixed[1]}x{fixed[0]} (width x height); "
                            f"re-export it with {flag_value('--img-size', 'img_size', size, format_size(hw))}")
        self.info.preprocess = dataclasses.replace(self.info.preprocess, input_size=hw)

    @property
    def class_names(self) -> list[str]:
        """The model's class names, index = ``Detections.labels`` value."""
        return self.info.class_names

    @property
    def category_ids(self) -> list[int] | None:
        """The dataset's id of each class index (a COCO json's category ids, index =
        ``Detections.labels`` value), or None when the model was trained on data without ids."""
        return self.info.category_ids

    def postprocess(self, out: dict[str, np.ndarray]) -> list[Detections]:
        """Backend outputs (network-input pixels) -> Detections per image."""
        kw = dict(conf=self.conf, iou=self.iou, agnostic=self.agnostic, max_det=self.max_det)
        kind = self.info.output_kind
        if kind == "raw":
            boxes, scores = decode_numpy(out["raw"], self.info.preprocess.input_size, self.info.strides,
                                         activated=self.info.raw_activated)
            return postprocess_numpy(boxes, scores, **kw)
        if kind == "decoded":
            return postprocess_numpy(out["boxes"], out["scores"], **kw)
        if kind == "topk":
            # The graph keeps scores above its own conf and pads its K rows with score 0: at --conf 0
            # those rows (anchors it had dropped) came back as detections scored 0
            kw["conf"] = max(self.conf, float(np.finfo(np.float32).tiny))
            return [filter_nms_numpy(np.asarray(b, np.float32), np.asarray(s, np.float32), np.asarray(lab), **kw)
                    for b, s, lab in zip(out["boxes"], out["scores"], out["labels"])]
        raise ValueError(f"unknown output kind {kind!r}")

    def make_input(self, image: np.ndarray) -> tuple[np.ndarray, float]:
        """One BGR uint8 image -> (what the backend takes, letterbox ratio): the float32 CHW
        tensor, or the letterboxed uint8 HWC canvas for a backend that converts pixels itself."""
        if self.preprocess_fn is preprocess and getattr(self.backend, "takes_pixels", False):
            return letterbox_pixels(image, self.info.preprocess)
        return self.preprocess_fn(image, self.info.preprocess)

    def predict_images(self, images: list[np.ndarray | str | Path]) -> list[Detections]:
        """BGR uint8 images (arrays, or paths read as ``predict`` reads them) -> Detections in each
        image's own pixels (one batch).

        Gray, BGRA and 16-bit arrays are converted as image files are; float arrays are refused.
        """
        if isinstance(images, (str, Path)) or isinstance(images, np.ndarray) and images.ndim != 4:
            # a path was iterated letter by letter, an HxWx3 array row by row
            raise UserError(f"predict_images takes a list of images, not one {type(images).__name__}; for one image "
                            "call predict(image)")
        if not len(images):
            return []
        images = [as_bgr8(read_image(im) if isinstance(im, (str, Path)) else im) for im in images]
        inputs, ratios = zip(*(self.make_input(im) for im in images))
        # One image: a view with a batch axis, not a 2 MB copy (np.stack) per call.
        batch = inputs[0][None] if len(inputs) == 1 else np.stack(inputs)
        dets = self.postprocess(self.backend.infer(batch))
        for d, r, im in zip(dets, ratios, images):
            d.boxes = boxes_to_image(d.boxes, r, im.shape[:2])
        return dets

    def predict(self, image: np.ndarray | str | Path) -> Detections:
        """One image (array or path) -> Detections in its pixels; several arrays: ``predict_images``."""
        if isinstance(image, (list, tuple)):  # else a TypeError from deep in the path handling
            raise UserError(f"predict takes one image (a path or a BGR array), not a {type(image).__name__} of "
                            f"{len(image)}; for several, call predict_images([array, ...]) (one batch) or predict "
                            "each path")
        if not isinstance(image, np.ndarray):
            image = read_image(image)
        return self.predict_images([image])[0]
