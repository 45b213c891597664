"""Change a trained model's activation without labels: block-by-block reconstruction.

Nano's SiLU costs a third of its INT8 latency on x86 (README "Where Nano's CPU time
goes"); hard-swish has no exp. Swapping the activation under trained weights wrecks
accuracy (COCO Nano: 30.7 -> 7.0 AP on coco_tiny), and a detection fine-tune needs a
large labelled set. Reconstruction needs only images: the student (new activation,
the teacher's weights to start) is adjusted one block at a time, in forward order,
so that each block, fed the student's own input (earlier blocks already adjusted,
their errors included), reproduces the teacher's output of that block.
"""
from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import UserError, flag_value
from ..models import create_model
from ..models.blocks import BaseConv, CSPLayer, DWConv, SPPBottleneck
from ..models.zoo import get_variant
from ..progress import progress_bar

GRANULARITIES = {
    # the largest modules of these types, each a block (modules inside one are not blocks themselves)
    "block": (CSPLayer, SPPBottleneck, DWConv, BaseConv, nn.Conv2d),
    "unit": (BaseConv, nn.Conv2d),
}


@dataclass
class BlockResult:
    """How well one block reproduces the teacher: MSE over the teacher output's variance."""

    name: str
    nmse_before: float
    nmse_after: float
    kept: bool  # False: training made it worse on the whole set, so the start weights were restored
    seconds: float

    def to_dict(self) -> dict:
        return asdict(self)


class _Stop(Exception):
    """Raised from a hook once the wanted tensor is captured: the rest of the forward is skipped."""


def blocks_in_order(model: nn.Module, granularity: str = "block", *, size: int = 64) -> list[str]:
    """Names of the reconstruction blocks of ``model``, in the order its forward runs them."""
    if granularity not in GRANULARITIES:
        raise ValueError(f"granularity must be one of {sorted(GRANULARITIES)}")
    types = GRANULARITIES[granularity]
    mods = dict(model.named_modules())
    cands = [n for n, m in mods.items() if n and isinstance(m, types)]
    top = [n for n in cands if not any(n.startswith(o + ".") for o in cands if o != n)]
    order: list[str] = []
    hooks = [mods[n].register_forward_pre_hook(lambda m, i, n=n: order.append(n)) for n in top]
    try:
        with torch.no_grad():
            model(torch.zeros(1, 3, size, size))
    finally:
        for h in hooks:
            h.remove()
    missing = set(top) - set(order)
    if missing:  # a block the forward never runs cannot be reconstructed; it would keep its start weights
        raise RuntimeError(f"blocks not run by forward: {sorted(missing)}")
    return order


def _capture(model: nn.Module, module: nn.Module, images: torch.Tensor, *, output: bool,
             chunk: int = 16) -> torch.Tensor:
    """The input (or output) of ``module`` for every image, running the model only up to it."""
    got: list[torch.Tensor] = []

    def pre(m, inputs):
        if not output:
            got.append(inputs[0].detach().clone())
            raise _Stop

    def post(m, inputs, out):
        got.append(out.detach().clone())
        raise _Stop

    hooks = [module.register_forward_pre_hook(pre), module.register_forward_hook(post)]
    try:
        with torch.no_grad():
            for k in range(0, len(images), chunk):
                try:
                    model(images[k:k + chunk])
                except _Stop:
                    pass
    finally:
        for h in hooks:
            h.remove()
    return torch.cat(got)


TEACHER_CACHE_BYTES = 3 << 30  # block outputs of the teacher kept in memory up to this size


def _capture_all_outputs(model: nn.Module, names: list[str], images: torch.Tensor, *,
                         budget: int = TEACHER_CACHE_BYTES, chunk: int = 16) -> dict[str, torch.Tensor] | None:
    """Every block's output for every image from one forward per chunk, or None when they would
    not fit in ``budget`` bytes (fp32, else fp16). The teacher never changes, so this replaces a
    forward up to each block (about a quarter of a default conversion's time for Nano)."""
    mods = dict(model.named_modules())
    shapes: dict[str, tuple[int, ...]] = {}
    hooks = [mods[n].register_forward_hook(lambda m, i, o, n=n: shapes.__setitem__(n, tuple(o.shape[1:])))
             for n in names]
    try:
        with torch.no_grad():
            model(images[:1])
    finally:
        for h in hooks:
            h.remove()
    per_image = sum(math.prod(v) for v in shapes.values())
    dtype = next((d for d in (torch.float32, torch.float16)
                  if per_image * len(images) * torch.finfo(d).bits // 8 <= budget), None)
    if dtype is None:
        return None
    # Filled in place, chunk by chunk: no list of pieces to concatenate (that doubled the peak).
    store = {n: torch.empty((len(images), *shapes[n]), dtype=dtype) for n in names}
    at = [0]

    def keep(n: str, o: torch.Tensor) -> None:
        store[n][at[0]:at[0] + len(o)] = o.detach()

    hooks = [mods[n].register_forward_hook(lambda m, i, o, n=n: keep(n, o)) for n in names]
    try:
        with torch.no_grad():
            for k in range(0, len(images), chunk):
                at[0] = k
                model(images[k:k + chunk])
    finally:
        for h in hooks:
            h.remove()
    return store


def _nmse(module: nn.Module, x: torch.Tensor, y: torch.Tensor, var: float, chunk: int = 32) -> float:
    with torch.no_grad():
        err = sum(F.mse_loss(module(x[k:k + chunk]), y[k:k + chunk], reduction="sum").item()
                  for k in range(0, len(x), chunk))
    return err / y.numel() / var


def convert_activation(teacher: nn.Module, variant: str, images: torch.Tensor, *, granularity: str = "block",
                       steps: int = 500, lr: float = 2e-3, batch: int = 8, flip: bool = True, seed: int = 0,
                       progress: bool = True) -> tuple[nn.Module, list[BlockResult]]:
    """Return ``variant`` (same tensors as the teacher, another activation) fitted to the teacher.

    ``images``: float32 [N, 3, H, W] preprocessed like the model's input (a calibration set).
    ``flip`` adds the mirrored images. Each block trains ``steps`` Adam steps of ``batch``
    samples with a cosine-decayed ``lr`` and is restored if that made it worse.
    """
    t_var = get_variant(teacher.variant)
    s_var = get_variant(variant)
    if not s_var.shares_weights_with(t_var):
        raise UserError(f"{s_var.name} does not have {t_var.name}'s tensors; convert between variants that "
                        "differ only in activation (e.g. nano -> nano_hswish)")
    if s_var.act == t_var.act:
        raise UserError(f"{t_var.name} already uses {t_var.act}; nothing to convert")
    if images.ndim != 4 or images.shape[1] != 3:
        raise UserError(f"need images of shape [N, 3, H, W], got {list(images.shape)}")
    samples = len(images) * (2 if flip else 1)  # the mirrored copies count: they are fitted on too
    if samples < batch:
        raise UserError(f"{flag_value('--batch', 'batch', batch)} is more than the {samples} samples the calibration "
                        f"set gives ({len(images)} images{', mirrored' if flip else ''}); lower --batch, or build a "
                        "larger set")
    torch.manual_seed(seed)
    teacher = teacher.eval()
    student = create_model(s_var.name, num_classes=teacher.num_classes)
    student.load_state_dict(teacher.state_dict())
    student.eval()  # BN keeps its statistics; only weights and biases move
    for p in list(teacher.parameters()) + list(student.parameters()):
        p.requires_grad_(False)
    if flip:
        images = torch.cat([images, images.flip(-1)])
    names = blocks_in_order(teacher, granularity, size=images.shape[-1])
    t_mods, s_mods = dict(teacher.named_modules()), dict(student.named_modules())
    cached = _capture_all_outputs(teacher, names, images)
    results: list[BlockResult] = []
    bar = progress_bar(names, desc=f"reconstruct {s_var.name}", unit="block", disable=not progress)
    for name in bar:
        start = time.time()
        y = cached.pop(name).float() if cached is not None else _capture(teacher, t_mods[name], images, output=True)
        x = _capture(student, s_mods[name], images, output=False)
        block = s_mods[name]
        var = max(y.var().item(), 1e-12)
        before = _nmse(block, x, y, var)
        params = list(block.parameters())
        saved = [p.detach().clone() for p in params]
        for p in params:
            p.requires_grad_(True)
        opt = torch.optim.Adam(params, lr=lr)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda i: 0.5 * (1 + math.cos(math.pi * i / steps)))
        for _ in range(steps):
            idx = torch.randint(0, len(x), (batch,))
            loss = F.mse_loss(block(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
        for p in params:
            p.requires_grad_(False)
        after = _nmse(block, x, y, var)
        kept = after <= before
        if not kept:
            with torch.no_grad():
                for p, v in zip(params, saved):
                    p.copy_(v)
        results.append(BlockResult(name, before, after if kept else before, kept, time.time() - start))
        bar.set_postfix_str(f"{name} nmse {before:.3f}->{results[-1].nmse_after:.3f}")
    return student, results
