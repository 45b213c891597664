"""The input quantizer of an INT8 model made exact on pixels 0..255 (ONNX Q/DQ, OpenVINO FQ)."""
from __future__ import annotations

import numpy as np
import pytest

from yolox_edge.data.preprocess import PreprocessConfig
from yolox_edge.quantize.pixel_input import exact_onnx_input, exact_openvino_input, takes_raw_pixels

PIXELS = np.arange(256, dtype=np.float32).reshape(1, 1, 16, 16)


def _qdq_model(zero_point: np.ndarray):
    """input -> QuantizeLinear -> DequantizeLinear -> output, with a calibrated (lossy) scale."""
    from onnx import TensorProto, helper, numpy_helper

    inits = [numpy_helper.from_array(np.array(0.9976, np.float32), "s"), numpy_helper.from_array(zero_point, "z")]
    nodes = [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["q"]),
             helper.make_node("DequantizeLinear", ["q", "s", "z"], ["y"])]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 16, 16])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 1, 16, 16])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)


def _run_onnx(model) -> np.ndarray:
    import onnxruntime as ort

    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(
        None, {"x": PIXELS})[0]


@pytest.mark.parametrize("zp", [np.array(0, np.uint8), np.array(-128, np.int8)])
def test_onnx_input_quantizer_becomes_identity_on_pixels(zp) -> None:
    model = _qdq_model(zp)
    assert np.abs(_run_onnx(model) - PIXELS).max() > 0.4  # the calibrated grid rounds pixels
    assert exact_onnx_input(model) == 1
    np.testing.assert_array_equal(_run_onnx(model), PIXELS)


def test_openvino_input_quantizer_becomes_identity_on_pixels() -> None:
    import openvino as ov
    from openvino import opset13 as ops

    x = ops.parameter([1, 1, 16, 16], np.float32, name="x")
    lo, hi = ops.constant(np.float32(0.0)), ops.constant(np.float32(254.39))
    model = ov.Model([ops.fake_quantize(x, lo, hi, lo, hi, 256)], [x])

    def run(m):
        return ov.Core().compile_model(m, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})(PIXELS)[0]

    assert np.abs(run(model) - PIXELS).max() > 0.4
    assert exact_openvino_input(model) == 1
    np.testing.assert_array_equal(run(model), PIXELS)


def test_only_raw_pixel_inputs_qualify() -> None:
    assert takes_raw_pixels(PreprocessConfig())
    assert not takes_raw_pixels(PreprocessConfig(mean=(1.0, 2.0, 3.0), std=(4.0, 5.0, 6.0)))
