"""In-graph NMS for formats that have one (ONNX NonMaxSuppression, which OpenVINO imports).

Top-K alone keeps the K best *anchors*, and neighbouring anchors of one object crowd
out weaker objects (Nano on COCO: AP 0.293 with pre-NMS top-100 against 0.308). With NMS
first, the K kept are the K best *detections*, the same set the host pipeline scores.

``nms_topk`` mirrors ``postprocess.postprocess`` from each anchor's best class and score
(``GridDecode.best_class``): score threshold, class-aware greedy NMS, then the K best
survivors. Padding rows have score 0.

Class-aware through the op's own class axis (each anchor's score in its class's row of a
[B, C, N] table), not by shifting each class into its own coordinate range as the host does:
the shifted coordinates reach about C x the input size (65k for 80 classes at 640), past
float16's range and with a 16-32 px step from 16k on, and a runtime running the graph's tail in
f16 (OpenVINO's default precision on ARM CPUs, or an ONNX converted to float16 for a mobile GPU)
would then suppress by the wrong IoUs. The class axis costs about 0.5-0.7 ms per image more than
the offsets did (Nano at 416, 80 classes, 1 thread on the AVX2 EPYC VM: the table and 80 NMS passes).
"""
from __future__ import annotations

import torch

from ..postprocess import keep_topk, nms as torch_nms


class _NonMaxSuppression(torch.autograd.Function):
    """ONNX NonMaxSuppression: boxes [B, N, 4], scores [B, C, N] -> selected [M, 3] (batch, class, box).

    ``forward`` (used while tracing) runs the project's torch NMS; ``symbolic`` emits the ONNX op.
    """

    @staticmethod
    def forward(ctx, boxes, scores, max_out: int, iou: float, conf: float):  # noqa: D102
        rows = []
        for b in range(boxes.shape[0]):
            for c in range(scores.shape[1]):
                s = scores[b, c]
                cand = torch.nonzero(s > conf).flatten()
                keep = cand[torch_nms(boxes[b, cand], s[cand], iou)][:max_out]
                rows.append(torch.stack((torch.full_like(keep, b), torch.full_like(keep, c), keep), 1))
        return torch.cat(rows).to(torch.int64)

    @staticmethod
    def symbolic(g, boxes, scores, max_out: int, iou: float, conf: float):  # noqa: D102
        return g.op("NonMaxSuppression", boxes, scores,
                    g.op("Constant", value_t=torch.tensor([max_out], dtype=torch.int64)),
                    g.op("Constant", value_t=torch.tensor([iou], dtype=torch.float32)),
                    g.op("Constant", value_t=torch.tensor([conf], dtype=torch.float32)),
                    center_point_box_i=0)


def nms_topk(boxes: torch.Tensor, best: torch.Tensor, labels: torch.Tensor, k: int, *, iou: float, conf: float,
             num_classes: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Boxes [B, N, 4] xyxy, best-class scores and labels [B, N] (< ``num_classes``) -> the k best NMS survivors.

    Returns boxes [B, k, 4], scores [B, k] (0 on padding rows) and labels [B, k] int64.
    """
    # Plain ints for N and K (the NMS symbolic needs K as a constant; under the ONNX tracer
    # shape entries are traced values). The batch stays traced for --dynamic-batch.
    n = int(best.shape[1])
    k = min(int(k), n)
    # A box with an inf or NaN coordinate (exp(wh) overflowing in an untrained or diverging model)
    # is no candidate, as on the host (postprocess.filter_nms_numpy): left in, its NaN IoUs
    # made the NMS suppress nothing for the whole image.
    finite = (torch.isinf(boxes) | torch.isnan(boxes)).any(-1).logical_not()
    best = torch.where(finite, best, best * 0.0)
    boxes = torch.where(finite.unsqueeze(-1), boxes, boxes.new_zeros(()))
    # Each anchor's score in its own class's row, 0 in the others: [B, C, N].
    # (A product, not a Where: onnxruntime's broadcasting Where took 1.2 ms for Nano's 80 x 3549 table.)
    classes = torch.arange(num_classes, dtype=labels.dtype, device=labels.device).view(1, -1, 1)
    table = (labels.unsqueeze(1) == classes).to(best.dtype) * best.unsqueeze(1)
    sel = _NonMaxSuppression.apply(boxes, table, k, float(iou), float(conf))
    flat = sel[:, 0] * n + sel[:, 2]
    # Only a row of the anchor's own class counts. onnxruntime and OpenVINO select scores above the
    # threshold only, but the ONNX spec leaves a score equal to it open: at conf 0 such a runtime
    # would also "select" the anchor's 0 in every other class's row. Those rows repeat an index,
    # hence an add (ScatterElements' add), not a scatter, whose winner among repeats is unspecified.
    own = (labels.flatten().gather(0, flat) == sel[:, 1]).to(best.dtype)
    # best * 0, not zeros_like: a traced zeros_like becomes an [N] constant stored in the file.
    keep = (best * 0.0).flatten().scatter_add(0, flat, own)
    return keep_topk(boxes, best * keep.reshape_as(best), labels, k)
