"""The official YOLOX optimiser: SGD with Nesterov momentum, weight decay on conv weights only."""
from __future__ import annotations

import torch
from torch import nn


def param_groups(model: nn.Module) -> tuple[list, list, list]:
    """(BN weights, conv/linear weights, biases): only the second group gets weight decay."""
    bn_w, weights, biases = [], [], []
    for m in model.modules():
        if hasattr(m, "bias") and isinstance(m.bias, nn.Parameter):
            biases.append(m.bias)
        if isinstance(m, (nn.BatchNorm2d, nn.BatchNorm1d, nn.SyncBatchNorm)) or "bn" in type(m).__name__.lower():
            if isinstance(getattr(m, "weight", None), nn.Parameter):
                bn_w.append(m.weight)
        elif isinstance(getattr(m, "weight", None), nn.Parameter):
            weights.append(m.weight)
    return bn_w, weights, biases


def build_optimizer(model: nn.Module, lr: float, momentum: float = 0.9, weight_decay: float = 5e-4,
                    nesterov: bool = True) -> torch.optim.SGD:
    """SGD over three groups as official YOLOX (decay on weights, none on BN and biases)."""
    bn_w, weights, biases = param_groups(model)
    opt = torch.optim.SGD(bn_w, lr=lr, momentum=momentum, nesterov=nesterov)
    opt.add_param_group({"params": weights, "weight_decay": weight_decay})
    opt.add_param_group({"params": biases})
    n_all = sum(1 for _ in model.parameters())
    if len(bn_w) + len(weights) + len(biases) != n_all:  # a parameter outside conv/BN: do not drop it silently
        raise ValueError(f"optimizer groups cover {len(bn_w) + len(weights) + len(biases)} of {n_all} parameters")
    return opt


def set_lr(opt: torch.optim.Optimizer, lr: float) -> None:
    for g in opt.param_groups:
        g["lr"] = lr
