"""The project's own ncnn INT8 converter (there is no ncnn2table/ncnn2int8 on any registry here).

Input: a float ncnn model (pnnx export of the deploy graph, BN folded, biases already
bias-corrected) and per-conv plans from ``ncnn_calib`` (calibrated on the torch model).
Output: the same graph with its convolutions in INT8, following ncnn's own format
(see ``ncnn_format``):
  - weights int8 (tag 0x000D4B38), scale per output channel (per group for depthwise),
    q = clamp(round(w * s), -127, 127), s = 127 / absmax(w_c);
  - param ``8=`` int8_scale_term: 2 for Convolution, 1 for ConvolutionDepthWise;
  - .bin after the fp32 bias: weight_data_int8_scales, then bottom_blob_int8_scales (one float).
ncnn layers are matched to torch convs by their (identical) float weights.

Depthwise convs: ncnn takes ONE input scale per depthwise layer, and the channels of a
depthwise input differ in range by orders of magnitude; one scale wipes the small ones
out (the whole Nano then detects nothing). So a float ``Scale`` layer (1 / range_c) goes
in front of each depthwise conv and its weights are multiplied by range_c: the function
is unchanged, every channel now spans about [-1, 1], and one scale fits all. No custom
layer is needed. Unpadded (1x1) convs get the same Scale layer with a bias: each input channel
is centred on its mid-range before the symmetric INT8 (SiLU outputs span [-0.28, r], so this
wins about one bit), and W . shift goes back into the conv bias. The few convs the
calibration found most sensitive stay float (ncnn mixes float and INT8 layers freely).
Everything after the last conv (decode, sigmoid, concat) stays float.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .ncnn_calib import ConvPlan
from .ncnn_format import Layer, NcnnModel, read_ncnn, write_ncnn

CONV_TYPES = ("Convolution", "ConvolutionDepthWise")


@dataclass
class NcnnInt8Report:
    """What the converter did: layers quantized, layers given an input Scale, layers left float."""

    quantized: list[str] = field(default_factory=list)
    rescaled: list[str] = field(default_factory=list)
    kept_float: list[str] = field(default_factory=list)


def _is_depthwise(lay: Layer) -> bool:
    return lay.type == "ConvolutionDepthWise" and lay.geti(7, 1) == lay.geti(0) and lay.geti(7, 1) > 1


def match_convs(model: NcnnModel, torch_convs: dict[str, np.ndarray]) -> dict[str, str]:
    """ncnn conv layer name -> torch conv name, by identical float32 weights (pnnx copies them)."""
    by_bytes = {np.ascontiguousarray(w, np.float32).tobytes(): n for n, w in torch_convs.items()}
    out = {}
    for lay in model.layers:
        if lay.type in CONV_TYPES:
            n = by_bytes.get(lay.weights[0][1].astype(np.float32).tobytes())
            if n is not None:
                out[lay.name] = n
    return out


def _weight_scales(w: np.ndarray, groups: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-group symmetric INT8: (int8 weights, scales)."""
    wg = w.reshape(groups, -1)
    amax = np.abs(wg).max(1)
    scales = np.where(amax > 0, 127.0 / np.maximum(amax, 1e-30), 1.0).astype(np.float32)
    q = np.clip(np.round(wg * scales[:, None]), -127, 127).astype(np.int8)
    return q.reshape(-1), scales


def quantize_ncnn_model(model: NcnnModel, plans: dict[str, ConvPlan]) -> NcnnInt8Report:
    """Rewrite ``model`` in place to INT8; ``plans`` are keyed by ncnn layer name."""
    report = NcnnInt8Report()
    new_layers: list[Layer] = []
    for lay in model.layers:
        plan = plans.get(lay.name)
        if lay.type not in CONV_TYPES or plan is None:
            if lay.type in CONV_TYPES:
                report.kept_float.append(lay.name)
            new_layers.append(lay)
            continue
        out_ch = lay.geti(0)
        dw = _is_depthwise(lay)
        if lay.type == "ConvolutionDepthWise" and not dw:
            # Grouped (not depthwise) conv: ncnn wants per-group scales; the zoo has none.
            report.kept_float.append(lay.name)
            new_layers.append(lay)
            continue
        w = lay.weights[0][1].astype(np.float32)
        if plan.m is not None or plan.shift is not None:
            cin = len(plan.m) if plan.m is not None else len(plan.shift)
            m = plan.m.astype(np.float32) if plan.m is not None else np.ones(cin, np.float32)
            scaled = f"{lay.bottoms[0]}_{lay.name}_s"
            sweights = [("raw", (1.0 / m).astype(np.float32))]
            if plan.shift is not None:
                sweights.append(("raw", (-plan.shift / m).astype(np.float32)))  # y = x / m - shift / m
            new_layers.append(Layer("Scale", f"{lay.name}_inscale", [lay.bottoms[0]], [scaled],
                                    {"0": str(cin), "1": "1" if plan.shift is not None else "0"}, sweights))
            lay.bottoms = [scaled]
            # dw weights are [C, k*k]; ordinary ones [out, in, k*k]: scale the input-channel axis.
            w = (w.reshape(out_ch, -1) * m[:, None]).reshape(-1) if dw else \
                (w.reshape(out_ch, cin, -1) * m[None, :, None]).reshape(-1)
            report.rescaled.append(lay.name)
        q, wscales = _weight_scales(w, out_ch)
        bias = lay.weights[1][1] if lay.geti(5) else np.zeros(out_ch, np.float32)
        if plan.shift is not None:
            # The conv now sees x / m - shift / m: give back W' . (shift / m) through the bias, with
            # the INT8 weights the layer really uses (what the calibration simulated).
            wq = (q.reshape(out_ch, -1).astype(np.float32) / wscales[:, None]).reshape(out_ch, cin, -1)
            bias = bias + np.einsum("ock,c->o", wq, (plan.shift / m).astype(np.float32))
            lay.params["5"] = "1"
        lay.weights = [("tagged", q), *([("raw", bias.astype(np.float32))] if lay.geti(5) else []),
                       ("raw", wscales), ("raw", np.asarray([127.0 / max(plan.r, 1e-12)], np.float32))]
        lay.params["8"] = "1" if dw else "2"
        report.quantized.append(lay.name)
        new_layers.append(lay)
    model.layers = new_layers
    return report


def convert_ncnn_int8(param_path: str | Path, bin_path: str | Path, out_param: str | Path, out_bin: str | Path,
                      torch_convs: dict[str, np.ndarray], plans: dict[str, ConvPlan],
                      biases: dict[str, np.ndarray] | None = None) -> NcnnInt8Report:
    """Float ncnn model + plans keyed by torch conv name -> INT8 ncnn model (written atomically).

    ``torch_convs`` (name -> float weight) identifies each ncnn conv; ``biases`` (optional)
    must already be in the float model (export the bias-corrected torch model); they are
    checked here so a stale float export cannot slip through.
    """
    model = read_ncnn(param_path, bin_path)
    names = match_convs(model, torch_convs)
    # A planned conv whose weights the float model lacks would silently stay float.
    unmatched = sorted(set(plans) & set(torch_convs) - set(names.values()))
    if unmatched:
        raise ValueError(f"{param_path}: no ncnn conv holds the weights of {', '.join(unmatched)}; export the "
                         "float model from the same detector the plans were made on (DeployModel.detector)")
    for lay_name, tname in names.items():
        if biases and tname in biases:
            lay = model.find(lay_name)
            if lay.geti(5) and not np.allclose(lay.weights[1][1], biases[tname], atol=1e-6):
                raise ValueError(f"ncnn layer {lay_name}: bias differs from the calibrated {tname}; "
                                 "export the bias-corrected model")
    report = quantize_ncnn_model(model, {ln: plans[tn] for ln, tn in names.items() if tn in plans})
    write_ncnn(model, out_param, out_bin)
    return report
