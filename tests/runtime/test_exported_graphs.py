"""What the exported graphs contain: decode (+ NMS, top-K) ops, standard ncnn layers only, metadata."""
from __future__ import annotations

from yolox_edge.export import read_metadata
from yolox_edge.export.metadata import output_bytes_per_image
from yolox_edge.export.to_ncnn import nonstandard_layers, param_layers
from yolox_edge.export.to_onnx import OPSET, graph_ops
from yolox_edge.export.to_openvino import ir_ops


def test_onnx_graph_has_decode_nms_topk(tiny_exports) -> None:
    import onnx

    path = tiny_exports["onnx"] / "yolox_test.onnx"
    model = onnx.load(str(path))
    onnx.checker.check_model(model)
    assert max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")) >= 13
    assert OPSET >= 13
    ops = graph_ops(path)
    for op in ("Exp", "Sigmoid", "Add", "Mul", "Concat", "ReduceMax", "Equal", "NonMaxSuppression", "TopK",
               "GatherElements"):
        assert op in ops, (op, ops)
    assert [o.name for o in model.graph.output] == ["boxes", "scores", "labels"]


def test_openvino_ir_has_decode_nms_topk(tiny_exports) -> None:
    ops = ir_ops(tiny_exports["openvino"] / "yolox_test.xml")
    assert {"Exp", "Sigmoid", "TopK"} <= set(ops), ops
    assert any(o.startswith("NonMaxSuppression") for o in ops), ops


def test_ncnn_param_standard_layers_only(tiny_exports) -> None:
    param = tiny_exports["ncnn"] / "yolox_test.ncnn.param"
    types = {t for t, _ in param_layers(param)}
    assert nonstandard_layers(param) == set()
    # The Focus stem is one 6x6 stride-2 convolution: no Reorg, no YoloV5Focus custom layer.
    assert "Reorg" not in types and "YoloV5Focus" not in types
    first = next(line.split() for line in param.read_text().splitlines() if line.startswith("Convolution"))
    assert "1=6" in first and "3=2" in first, first  # kernel 6, stride 2
    assert {"MemoryData", "UnaryOp", "BinaryOp", "Sigmoid", "Concat"} <= types  # the grid decode
    assert sorted(p.name for p in tiny_exports["ncnn"].iterdir()) == [
        "metadata.json", "yolox_test.ncnn.bin", "yolox_test.ncnn.param"]  # no pnnx side files


def test_metadata_describes_outputs(tiny_exports) -> None:
    meta = read_metadata(tiny_exports["onnx"])
    assert meta["graph"]["decode"] and meta["graph"]["topk"] == 84  # 100 capped at 64 + 16 + 4 anchors
    assert meta["graph"]["nms"] == {"iou": 0.65, "conf": 0.001, "class_aware": True}
    assert [o["name"] for o in meta["outputs"]] == ["boxes", "scores", "labels"]
    assert output_bytes_per_image(meta) == 84 * (16 + 4 + 8)
    meta = read_metadata(tiny_exports["ncnn"])
    assert meta["graph"]["output_kind"] == "decoded" and meta["graph"]["nms"] is False
    assert [o["blob"] for o in meta["outputs"]] == ["out0", "out1"]


def _assert_same_results(core, xml_a, xml_b) -> None:
    """Both IRs give bit-identical outputs on one random 64x64 image (f32 inference)."""
    import numpy as np

    x = np.random.default_rng(0).uniform(0, 255, (1, 3, 64, 64)).astype(np.float32)
    cfg = {"INFERENCE_PRECISION_HINT": "f32"}
    a = core.compile_model(str(xml_a), "CPU", cfg)(x)
    b = core.compile_model(str(xml_b), "CPU", cfg)(x)
    for i in range(len(a)):
        np.testing.assert_array_equal(np.asarray(a[i]), np.asarray(b[i]))


def test_save_ir_shares_constants_and_drops_indentation(tiny_exports, tmp_path) -> None:
    """save_ir writes a smaller IR that OpenVINO reads back to the same results as save_model's."""
    import openvino as ov

    from yolox_edge.export.to_openvino import save_ir

    core = ov.Core()
    src = tiny_exports["openvino"] / "yolox_test.xml"
    model = core.read_model(str(src))
    # Give two constants equal content the way NNCF's FakeQuantize ranges come: a duplicate
    # of an existing constant feeding one of its consumers.
    const = next(op for op in model.get_ordered_ops()
                 if op.get_type_name() == "Constant" and len(op.output(0).get_target_inputs()) >= 2)
    dup = ov.opset13.constant(const.get_data().copy())
    next(iter(const.output(0).get_target_inputs())).replace_source_output(dup.output(0))
    plain, compact = tmp_path / "plain.xml", tmp_path / "compact.xml"
    ov.save_model(model, str(plain), compress_to_fp16=False)
    save_ir(core.read_model(str(plain)), compact, compress_to_fp16=False)

    def n_const(p):
        return sum(op.get_type_name() == "Constant" for op in core.read_model(str(p)).get_ordered_ops())

    assert n_const(compact) <= n_const(plain) - 1
    text = compact.read_text()
    assert "\n\t" not in text and "> <" not in text
    assert compact.stat().st_size < 0.9 * plain.stat().st_size
    _assert_same_results(core, plain, compact)
    assert [o.get_any_name() for o in core.read_model(str(compact)).outputs] == ["boxes", "scores", "labels"]


def test_save_ir_narrows_integer_tables(tiny_exports, tmp_path, monkeypatch) -> None:
    """The decode's grid/stride tables are stored as small integers + Convert; results are bit-equal."""
    import numpy as np
    import openvino as ov

    from yolox_edge.export import to_openvino

    # The tiny model's tables (84 anchors) sit under the size cut-off Nano's (3549) clears.
    monkeypatch.setattr(to_openvino, "_NARROW_MIN_ELEMENTS", 64)
    core = ov.Core()
    src = tiny_exports["openvino"] / "yolox_test.xml"
    plain, narrow = tmp_path / "plain.xml", tmp_path / "narrow.xml"
    ov.save_model(core.read_model(str(src)), str(plain), compress_to_fp16=False)
    to_openvino.save_ir(core.read_model(str(src)), narrow, compress_to_fp16=False)

    def int_tables(p):
        return sorted(str(op.get_element_type()) for op in core.read_model(str(p)).get_ordered_ops()
                      if op.get_type_name() == "Constant" and op.get_element_type().is_integral_number()
                      and op.get_output_shape(0) and int(np.prod(list(op.get_output_shape(0)))) >= 64)

    assert int_tables(plain) == []
    assert len(int_tables(narrow)) == 2, int_tables(narrow)  # grid * stride and stride
    assert narrow.with_suffix(".bin").stat().st_size < plain.with_suffix(".bin").stat().st_size - 84 * 3 * 2
    _assert_same_results(core, plain, narrow)


def test_narrowest_integer_type() -> None:
    import numpy as np

    from yolox_edge.export.to_openvino import _narrowest

    assert _narrowest(np.array([0.0, 8, 16, 408])) == ("uint8", 8)  # grid * stride: multiples of 8
    assert _narrowest(np.array([0.0, 1, 2, 51])) == ("uint8", 1)
    assert _narrowest(np.array([-3.0, 5, 300])) == ("int16", 1)
    assert _narrowest(np.array([0.0, 1, 70000])) is None
