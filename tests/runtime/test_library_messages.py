"""A library call's refusal names the keyword the caller passed beside the CLI flag: a notebook user
given ``--img-size 63`` alone read a flag that means nothing there. Each check runs before any
heavy work (no export, calibration or quantization is made here)."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from yolox_edge.errors import BadArgument, UserError, flag_value, in_python


def test_flag_value_writes_the_flag_first_then_the_keyword() -> None:
    assert flag_value("--topk", "topk", -1) == "--topk -1 (topk=-1 in Python)"
    assert flag_value("--img-size", "img_size", (320, 416), "416x320") == \
        "--img-size 416x320 (img_size=(320, 416) in Python)"
    assert flag_value("--target", "target", "tflite") == "--target tflite (target='tflite' in Python)"
    assert in_python("--raw", "raw=True") == "--raw (raw=True in Python)"


@pytest.mark.parametrize("fmt, kw, words", [
    ("onnx", {"img_size": 63}, "--img-size 63 (img_size=63 in Python): the size must be a positive multiple of 32"),
    ("onnx", {"topk": -1}, "--topk -1 (topk=-1 in Python): must be >= 1"),
    ("onnx", {"raw": True, "topk": 5}, "--raw and --topk (raw=True and topk=5 in Python) exclude each other"),
    ("onnx", {"iou": 1.5}, "--nms 1.5 (iou=1.5 in Python): the IoU threshold"),
    ("onnx", {"conf": 5.0}, "--conf 5.0 (conf=5.0 in Python): the score threshold"),
    ("onnx", {"precision": "fp16"}, "--format openvino --precision fp16 (format='openvino', precision='fp16' in Python)"),
    ("onnx", {"silu": "rational"}, "--silu rational (silu='rational' in Python) rewrites OpenVINO IR only"),
    ("ncnn", {"dynamic_batch": True}, "--dynamic-batch (dynamic_batch=True in Python) does not apply to ncnn"),
])
def test_export_model(tiny_ckpt: Path, tmp_path: Path, fmt: str, kw: dict, words: str) -> None:
    from yolox_edge.export import export_model

    with pytest.raises(UserError, match=re.escape(words)):
        export_model(tiny_ckpt, format=fmt, out=tmp_path / "x", **kw)
    assert not (tmp_path / "x").exists()


def test_build_calibration_set(tmp_path: Path) -> None:
    from yolox_edge.quantize import build_calibration_set

    with pytest.raises(UserError, match=re.escape("--count 0 (count=0 in Python): must be at least 1")):
        build_calibration_set(tmp_path, tmp_path / "c", img_size=64, count=0)
    with pytest.raises(UserError, match=re.escape("--img-size 100x64 (img_size=(64, 100) in Python)")):
        build_calibration_set(tmp_path, tmp_path / "c", img_size=(64, 100))
    (tmp_path / "file").write_text("x")
    with pytest.raises(UserError, match=re.escape("choose another --out (out= in Python)")):
        build_calibration_set(tmp_path, tmp_path / "file" / "c", img_size=64)


@pytest.mark.parametrize("kw, words", [
    ({"subset_size": 0}, "--subset-size 0 (subset_size=0 in Python): must be at least 1"),
    ({"max_drop": 2.0}, "--max-drop 2.0 (max_drop=2.0 in Python): an absolute AP drop in (0, 1)"),
    ({"qat": True}, "--qat (qat=True in Python) needs --data SPEC (data='data.yaml' in Python)"),
    ({"report": True, "accuracy_control": True},
     "--report and --accuracy-control (report=True, accuracy_control=True in Python) need --data SPEC"),
])
def test_run_quantize_options(tiny_ckpt: Path, tmp_path: Path, kw: dict, words: str) -> None:
    from yolox_edge.quantize import run_quantize

    with pytest.raises(UserError, match=re.escape(words)):
        run_quantize(tiny_ckpt, calib=tmp_path / "no_calib", formats="onnx", out=tmp_path / "q", progress=False,
                     log=None, **kw)


def test_run_bench(tiny_ckpt: Path) -> None:
    from yolox_edge.bench import run_bench

    with pytest.raises(UserError, match=re.escape("--cpus 'x,y' (cpus='x,y' in Python): give core numbers")):
        run_bench(tiny_ckpt, threads=1, runs=1, cpus="x,y", rss=False, progress=False)
    with pytest.raises(UserError, match=re.escape("--cpus and --powersave (cpus= and powersave= in Python)")):
        run_bench(tiny_ckpt, threads=1, runs=1, cpus=[0], powersave=2, rss=False, progress=False)


def test_package_and_pipeline_target(tmp_path: Path) -> None:
    from yolox_edge.bundle import package_bundle
    from yolox_edge.pipeline import run_pipeline

    want = re.escape("--target tflite (target='tflite' in Python): choose")
    with pytest.raises(UserError, match=want):
        package_bundle(tmp_path / "export", target="tflite", out=tmp_path / "b.zip")
    with pytest.raises(UserError, match=want):
        run_pipeline(out=tmp_path / "p", target="tflite", log=None)
    assert not (tmp_path / "p").exists()
    with pytest.raises(BadArgument, match=re.escape("--max-det 0 (max_det=0 in Python)")):
        package_bundle(tmp_path / "export", target="ncnn", out=tmp_path / "b.zip", max_det=0)


def test_predictor(tiny_ckpt: Path) -> None:
    from yolox_edge.runtime import load_predictor

    with pytest.raises(UserError, match=re.escape("--precision-hint f16 (precision_hint='f16' in Python) applies "
                                                  "to OpenVINO and ncnn models")):
        load_predictor(tiny_ckpt, precision_hint="f16")
    with pytest.raises(UserError, match=re.escape("--img-size 70 (img_size=70 in Python)")):
        load_predictor(tiny_ckpt, img_size=70)
    pred = load_predictor(tiny_ckpt)
    img = np.zeros((48, 64, 3), np.uint8)
    # A list was a TypeError from deep inside ('expected str, bytes or os.PathLike object, not list')
    with pytest.raises(UserError, match=r"predict takes one image .*not a list of 2; .*predict_images\(\[array"):
        pred.predict([img, img])
    assert len(pred.predict_images([img, img])) == 2


def test_an_out_of_range_number_is_a_bad_argument(tiny_ckpt: Path, tmp_path: Path) -> None:
    """The README: an out-of-range argument is an errors.BadArgument, also a ValueError. These were
    plain UserErrors, so a caller catching ValueError (as for threads=0 or max_det=0) missed them."""
    from yolox_edge.export import export_model
    from yolox_edge.quantize import build_calibration_set, run_quantize
    from yolox_edge.quantize.qat import run_qat
    from yolox_edge.runtime import load_predictor

    calls = [
        lambda: export_model(tiny_ckpt, format="onnx", out=tmp_path / "x", topk=-1),
        lambda: export_model(tiny_ckpt, format="onnx", out=tmp_path / "x", iou=1.5),
        lambda: export_model(tiny_ckpt, format="onnx", out=tmp_path / "x", conf=5.0),
        lambda: export_model(tiny_ckpt, format="onnx", out=tmp_path / "x", img_size=63),
        lambda: export_model(tiny_ckpt, format="onnx", out=tmp_path / "x", img_size="416"),
        lambda: build_calibration_set(tmp_path, tmp_path / "c", img_size=64, count=0),
        lambda: run_quantize(tiny_ckpt, calib=tmp_path / "no_calib", formats="onnx", out=tmp_path / "q",
                             subset_size=0, progress=False, log=None),
        lambda: run_quantize(tiny_ckpt, calib=tmp_path / "no_calib", formats="onnx", out=tmp_path / "q",
                             max_drop=2.0, progress=False, log=None),
        lambda: run_qat(None, {}, None, "data.yaml", epochs=0, log=None),
        lambda: load_predictor(tiny_ckpt, img_size=70),
    ]
    for call in calls:
        with pytest.raises(BadArgument) as e:
            call()
        assert isinstance(e.value, ValueError) and " in Python)" in str(e.value), e.value
    assert not (tmp_path / "x").exists() and not (tmp_path / "c").exists() and not (tmp_path / "q").exists()
