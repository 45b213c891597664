"""The imported official Nano exported to ONNX and ncnn: same detections as torch on the official
demo images (within 1 px), and the top-K output is a few KB against the raw 1.2 MB.

OpenVINO is left out here to keep CI short: its IR is converted from the same ONNX graph and
test_backends checks its parity (and its f32 precision hint) on the tiny model.
"""
from __future__ import annotations

import numpy as np
import pytest

from yolox_edge.export import export_model
from yolox_edge.export.metadata import output_bytes_per_image
from yolox_edge.runtime import load_predictor

pytestmark = [pytest.mark.slow, pytest.mark.refdata]


@pytest.fixture(scope="module")
def nano_exports(nano_coco_ckpt, tmp_path_factory) -> dict[str, object]:
    root = tmp_path_factory.mktemp("nano_exports")
    return {fmt: export_model(nano_coco_ckpt, format=fmt, out=root / fmt) for fmt in ("onnx", "ncnn")}


@pytest.mark.parametrize("image", ["dog.jpg", "demo.png"])
def test_same_detections_as_torch(refdata, nano_coco_ckpt, nano_exports, image) -> None:
    img = refdata / "images" / image
    ref = load_predictor(nano_coco_ckpt, conf=0.3).predict(img)
    assert len(ref) >= 3
    for fmt, res in nano_exports.items():
        det = load_predictor(res.directory, conf=0.3).predict(img)
        assert len(det) == len(ref), fmt
        o_ref, o_det = np.argsort(-ref.scores), np.argsort(-det.scores)
        np.testing.assert_array_equal(det.labels[o_det], ref.labels[o_ref], err_msg=fmt)
        np.testing.assert_allclose(det.scores[o_det], ref.scores[o_ref], atol=1e-3, err_msg=fmt)
        assert np.abs(det.boxes[o_det] - ref.boxes[o_ref]).max() <= 1.0, fmt


def test_output_bytes(nano_exports) -> None:
    topk = nano_exports["onnx"].metadata
    assert topk["graph"]["topk"] == 100 and output_bytes_per_image(topk) == 2800 <= 4096
    # ncnn has no top-K layers: decoded boxes + per-class scores leave its graph
    assert output_bytes_per_image(nano_exports["ncnn"].metadata) == 3549 * 84 * 4
