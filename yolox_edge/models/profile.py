"""Parameter and FLOP counts, counted the way the YOLOX README's figures were counted.

The README's GFLOPs come from ``thop`` x 2: conv multiply-accumulates (plus one per output
for a bias), plus two ops per BatchNorm output element. Counting conv MACs alone gives
1.045 for Nano instead of the published 1.08; with thop's rules we get 1.079.
"""
from __future__ import annotations

import functools

import torch
from torch import nn

from ..progress import deprecated_keywords


def count_params(model: nn.Module) -> int:
    """Number of parameters (weights and biases, BatchNorm included; buffers not)."""
    return sum(p.numel() for p in model.parameters())


@deprecated_keywords("img_size")  # count_gflops(model, 416), the earlier form
@torch.no_grad()
def count_gflops(model: nn.Module, *, img_size: int | tuple[int, int]) -> float:
    """GFLOPs for one image of ``img_size`` (side, or (h, w)): 2 x (conv/linear MACs + 2 per BN output
    + 1 per LeakyReLU output), as thop counts them (SiLU and hard-swish: 0, as there)."""
    h, w = (img_size, img_size) if isinstance(img_size, int) else img_size
    macs = 0

    def hook(m: nn.Module, _inp, out) -> None:
        nonlocal macs
        if isinstance(m, nn.Conv2d):
            k = m.kernel_size[0] * m.kernel_size[1] * (m.in_channels // m.groups)
            macs += out.numel() * (k + (m.bias is not None))
        elif isinstance(m, nn.Linear):
            macs += out.numel() * (m.in_features + (m.bias is not None))
        elif isinstance(m, nn.BatchNorm2d):
            macs += 2 * out.numel()
        elif isinstance(m, nn.LeakyReLU):  # Darknet53's activation: 185.07 -> 185.27, the README's 185.3
            macs += out.numel()

    kinds = (nn.Conv2d, nn.Linear, nn.BatchNorm2d, nn.LeakyReLU)
    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, kinds)]
    was_training = model.training
    model.eval()
    try:
        p = next(model.parameters())
        model(torch.zeros(1, 3, h, w, dtype=p.dtype, device=p.device))
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    return 2 * macs / 1e9


@deprecated_keywords("num_classes", "input_hw")  # variant_counts("nano", 80, (416, 416)), the earlier form
def variant_counts(variant: str | None, *, num_classes: int, input_hw: tuple[int, int]) -> dict | None:
    """{"params_m", "gflops"} of a variant (unfused, as the published figures count) at an input
    size; None for a name the zoo does not know. Export writes them into metadata.json, so a
    device without torch can still report them."""
    counts = _variant_counts(variant, num_classes, tuple(input_hw))
    return None if counts is None else {"params_m": counts[0], "gflops": counts[1]}


META_FROM_PARAMS = 2_000_000  # counted on the meta device from here (Tiny, 5M, and up)


@functools.lru_cache(maxsize=None)
def _variant_counts(variant: str | None, num_classes: int, input_hw: tuple[int, int]) -> tuple[float, float] | None:
    # Cached: quantize writes one metadata.json per format and bench asks once per row.
    from .zoo import VARIANTS, create_model
    if variant not in VARIANTS:
        return None
    with torch.random.fork_rng():  # weight init must not move the caller's random stream
        # Counting needs shapes only: on the meta device YOLOX-S and up build and run in a fraction of
        # the seconds a real forward takes (`models` took 9 s for its table). Small models still run
        # for real: meta's first forward in a process costs ~1.5 s of set-up, ten times Nano's.
        with torch.device("meta"):
            m = create_model(variant, num_classes=num_classes)
        if count_params(m) < META_FROM_PARAMS:
            m = create_model(variant, num_classes=num_classes)
    return round(count_params(m) / 1e6, 4), round(count_gflops(m, img_size=input_hw), 3)


OFFICIAL_CLASSES = 80  # the COCO head the YOLOX README's figures count


@deprecated_keywords("num_classes", "variants")  # model_table(80, ["nano"]), the earlier form
def model_table(*, num_classes: int = 80, variants: list[str] | None = None) -> list[dict]:
    """What ``yolox-edge models`` prints: one row per variant (default: all non-test ones), a dict of
    its architecture, params (M), GFLOPs at its input size and the official figures. Both were
    positional: that still works, with a DeprecationWarning.

    The official figures count the 80-class COCO head, so they are given (not None) only at
    ``num_classes`` 80: beside another head size they would not compare."""
    from .zoo import OFFICIAL, get_variant, list_models

    rows = []
    for name in variants or list_models():
        v = get_variant(name)  # an unknown name is a UserError (UnknownVariant)
        name = v.name
        params, gflops = _variant_counts(name, num_classes, (v.input_size, v.input_size))
        off_p, off_g = OFFICIAL.get(name, (None, None)) if num_classes == OFFICIAL_CLASSES else (None, None)
        rows.append({"name": name, "input_size": v.input_size, "depth": v.depth, "width": v.width,
                     "depthwise": v.depthwise, "act": v.act, "params_m": params, "gflops": gflops,
                     "official_params_m": off_p, "official_gflops": off_g})
    return rows
