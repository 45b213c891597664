"""PyTorch backend: a Detector plus the shared GridDecode, run on CPU or CUDA."""
from __future__ import annotations

import numpy as np
import torch

from ..decode import GridDecode
from ..models import Detector


class TorchBackend:
    name = "torch"

    def __init__(self, model: Detector, *, device: str = "cpu", threads: int | None = None) -> None:
        if threads:
            torch.set_num_threads(threads)
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.decode = GridDecode(model.strides)

    @torch.no_grad()
    def infer(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        x = torch.from_numpy(np.ascontiguousarray(batch)).to(self.device)
        boxes, scores = self.decode(self.model(x))
        return {"boxes": boxes.cpu().numpy(), "scores": scores.cpu().numpy()}
