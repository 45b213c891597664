"""A detector is backbone -> neck -> head; its forward returns the head's raw maps."""
from __future__ import annotations

import copy

import torch
from torch import nn

from .blocks import Focus


class Detector(nn.Module):
    """Backbone, neck and decoupled head. ``forward`` returns one raw map per stride.

    Decode lives in ``yolox_edge.decode``; the loss in ``yolox_edge.loss``; export wraps
    this module unchanged, so training and export run the same head.
    """

    def __init__(self, backbone: nn.Module, neck: nn.Module, head: nn.Module, *,
                 strides: tuple[int, ...] = (8, 16, 32)) -> None:
        super().__init__()
        self.backbone = backbone
        self.neck = neck
        self.head = head
        self.strides = tuple(strides)

    @property
    def num_classes(self) -> int:
        """Classes the head predicts."""
        return self.head.num_classes

    def forward(self, x: torch.Tensor, *, parts: bool = False) -> list[torch.Tensor] | list[tuple[torch.Tensor, ...]]:
        """One raw map per stride; per stride (reg, obj, cls) with ``parts`` (``DecoupledHead.forward``)."""
        return self.head(self.neck(self.backbone(x)), parts=parts)


def deploy_form(detector: Detector, *, fuse_stem: bool = True) -> Detector:
    """An eval-mode copy rewritten for inference graphs, same outputs up to float rounding.

    The rewrites change how a layer is computed, never what it computes: with ``fuse_stem``
    each ``Focus`` stem becomes one strided conv. Training and checkpoints keep the original.
    """
    m = copy.deepcopy(detector).eval()
    for mod in m.modules():
        if fuse_stem and isinstance(mod, Focus):
            mod.fuse_space_to_depth()
    return m
