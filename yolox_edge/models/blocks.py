"""Building blocks shared by every YOLOX variant.

Names of submodules follow the official YOLOX code so that official checkpoints map onto
these modules by key (see ``zoo.import_official``); the forward order of every block is
the official one too, which the ONNX importer relies on.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

# Official YOLOX sets these on every BatchNorm2d after building the model (init_yolo).
BN_EPS = 1e-3
BN_MOMENTUM = 0.03


def make_act(name: str) -> nn.Module:
    """Activation by name: ``silu``, ``hswish``, ``relu`` or ``lrelu`` (LeakyReLU 0.1, Darknet53).

    ``hswish`` (x * relu6(x + 3) / 6) is the edge choice: INT8 runtimes fuse it into the conv
    without an exp; SiLU's exp is about a third of Nano's INT8 time on a CPU (README, bench section).
    """
    if name == "silu":
        return nn.SiLU(inplace=True)
    if name == "hswish":
        return nn.Hardswish(inplace=True)
    if name == "relu":
        return nn.ReLU(inplace=True)
    if name == "lrelu":
        return nn.LeakyReLU(0.1, inplace=True)
    raise ValueError(f"unknown activation {name!r}; use silu, hswish, relu or lrelu")


class BaseConv(nn.Module):
    """Conv2d (no bias, 'same' padding) -> BatchNorm -> activation."""

    def __init__(self, c_in: int, c_out: int, ksize: int, stride: int = 1, *,
                 groups: int = 1, act: str = "silu") -> None:
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, ksize, stride, (ksize - 1) // 2, groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(c_out, eps=BN_EPS, momentum=BN_MOMENTUM)
        self.act = make_act(act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(self.conv(x)))


class DWConv(nn.Module):
    """Depthwise kxk conv followed by a pointwise 1x1 conv (Nano's cheap 3x3)."""

    def __init__(self, c_in: int, c_out: int, ksize: int, stride: int = 1, *, act: str = "silu") -> None:
        super().__init__()
        self.dconv = BaseConv(c_in, c_in, ksize, stride, groups=c_in, act=act)
        self.pconv = BaseConv(c_in, c_out, 1, 1, act=act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pconv(self.dconv(x))


def conv_kxk(depthwise: bool):
    """The 3x3 conv type of a variant: DWConv for depthwise models, else BaseConv."""
    return DWConv if depthwise else BaseConv


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3, optional residual."""

    def __init__(self, c_in: int, c_out: int, *, shortcut: bool = True, expansion: float = 0.5,
                 depthwise: bool = False, act: str = "silu") -> None:
        super().__init__()
        hidden = int(c_out * expansion)
        self.conv1 = BaseConv(c_in, hidden, 1, act=act)
        self.conv2 = conv_kxk(depthwise)(hidden, c_out, 3, 1, act=act)
        self.use_add = shortcut and c_in == c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv2(self.conv1(x))
        return y + x if self.use_add else y


class ResLayer(nn.Module):
    """Darknet53 residual unit: 1x1 halve, 3x3 restore, add (LeakyReLU)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.layer1 = BaseConv(channels, channels // 2, 1, act="lrelu")
        self.layer2 = BaseConv(channels // 2, channels, 3, act="lrelu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.layer2(self.layer1(x))


class SPPBottleneck(nn.Module):
    """Spatial pyramid pooling (max pools 5/9/13, stride 1) between two 1x1 convs."""

    def __init__(self, c_in: int, c_out: int, *, kernel_sizes: tuple[int, ...] = (5, 9, 13),
                 act: str = "silu") -> None:
        super().__init__()
        hidden = c_in // 2
        self.conv1 = BaseConv(c_in, hidden, 1, act=act)
        self.m = nn.ModuleList(nn.MaxPool2d(k, 1, k // 2) for k in kernel_sizes)
        self.conv2 = BaseConv(hidden * (len(kernel_sizes) + 1), c_out, 1, act=act)
        k0 = kernel_sizes[0]
        # 5, 9, 13: each pool is the first one applied once more to the previous output.
        self.chained = all(k == k0 + i * (k0 - 1) for i, k in enumerate(kernel_sizes)) and k0 % 2 == 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv1(x)
        if self.chained:
            # The max over 9x9 is the 5x5 max of 5x5 maxima (stride 1, padding never wins a max),
            # exactly; 25 compares per output instead of 81 or 169. Same numbers, faster in
            # torch (~5 ms of Nano's ~55 at 416 on 1 core) and ncnn, no slower anywhere.
            outs = [x]
            for _ in self.m:
                outs.append(self.m[0](outs[-1]))
        else:
            outs = [x] + [m(x) for m in self.m]
        return self.conv2(torch.cat(outs, dim=1))


class CSPLayer(nn.Module):
    """Cross-stage partial block: two 1x1 branches, n bottlenecks on one, concat, 1x1."""

    def __init__(self, c_in: int, c_out: int, n: int = 1, *, shortcut: bool = True,
                 expansion: float = 0.5, depthwise: bool = False, act: str = "silu") -> None:
        super().__init__()
        hidden = int(c_out * expansion)
        self.conv1 = BaseConv(c_in, hidden, 1, act=act)
        self.conv2 = BaseConv(c_in, hidden, 1, act=act)
        self.conv3 = BaseConv(2 * hidden, c_out, 1, act=act)
        self.m = nn.Sequential(*(Bottleneck(hidden, hidden, shortcut=shortcut, expansion=1.0,
                                            depthwise=depthwise, act=act) for _ in range(n)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Official order: conv1, conv2, then the bottlenecks (the ONNX importer relies on it).
        x1 = self.conv1(x)
        x2 = self.conv2(x)
        x1 = self.m(x1)
        return self.conv3(torch.cat((x1, x2), dim=1))


class Focus(nn.Module):
    """Space-to-depth (2x2) then a conv.

    Implemented with ``pixel_unshuffle``: one standard op that ONNX (DepthToSpace's twin
    SpaceToDepth via reshape/transpose), OpenVINO and ncnn (``Reorg``) all map without a
    custom layer, unlike the official four strided slices. Channel order differs from the
    official slices; ``zoo`` permutes official stem weights on import
    (ours: c*4 + dy*2 + dx; official: (dx*2 + dy)*3 + c).

    For deployment ``fuse_space_to_depth`` folds the rearrangement into the conv itself
    (see there): training and checkpoints keep the k x k form.
    """

    def __init__(self, c_in: int, c_out: int, ksize: int = 1, stride: int = 1, *, act: str = "silu") -> None:
        super().__init__()
        self.conv = BaseConv(c_in * 4, c_out, ksize, stride, act=act)
        self.space_to_depth = True

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.pixel_unshuffle(x, 2) if self.space_to_depth else x)

    @torch.no_grad()
    def fuse_space_to_depth(self) -> None:
        """Replace space-to-depth + k x k conv (stride s, pad p) by one 2k x 2k conv (stride 2s, pad 2p).

        Exact: unshuffled channel c*4 + dy*2 + dx at cell (i + ki - p) reads pixel row
        2(i + ki - p) + dy = 2i + (2ki + dy) - 2p, so its weight moves to kernel row 2ki + dy
        (columns alike). Same weights and multiply-adds, but no 6-D transpose of the
        full-resolution input in the graph (~0.8 ms of Nano's ~14 in OpenVINO INT8 at 416).
        """
        if not self.space_to_depth:
            return
        conv = self.conv.conv
        (k, _), (s, _), (p, _) = conv.kernel_size, conv.stride, conv.padding
        c_out, c_in = conv.out_channels, conv.in_channels // 4
        # [O, c, dy, dx, ki, kj] -> [O, c, ki, dy, kj, dx] -> [O, c, 2k, 2k]
        weight = conv.weight.reshape(c_out, c_in, 2, 2, k, k).permute(0, 1, 4, 2, 5, 3)
        weight = weight.reshape(c_out, c_in, 2 * k, 2 * k)
        fused = nn.Conv2d(c_in, c_out, 2 * k, 2 * s, 2 * p, bias=conv.bias is not None).to(conv.weight)
        fused.weight.copy_(weight)
        if conv.bias is not None:
            fused.bias.copy_(conv.bias)
        self.conv.conv = fused
        self.space_to_depth = False


def focus_official_to_ours(weight: torch.Tensor, c_in: int = 3) -> torch.Tensor:
    """Permute a stem conv weight from the official slice order to pixel_unshuffle order."""
    idx = [((dx * 2 + dy) * c_in + c) for c in range(c_in) for dy in range(2) for dx in range(2)]
    return weight[:, idx].contiguous()
