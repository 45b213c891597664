"""Exponential moving average of model weights, as in official YOLOX (ModelEMA)."""
from __future__ import annotations

import copy
import math

import torch
from torch import nn


def unwrap(model: nn.Module) -> nn.Module:
    """The module inside a DistributedDataParallel/DataParallel wrapper."""
    return model.module if hasattr(model, "module") and isinstance(model, (nn.parallel.DistributedDataParallel,
                                                                       nn.DataParallel)) else model


class ModelEMA:
    """EMA of every floating-point state entry (BN running stats included).

    decay(n) = decay * (1 - exp(-n / tau)): small at first, so early EMA weights follow
    the fast-moving model instead of the random (or imported) start.
    """

    def __init__(self, model: nn.Module, decay: float = 0.9998, tau: float = 2000.0, updates: int = 0) -> None:
        self.ema = copy.deepcopy(unwrap(model)).eval()
        for p in self.ema.parameters():
            p.requires_grad_(False)
        self.base_decay, self.tau, self.updates = decay, tau, updates

    def decay(self, updates: int) -> float:
        return self.base_decay * (1.0 - math.exp(-updates / self.tau))

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        self.updates += 1
        d = self.decay(self.updates)
        msd = unwrap(model).state_dict()
        for k, v in self.ema.state_dict().items():
            if v.dtype.is_floating_point:
                v.mul_(d).add_(msd[k].detach().to(v.dtype), alpha=1.0 - d)
            else:  # num_batches_tracked and friends: copy, an average means nothing
                v.copy_(msd[k])

    def state_dict(self) -> dict:
        return {"model": self.ema.state_dict(), "updates": self.updates}

    def load_state_dict(self, state: dict) -> None:
        self.ema.load_state_dict(state["model"])
        self.updates = int(state["updates"])
