"""THE grid decode, shared by the loss, the evaluator, every export and the runtime.

Raw head layout per anchor: (dx, dy, log w, log h, obj, cls_0..cls_{C-1}); anchors are
ordered stride 8 first, row-major within a level. Decode:
    cx, cy = (dx + grid_x) * stride, (dy + grid_y) * stride
    w,  h  = exp(log w) * stride,  exp(log h) * stride
and score = sigmoid(obj) * sigmoid(cls). ``GridDecode`` (torch, export-friendly ops:
arange, add, mul, exp, sigmoid, concat) and ``decode_np.decode_numpy`` are twins, tested equal.
``GridDecode.best_class`` is the same decode for graphs that keep only each anchor's best
class (top-K, NMS): it never builds the [N, C] score table (see its docstring).
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

# The raw layout's constants and the numpy twin live in decode_np (torch-free, for device installs).
from .decode_np import STRIDES, decode_numpy, level_shapes

__all__ = ["STRIDES", "GridDecode", "cxcywh_to_xyxy", "decode_boxes", "decode_numpy", "encode_boxes",
           "first_max", "flatten_maps", "flatten_maps_cf", "level_shapes", "make_grid"]


def make_grid(shapes: Sequence[tuple[int, int]], strides: Sequence[int] = STRIDES, *,
              dtype: torch.dtype = torch.float32, device=None) -> tuple[torch.Tensor, torch.Tensor]:
    """Cell offsets [N, 2] (x, y) and strides [N, 1] for all levels, stride 8 first."""
    grids, strd = [], []
    for (h, w), s in zip(shapes, strides):
        ys = torch.arange(h, dtype=dtype, device=device)
        xs = torch.arange(w, dtype=dtype, device=device)
        gy, gx = torch.meshgrid(ys, xs, indexing="ij")
        grids.append(torch.stack((gx, gy), -1).reshape(-1, 2))
        strd.append(torch.full((h * w, 1), float(s), dtype=dtype, device=device))
    return torch.cat(grids), torch.cat(strd)


def decode_boxes(reg: torch.Tensor, grid: torch.Tensor, stride: torch.Tensor) -> torch.Tensor:
    """Raw (dx, dy, log w, log h) [..., N, 4] -> (cx, cy, w, h) in input pixels."""
    xy = (reg[..., :2] + grid) * stride
    wh = torch.exp(reg[..., 2:4]) * stride
    return torch.cat((xy, wh), -1)


def encode_boxes(boxes: torch.Tensor, grid: torch.Tensor, stride: torch.Tensor,
                 eps: float = 1e-8) -> torch.Tensor:
    """Inverse of ``decode_boxes``: (cx, cy, w, h) in input pixels -> raw (dx, dy, log w, log h).

    The L1 regression target; ``eps`` keeps log finite for degenerate boxes (official value).
    """
    dxy = boxes[..., :2] / stride - grid
    lwh = torch.log(boxes[..., 2:4] / stride + eps)
    return torch.cat((dxy, lwh), -1)


def cxcywh_to_xyxy(b: torch.Tensor) -> torch.Tensor:
    half = b[..., 2:4] * 0.5
    return torch.cat((b[..., :2] - half, b[..., :2] + half), -1)


def flatten_maps_cf(maps: Sequence[torch.Tensor]) -> torch.Tensor:
    """Per-level maps [B, 5+C, H, W] -> one tensor [B, 5+C, N] (channels first) in anchor order."""
    return torch.cat([m.flatten(2) for m in maps], 2)


def flatten_maps(maps: Sequence[torch.Tensor]) -> torch.Tensor:
    """Per-level maps [B, 5+C, H, W] -> one tensor [B, N, 5+C] in anchor order."""
    return flatten_maps_cf(maps).permute(0, 2, 1)


def first_max(x: torch.Tensor, dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(max, index of the first maximum) along ``dim``, from export-friendly ops.

    Not ``torch.max``: ONNX ArgMax becomes one TopK(k=1) per row in OpenVINO (0.6 ms of
    Nano's decode at 416). ``C - max((x == max) * (C - c))`` picks the same first index
    from one comparison, one product and one reduction.
    """
    best = x.amax(dim)
    c = x.shape[dim]
    shape = [1] * x.dim()
    shape[dim] = c
    rev = torch.arange(c, 0, -1, dtype=x.dtype, device=x.device).reshape(shape)
    first = c - ((x == best.unsqueeze(dim)).to(x.dtype) * rev).amax(dim)
    return best, first.to(torch.int64)


class GridDecode(nn.Module):
    """Raw head maps -> (boxes [B, N, 4] xyxy in input pixels, scores [B, N, C] = obj*cls).

    Stateless: the grid comes from the maps' shapes, so one module serves every size.
    """

    def __init__(self, strides: Sequence[int] = STRIDES) -> None:
        super().__init__()
        self.strides = tuple(strides)

    def _boxes(self, maps: Sequence[torch.Tensor], reg: torch.Tensor) -> torch.Tensor:
        """Raw regression [B, N, 4] -> xyxy boxes in input pixels."""
        shapes = [tuple(m.shape[-2:]) for m in maps]
        grid, stride = make_grid(shapes, self.strides, dtype=reg.dtype, device=reg.device)
        return cxcywh_to_xyxy(decode_boxes(reg, grid, stride))

    def forward(self, maps: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        raw = flatten_maps(maps)
        boxes = self._boxes(maps, raw[..., :4])
        scores = torch.sigmoid(raw[..., 4:5]) * torch.sigmoid(raw[..., 5:])
        return boxes, scores

    def best_class(self, maps: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Raw head maps -> (boxes [B, N, 4] xyxy, best score [B, N], best class [B, N] int64).

        Equal to ``forward`` followed by a max over classes, at a fraction of the cost in a
        graph: the maps stay channels first (only the 4 box rows are transposed, not the
        [5+C, N] table), and since sigmoid is monotonic the max is taken over the class
        logits, so only 2N sigmoids run instead of N(1+C). In float the scores are the
        same numbers: sigmoid and the product with sigmoid(obj) > 0 keep the order.
        """
        raw = flatten_maps_cf(maps)                                   # [B, 5+C, N]
        boxes = self._boxes(maps, raw[:, :4].transpose(1, 2))
        logit, labels = first_max(raw[:, 5:], 1)
        return boxes, torch.sigmoid(raw[:, 4]) * torch.sigmoid(logit), labels
