"""Backbones: CSPDarknet (YOLOX-Nano..X) and Darknet53 (YOLOv3 baseline)."""
from __future__ import annotations

import torch
from torch import nn

from .blocks import BaseConv, CSPLayer, Focus, ResLayer, SPPBottleneck, conv_kxk


class _Stages(nn.Module):
    """stem -> dark2 -> dark3 -> dark4 -> dark5, returning the last three (strides 8, 16, 32)."""

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = self.dark2(self.stem(x))
        c3 = self.dark3(x)
        c4 = self.dark4(c3)
        c5 = self.dark5(c4)
        return c3, c4, c5


class CSPDarknet(_Stages):
    """CSPDarknet scaled by depth/width multipliers; returns dark3, dark4, dark5."""

    def __init__(self, *, depth: float, width: float, depthwise: bool = False, act: str = "silu") -> None:
        super().__init__()
        Conv = conv_kxk(depthwise)
        c = int(width * 64)
        n = max(round(depth * 3), 1)
        self.stem = Focus(3, c, ksize=3, act=act)
        self.dark2 = nn.Sequential(Conv(c, c * 2, 3, 2, act=act),
                                   CSPLayer(c * 2, c * 2, n, depthwise=depthwise, act=act))
        self.dark3 = nn.Sequential(Conv(c * 2, c * 4, 3, 2, act=act),
                                   CSPLayer(c * 4, c * 4, n * 3, depthwise=depthwise, act=act))
        self.dark4 = nn.Sequential(Conv(c * 4, c * 8, 3, 2, act=act),
                                   CSPLayer(c * 8, c * 8, n * 3, depthwise=depthwise, act=act))
        self.dark5 = nn.Sequential(Conv(c * 8, c * 16, 3, 2, act=act),
                                   SPPBottleneck(c * 16, c * 16, act=act),
                                   CSPLayer(c * 16, c * 16, n, shortcut=False, depthwise=depthwise, act=act))
        self.out_channels = (c * 4, c * 8, c * 16)


def _group(c_in: int, num_blocks: int, stride: int) -> list[nn.Module]:
    return [BaseConv(c_in, c_in * 2, 3, stride, act="lrelu"), *(ResLayer(c_in * 2) for _ in range(num_blocks))]


def _spp_block(filters: tuple[int, int], c_in: int) -> list[nn.Module]:
    f0, f1 = filters
    return [BaseConv(c_in, f0, 1, act="lrelu"), BaseConv(f0, f1, 3, act="lrelu"),
            SPPBottleneck(f1, f0, act="lrelu"),
            BaseConv(f0, f1, 3, act="lrelu"), BaseConv(f1, f0, 1, act="lrelu")]


class Darknet53(_Stages):
    """Darknet53 with an SPP block at the end of dark5 (YOLOv3-SPP, LeakyReLU 0.1)."""

    def __init__(self, *, stem_channels: int = 32, blocks: tuple[int, ...] = (2, 8, 8, 4)) -> None:
        super().__init__()
        c = stem_channels
        self.stem = nn.Sequential(BaseConv(3, c, 3, 1, act="lrelu"), *_group(c, 1, 2))
        c *= 2
        self.dark2 = nn.Sequential(*_group(c, blocks[0], 2))
        self.dark3 = nn.Sequential(*_group(c * 2, blocks[1], 2))
        self.dark4 = nn.Sequential(*_group(c * 4, blocks[2], 2))
        self.dark5 = nn.Sequential(*_group(c * 8, blocks[3], 2), *_spp_block((c * 8, c * 16), c * 16))
        self.out_channels = (c * 4, c * 8, c * 8)
