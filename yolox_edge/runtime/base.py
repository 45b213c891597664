"""What every backend provides, and what the Predictor needs to know about a model."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from ..data.preprocess import PreprocessConfig
from ..decode_np import STRIDES

# What the model's graph hands back, which decides the postprocess left to do on the host:
#   raw     -> {"raw": [B, N, 5+C]}          (grid decode + score + NMS on the host)
#   decoded -> {"boxes": [B, N, 4] xyxy, "scores": [B, N, C]}
#   topk    -> {"boxes": [B, K, 4] xyxy, "scores": [B, K], "labels": [B, K]}
OUTPUT_KINDS = ("raw", "decoded", "topk")


@dataclass
class ModelInfo:
    """Everything about a model the host side needs; read from a checkpoint or metadata.json."""

    name: str
    class_names: list[str]
    preprocess: PreprocessConfig
    output_kind: str = "decoded"
    strides: tuple[int, ...] = STRIDES
    raw_activated: bool = False  # raw obj/cls already sigmoid-ed (official raw export)
    precision: str = "fp32"
    extra: dict = field(default_factory=dict)
    # the dataset's id of each class index (a COCO json's category ids); None when the data had none
    category_ids: list[int] | None = None


def category_ids_problem(ids: object, num_classes: int) -> str:
    """Why ``ids`` is not one distinct integer id per class ('' when it is): the check of a
    checkpoint's and a metadata.json's ``category_ids``."""
    if not isinstance(ids, (list, tuple)):
        return f"not a list but a {type(ids).__name__}"
    if not all(isinstance(i, int) and not isinstance(i, bool) for i in ids):
        return "not all whole numbers"
    if len(ids) != num_classes:
        return f"{len(ids)} ids for {num_classes} classes"
    if len(set(ids)) != len(ids):
        return "an id is listed twice"
    return ""


class Backend(Protocol):
    """A runtime that maps a float32 NCHW batch to the named outputs of ``OUTPUT_KINDS``.

    A backend with ``takes_pixels = True`` also accepts the letterboxed uint8 NHWC canvases
    (``data.preprocess.letterbox_pixels``) and applies the rest of the preprocessing itself;
    the Predictor then hands it those.
    """

    name: str

    def infer(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        """One batch -> output name -> array (``OUTPUT_KINDS`` of the model's output kind)."""
        ...
