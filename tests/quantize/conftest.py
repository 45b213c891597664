"""Fixtures for the INT8 tests: a tiny depthwise model with input-sensitive weights, a few
calibration images and a calibration set built from them (module-cheap, session-scoped)."""
from __future__ import annotations

from pathlib import Path

import pytest

from quant_helpers import write_images


@pytest.fixture(scope="session")
def tiny_ckpt(tmp_path_factory, randomize_model) -> Path:
    """A 'test_dw' (depthwise, input 64) checkpoint with 3 classes and non-trivial BN."""
    from yolox_edge.engine.checkpoint import save_checkpoint
    from yolox_edge.models import create_model

    model = randomize_model(create_model("test_dw", num_classes=3), seed=1)
    path = tmp_path_factory.mktemp("qmodel") / "tiny.pt"
    save_checkpoint(path, model, class_names=["a", "b", "c"])
    return path


@pytest.fixture(scope="session")
def calib_images(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("qimages")
    write_images(d, 8)
    return d


@pytest.fixture(scope="session")
def tiny_calib(calib_images, tmp_path_factory) -> Path:
    from yolox_edge.quantize.calib import build_calibration_set

    out = tmp_path_factory.mktemp("qcalib") / "calib"
    build_calibration_set(calib_images, out, img_size=64, count=8, seed=0)
    return out


@pytest.fixture(scope="session")
def shapes_spec(tmp_path_factory):
    """A data spec of the tiny checkpoint's 3 classes (8 train, 4 val images)."""
    from yolox_edge.data.synthetic import make_shapes_dataset

    return make_shapes_dataset(tmp_path_factory.mktemp("shapes"), n_train=8, n_val=4, size=(64, 80))


@pytest.fixture(scope="session")
def rational_run(tiny_ckpt, shapes_spec, tmp_path_factory):
    """One ``run_quantize --silu rational --report`` into OpenVINO and ONNX (calibrated on 4 shapes
    images, no conv scan), shared by the tests of what --silu rational writes (test_ptq) and of what
    its report says (test_report): each such run costs ~30 s. Returns (results, out folder, stdout,
    the calibration set's folder)."""
    import contextlib
    import io

    from yolox_edge.quantize.calib import build_calibration_set
    from yolox_edge.quantize.pipeline import run_quantize

    tmp = tmp_path_factory.mktemp("rational_run")
    build_calibration_set(shapes_spec, tmp / "calib", img_size=64, count=4)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        res = run_quantize(tiny_ckpt, calib=tmp / "calib", formats=["openvino", "onnx"], out=tmp / "out",
                           report=True, data=str(shapes_spec), silu="rational", topk=0, nncf_keep_float=0,
                           progress=False)
    return res, tmp / "out", printed.getvalue(), tmp / "calib"
