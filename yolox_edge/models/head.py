"""The decoupled YOLOX head. It returns raw maps only: no loss, no decode, no mode flags."""
from __future__ import annotations

import math

import torch
from torch import nn

from .blocks import BaseConv, conv_kxk


class DecoupledHead(nn.Module):
    """Per level: 1x1 stem, then a class branch and a regression branch of two 3x3 convs
    each; objectness is predicted beside the box from the regression branch.

    ``forward`` returns one map per level, shaped [B, 4 + 1 + C, H, W] with channels
    (dx, dy, log w, log h, obj logit, class logits): the layout every later stage reads.
    """

    def __init__(self, num_classes: int, in_channels: tuple[int, ...], *, hidden: int,
                 depthwise: bool = False, act: str = "silu", prior_prob: float = 0.01) -> None:
        super().__init__()
        Conv = conv_kxk(depthwise)
        self.num_classes = num_classes
        self.stems = nn.ModuleList(BaseConv(c, hidden, 1, act=act) for c in in_channels)
        self.cls_convs = nn.ModuleList(
            nn.Sequential(Conv(hidden, hidden, 3, act=act), Conv(hidden, hidden, 3, act=act)) for _ in in_channels)
        self.reg_convs = nn.ModuleList(
            nn.Sequential(Conv(hidden, hidden, 3, act=act), Conv(hidden, hidden, 3, act=act)) for _ in in_channels)
        self.cls_preds = nn.ModuleList(nn.Conv2d(hidden, num_classes, 1) for _ in in_channels)
        self.reg_preds = nn.ModuleList(nn.Conv2d(hidden, 4, 1) for _ in in_channels)
        self.obj_preds = nn.ModuleList(nn.Conv2d(hidden, 1, 1) for _ in in_channels)
        bias = -math.log((1 - prior_prob) / prior_prob)
        for conv in [*self.cls_preds, *self.obj_preds]:
            nn.init.constant_(conv.bias, bias)

    def forward(self, feats, *, parts: bool = False):
        """The maps; with ``parts=True`` each level's (reg [B, 4, H, W], obj [B, 1, H, W],
        cls [B, C, H, W]) before the concat, for deploy graphs that never build the [5+C, N]
        table (a keyword, not a method, so that traced graphs keep this module's scope names)."""
        outs = []
        for k, x in enumerate(feats):
            # Official order (stem, cls branch, reg branch): the ONNX importer relies on it.
            x = self.stems[k](x)
            cls = self.cls_preds[k](self.cls_convs[k](x))
            reg_feat = self.reg_convs[k](x)
            reg = self.reg_preds[k](reg_feat)
            obj = self.obj_preds[k](reg_feat)
            outs.append((reg, obj, cls) if parts else torch.cat([reg, obj, cls], 1))
        return outs
