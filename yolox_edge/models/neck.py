"""Necks: PAFPN (YOLOX) and the YOLOv3 FPN used with Darknet53."""
from __future__ import annotations

import torch
from torch import nn

from .blocks import BaseConv, CSPLayer, conv_kxk


class PAFPN(nn.Module):
    """Top-down then bottom-up path aggregation over (dark3, dark4, dark5).

    ``channels`` are the backbone's output channels (already width-scaled).
    """

    def __init__(self, channels: tuple[int, int, int], *, depth: float, depthwise: bool = False,
                 act: str = "silu") -> None:
        super().__init__()
        c3, c4, c5 = channels
        n = round(3 * depth)
        Conv = conv_kxk(depthwise)
        self.upsample = nn.Upsample(scale_factor=2, mode="nearest")
        self.lateral_conv0 = BaseConv(c5, c4, 1, act=act)
        self.C3_p4 = CSPLayer(2 * c4, c4, n, shortcut=False, depthwise=depthwise, act=act)
        self.reduce_conv1 = BaseConv(c4, c3, 1, act=act)
        self.C3_p3 = CSPLayer(2 * c3, c3, n, shortcut=False, depthwise=depthwise, act=act)
        self.bu_conv2 = Conv(c3, c3, 3, 2, act=act)
        self.C3_n3 = CSPLayer(2 * c3, c4, n, shortcut=False, depthwise=depthwise, act=act)
        self.bu_conv1 = Conv(c4, c4, 3, 2, act=act)
        self.C3_n4 = CSPLayer(2 * c4, c5, n, shortcut=False, depthwise=depthwise, act=act)
        self.out_channels = (c3, c4, c5)

    def forward(self, feats: tuple[torch.Tensor, torch.Tensor, torch.Tensor]):
        x3, x4, x5 = feats
        fpn0 = self.lateral_conv0(x5)
        f0 = self.C3_p4(torch.cat([self.upsample(fpn0), x4], 1))
        fpn1 = self.reduce_conv1(f0)
        p3 = self.C3_p3(torch.cat([self.upsample(fpn1), x3], 1))
        p4 = self.C3_n3(torch.cat([self.bu_conv2(p3), fpn1], 1))
        p5 = self.C3_n4(torch.cat([self.bu_conv1(p4), fpn0], 1))
        return p3, p4, p5


def _cbl(c_in: int, c_out: int, k: int) -> BaseConv:
    return BaseConv(c_in, c_out, k, 1, act="lrelu")


def _embedding(f0: int, f1: int, c_in: int) -> nn.Sequential:
    return nn.Sequential(_cbl(c_in, f0, 1), _cbl(f0, f1, 3), _cbl(f1, f0, 1), _cbl(f0, f1, 3), _cbl(f1, f0, 1))


class YOLOFPN(nn.Module):
    """YOLOv3's top-down FPN over Darknet53 outputs (512, 512 -> 256, 128)."""

    def __init__(self, channels: tuple[int, int, int] = (256, 512, 512)) -> None:
        super().__init__()
        c3, c4, c5 = channels
        self.out1_cbl = _cbl(c5, c4 // 2, 1)
        self.out1 = _embedding(c4 // 2, c4, c4 + c4 // 2)
        self.out2_cbl = _cbl(c4 // 2, c3 // 2, 1)
        self.out2 = _embedding(c3 // 2, c3, c3 + c3 // 2)
        self.upsample = nn.Upsample(scale_factor=2, mode="nearest")
        self.out_channels = (c3 // 2, c4 // 2, c5)

    def forward(self, feats):
        x3, x4, x5 = feats
        o4 = self.out1(torch.cat([self.upsample(self.out1_cbl(x5)), x4], 1))
        o3 = self.out2(torch.cat([self.upsample(self.out2_cbl(o4)), x3], 1))
        return o3, o4, x5
