"""Fold BatchNorm into the preceding convolution before quantizing.

Quantizing a conv whose output is then re-scaled by BN quantizes the wrong weights (the
deployed kernel is conv*BN), and NNCF's Q/DQ ONNX keeps BatchNormalization nodes when BN
is left in place. Folding gives the kernels every runtime will actually execute.
"""
from __future__ import annotations

import copy

import torch
from torch import nn


@torch.no_grad()
def fuse_conv_bn(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> nn.Conv2d:
    """A new Conv2d (with bias) equal to ``bn(conv(x))`` in eval mode."""
    fused = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding,
                      conv.dilation, conv.groups, bias=True, padding_mode=conv.padding_mode)
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    fused.weight.copy_(conv.weight * scale.reshape(-1, 1, 1, 1))
    bias = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
    fused.bias.copy_((bias - bn.running_mean) * scale + bn.bias)
    return fused.to(conv.weight.device)


def fold_batchnorm(model: nn.Module, *, inplace: bool = False) -> nn.Module:
    """Fold every ``conv`` + ``bn`` pair (the BaseConv layout) and put Identity in place of BN.

    Returns the folded model (a deep copy unless ``inplace``); eval-mode output is unchanged.
    Modules with a ``conv`` Conv2d and a ``bn`` BatchNorm2d attribute are folded; a BN
    anywhere else is left alone (the model zoo has none).
    """
    m = model if inplace else copy.deepcopy(model)
    for mod in m.modules():
        conv, bn = getattr(mod, "conv", None), getattr(mod, "bn", None)
        if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
            mod.conv = fuse_conv_bn(conv, bn)
            mod.bn = nn.Identity()
    return m


def count_batchnorm(model: nn.Module) -> int:
    """BatchNorm layers still present (0 after ``fold_batchnorm`` on a zoo model)."""
    return sum(isinstance(x, nn.modules.batchnorm._BatchNorm) for x in model.modules())
