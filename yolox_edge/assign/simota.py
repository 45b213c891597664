"""SimOTA label assignment (YOLOX), batched over the images of a batch and stateless.

For every image, ground truths are padded to M rows with a validity mask; the cost and
matching math runs on [B, M, N] tensors with no Python loop over images:

* center prior: an anchor (its cell center) is a candidate of a gt when it lies inside the
  gt box or inside the fixed square of radius ``radius`` (2.5) strides around the gt
  center; an image's candidates are the union over its gts (official "in box or in center");
* cost = BCE(sqrt(sigmoid(cls) * sigmoid(obj)), one-hot) + 3 * -log(IoU + 1e-8)
  + a penalty (official 1e5) where the anchor is not both in the box and in the center
  region of that gt;
* dynamic k per gt = max(1, int(sum of its top-10 candidate IoUs)); each gt takes its k
  lowest-cost candidates; an anchor taken by several gts goes to the gt of lowest cost.

A guard runs the assignment image by image on the CPU when B * M * N exceeds a memory
budget (a crowded batch on a GPU), instead of running out of memory.

This is the assignment of the YOLOX paper and of the official code that trained the
released weights; official YOLOX since 2023 (PR #1589) uses a center-only prior of radius
1.5 instead. Given the same inputs the loss built on it matched that official code's
``get_losses`` to 5 decimals in every part (checked once, outside the test suite).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..progress import deprecated_keywords

CENTER_RADIUS = 2.5
CANDIDATE_TOPK = 10
IOU_WEIGHT = 3.0
PENALTY = 1e5
# Elements of one [B, M, N] tensor; the batched path keeps about 8 such tensors alive.
DEFAULT_BUDGET = 2 ** 25
_log = logging.getLogger(__name__)
_warned = False


@dataclass
class Assignment:
    """Result for a batch: per anchor, whether it is foreground, which gt (index into the
    padded M axis) it matched and the IoU of its predicted box with that gt."""

    fg_mask: torch.Tensor      # [B, N] bool
    matched_gt: torch.Tensor   # [B, N] long, valid where fg_mask
    matched_iou: torch.Tensor  # [B, N] float, 0 where not fg
    num_fg: int

    def to(self, device: torch.device | str) -> "Assignment":
        """The same assignment with its tensors on ``device``."""
        return Assignment(self.fg_mask.to(device), self.matched_gt.to(device),
                          self.matched_iou.to(device), self.num_fg)


def pairwise_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """IoU of xyxy boxes a [..., M, 4] against b [..., N, 4] -> [..., M, N]."""
    lt = torch.maximum(a[..., :, None, :2], b[..., None, :, :2])
    rb = torch.minimum(a[..., :, None, 2:], b[..., None, :, 2:])
    inter = (rb - lt).clamp(min=0).prod(-1)
    area_a = (a[..., 2:] - a[..., :2]).clamp(min=0).prod(-1)
    area_b = (b[..., 2:] - b[..., :2]).clamp(min=0).prod(-1)
    return inter / (area_a[..., :, None] + area_b[..., None, :] - inter).clamp(min=1e-12)


@deprecated_keywords("radius")  # center_prior(gt_boxes, gt_mask, centers, strides, 2.5), the earlier form
def center_prior(gt_boxes: torch.Tensor, gt_mask: torch.Tensor, centers: torch.Tensor,
                 strides: torch.Tensor, *, radius: float = CENTER_RADIUS) -> tuple[torch.Tensor, torch.Tensor]:
    """Geometric prior. gt_boxes [B, M, 4] xyxy, gt_mask [B, M], centers [N, 2], strides [N].

    Returns ``candidates`` [B, N] (in box or in center region of any valid gt) and
    ``in_both`` [B, M, N] (in the box and in the center region of that gt).
    """
    cx, cy = centers[:, 0], centers[:, 1]
    x1, y1, x2, y2 = (gt_boxes[..., i, None] for i in range(4))  # [B, M, 1] each
    in_box = (cx > x1) & (cx < x2) & (cy > y1) & (cy < y2)
    r = radius * strides
    gcx, gcy = (x1 + x2) * 0.5, (y1 + y2) * 0.5
    in_ctr = ((cx - gcx).abs() < r) & ((cy - gcy).abs() < r)
    valid = gt_mask[..., None]
    candidates = ((in_box | in_ctr) & valid).any(1)
    return candidates, in_box & in_ctr & valid


def _cls_cost(cls_logits: torch.Tensor, obj_logits: torch.Tensor, gt_classes: torch.Tensor) -> torch.Tensor:
    """Sum over classes of BCE(sqrt(sig(cls) * sig(obj)), one-hot(gt class)) -> [B, M, N].

    BCE against a one-hot target splits into a per-anchor term sum_c -log(1 - p_c) plus a
    correction at the gt class, so no [B, M, N, C] tensor is ever built. Logs are taken in
    log space (logsigmoid) and clamped at -100 as torch's BCE does.
    """
    def logs(logits: torch.Tensor, log_obj: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        log_p = F.logsigmoid(logits).add_(log_obj).mul_(0.5)
        log_1mp = torch.expm1(log_p).neg_().log_().clamp_(min=-100.0)
        return log_p, log_1mp

    log_obj = F.logsigmoid(obj_logits)                                    # [B, N, 1]
    base = logs(cls_logits, log_obj)[1].sum(-1).neg_()                    # [B, N]
    rows = torch.arange(cls_logits.shape[0], device=cls_logits.device)[:, None]
    cls_g = cls_logits.transpose(1, 2)[rows, gt_classes.clamp(min=0)]     # [B, M, N]: gt-class logits
    log_p_g, log_1mp_g = logs(cls_g, log_obj.transpose(1, 2))
    return log_1mp_g.sub_(log_p_g.clamp_(min=-100.0)).add_(base[:, None, :])


def _assign_batched(pred_boxes, cls_logits, obj_logits, gt_boxes, gt_classes, gt_mask,
                    centers, strides, radius) -> Assignment:
    b, m = gt_mask.shape
    n_all = pred_boxes.shape[1]
    candidates, in_both = center_prior(gt_boxes, gt_mask, centers, strides, radius=radius)
    # Work on each image's candidates only: gather them to the front of a [B, Nc] index,
    # Nc = the largest candidate count in the batch (the rest of an image's row is padding).
    counts = candidates.sum(1)
    n = int(counts.max())
    compact = n < 0.9 * n_all
    if compact:
        cols = torch.argsort((~candidates).to(torch.uint8), dim=1, stable=True)[:, :n]   # [B, Nc]
        rows = torch.arange(b, device=cols.device)[:, None]
        pred_boxes, cls_logits, obj_logits = pred_boxes[rows, cols], cls_logits[rows, cols], obj_logits[rows, cols]
        in_both = in_both.gather(2, cols[:, None, :].expand(-1, m, -1))
        candidates = torch.arange(n, device=counts.device) < counts[:, None]
    else:  # no compaction: every column stays, so the working width is all anchors
        n = n_all
    pair_ok = candidates[:, None, :] & gt_mask[..., None]                  # [B, M, Nc]

    ious = pairwise_iou(gt_boxes, pred_boxes).masked_fill_(~pair_ok, 0.0)
    cost = _cls_cost(cls_logits, obj_logits, gt_classes)
    cost.add_(torch.log(ious + 1e-8).mul_(-IOU_WEIGHT))
    # The official code adds 1e5 outside "in box and in center"; that only separates two
    # tiers, and in float32 it rounds the penalised costs to 1/128, losing their order.
    # A tier offset just above the largest cost keeps the order (same result while costs < 1e5).
    tier = float(cost.masked_fill(~pair_ok, 0.0).max()) + 1.0 if n else 1.0
    cost.add_((~in_both).float().mul_(min(tier, PENALTY))).masked_fill_(~pair_ok, float("inf"))

    kmax = min(CANDIDATE_TOPK, n)
    dyn_k = ious.topk(kmax, dim=-1).values.sum(-1).int().clamp(min=1)   # [B, M]
    best_cost, best_idx = cost.topk(kmax, dim=-1, largest=False)         # sorted ascending
    rank = torch.arange(kmax, device=cost.device)
    take = (rank < dyn_k[..., None]) & torch.isfinite(best_cost)
    matching = torch.zeros((b, m, n), dtype=torch.bool, device=cost.device)
    matching.scatter_(-1, best_idx, take)

    # Conflicts: the anchor goes to the gt of lowest cost (official: argmin over all gts).
    bi, ni = (matching.sum(1) > 1).nonzero(as_tuple=True)
    if bi.numel():
        best_gt = cost[bi, :, ni].argmin(1)                                # [K]
        matching[bi, :, ni] = False
        matching[bi, best_gt, ni] = True

    fg = matching.any(1)
    matched_gt = matching.to(torch.uint8).argmax(1)
    matched_iou = ious.gather(1, matched_gt[:, None, :]).squeeze(1) * fg
    if compact:  # back to all anchors; padding columns are non-candidates, written as empty
        full = [torch.zeros((b, n_all), dtype=t.dtype, device=t.device) for t in (fg, matched_gt, matched_iou)]
        for dst, src in zip(full, (fg, matched_gt, matched_iou)):
            dst.scatter_(1, cols, src)
        fg, matched_gt, matched_iou = full
    return Assignment(fg, matched_gt, matched_iou, int(fg.sum()))


@torch.no_grad()
def simota_assign(pred_boxes: torch.Tensor, cls_logits: torch.Tensor, obj_logits: torch.Tensor,
                  gt_boxes: torch.Tensor, gt_classes: torch.Tensor, gt_mask: torch.Tensor,
                  centers: torch.Tensor, strides: torch.Tensor, *, radius: float = CENTER_RADIUS,
                  budget: int = DEFAULT_BUDGET) -> Assignment:
    """Assign anchors to ground truths with SimOTA for a whole batch.

    pred_boxes [B, N, 4] decoded xyxy in input pixels; cls_logits [B, N, C]; obj_logits
    [B, N] or [B, N, 1]; gt_boxes [B, M, 4] xyxy; gt_classes [B, M] (any value where
    padding); gt_mask [B, M] bool; centers [N, 2] anchor cell centers in pixels; strides [N].
    When B * M * N exceeds ``budget`` elements (or the batched path runs out of GPU
    memory) the images are assigned one at a time on the CPU; results come back on the
    input device.
    """
    if obj_logits.dim() == 3:
        obj_logits = obj_logits.squeeze(-1)
    args = [t.detach().float() for t in (pred_boxes, cls_logits, obj_logits[..., None], gt_boxes)]
    gt_classes, gt_mask = gt_classes.long(), gt_mask.bool()
    centers, strides = centers.float().reshape(-1, 2), strides.float().reshape(-1)
    b, m = gt_mask.shape
    n = pred_boxes.shape[1]
    device = pred_boxes.device
    if m == 0 or not bool(gt_mask.any()):
        return Assignment(torch.zeros((b, n), dtype=torch.bool, device=device),
                          torch.zeros((b, n), dtype=torch.long, device=device),
                          torch.zeros((b, n), device=device), 0)
    if b * m * n <= budget:
        try:
            return _assign_batched(*args, gt_classes, gt_mask, centers, strides, radius)
        except torch.OutOfMemoryError:  # a GPU shared with the model's activations ran out
            if device.type == "cpu":
                raise
            torch.cuda.empty_cache()

    # Guard: one image at a time on the CPU, each with only its own valid gts.
    global _warned
    if not _warned:
        _log.warning("SimOTA: %d images x %d boxes x %d anchors is over the memory budget; "
                     "assigning image by image on the CPU (slower, same result)", b, m, n)
        _warned = True
    cpu = torch.device("cpu")
    parts = []
    for i in range(b):
        keep = gt_mask[i].nonzero().squeeze(1)
        sl = [t[i:i + 1].to(cpu) for t in args[:3]]
        gb = args[3][i:i + 1, keep].to(cpu)
        gc, gm = gt_classes[i:i + 1, keep].to(cpu), gt_mask[i:i + 1, keep].to(cpu)
        if keep.numel() == 0:
            parts.append((torch.zeros(1, n, dtype=torch.bool), torch.zeros(1, n, dtype=torch.long),
                          torch.zeros(1, n)))
            continue
        a = _assign_batched(*sl, gb, gc, gm, centers.to(cpu), strides.to(cpu), radius)
        parts.append((a.fg_mask, keep.to(cpu)[a.matched_gt] * a.fg_mask, a.matched_iou))
    fg, gt, iou = (torch.cat([p[k] for p in parts]).to(device) for k in range(3))
    return Assignment(fg, gt, iou, int(fg.sum()))
