"""Calibrate ncnn's INT8 scheme on the torch model: activation ranges and bias correction.

ncnn INT8 (as written by ncnn_int8.py) is symmetric round-to-nearest:
  input  q = clamp(round(x * 127 / r), -127, 127), one r per conv (per channel for depthwise,
         through the Scale layer the writer inserts), r = the absmax over every calibration image
         (no clipping: the mean of per-image absmaxes, NNCF's asymmetric default, clipped the
         symmetric range and lost 0.7-5.9 AP more, see ``channel_stats``);
  weight q = clamp(round(w * 127 / max|w_c|), -127, 127), per output channel;
  output y = int32 accumulation / (scales) + fp32 bias.
``Int8Sim`` reproduces that arithmetic with hooks on the BN-folded torch convs (checked
against ncnn to 1e-7 on single layers), which makes calibration fast in torch. Bias
correction (fast, as NNCF's) then shifts each conv's bias by the mean error its own INT8
arithmetic adds to each output channel on the float activations. The corrected biases and
the ranges go to the writer.
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..progress import progress_bar


def is_depthwise(conv: nn.Conv2d) -> bool:
    return conv.groups > 1 and conv.groups == conv.in_channels == conv.out_channels


def conv_modules(model: nn.Module) -> dict[str, nn.Conv2d]:
    return {n: m for n, m in model.named_modules() if isinstance(m, nn.Conv2d)}


def fake_quant_weight(w: torch.Tensor) -> torch.Tensor:
    """Per-output-channel symmetric INT8 (ncnn's weight_data_int8_scales)."""
    amax = w.detach().abs().flatten(1).amax(1).clamp_min(1e-30).reshape(-1, 1, 1, 1)
    s = 127.0 / amax
    return torch.clamp(torch.round(w * s), -127, 127) / s


def fake_quant_input(x: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
    """Symmetric INT8 with range r (scalar, or [C] per channel)."""
    r = r.reshape(1, -1, 1, 1) if r.numel() > 1 else r
    s = 127.0 / r.clamp_min(1e-12)
    return torch.clamp(torch.round(x * s), -127, 127) / s



@dataclass
class ConvPlan:
    """How one conv runs in INT8: input multipliers ``m`` (the writer's Scale layer divides the
    input by m and the weights' input channels are multiplied by m) and the range r of the
    rescaled input (bottom scale 127 / r)."""

    m: np.ndarray | None
    r: float
    shift: np.ndarray | None = None  # per-channel centre subtracted first (unpadded convs only)


@dataclass
class NcnnCalibration:
    """Per conv module name: its plan, and its (bias-corrected) bias."""

    plans: dict[str, ConvPlan]
    biases: dict[str, np.ndarray]


def _run(model: nn.Module, calib: np.ndarray, batch: int) -> None:
    for i in range(0, len(calib), batch):
        model(torch.from_numpy(np.ascontiguousarray(calib[i:i + batch])))


@torch.no_grad()
def channel_stats(model: nn.Module, calib: np.ndarray, batch: int = 8) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Per conv, per input channel: the (min, max) over every calibration image.

    The extremes, not the mean of per-image extremes: ncnn's range is symmetric, so a clipped
    range costs both sides. Measured ncnn INT8 AP drop, mean -> max: COCO Nano on coco_tiny
    +0.74 -> -0.43, nano_hswish +1.77 -> -0.71, the pipeline's 160-px model +5.85 -> +0.72.
    """
    ext: dict[str, list[torch.Tensor]] = {}

    def hook(name):
        def fn(_m, inp):
            x = inp[0]
            lo, hi = x.amin((0, 2, 3)).double(), x.amax((0, 2, 3)).double()
            if name in ext:
                ext[name][0] = torch.minimum(ext[name][0], lo)
                ext[name][1] = torch.maximum(ext[name][1], hi)
            else:
                ext[name] = [lo, hi]
        return fn

    handles = [m.register_forward_pre_hook(hook(n)) for n, m in conv_modules(model).items()]
    try:
        _run(model, calib, batch)
    finally:
        for h in handles:
            h.remove()
    return {n: (lo.float(), hi.float()) for n, (lo, hi) in ext.items()}


def _unpadded(conv: nn.Conv2d) -> bool:
    return all(p == 0 for p in conv.padding) if isinstance(conv.padding, tuple) else conv.padding in (0, "valid")


def make_plan(conv: nn.Conv2d, lo: torch.Tensor, hi: torch.Tensor, alpha: float, center: bool) -> ConvPlan:
    """Depthwise: full per-channel rescaling (m = r_c). Others: m = r_c ** alpha (0: none).

    With m = r_c ** alpha the rescaled channel ranges are r_c ** (1 - alpha): alpha moves
    the spread between channels from the activations (one scale for all) into the weights
    (one scale per output channel), as SmoothQuant does. ``center`` subtracts each channel's
    mid-range first on unpadded (1x1) convs, where it is exact (the bias absorbs W . shift):
    SiLU outputs span [-0.28, r], so centring gains about one bit of the symmetric INT8 range.
    (Padded convs would pad the shifted input with 0, i.e. the wrong value, so they are left.)
    """
    shift = None
    if center and _unpadded(conv) and conv.groups == 1:
        shift = (lo + hi) / 2
        rc = (hi - lo) / 2
    else:
        rc = torch.maximum(lo.abs(), hi.abs())
    rc = rc.clamp_min(float(rc.max()) * 1e-4 + 1e-12)
    sh = None if shift is None else shift.numpy().astype(np.float32)
    if is_depthwise(conv):
        return ConvPlan(rc.numpy().astype(np.float32), 1.0, sh)
    if alpha <= 0 or conv.groups != 1:
        return ConvPlan(None, float(rc.max()), sh)
    m = rc ** alpha
    m = m / m.max()  # only ratios matter; m <= 1 so the Scale layer never amplifies
    return ConvPlan(m.numpy().astype(np.float32), float((rc / m).max()), sh)


def weight_multiplier(conv: nn.Conv2d, m: np.ndarray) -> torch.Tensor:
    """m shaped to multiply the weight's input-channel axis (dim 0 for depthwise)."""
    t = torch.from_numpy(m)
    return t.reshape(-1, 1, 1, 1) if is_depthwise(conv) else t.reshape(1, -1, 1, 1)


def _fq_input(x: torch.Tensor, plan: ConvPlan) -> torch.Tensor:
    """The conv input as the INT8 conv sees it, in the rescaled domain ((x - shift) / m, quantized).

    The shift is added back after quantization: for an unpadded conv, conv(q + shift) equals
    conv(q) + W . shift, which is what the writer folds into the bias.
    """
    if plan.shift is not None:
        sh = torch.from_numpy(plan.shift).reshape(1, -1, 1, 1)
        m = torch.from_numpy(plan.m).reshape(1, -1, 1, 1) if plan.m is not None else 1.0
        return fake_quant_input((x - sh) / m, torch.tensor(plan.r)) + sh / m
    if plan.m is not None:
        x = x / torch.from_numpy(plan.m).reshape(1, -1, 1, 1)
    return fake_quant_input(x, torch.tensor(plan.r))


def _fq_weight(conv: nn.Conv2d, plan: ConvPlan) -> torch.Tensor:
    w = conv.weight.data
    if plan.m is not None:
        w = w * weight_multiplier(conv, plan.m)
    return fake_quant_weight(w)


@contextmanager
def int8_sim(model: nn.Module, plans: dict[str, ConvPlan]):
    """Within the block, every planned conv runs ncnn's INT8 arithmetic (in float)."""
    convs = {n: m for n, m in conv_modules(model).items() if n in plans}
    saved = {n: m.weight.data.clone() for n, m in convs.items()}
    handles = []
    try:
        for n, m in convs.items():
            m.weight.data = _fq_weight(m, plans[n])
            handles.append(m.register_forward_pre_hook(lambda _m, inp, p=plans[n]: (_fq_input(inp[0], p),)))
        yield model
    finally:
        for h in handles:
            h.remove()
        for n, m in convs.items():
            m.weight.data = saved[n]


@torch.no_grad()
def layer_bias_errors(model: nn.Module, calib: np.ndarray, plans: dict[str, ConvPlan], names: list[str],
                      batch: int = 8) -> dict[str, torch.Tensor]:
    """Mean per-channel output error each conv's own INT8 arithmetic adds, on float inputs.

    Fast bias correction (as NNCF's FastBiasCorrection): each layer sees the float net's
    activations, so errors do not compound and one pass corrects every layer. (Correcting
    all layers at once with the INT8 net's compounded errors over-corrected badly here.)
    """
    convs = conv_modules(model)
    sums: dict[str, torch.Tensor] = {}

    def hook(n):
        conv, plan = convs[n], plans[n]

        def fn(_m, inp, out):
            yq = F.conv2d(_fq_input(inp[0], plan), _fq_weight(conv, plan), conv.bias, conv.stride, conv.padding,
                          conv.dilation, conv.groups)
            sums[n] = sums.get(n, 0) + (yq - out).double().mean((2, 3)).sum(0)
        return fn

    handles = [convs[n].register_forward_hook(hook(n)) for n in names]
    try:
        _run(model, calib, batch)
    finally:
        for h in handles:
            h.remove()
    return {n: s / len(calib) for n, s in sums.items()}


@torch.no_grad()
def calibrate_ncnn(model: nn.Module, calib: np.ndarray, *, alpha: float = 0.0, bias_correction: bool = True,
                   center: bool = True, batch: int = 8, skip: set[str] = frozenset()) -> NcnnCalibration:
    """A plan for every conv (except ``skip``) and, with ``bias_correction``, fast bias
    correction applied to ``model`` in place (pass a BN-folded, eval-mode copy)."""
    model.eval()
    convs = conv_modules(model)
    plans = {n: make_plan(convs[n], lo, hi, alpha, center) for n, (lo, hi) in channel_stats(model, calib, batch).items()
             if n not in skip}
    names = [n for n in plans if convs[n].bias is not None]
    if bias_correction:
        err = layer_bias_errors(model, calib, plans, names, batch)
        for n in names:
            convs[n].bias.data -= err[n].to(convs[n].bias.dtype)
    return NcnnCalibration(plans, {n: convs[n].bias.detach().numpy().copy() for n in names})


@torch.no_grad()
def most_sensitive(model: nn.Module, calib: np.ndarray, plans: dict[str, ConvPlan], count: int,
                   images: int = 2, *, progress: bool = False) -> list[str]:
    """The ``count`` convs whose INT8 arithmetic alone moves the head outputs most.

    Measured one conv at a time (relative L2 error of the raw maps on a few calibration
    images, no bias correction). On the official Nano two early layers (the first
    depthwise block, at 208x208 / 104x104) each cause ~10x the error of any other layer;
    leaving them float costs little time and halves the output error.
    """
    if count <= 0:
        return []
    x = torch.from_numpy(np.ascontiguousarray(calib[:images]))
    ref = model(x)
    scores = []
    # a context: closed (its last line written) before a Ctrl-C's stop line, as progress_bar says
    with progress_bar(total=len(plans), desc="conv sensitivity", unit="conv", disable=not progress,
                      leave=False) as bar:
        for n, p in plans.items():
            with int8_sim(model, {n: p}):
                out = model(x)
            scores.append((float(sum((a - b).norm() / b.norm().clamp_min(1e-12) for a, b in zip(out, ref))), n))
            bar.update(1)
    return [n for _, n in sorted(scores, reverse=True)[:count]]


def plan_ncnn_int8(model: nn.Module, calib: np.ndarray, *, keep_float: int = 2, alpha: float = 0.0,
                   bias_correction: bool = True, center: bool = True,
                   progress: bool = False) -> tuple[NcnnCalibration, list[str]]:
    """Full calibration for the ncnn writer on a BN-folded eval model (biases corrected in place).

    Returns the calibration and the conv names left in float (``progress``: a bar over the scan
    that chooses them).
    """
    probe = calibrate_ncnn(model, calib, alpha=alpha, bias_correction=False, center=center)
    keep = most_sensitive(model, calib, probe.plans, keep_float, progress=progress)
    return calibrate_ncnn(model, calib, alpha=alpha, bias_correction=bias_correction, center=center,
                          skip=set(keep)), keep
