"""BatchNorm re-estimation for checkpoints imported with BN folded into the convs.

An imported official ONNX has identity BatchNorms (mean 0, var 1, weight sqrt(1+eps),
bias = the folded bias). In eval mode that is exact; in train mode BN would normalise with
batch statistics and destroy the pretrained function. ``reestimate_folded_bn`` measures the
per-channel mean/var of every BN input on real training images and rewrites each BN so
that its eval output is unchanged while its train-mode output stays close to it.
"""
from __future__ import annotations

from typing import Iterable

import torch
from torch import nn


@torch.no_grad()
def reestimate_folded_bn(model: nn.Module, batches: Iterable[torch.Tensor], *, max_batches: int = 10,
                         rescale_convs: bool = True) -> int:
    """Set BN stats from the inputs seen on ``batches`` (eval mode); returns images used.

    For each BatchNorm2d with input mean mu and variance v per channel, and the old
    affine y = w * x / sqrt(1 + eps) + b (identity stats), the new parameters are
    running_mean = mu, running_var = v, weight = w * sqrt(v + eps) / sqrt(1 + eps),
    bias = b + weight_old_scale * mu, so eval output is the same function of x.

    With ``rescale_convs`` (default) the conv feeding each BN (the ``conv``/``bn`` pair of a
    BaseConv) is also divided per output channel by s = sqrt(v + eps) / g, and the BN stats by
    s and s^2, so BN inputs have standard deviation g. Why: folded weights carry the BN scale,
    and a conv followed by train-mode BN is scale-invariant, its relative step growing as
    (input scale / output scale)^2; left folded, some layers take huge steps and the
    pretrained function collapses the moment they are trained (seen: raccoon AP 0.55 ->
    0.0002 on unfreezing the backbone). Inner convs get g = 1 (unit-variance BN inputs; their
    inputs are of order 1: RMS 0.2-3 on Nano). The stem, the first conv to run, reads raw
    0..255 pixels (RMS ~120): scaled to unit output it trained ~10^4x too fast (COCO Nano on
    coco_tiny, official Nano recipe: AP 0.31 -> 0.01 after one epoch at warm-up LR), so its g
    is the RMS of its input: weights the size of a conv on unit inputs.
    """
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    sums = {m: None for m in bns}
    count = {m: 0 for m in bns}
    feeding = {mod.bn: mod.conv for mod in model.modules()
               if isinstance(getattr(mod, "bn", None), nn.BatchNorm2d) and isinstance(getattr(mod, "conv", None), nn.Conv2d)}
    first: list[nn.Conv2d] = []  # the conv that runs first: the stem, fed the network input
    in_sq = [0.0, 0]  # its inputs: sum of squares, count

    def conv_hook(c, inp):
        if not first:
            first.append(c)
        if c is first[0]:
            x = inp[0].detach().double()
            in_sq[0] += float((x * x).sum())
            in_sq[1] += x.numel()

    def hook(m, inp, _out):
        x = inp[0].detach().double()
        n = x.shape[0] * x.shape[2] * x.shape[3]
        s1 = x.sum((0, 2, 3))
        s2 = (x * x).sum((0, 2, 3))
        if sums[m] is None:
            sums[m] = [s1, s2]
        else:
            sums[m][0] += s1
            sums[m][1] += s2
        count[m] += n

    was_training = model.training
    model.eval()
    handles = [m.register_forward_hook(hook) for m in bns]
    handles += [c.register_forward_pre_hook(conv_hook) for c in feeding.values()] if rescale_convs else []
    images = 0
    device = next(model.parameters()).device
    try:
        for i, x in enumerate(batches):
            if i >= max_batches:
                break
            model(x.to(device))
            images += x.shape[0]
    finally:
        for h in handles:
            h.remove()
    if images == 0:
        raise ValueError("BN re-estimation needs at least one batch of images")
    for m in bns:
        n = count[m]
        mu = sums[m][0] / n
        var = (sums[m][1] / n - mu * mu).clamp_min(0.0)
        old_scale = m.weight.double() / torch.sqrt(m.running_var.double() + m.eps)
        old_shift = m.bias.double() - old_scale * m.running_mean.double()
        conv = feeding.get(m) if rescale_convs else None
        s = torch.ones_like(var)
        if conv is not None and conv.bias is None:
            gain = max(1.0, (in_sq[0] / max(in_sq[1], 1)) ** 0.5) if first and conv is first[0] else 1.0
            s = torch.sqrt(var + m.eps) / gain
            conv.weight.div_(s.to(conv.weight.dtype).view(-1, 1, 1, 1))
        mu, var = mu / s, var / (s * s)
        # Keep y = old_scale * z + old_shift exactly (z = the old conv output = s * new input),
        # written with the measured stats: weight * (z/s - mu) / sqrt(var + eps) + bias.
        new_w = old_scale * s * torch.sqrt(var + m.eps)
        new_b = old_shift + old_scale * s * mu
        m.running_mean.copy_(mu.to(m.running_mean.dtype))
        m.running_var.copy_(var.to(m.running_var.dtype))
        m.weight.copy_(new_w.to(m.weight.dtype))
        m.bias.copy_(new_b.to(m.bias.dtype))
    model.train(was_training)
    return images
