"""The project's own ncnn INT8 converter (there is no ncnn2table/ncnn2int8 on any registry here).

Input: a float ncnn model (pnnx export of the deploy graph) and a calibration set.
Output: the same graph with every Convolution/ConvolutionDepthWise in INT8, following
ncnn's own format (see ``ncnn_format``):
  - weights int8 (tag 0x000D4B38), scale per output channel (per group for depthwise),
    q = clamp(round(w * s), -127, 127), s = 127 / absmax(w_c);
  - param ``8=`` int8_scale_term: 2 for Convolution, 1 for ConvolutionDepthWise;
  - .bin after the fp32 bias: weight_data_int8_scales, then bottom_blob_int8_scales (one float).
Activation scales come from the float graph's own blobs on the calibration images
(ncnn Extractor), per sample absmax averaged over samples (NNCF's MEAN_MINMAX).

Depthwise convs: ncnn takes ONE input scale per depthwise layer, and the channels of a
depthwise input differ in range by orders of magnitude; one scale wipes the small ones
out (the whole Nano then detects nothing). So a float ``Scale`` layer (1 / range_c) goes
in front of each depthwise conv and its weights are multiplied by range_c: the function
is unchanged, every channel now spans about [-1, 1], and one scale fits all. No custom
layer is needed. Everything after the last conv (decode, sigmoid, concat) stays float.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .ncnn_format import Layer, NcnnModel, read_ncnn, write_ncnn

CONV_TYPES = ("Convolution", "ConvolutionDepthWise")


@dataclass
class NcnnInt8Report:
    """What the converter did: layers quantized, Scale layers inserted, layers left float."""

    quantized: list[str] = field(default_factory=list)
    depthwise_rescaled: list[str] = field(default_factory=list)
    kept_float: list[str] = field(default_factory=list)


def _is_depthwise(lay: Layer) -> bool:
    return lay.type == "ConvolutionDepthWise" and lay.geti(7, 1) == lay.geti(0) and lay.geti(7, 1) > 1


def collect_ranges(param_path: str | Path, bin_path: str | Path, input_blob: str, calib: np.ndarray,
                   convs: list[Layer]) -> dict[str, np.ndarray]:
    """Mean over images of each conv input's absmax: per channel for depthwise, else a scalar."""
    import ncnn

    net = ncnn.Net()
    net.opt.use_vulkan_compute = False
    net.opt.use_fp16_storage = net.opt.use_fp16_packed = net.opt.use_fp16_arithmetic = False
    net.opt.use_bf16_storage = False
    net.opt.use_int8_inference = False
    if net.load_param(str(param_path)) != 0 or net.load_model(str(bin_path)) != 0:
        raise ValueError(f"{param_path}: ncnn cannot load the float model")
    sums: dict[str, np.ndarray] = {}
    for x in calib:
        ex = net.create_extractor()
        ex.set_light_mode(False)  # keep intermediate blobs: every conv input is read below
        ex.input(input_blob, ncnn.Mat(np.ascontiguousarray(x, np.float32)))
        for lay in convs:
            ret, mat = ex.extract(lay.bottoms[0])
            if ret != 0:
                raise RuntimeError(f"ncnn could not compute blob {lay.bottoms[0]} (code {ret})")
            a = np.abs(np.array(mat))
            r = a.reshape(a.shape[0], -1).max(1) if _is_depthwise(lay) else np.asarray(a.max())
            sums[lay.name] = sums.get(lay.name, 0) + r.astype(np.float64)
    return {k: (v / len(calib)).astype(np.float32) for k, v in sums.items()}


def _weight_scales(w: np.ndarray, groups: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-group symmetric INT8: (int8 weights, scales)."""
    wg = w.reshape(groups, -1)
    amax = np.abs(wg).max(1)
    scales = np.where(amax > 0, 127.0 / np.maximum(amax, 1e-30), 1.0).astype(np.float32)
    q = np.clip(np.round(wg * scales[:, None]), -127, 127).astype(np.int8)
    return q.reshape(-1), scales


def quantize_ncnn_model(model: NcnnModel, ranges: dict[str, np.ndarray], *,
                        skip: set[str] = frozenset()) -> NcnnInt8Report:
    """Rewrite ``model`` in place to INT8 with the given input ranges; returns a report."""
    report = NcnnInt8Report()
    new_layers: list[Layer] = []
    for lay in model.layers:
        if lay.type not in CONV_TYPES or lay.name in skip or lay.name not in ranges:
            if lay.type in CONV_TYPES:
                report.kept_float.append(lay.name)
            new_layers.append(lay)
            continue
        w = lay.weights[0][1].astype(np.float32)
        rng = ranges[lay.name]
        if _is_depthwise(lay):
            ch = lay.geti(0)
            # Floor tiny ranges: a dead channel must not blow its weights up to inf.
            r = np.maximum(rng.astype(np.float32), max(float(rng.max()) * 1e-4, 1e-12))
            scaled = f"{lay.bottoms[0]}_{lay.name}_dwscale"
            new_layers.append(Layer("Scale", f"{lay.name}_dwscale", [lay.bottoms[0]], [scaled],
                                    {"0": str(ch), "1": "0"}, [("raw", (1.0 / r).astype(np.float32))]))
            lay.bottoms = [scaled]
            w = (w.reshape(ch, -1) * r[:, None]).reshape(-1)
            bottom_scale, groups, term = 127.0, ch, 1
            report.depthwise_rescaled.append(lay.name)
        else:
            amax = float(rng)
            bottom_scale = 127.0 / amax if amax > 0 else 1.0
            groups = lay.geti(0) if lay.type == "Convolution" else lay.geti(7, 1)
            term = 2 if lay.type == "Convolution" else 1
            if lay.type == "ConvolutionDepthWise" and groups != lay.geti(0):
                # Grouped (not depthwise) conv: ncnn wants per-group scales; the zoo has none.
                report.kept_float.append(lay.name)
                new_layers.append(lay)
                continue
        q, wscales = _weight_scales(w, groups)
        lay.weights = [("tagged", q), *lay.weights[1:],
                       ("raw", wscales), ("raw", np.asarray([bottom_scale], np.float32))]
        lay.params["8"] = str(term)
        report.quantized.append(lay.name)
        new_layers.append(lay)
    model.layers = new_layers
    return report


def convert_ncnn_int8(param_path: str | Path, bin_path: str | Path, calib: np.ndarray, out_param: str | Path,
                      out_bin: str | Path, *, input_blob: str = "in0", skip: set[str] = frozenset()
                      ) -> NcnnInt8Report:
    """Float ncnn model + calibration inputs [N, 3, H, W] -> INT8 ncnn model (written atomically)."""
    model = read_ncnn(param_path, bin_path)
    convs = [lay for lay in model.layers if lay.type in CONV_TYPES]
    ranges = collect_ranges(param_path, bin_path, input_blob, calib, convs)
    report = quantize_ncnn_model(model, ranges, skip=skip)
    write_ncnn(model, out_param, out_bin)
    return report
