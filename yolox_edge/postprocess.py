"""Decoded candidates -> detections: score = obj*cls, threshold, NMS, max detections.

Torch and numpy versions follow one algorithm (tested equal): each anchor keeps its best
class (as the official YOLOX postprocess does), candidates below ``conf`` are dropped,
then greedy NMS, class-aware by default, and the ``max_det`` best are kept.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from .progress import deprecated_keywords
from .thresholds import APP_CONF, APP_MAX_DET, APP_NMS_IOU

if TYPE_CHECKING:
    import torch


@dataclass
class Detections:
    """Detections of one image: boxes [M, 4] xyxy, scores [M], labels [M] (class index)."""

    boxes: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.float32))
    scores: np.ndarray = field(default_factory=lambda: np.zeros((0,), np.float32))
    labels: np.ndarray = field(default_factory=lambda: np.zeros((0,), np.int64))

    def __len__(self) -> int:
        return len(self.scores)

    # The earlier form: to_list(names, category_ids), by position.
    @deprecated_keywords("names", "category_ids")
    def to_list(self, *, names: list[str] | None = None, category_ids: list[int] | None = None) -> list[dict]:
        """One dict per detection, as ``predict --json`` writes them: ``label`` (class index),
        ``score``, ``box`` [x1, y1, x2, y2] in image pixels, given ``names`` (``Predictor.class_names``)
        its ``name`` and, given ``category_ids`` (``Predictor.category_ids``: the dataset's own ids),
        its ``category_id``. Both were positional: that form still works, with a DeprecationWarning."""
        out = []
        for b, s, c in zip(self.boxes, self.scores, self.labels):
            d = {"label": int(c), "score": round(float(s), 4), "box": [round(float(v), 2) for v in b]}
            if names is not None:
                d["name"] = names[int(c)] if int(c) < len(names) else str(int(c))
            if category_ids is not None and 0 <= int(c) < len(category_ids):
                d["category_id"] = int(category_ids[int(c)])
            out.append(d)
        return out

    def category_ids(self, ids: list[int]) -> np.ndarray:
        """The dataset's id of each detection [M] (int64): ``ids`` (``Predictor.category_ids``)
        looked up by ``labels``."""
        return np.asarray(ids, np.int64)[self.labels] if len(self.labels) else np.zeros(0, np.int64)


# ---------------------------------------------------------------- numpy
def box_iou_numpy(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU matrix [len(a), len(b)] of xyxy boxes."""
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(rb - lt, 0, None).prod(-1)
    area_a = (a[:, 2:] - a[:, :2]).clip(0).prod(-1)
    area_b = (b[:, 2:] - b[:, :2]).clip(0).prod(-1)
    return inter / np.maximum(area_a[:, None] + area_b[None] - inter, 1e-9)


NMS_BLOCK = 256  # IoU rows computed at a time


def nms_numpy(boxes: np.ndarray, scores: np.ndarray, iou: float) -> np.ndarray:
    """Greedy NMS; returns kept indices sorted by descending score.

    The IoU rows are computed a block at a time, as the greedy pass reaches them: the whole N x N
    matrix (and its N x N x 2 temporaries) took ~1 GB for the 8,000 candidates a decoded export
    gives at eval's conf 0.001 on a 960 input; the same values, so the same boxes kept."""
    order = np.argsort(-scores, kind="stable")
    boxes = boxes[order]
    suppressed = np.zeros(len(order), bool)
    keep = []
    for start in range(0, len(order), NMS_BLOCK):
        if suppressed[start:start + NMS_BLOCK].all():
            continue
        # against the boxes from this block on: those before it are decided already
        rows = box_iou_numpy(boxes[start:start + NMS_BLOCK], boxes[start:])
        later = suppressed[start:]  # a view: marks land in ``suppressed``
        for j, row in enumerate(rows):
            if later[j]:
                continue
            keep.append(start + j)
            later |= row > iou
    return order[np.asarray(keep, dtype=np.int64)]


def _class_offset(boxes, labels, agnostic: bool):
    # Shift each class into its own coordinate range so one NMS pass is class-aware. From the
    # smallest coordinate, as the graph's NMS does: a box reaching past the top-left (x1 < 0) of
    # class c + 1 otherwise landed on class c's boxes at the far edge and suppressed one.
    if agnostic or len(boxes) == 0:
        return boxes
    lo = float(boxes.min())
    span = float(boxes.max()) - lo + 1.0
    return boxes - lo + (labels * span)[:, None]


def filter_nms_numpy(boxes: np.ndarray, scores: np.ndarray, labels: np.ndarray, *, conf: float = APP_CONF,
                     iou: float = APP_NMS_IOU, agnostic: bool = False, max_det: int = APP_MAX_DET) -> Detections:
    """One image's candidates (one score and label each) -> threshold, NMS, max_det.

    A box with a non-finite coordinate is no detection: an untrained or diverging model's exp(wh)
    overflows, and one inf box would turn the class offset, and so every IoU, into NaN."""
    m = (scores >= conf) & np.isfinite(boxes).all(-1)
    boxes, scores, labels = boxes[m], scores[m], labels[m].astype(np.int64)
    keep = nms_numpy(_class_offset(boxes, labels, agnostic), scores, iou)[:max_det]
    return Detections(boxes[keep], scores[keep], labels[keep])


def postprocess_numpy(boxes: np.ndarray, scores: np.ndarray, *, conf: float = APP_CONF, iou: float = APP_NMS_IOU,
                      agnostic: bool = False, max_det: int = APP_MAX_DET) -> list[Detections]:
    """Batched [B, N, 4] boxes and [B, N, C] scores -> one Detections per image."""
    out = []
    for bx, sc in zip(np.asarray(boxes, np.float32), np.asarray(scores, np.float32)):
        labels = sc.argmax(-1)
        best = np.take_along_axis(sc, labels[:, None], -1)[:, 0]
        out.append(filter_nms_numpy(bx, best, labels, conf=conf, iou=iou, agnostic=agnostic, max_det=max_det))
    return out


# ---------------------------------------------------------------- torch
# torch is imported inside the torch twins: the numpy path above serves predict/eval/bench on
# devices where only numpy and the inference runtimes are installed.
def box_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """IoU matrix [len(a), len(b)] of xyxy boxes (torch)."""
    import torch
    lt = torch.maximum(a[:, None, :2], b[None, :, :2])
    rb = torch.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = (rb - lt).clamp(min=0).prod(-1)
    area_a = (a[:, 2:] - a[:, :2]).clamp(min=0).prod(-1)
    area_b = (b[:, 2:] - b[:, :2]).clamp(min=0).prod(-1)
    return inter / (area_a[:, None] + area_b[None] - inter).clamp(min=1e-9)


def nms(boxes: torch.Tensor, scores: torch.Tensor, iou: float) -> torch.Tensor:
    """Greedy NMS in torch; same result as ``nms_numpy``."""
    import torch
    order = torch.sort(scores, descending=True, stable=True).indices
    ious = box_iou(boxes[order], boxes[order])
    suppressed = torch.zeros(len(order), dtype=torch.bool, device=boxes.device)
    keep = []
    over = (ious > iou).cpu().numpy()
    sup = suppressed.cpu().numpy()
    for i in range(len(order)):
        if sup[i]:
            continue
        keep.append(i)
        sup |= over[i]
    return order[torch.as_tensor(keep, dtype=torch.long, device=boxes.device)]


def postprocess(boxes: torch.Tensor, scores: torch.Tensor, *, conf: float = APP_CONF, iou: float = APP_NMS_IOU,
                agnostic: bool = False, max_det: int = APP_MAX_DET) -> list[Detections]:
    """Torch twin of ``postprocess_numpy``."""
    import torch
    out = []
    for bx, sc in zip(boxes.detach().float(), scores.detach().float()):
        best, labels = sc.max(-1)
        m = (best >= conf) & torch.isfinite(bx).all(-1)  # as filter_nms_numpy: no inf/NaN boxes
        bx, best, labels = bx[m], best[m], labels[m]
        keep = nms(_class_offset(bx, labels, agnostic), best, iou)[:max_det]
        out.append(Detections(bx[keep].cpu().numpy(), best[keep].cpu().numpy(),
                              labels[keep].cpu().numpy().astype(np.int64)))
    return out


def keep_topk(boxes: torch.Tensor, best: torch.Tensor, labels: torch.Tensor, k: int
              ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Keep the k anchors with the highest ``best`` score (export-friendly: TopK, Gather).

    Boxes [B, N, 4], best and labels [B, N] -> boxes [B, k, 4], scores [B, k], labels [B, k].
    """
    import torch
    k = min(k, best.shape[1])
    top, idx = torch.topk(best, k, dim=1)
    top_boxes = torch.gather(boxes, 1, idx.unsqueeze(-1).expand(-1, -1, 4))
    return top_boxes, top, torch.gather(labels, 1, idx)


def select_topk(boxes: torch.Tensor, scores: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Keep the k best anchors by best-class score from decoded boxes and scores [B, N, C].

    Returns boxes [B, k, 4], scores [B, k] and labels [B, k] (int64).
    """
    return keep_topk(boxes, *scores.max(-1), k)
