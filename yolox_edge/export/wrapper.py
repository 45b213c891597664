"""The deploy wrapper: detector + THE grid decode (+ in-graph top-K), as one traceable module.

The detector is wrapped as its ``deploy_form`` (a copy with inference-only rewrites that keep
its outputs; no export flags on the model); what the graph ends in is chosen here, and
named by ``OUTPUT_NAMES`` so every backend maps its outputs the same way.
"""
from __future__ import annotations

import torch
from torch import nn

from ..thresholds import EVAL_CONF
from ..decode import GridDecode, flatten_maps, level_shapes
from ..models import Detector, deploy_form
from ..postprocess import keep_topk
from ..progress import deprecated_keywords, renamed
from .graph_nms import nms_topk

# Output kind (runtime.base.OUTPUT_KINDS) -> names of the graph outputs, in order.
OUTPUT_NAMES = {"raw": ("raw",), "decoded": ("boxes", "scores"), "topk": ("boxes", "scores", "labels")}


class DeployModel(nn.Module):
    """Detector whose forward ends in what leaves the device.

    - ``kind="raw"``: the official layout [B, N, 5+C], reg raw, obj/cls sigmoid-ed.
    - ``kind="decoded"``: boxes [B, N, 4] xyxy input pixels, scores [B, N, C] = obj*cls.
    - ``kind="topk"``: the ``topk`` best anchors by best-class score: boxes [B, K, 4],
      scores [B, K], labels [B, K] (int64, or float32 with ``float_labels`` for ncnn);
      with ``iou`` the K are the best survivors of class-aware NMS at that IoU, of scores above
      ``conf`` (ONNX/OpenVINO only).

    ``self.detector`` is the detector's ``deploy_form``, a copy (the stem fused into one conv
    unless ``fuse_stem=False``): calibrate and read weights from it, not from the original.
    ``iou``/``conf`` were ``nms_iou``/``nms_conf``, which still work with a DeprecationWarning.
    """

    # The earlier keywords, as export_model's. No aliases of the attributes (self.nms_iou): tracing
    # (torch.jit, which OpenVINO and pnnx use) reads every attribute dir() lists, and each would warn.
    @deprecated_keywords(nms_iou=renamed("iou"), nms_conf=renamed("conf"))
    def __init__(self, detector: Detector, *, kind: str = "topk", topk: int | None = 100,
                 float_labels: bool = False, iou: float | None = None, conf: float = EVAL_CONF,
                 fuse_stem: bool = True) -> None:
        super().__init__()
        if kind not in OUTPUT_NAMES:
            raise ValueError(f"unknown output kind {kind!r}; expected one of {', '.join(OUTPUT_NAMES)}")
        if kind == "topk" and (not topk or topk < 1):
            raise ValueError("kind='topk' needs topk >= 1")
        self.detector = deploy_form(detector, fuse_stem=fuse_stem)
        self.decode = GridDecode(detector.strides)
        self.kind, self.topk, self.float_labels = kind, topk, float_labels
        self.iou, self.conf = iou, conf
        # The wrapper itself must be in eval mode: exporters restore the wrapper's mode
        # recursively afterwards, which would otherwise put BatchNorm back into training.
        self.eval()

    @property
    def output_names(self) -> tuple[str, ...]:
        """The graph's output names for this output kind, in order."""
        return OUTPUT_NAMES[self.kind]

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, ...]:
        """Network-input batch -> the outputs named by ``output_names`` (one tensor for ``raw``)."""
        if self.kind == "topk":
            return self._topk(x)
        maps = self.detector(x)
        if self.kind == "raw":
            raw = flatten_maps(maps)
            return torch.cat((raw[..., :4], torch.sigmoid(raw[..., 4:])), -1)
        return self.decode(maps)

    def _topk(self, x: torch.Tensor):
        boxes, best, labels = self.decode.best_class_parts(self.detector(x, parts=True))
        if self.iou is not None:
            boxes, best, labels = nms_topk(boxes, best, labels, self.topk, iou=self.iou, conf=self.conf,
                                           num_classes=self.detector.num_classes)
        else:
            boxes, best, labels = keep_topk(boxes, best, labels, self.topk)
        return boxes, best, (labels.float() if self.float_labels else labels)


def num_anchors(input_hw: tuple[int, int], strides) -> int:
    """Anchors (grid cells over all levels) for an input size."""
    return sum(h * w for h, w in level_shapes(input_hw, strides))
