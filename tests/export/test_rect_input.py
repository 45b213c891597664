"""Exports at a rectangular input (``img_size=(H, W)``, ``--img-size WxH``): metadata, graph
input and outputs at that size, and the same detections as the checkpoint run at that size."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from yolox_edge.engine import save_checkpoint
from yolox_edge.export import export_model, read_metadata
from yolox_edge.models import create_model
from yolox_edge.runtime import load_predictor

pytestmark = pytest.mark.usefixtures("one_torch_thread")

HW = (64, 96)  # --img-size 96x64 (width x height)
# 8x12 + 4x6 + 2x3 anchors at strides 8, 16, 32 on a 96-wide, 64-high input
ANCHORS = 8 * 12 + 4 * 6 + 2 * 3
CONF = 0.36  # keeps fewer (96) than the top-K graphs' 100, so every graph keeps what torch keeps


@pytest.fixture(scope="module")
def rect_ckpt(tmp_path_factory):
    """A square-trained (input 64) 3-class 'test' checkpoint whose scores spread out."""
    torch.manual_seed(0)
    model = create_model("test", num_classes=3)
    with torch.no_grad():
        for conv in [*model.head.cls_preds, *model.head.obj_preds, *model.head.reg_preds]:
            conv.weight.normal_(0.0, 0.2)
            conv.bias.normal_(0.0, 0.5)
    return save_checkpoint(tmp_path_factory.mktemp("rect") / "tiny.pt", model, class_names=["cat", "dog", "car"])


@pytest.fixture(scope="module")
def rect_exports(rect_ckpt, tmp_path_factory):
    root = tmp_path_factory.mktemp("rect_exports")
    return {fmt: export_model(rect_ckpt, format=fmt, out=root / fmt, img_size=HW).directory
            for fmt in ("onnx", "openvino", "ncnn")}


@pytest.mark.parametrize("fmt", ["onnx", "openvino", "ncnn"])
def test_metadata_states_the_rectangular_size(fmt, rect_exports) -> None:
    meta = read_metadata(rect_exports[fmt])  # its consistency check runs on read
    assert meta["input_size"] == [64, 96] and meta["preprocess"]["input_size"] == [64, 96]
    assert meta["input"]["shape"] == [1, 3, 64, 96]
    if fmt == "ncnn":  # decoded: every anchor of the three grids
        assert [o["shape"] for o in meta["outputs"]] == [[1, ANCHORS, 4], [1, ANCHORS, 3]]
    else:  # top-K capped at the anchors there are (100 > 126 is not)
        assert meta["graph"]["topk"] == 100
        assert meta["outputs"][0]["shape"] == [1, 100, 4]


def test_ncnn_param_input_and_grids_are_rectangular(rect_exports) -> None:
    """pnnx got the W x H shape: the graph's decoded output has the anchors of 64x96, not 64x64/96x96."""
    import ncnn

    d = rect_exports["ncnn"]
    meta = read_metadata(d)
    net = ncnn.Net()
    net.load_param(str(d / "yolox_test.ncnn.param"))
    net.load_model(str(d / "yolox_test.ncnn.bin"))
    ex = net.create_extractor()
    ex.input(meta["input"]["name"], ncnn.Mat(np.zeros((3, 64, 96), np.float32)))
    _, boxes = ex.extract(meta["outputs"][0]["blob"])
    assert np.array(boxes).shape == (ANCHORS, 4)


@pytest.mark.parametrize("fmt", ["onnx", "openvino", "ncnn"])
def test_same_detections_as_the_checkpoint_at_that_size(fmt, rect_ckpt, rect_exports) -> None:
    img = (np.random.default_rng(3).random((60, 80, 3)) * 255).astype(np.uint8)  # 4:3
    torch_pred = load_predictor(rect_ckpt, conf=CONF)
    torch_pred.set_input_size(HW)
    ref = torch_pred.predict(img)
    pred = load_predictor(rect_exports[fmt], conf=CONF)
    assert tuple(pred.info.preprocess.input_size) == HW
    det = pred.predict(img)
    assert len(ref) > 0 and len(det) == len(ref)
    for b, s, lab in zip(det.boxes, det.scores, det.labels):
        same = (np.abs(ref.scores - s) < 1e-4) & (ref.labels == lab) & (np.abs(ref.boxes - b).max(-1) < 0.05)
        assert same.any(), (b, s, lab)
    # and not what the square model sees: the rectangular run is a different graph
    square = load_predictor(rect_ckpt, conf=CONF).predict(img)
    assert len(square) != len(ref) or not np.allclose(square.boxes, ref.boxes, atol=0.05)


def test_a_static_export_refuses_another_size(rect_exports) -> None:
    from yolox_edge.errors import UserError

    pred = load_predictor(rect_exports["onnx"])
    pred.set_input_size((64, 96))  # its own size is fine
    with pytest.raises(UserError, match=r"fixed input 96x64 \(width x height\); re-export it with --img-size 64 "
                                        r"\(img_size=64 in Python\)"):
        pred.set_input_size(64)


def test_an_odd_side_is_refused_with_the_nearest_size(rect_ckpt, tmp_path) -> None:
    from yolox_edge.errors import UserError

    with pytest.raises(UserError, match=r"--img-size 96x70 \(img_size=\(70, 96\) in Python\): each side .* multiple "
                                        r"of 32; the nearest that is: 96x64"):
        export_model(rect_ckpt, format="onnx", out=tmp_path / "x", img_size=(70, 96))
