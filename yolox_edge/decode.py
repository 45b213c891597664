"""THE grid decode, shared by the loss, the evaluator, every export and the runtime.

Raw head layout per anchor: (dx, dy, log w, log h, obj, cls_0..cls_{C-1}); anchors are
ordered stride 8 first, row-major within a level. Decode:
    cx, cy = (dx + grid_x) * stride, (dy + grid_y) * stride
    w,  h  = exp(log w) * stride,  exp(log h) * stride
and score = sigmoid(obj) * sigmoid(cls). ``GridDecode`` (torch, export-friendly ops:
arange, add, mul, exp, sigmoid, concat) and ``decode_np.decode_numpy`` are twins, tested equal.
``GridDecode.best_class`` (from maps) and ``best_class_parts`` (from the head's per-level
parts, what deploy graphs use) are the same decode for graphs that keep only each anchor's
best class (top-K, NMS): they never build the [N, C] score table (see their docstrings).
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


def _rows(x: torch.Tensor, dim: int, start: int, stop: int) -> torch.Tensor:
    """``x[..., start:stop]`` along ``dim`` written as indexing (pnnx has no ``narrow`` for ncnn)."""
    index = [slice(None)] * x.dim()
    index[dim] = slice(start, stop)
    return x[tuple(index)]


def decode_boxes(reg: torch.Tensor, grid: torch.Tensor, stride: torch.Tensor, *, dim: int = -1) -> torch.Tensor:
    """Raw (dx, dy, log w, log h) [..., N, 4] -> (cx, cy, w, h) in input pixels.

    ``dim`` is the axis holding the 4 values (grid and stride broadcast along it): 1 for the
    channels-first [B, 4, N] that deploy graphs decode without transposing the raw rows.
    """
    xy = (_rows(reg, dim, 0, 2) + grid) * stride
    wh = torch.exp(_rows(reg, dim, 2, 4)) * stride
    return torch.cat((xy, wh), dim)


def encode_boxes(boxes: torch.Tensor, grid: torch.Tensor, stride: torch.Tensor,
                 eps: float = 1e-8) -> torch.Tensor:
    """Inverse of ``decode_boxes``: (cx, cy, w, h) in input pixels -> raw (dx, dy, log w, log h).

    The L1 regression target; ``eps`` keeps log finite for degenerate boxes (official value).
    """
    dxy = boxes[..., :2] / stride - grid
    lwh = torch.log(boxes[..., 2:4] / stride + eps)
    return torch.cat((dxy, lwh), -1)


def cxcywh_to_xyxy(b: torch.Tensor, *, dim: int = -1) -> torch.Tensor:
    xy, half = _rows(b, dim, 0, 2), _rows(b, dim, 2, 4) * 0.5
    return torch.cat((xy - half, xy + half), dim)


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

    def _boxes(self, shapes: Sequence[tuple[int, int]], reg: torch.Tensor, *, dim: int = -1) -> torch.Tensor:
        """Raw regression [B, N, 4] (or [B, 4, N] with ``dim=1``) of levels shaped ``shapes`` ->
        xyxy boxes in input pixels, in the same layout."""
        grid, stride = make_grid(shapes, self.strides, dtype=reg.dtype, device=reg.device)
        if dim != -1:
            grid, stride = grid.t(), stride.t()
        return cxcywh_to_xyxy(decode_boxes(reg, grid, stride, dim=dim), dim=dim)

    def forward(self, maps: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        raw = flatten_maps(maps)
        boxes = self._boxes([tuple(m.shape[-2:]) for m in maps], raw[..., :4])
        scores = torch.sigmoid(raw[..., 4:5]) * torch.sigmoid(raw[..., 5:])
        return boxes, scores

    def best_class(self, maps: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Raw head maps -> (boxes [B, N, 4] xyxy, best score [B, N], best class [B, N] int64).

        Equal to ``forward`` followed by a max over classes: see ``best_class_parts``.
        """
        return self.best_class_parts([(m[:, :4], m[:, 4:5], m[:, 5:]) for m in maps])

    def best_class_parts(self, parts: Sequence[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]
                         ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Per level (reg [B, 4, H, W], obj [B, 1, H, W], cls [B, C, H, W]) -> ``best_class``'s output.

        The deploy graphs' decode (top-K, NMS). It takes the head's parts, not its maps: the
        [5+C, N] table is never concatenated, only sliced apart again (on Nano in OpenVINO that
        concat and its layout change cost about as much as the rest of the decode). The class
        max is taken per level over the logits (sigmoid is monotonic and the product with
        sigmoid(obj) > 0 keeps the order, so the scores are the same numbers up to rounding), and only the
        [B, N] results are joined: 2N sigmoids run instead of N(1+C).
        """
        shapes = [tuple(reg.shape[-2:]) for reg, _, _ in parts]
        reg = torch.cat([r.flatten(2) for r, _, _ in parts], 2)       # [B, 4, N]
        obj = torch.cat([o.flatten(1) for _, o, _ in parts], 1)       # [B, N]
        best = [first_max(c, 1) for _, _, c in parts]                 # ([B, H, W], [B, H, W]) per level
        logit = torch.cat([v.flatten(1) for v, _ in best], 1)
        labels = torch.cat([i.flatten(1) for _, i in best], 1)
        boxes = self._boxes(shapes, reg, dim=1).transpose(1, 2)
        return boxes, torch.sigmoid(obj) * torch.sigmoid(logit), labels
