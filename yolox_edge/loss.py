"""The YOLOX loss over the head's raw maps, with SimOTA assignment.

Parts (each summed, then divided by the number of foreground anchors in the batch, at
least 1, as the official code does):
* iou: 1 - IoU^2 between decoded predictions and their matched gt (official "iou" type);
* obj: BCE with logits on objectness over all anchors, target 1 on foreground;
* cls: BCE with logits on foreground anchors, target one-hot(class) * IoU of the matched
  prediction (IoU-aware classification);
* l1 (``use_l1``, the no-augmentation stage): L1 between raw regression and the gt encoded
  with the same grid (``decode.encode_boxes``).
total = reg_weight * iou + obj + cls + l1.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .assign.simota import DEFAULT_BUDGET, simota_assign
from .decode import STRIDES, cxcywh_to_xyxy, decode_boxes, encode_boxes, flatten_maps, make_grid


def box_iou_aligned(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """IoU of matching rows of xyxy boxes a [K, 4] and b [K, 4] -> [K] (differentiable)."""
    lt = torch.maximum(a[:, :2], b[:, :2])
    rb = torch.minimum(a[:, 2:], b[:, 2:])
    inter = (rb - lt).clamp(min=0).prod(-1)
    area_a = (a[:, 2:] - a[:, :2]).prod(-1)
    area_b = (b[:, 2:] - b[:, :2]).prod(-1)
    return inter / (area_a + area_b - inter + 1e-16)


def xyxy_to_cxcywh(b: torch.Tensor) -> torch.Tensor:
    return torch.cat(((b[..., :2] + b[..., 2:]) * 0.5, b[..., 2:] - b[..., :2]), -1)


class YOLOXLoss(nn.Module):
    """SimOTA + YOLOX loss. ``forward(maps, targets, use_l1)`` returns a dict:
    ``total`` (tensor to backprop), the detached parts ``iou`` (already times
    ``reg_weight``, so total = iou + obj + cls + l1), ``obj``, ``cls``, ``l1``, and the
    ints ``num_fg`` / ``num_gt`` for the batch."""

    def __init__(self, num_classes: int, strides: Sequence[int] = STRIDES, reg_weight: float = 5.0,
                 *, assign_budget: int = DEFAULT_BUDGET) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.strides = tuple(strides)
        self.reg_weight = reg_weight
        self.assign_budget = assign_budget

    def forward(self, maps: Sequence[torch.Tensor], targets: torch.Tensor, use_l1: bool = False) -> dict:
        """maps: the head's raw maps [B, 5+C, H, W] per stride; targets [B, M, 5] rows
        (class, x1, y1, x2, y2) in input pixels, class -1 on padding rows."""
        # Loss math in float32 even under autocast: exp/log/BCE sums are fragile in fp16.
        raw = flatten_maps(maps).float()                                   # [B, N, 5+C]
        if raw.shape[-1] != 5 + self.num_classes:
            raise ValueError(f"maps have {raw.shape[-1] - 5} classes, the loss was built for {self.num_classes}")
        shapes = [tuple(m.shape[-2:]) for m in maps]
        grid, stride = make_grid(shapes, self.strides, device=raw.device)
        reg, obj, cls = raw[..., :4], raw[..., 4], raw[..., 5:]
        boxes = cxcywh_to_xyxy(decode_boxes(reg, grid, stride))          # [B, N, 4]

        targets = targets.to(raw.device).float()
        if targets.dim() != 3 or targets.shape[-1] != 5:
            raise ValueError(f"targets must be [B, M, 5], got {tuple(targets.shape)}")
        gt_cls, gt_boxes = targets[..., 0], targets[..., 1:5]
        # Degenerate boxes cannot be matched meaningfully; the data layer should drop them.
        gt_mask = (gt_cls >= 0) & (gt_boxes[..., 2] > gt_boxes[..., 0]) & (gt_boxes[..., 3] > gt_boxes[..., 1])

        a = simota_assign(boxes, cls, obj, gt_boxes, gt_cls.long(), gt_mask,
                          (grid + 0.5) * stride, stride.squeeze(-1), budget=self.assign_budget)
        fg = a.fg_mask
        num_fg = max(a.num_fg, 1)
        b_idx, n_idx = fg.nonzero(as_tuple=True)
        g_idx = a.matched_gt[b_idx, n_idx]
        t_boxes = gt_boxes[b_idx, g_idx]                                  # [K, 4] xyxy
        t_cls = gt_cls[b_idx, g_idx].long()

        iou = box_iou_aligned(boxes[b_idx, n_idx], t_boxes)
        loss_iou = (1.0 - iou ** 2).sum() / num_fg
        loss_obj = F.binary_cross_entropy_with_logits(obj, fg.float(), reduction="sum") / num_fg
        cls_t = F.one_hot(t_cls, self.num_classes).float() * a.matched_iou[b_idx, n_idx, None]
        loss_cls = F.binary_cross_entropy_with_logits(cls[b_idx, n_idx], cls_t, reduction="sum") / num_fg
        if use_l1:
            l1_t = encode_boxes(xyxy_to_cxcywh(t_boxes), grid[n_idx], stride[n_idx])
            loss_l1 = (reg[b_idx, n_idx] - l1_t).abs().sum() / num_fg
        else:
            loss_l1 = raw.new_zeros(())
        total = self.reg_weight * loss_iou + loss_obj + loss_cls + loss_l1
        return {
            "total": total,
            "iou": (self.reg_weight * loss_iou).detach(),
            "obj": loss_obj.detach(),
            "cls": loss_cls.detach(),
            "l1": loss_l1.detach(),
            "num_fg": a.num_fg,
            "num_gt": int(gt_mask.sum()),
        }
