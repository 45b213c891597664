"""In-graph NMS for formats that have one (ONNX NonMaxSuppression, which OpenVINO imports).

Top-K alone keeps the K best *anchors*, and neighbouring anchors of one object crowd
out weaker objects (Nano on COCO: AP 0.293 with pre-NMS top-100 against 0.308). With NMS
first, the K kept are the K best *detections*, the same set the host pipeline scores.

``nms_topk`` mirrors ``postprocess.postprocess``: best class per anchor, score threshold,
class-aware greedy NMS (class offsets), then the K best survivors. Padding rows have score 0.
"""
from __future__ import annotations

import torch

from ..postprocess import nms as torch_nms


class _NonMaxSuppression(torch.autograd.Function):
    """ONNX NonMaxSuppression: boxes [B, N, 4], scores [B, 1, N] -> selected [M, 3] (batch, class, box).

    ``forward`` (used while tracing) runs the project's torch NMS; ``symbolic`` emits the ONNX op.
    """

    @staticmethod
    def forward(ctx, boxes, scores, max_out: int, iou: float, conf: float):  # noqa: D102
        rows = []
        for b in range(boxes.shape[0]):
            s = scores[b, 0]
            cand = torch.nonzero(s > conf).flatten()
            keep = cand[torch_nms(boxes[b, cand], s[cand], iou)][:max_out]
            rows.append(torch.stack((torch.full_like(keep, b), torch.zeros_like(keep), keep), 1))
        return torch.cat(rows).to(torch.int64)

    @staticmethod
    def symbolic(g, boxes, scores, max_out: int, iou: float, conf: float):  # noqa: D102
        return g.op("NonMaxSuppression", boxes, scores,
                    g.op("Constant", value_t=torch.tensor([max_out], dtype=torch.int64)),
                    g.op("Constant", value_t=torch.tensor([iou], dtype=torch.float32)),
                    g.op("Constant", value_t=torch.tensor([conf], dtype=torch.float32)),
                    center_point_box_i=0)


def nms_topk(boxes: torch.Tensor, scores: torch.Tensor, k: int, *, iou: float, conf: float
             ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Decoded boxes [B, N, 4] xyxy, scores [B, N, C] -> the k best NMS survivors per image.

    Returns boxes [B, k, 4], scores [B, k] (0 on padding rows) and labels [B, k] int64.
    """
    # Plain ints for N and K (the NMS symbolic needs K as a constant; under the ONNX tracer
    # shape entries are traced values). The batch stays traced for --dynamic-batch.
    n = int(scores.shape[1])
    k = min(int(k), n)
    best = scores.amax(-1)
    # argmax without ArgMax: OpenVINO runs ONNX ArgMax as a TopK(k=1) per anchor (0.6 ms of
    # Nano's 8 at 416); C - max((scores == best) * (C - c)) is the first maximal class,
    # as argmax picks, from elementwise ops and one reduction.
    c = scores.shape[-1]
    rev = torch.arange(c, 0, -1, dtype=scores.dtype, device=scores.device)
    labels = (c - ((scores == best.unsqueeze(-1)).to(scores.dtype) * rev).amax(-1)).to(torch.int64)
    # Class-aware NMS in one pass: shift each class into its own coordinate range.
    lo = boxes.amin(dim=(1, 2), keepdim=True)
    span = boxes.amax(dim=(1, 2), keepdim=True) - lo + 1.0
    shifted = boxes - lo + labels.unsqueeze(-1).to(boxes.dtype) * span
    sel = _NonMaxSuppression.apply(shifted, best.unsqueeze(1), k, float(iou), float(conf))
    flat = sel[:, 0] * n + sel[:, 2]
    # best * 0, not zeros_like: a traced zeros_like becomes an [N] constant stored in the file.
    keep = (best * 0.0).flatten().scatter(0, flat, torch.ones_like(flat, dtype=best.dtype))
    top, idx = torch.topk(best * keep.reshape_as(best), k, dim=1)
    top_boxes = torch.gather(boxes, 1, idx.unsqueeze(-1).expand(-1, -1, 4))
    return top_boxes, top, torch.gather(labels, 1, idx)
