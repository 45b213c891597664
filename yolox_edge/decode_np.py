"""The numpy twin of ``decode.GridDecode`` and the raw layout's constants (see decode.py for
the layout). Torch-free: the runtime side (predict, eval, bench) imports only this, so it runs
on boards and phones where only numpy and the inference runtimes are installed."""
from __future__ import annotations

from typing import Sequence

import numpy as np

STRIDES = (8, 16, 32)


def level_shapes(input_hw: tuple[int, int], strides: Sequence[int] = STRIDES) -> list[tuple[int, int]]:
    """Feature-map sizes for an input size (inputs are multiples of the largest stride)."""
    h, w = input_hw
    return [(h // s, w // s) for s in strides]


def _sigmoid_np(x: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):  # exp(-x) = inf below x ~ -88 gives 0, the right limit
        return 1.0 / (1.0 + np.exp(-x))


def decode_numpy(raw: np.ndarray, input_hw: tuple[int, int], strides: Sequence[int] = STRIDES, *,
                 activated: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Numpy twin of ``GridDecode`` on a flat raw array [B, N, 5+C].

    ``activated=True`` for outputs whose obj/cls columns are already sigmoid-ed (the
    official raw ONNX export). Returns boxes [B, N, 4] xyxy and scores [B, N, C].
    """
    raw = np.asarray(raw, dtype=np.float32)
    grids, strd = [], []
    for (h, w), s in zip(level_shapes(input_hw, strides), strides):
        gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
        grids.append(np.stack((gx, gy), -1).reshape(-1, 2))
        strd.append(np.full((h * w, 1), s, np.float32))
    grid, stride = np.concatenate(grids), np.concatenate(strd)
    if raw.shape[1] != grid.shape[0]:
        raise ValueError(f"raw output has {raw.shape[1]} anchors, input {input_hw} implies {grid.shape[0]}")
    xy = (raw[..., :2] + grid) * stride
    # An untrained or diverged model can emit log-sizes above ~88: exp is inf there, as torch's
    # decode gives (without a warning); the box is meaningless either way, the warning only noise.
    with np.errstate(over="ignore"):
        half = np.exp(raw[..., 2:4]) * stride * 0.5
    boxes = np.concatenate((xy - half, xy + half), -1)
    obj, cls = raw[..., 4:5], raw[..., 5:]
    if not activated:
        obj, cls = _sigmoid_np(obj), _sigmoid_np(cls)
    return boxes.astype(np.float32), (obj * cls).astype(np.float32)
