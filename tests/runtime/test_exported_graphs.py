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
    for op in ("Exp", "Sigmoid", "Add", "Mul", "Concat", "ReduceMax", "ArgMax", "NonMaxSuppression", "TopK",
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
    assert "Reorg" in types  # the Focus stem, no YoloV5Focus custom layer
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
