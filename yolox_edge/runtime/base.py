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
