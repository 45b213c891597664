"""Starting from other weights: partial loading (head surgery) and backbone freezing."""
from __future__ import annotations

import torch
from torch import nn


def transfer_weights(model: nn.Module, state: dict[str, torch.Tensor]) -> tuple[list[str], list[str]]:
    """Copy every entry of ``state`` whose name and shape match ``model``.

    Returns (skipped, missing): keys of ``state`` not used (shape differs, e.g. the class
    convs of another class count, or unknown) and model keys left at their init.
    """
    own = model.state_dict()
    keep, skipped = {}, []
    for k, v in state.items():
        if k in own and own[k].shape == v.shape:
            keep[k] = v
        else:
            skipped.append(k)
    missing = [k for k in own if k not in keep]
    model.load_state_dict(keep, strict=False)
    return skipped, missing


def set_frozen(module: nn.Module, frozen: bool) -> None:
    """Stop (or restart) gradients for every parameter of ``module`` (its BNs: see set_bn_eval)."""
    for p in module.parameters():
        p.requires_grad_(not frozen)


def set_bn_eval(module: nn.Module) -> None:
    """Put every BatchNorm in eval mode (frozen statistics) without touching the rest."""
    for m in module.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.eval()
