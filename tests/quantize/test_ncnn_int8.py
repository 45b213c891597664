"""The ncnn INT8 writer: param/bin round trip, and ncnn's INT8 result equals the torch
simulation of the arithmetic the calibration planned (so the format is written right)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from yolox_edge.quantize.ncnn_format import read_ncnn, serialize


@pytest.fixture(scope="module")
def float_ncnn(tiny_ckpt, tmp_path_factory):
    from yolox_edge.engine.checkpoint import load_model
    from yolox_edge.export.to_ncnn import export_ncnn
    from yolox_edge.export.wrapper import DeployModel
    from yolox_edge.quantize.fold import fold_batchnorm

    model, _ = load_model(tiny_ckpt)
    det = fold_batchnorm(model).eval()
    d = tmp_path_factory.mktemp("ncnn_fp32")
    export_ncnn(DeployModel(det, kind="decoded"), torch.rand(1, 3, 64, 64) * 255, d / "m.param", d / "m.bin")
    return det, d / "m.param", d / "m.bin"


def test_float_model_roundtrips_byte_exact(float_ncnn):
    _, param, binf = float_ncnn
    model = read_ncnn(param, binf)
    ptext, blob = serialize(model)
    assert blob == Path(binf).read_bytes()
    assert [ln.split()[:2] for ln in ptext.decode().splitlines()[2:]] == \
        [ln.split()[:2] for ln in Path(param).read_text().splitlines()[2:] if ln.strip()]


def test_truncated_bin_is_refused(float_ncnn, tmp_path):
    _, param, binf = float_ncnn
    short = tmp_path / "short.bin"
    short.write_bytes(Path(binf).read_bytes()[:-64])
    with pytest.raises(Exception):
        read_ncnn(param, short)


@pytest.mark.slow
def test_ncnn_int8_matches_the_simulated_arithmetic(float_ncnn, tiny_calib, tmp_path):
    import ncnn

    from yolox_edge.quantize.calib import load_calibration_set
    from yolox_edge.quantize.ncnn_calib import conv_modules, int8_sim, plan_ncnn_int8
    from yolox_edge.quantize.ncnn_int8 import convert_ncnn_int8
    from yolox_edge.export.to_ncnn import export_ncnn
    from yolox_edge.export.wrapper import DeployModel

    det0, _, _ = float_ncnn
    cal = load_calibration_set(tiny_calib).data
    # Plans are made on the wrapper's own copy (with the stem fused into a 6x6 conv, so the
    # writer is checked on that kernel too), as quantize does.
    deploy = DeployModel(det0, kind="decoded")
    det = deploy.detector
    with torch.no_grad():
        calib, keep = plan_ncnn_int8(det, cal, keep_float=1)
    assert len(keep) == 1
    export_ncnn(deploy, torch.from_numpy(cal[:1].copy()), tmp_path / "f.param", tmp_path / "f.bin")
    weights = {n: m.weight.detach().numpy() for n, m in conv_modules(det).items()}
    rep = convert_ncnn_int8(tmp_path / "f.param", tmp_path / "f.bin", tmp_path / "q.param", tmp_path / "q.bin",
                            weights, calib.plans, calib.biases)
    assert len(rep.quantized) == len(weights) - 1 and len(rep.kept_float) == 1
    assert any(p.shift is not None for p in calib.plans.values())  # 1x1 convs are centred

    net = ncnn.Net()
    net.opt.use_vulkan_compute = False
    net.opt.use_fp16_storage = net.opt.use_fp16_packed = net.opt.use_fp16_arithmetic = False
    net.opt.use_bf16_storage = False
    assert net.load_param(str(tmp_path / "q.param")) == 0 and net.load_model(str(tmp_path / "q.bin")) == 0
    with torch.no_grad(), int8_sim(det, calib.plans):
        sim_boxes, sim_scores = deploy(torch.from_numpy(cal[:3].copy()))
    with torch.no_grad():
        _, float_scores = DeployModel(det0, kind="decoded")(torch.from_numpy(cal[:3].copy()))
    for i in range(3):
        ex = net.create_extractor()
        x = np.ascontiguousarray(cal[i])  # ncnn.Mat wraps this memory: keep it alive
        ex.input("in0", ncnn.Mat(x))
        boxes, scores = np.array(ex.extract("out0")[1]), np.array(ex.extract("out1")[1])
        # Same arithmetic up to round-half ties and float summation order.
        assert np.abs(scores - sim_scores[i].numpy()).max() < 0.02
        assert np.median(np.abs(boxes - sim_boxes[i].numpy())) < 0.05
    # ...and it is INT8: the simulation differs from the float model.
    assert (sim_scores - float_scores).abs().max() > 1e-4
    # Weights of another copy (the unfused stem) cannot be matched: refused, not left float.
    stale = {n: m.weight.detach().numpy() for n, m in conv_modules(det0).items()}
    with pytest.raises(ValueError, match="no ncnn conv holds the weights of backbone.stem.conv.conv"):
        convert_ncnn_int8(tmp_path / "f.param", tmp_path / "f.bin", tmp_path / "s.param", tmp_path / "s.bin",
                          stale, calib.plans, calib.biases)


def test_ranges_are_the_extremes_over_every_calibration_image():
    # ncnn's activation range is symmetric: a range averaged over images clips the images with
    # the widest activations on both sides (measured 0.7-5.9 AP lost), so the extremes are kept.
    from yolox_edge.quantize.ncnn_calib import calibrate_ncnn, channel_stats

    conv = torch.nn.Conv2d(2, 1, 1)
    model = torch.nn.Sequential(conv)
    calib = np.zeros((3, 2, 4, 4), np.float32)
    calib[0, 0, 0, 0], calib[1, 0, 1, 1], calib[2, 1, 2, 2] = 1.0, -3.0, 8.0  # one extreme per image
    lo, hi = channel_stats(model, calib, batch=2)["0"]  # batches of 2 and 1: extremes across batches
    assert lo.tolist() == [-3.0, 0.0] and hi.tolist() == [1.0, 8.0]
    plan = calibrate_ncnn(model, calib, bias_correction=False, center=False).plans["0"]
    assert plan.r == pytest.approx(8.0)  # the widest input channel's absmax, not a mean (8/3)
