"""PyTorch backend: a Detector plus the shared GridDecode, run on CPU or CUDA."""
from __future__ import annotations

import numpy as np
import torch

from ..decode import GridDecode
from ..models import Detector
from ..threads import torch_threads


class TorchBackend:
    name = "torch"

    def __init__(self, model: Detector, *, device: str = "cpu", threads: int | None = None) -> None:
        # torch's thread count is process-wide: it is set for each call and put back after, so one
        # predictor's ``threads`` neither leaks into the caller nor into another predictor.
        self.threads = threads
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.decode = GridDecode(model.strides)

    def infer(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        with torch_threads(self.threads):
            return self._infer(batch)

    @torch.no_grad()
    def _infer(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        x = torch.from_numpy(np.ascontiguousarray(batch)).to(self.device)
        boxes, scores = self.decode(self.model(x))
        return {"boxes": boxes.cpu().numpy(), "scores": scores.cpu().numpy()}
