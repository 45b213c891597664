"""Parity of the onnxruntime, OpenVINO and ncnn backends with torch on the tiny model (64 px)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from yolox_edge.engine.checkpoint import load_model
from yolox_edge.export import DeployModel, read_metadata
from yolox_edge.runtime import load_predictor, open_model

FORMATS = ("onnx", "openvino", "ncnn")


def _batch(n: int = 2, size: int = 64) -> np.ndarray:
    return (np.random.default_rng(1).random((n, 3, size, size)) * 255).astype(np.float32)


def _torch_ref(ckpt, export_dir, x) -> dict[str, np.ndarray]:
    """The same deploy graph run in torch (decode, NMS, top-K as the metadata says)."""
    g = read_metadata(export_dir)["graph"]
    nms = g["nms"] or {}
    deploy = DeployModel(load_model(ckpt)[0], kind=g["output_kind"], topk=g["topk"],
                         iou=nms.get("iou"), conf=nms.get("conf", 0.001))
    with torch.no_grad():
        outs = deploy(torch.from_numpy(x))
    return {n: o.numpy() for n, o in zip(deploy.output_names, outs)}


def _assert_topk_matches(out: dict, ref: dict) -> None:
    """Each exported top-K entry equals a torch top-K entry (order among tied scores may differ)."""
    rb, rs, rl = ref["boxes"], ref["scores"], ref["labels"]
    assert out["boxes"].shape == rb.shape and out["scores"].shape == rs.shape == out["labels"].shape
    np.testing.assert_allclose(out["scores"], rs, atol=1e-5)  # sorted descending in both
    for i in range(len(rb)):
        for b, s, lab in zip(out["boxes"][i], out["scores"][i], out["labels"][i]):
            same = (np.abs(rs[i] - s) < 1e-5) & (rl[i] == int(lab)) & (np.abs(rb[i] - b).max(-1) < 1e-2)
            assert same.any(), (b, s, lab)


@pytest.mark.parametrize("fmt", FORMATS)
def test_backend_matches_torch(fmt, tiny_ckpt, tiny_exports) -> None:
    x = _batch(2)
    ref = _torch_ref(tiny_ckpt, tiny_exports[fmt], x)
    backend, info = open_model(tiny_exports[fmt], threads=1)
    out = backend.infer(x)  # batch 2 on a batch-1 graph: the backend runs image by image
    if fmt == "ncnn":
        assert info.output_kind == "decoded"
        np.testing.assert_allclose(out["boxes"], ref["boxes"], atol=1e-2)
        np.testing.assert_allclose(out["scores"], ref["scores"], atol=1e-4)
    else:
        assert info.output_kind == "topk"
        assert (out["scores"] > 0).sum() > 3  # NMS kept a few real detections, zeros pad the rest
        _assert_topk_matches(out, ref)
    assert info.class_names == ["cat", "dog", "car"]
    assert tuple(info.preprocess.input_size) == (64, 64)


def test_openvino_states_its_precision(tiny_exports) -> None:
    _, info = open_model(tiny_exports["openvino"])
    assert info.extra["inference_precision"] == "f32"  # never the silent bf16 default
    assert "f32 inference" in info.precision
    _, info = open_model(tiny_exports["openvino"], precision_hint="bf16")
    assert info.extra["inference_precision"] in {"bf16", "f32"}  # f32 where the CPU has no bf16


@pytest.mark.parametrize("fmt", FORMATS)
def test_predictor_same_detections_as_torch(fmt, tiny_ckpt, tiny_exports) -> None:
    img = (np.random.default_rng(2).random((48, 80, 3)) * 255).astype(np.uint8)
    ref = load_predictor(tiny_ckpt, conf=0.3).predict(img)
    det = load_predictor(tiny_exports[fmt] / "metadata.json", conf=0.3).predict(img)
    assert len(ref) > 0 and len(det) == len(ref)
    # Match each detection to one of torch's (tied scores may come in another order).
    for b, s, lab in zip(det.boxes, det.scores, det.labels):
        same = (np.abs(ref.scores - s) < 1e-4) & (ref.labels == lab) & (np.abs(ref.boxes - b).max(-1) < 0.05)
        assert same.any(), (b, s, lab)


def test_conf_0_on_a_top_k_output_gives_no_padding_rows() -> None:
    """The top-K graph pads its K rows with score 0 (anchors it dropped); ``scores >= 0`` kept them
    all: --conf 0 showed every padding row as a detection scored 0."""
    from yolox_edge.data.preprocess import PreprocessConfig
    from yolox_edge.runtime.base import ModelInfo
    from yolox_edge.runtime.predictor import Predictor

    info = ModelInfo(name="t", class_names=["cat", "dog"], category_ids=None, output_kind="topk", strides=(8, 16, 32),
                     preprocess=PreprocessConfig(input_size=(64, 64)))
    out = {"boxes": np.array([[[0, 0, 10, 10], [20, 20, 30, 30], [0, 0, 0, 0], [0, 0, 0, 0]]], np.float32),
           "scores": np.array([[0.5, 1e-4, 0.0, 0.0]], np.float32), "labels": np.array([[1, 0, 0, 0]])}
    (det,) = Predictor(None, info, conf=0.0).postprocess(out)
    assert det.scores.tolist() == pytest.approx([0.5, 1e-4]) and det.labels.tolist() == [1, 0]


def test_model_file_paths_open_too(tiny_exports) -> None:
    for fmt, name in (("onnx", "yolox_test.onnx"), ("openvino", "yolox_test.xml"), ("ncnn", "yolox_test.ncnn.param")):
        backend, info = open_model(tiny_exports[fmt] / name)
        assert info.extra["format"] == fmt


@pytest.mark.parametrize("fmt", ["onnx", "openvino"])
@pytest.mark.parametrize("edit", ["size", "name"])
def test_metadata_edited_to_another_input_is_refused_on_load(fmt, edit, tiny_exports, tmp_path) -> None:
    """Sizes edited consistently in metadata.json (its own check cannot see it) or another input
    name: the graph's own input says otherwise (was a runtime traceback at the first call)."""
    import json
    import shutil

    from yolox_edge.errors import UserError

    d = shutil.copytree(tiny_exports[fmt], tmp_path / fmt)
    meta = json.loads((d / "metadata.json").read_text())
    if edit == "size":
        meta["input_size"] = meta["preprocess"]["input_size"] = [96, 96]
        meta["input"]["shape"] = [1, 3, 96, 96]
        says = "input height is 64 but metadata.json says 96"
    else:
        meta["input"]["name"] = "pixels"
        says = "metadata.json names 'pixels'"
    (d / "metadata.json").write_text(json.dumps(meta))
    with pytest.raises(UserError, match=says):
        load_predictor(d)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("edit", ["input name", "output blob"])
def test_metadata_naming_tensors_the_graph_lacks_is_refused_on_load(fmt, edit, tiny_exports, tmp_path) -> None:
    """An edited output blob was onnxruntime's InvalidArgument or ncnn's code -100 at the first image,
    an edited ncnn input name its code -1: each is now one line at load."""
    import json
    import shutil

    from yolox_edge.errors import UserError

    d = shutil.copytree(tiny_exports[fmt], tmp_path / fmt)
    meta = json.loads((d / "metadata.json").read_text())
    if edit == "input name":
        meta["input"]["name"] = "pixels"
        says = "metadata.json names 'pixels'"
    else:
        meta["outputs"][0]["blob"] = "nope"
        says = f"metadata.json's output '{meta['outputs'][0]['name']}' is the graph's 'nope', which the graph does not have"
    (d / "metadata.json").write_text(json.dumps(meta))
    with pytest.raises(UserError, match=says):
        load_predictor(d)


@pytest.mark.parametrize("fmt", ["onnx", "openvino"])
def test_dynamic_batch_runs_whole_batch(fmt, tiny_ckpt, tiny_exports, tmp_path) -> None:
    from yolox_edge.export import export_model

    res = export_model(tiny_ckpt, format=fmt, out=tmp_path / fmt, dynamic_batch=True)
    assert res.metadata["input"]["shape"][0] == "batch"
    backend, _ = open_model(res.directory)
    assert not backend.static
    x = _batch(3)
    out, ref = backend.infer(x), open_model(tiny_exports[fmt])[0].infer(x)  # one call vs image by image
    for k in ("boxes", "scores", "labels"):
        np.testing.assert_allclose(out[k], ref[k], atol=1e-4)


def test_ncnn_fp16_weights(tiny_ckpt, tiny_exports, tmp_path) -> None:
    """fp16 ncnn: conv weights rewritten as fp16 (stem fp32), about half the bytes, same outputs closely."""
    from yolox_edge.export import export_model
    from yolox_edge.export.to_ncnn import FP16_TAG, bin_to_fp16

    res = export_model(tiny_ckpt, format="ncnn", out=tmp_path / "ncnn16", precision="fp16")
    fp32_bin = tiny_exports["ncnn"] / "yolox_test.ncnn.bin"
    fp16_bin = res.directory / "yolox_test.ncnn.bin"
    assert fp16_bin.stat().st_size < 0.6 * fp32_bin.stat().st_size
    assert int.from_bytes(fp16_bin.read_bytes()[:4], "little") == 0  # the stem stays fp32
    assert FP16_TAG.to_bytes(4, "little") in fp16_bin.read_bytes()
    # The writer's byte accounting covers the whole file (it raises otherwise) and is repeatable.
    n = bin_to_fp16(tiny_exports["ncnn"] / "yolox_test.ncnn.param", fp32_bin, tmp_path / "again.bin")
    assert n > 50 and (tmp_path / "again.bin").read_bytes() == fp16_bin.read_bytes()
    x = _batch(1)
    out, ref = open_model(res.directory)[0].infer(x), open_model(tiny_exports["ncnn"])[0].infer(x)
    np.testing.assert_allclose(out["scores"], ref["scores"], atol=2e-2)
    np.testing.assert_allclose(out["boxes"], ref["boxes"], atol=1.0)


@pytest.mark.parametrize("fmt", FORMATS)
def test_hswish_variant_exports_match_torch(fmt, tiny_hswish_ckpt, tmp_path) -> None:
    """Hard-swish goes through every exporter as the runtime's own op (ONNX HardSwish, OpenVINO
    HSwish, ncnn HardSwish) and computes what torch computes."""
    from yolox_edge.export import export_model

    out_dir = export_model(tiny_hswish_ckpt, format=fmt, out=tmp_path / fmt).directory
    x = _batch(1)
    ref = _torch_ref(tiny_hswish_ckpt, out_dir, x)
    backend, _ = open_model(out_dir, threads=1)
    out = backend.infer(x)
    if fmt == "ncnn":
        np.testing.assert_allclose(out["scores"], ref["scores"], atol=1e-4)
    else:
        _assert_topk_matches(out, ref)


def _canvas_batch(n: int = 2, size: int = 64) -> np.ndarray:
    return (np.random.default_rng(3).random((n, size, size, 3)) * 255).astype(np.uint8)


def test_openvino_takes_pixels_with_the_same_numbers(tiny_exports) -> None:
    """The IR compiled with uint8 NHWC input gives exactly what the float NCHW input gives."""
    from yolox_edge.data.preprocess import to_network

    backend, info = open_model(tiny_exports["openvino"], threads=1)
    assert backend.takes_pixels
    pixels = _canvas_batch(2)
    floats = np.stack([to_network(c, info.preprocess) for c in pixels])
    out_px, out_f = backend.infer(pixels), backend.infer(floats)
    assert (out_f["scores"] > 0).sum() > 3
    for k in out_f:
        np.testing.assert_array_equal(out_px[k], out_f[k])
    # The Predictor hands pixels to OpenVINO and float tensors to the others.
    img = (np.random.default_rng(4).random((48, 80, 3)) * 255).astype(np.uint8)
    x, r = load_predictor(tiny_exports["openvino"]).make_input(img)
    assert x.dtype == np.uint8 and x.shape == (64, 64, 3) and r == pytest.approx(0.8)
    x, _ = load_predictor(tiny_exports["onnx"]).make_input(img)
    assert x.dtype == np.float32 and x.shape == (3, 64, 64)


def test_openvino_pixel_input_applies_channel_order_and_mean_std(tiny_exports) -> None:
    """RGB and mean/std models: the in-graph steps equal ``to_network`` on the host."""
    from yolox_edge.data.preprocess import PreprocessConfig, to_network
    from yolox_edge.runtime.openvino_backend import OpenVINOBackend

    meta = read_metadata(tiny_exports["openvino"])
    meta["preprocess"] = {**meta["preprocess"], "channel_order": "RGB", "mean": [10.0, 120.0, 250.0],
                          "std": [50.0, 60.0, 70.0]}
    xml = tiny_exports["openvino"] / "yolox_test.xml"
    backend = OpenVINOBackend(xml, meta, threads=1)
    assert backend.takes_pixels
    cfg = PreprocessConfig.from_dict(meta["preprocess"])
    pixels = _canvas_batch(1)
    out_px, out_f = backend.infer(pixels), backend.infer(to_network(pixels[0], cfg)[None])
    np.testing.assert_allclose(out_px["scores"], out_f["scores"], atol=1e-5)
    np.testing.assert_allclose(out_px["boxes"], out_f["boxes"], atol=1e-3)
    # The steps themselves, on a graph that returns its input: exactly the host's numbers.
    import openvino as ov
    from openvino import opset13 as ops

    from yolox_edge.runtime.openvino_backend import _with_pixel_input

    x = ops.parameter([1, 3, 64, 64], np.float32)
    echo = _with_pixel_input(ov.Model([ops.multiply(x, ops.constant(np.float32(1.0)))], [x]), cfg)
    got = ov.Core().compile_model(echo, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})(pixels)[0]
    np.testing.assert_allclose(got, to_network(pixels[0], cfg)[None], rtol=1e-6, atol=1e-6)
    assert not np.allclose(got[0, 0], pixels[0, :, :, 0])  # RGB order and mean/std were applied


def test_openvino_predictors_dropped_in_any_order_leave_signals_working(tiny_exports, tmp_path) -> None:
    """Two OpenVINO predictors loaded and dropped first-in first-out, then a real SIGTERM: the
    handler runs. With a Core per predictor, OpenVINO's CPU plugin left the thread's alternate
    signal stack pointing at freed memory and the signal killed the process with SIGSEGV; run in
    a child process, so such a crash fails this test instead of the test run."""
    import subprocess
    import sys

    script = tmp_path / "two_models.py"
    script.write_text(f"""
import gc, os, signal
from yolox_edge.runtime import load_predictor
a = load_predictor({str(tiny_exports['openvino'])!r})
b = load_predictor({str(tiny_exports['openvino'])!r})
del a; gc.collect()
del b; gc.collect()
signal.signal(signal.SIGTERM, lambda *_: print("handled", flush=True))
os.kill(os.getpid(), signal.SIGTERM)
print("alive", flush=True)
""")
    run = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0 and run.stdout.split() == ["handled", "alive"], (run.returncode, run.stderr[-2000:])
