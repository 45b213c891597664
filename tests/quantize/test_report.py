"""The FP32-vs-INT8 report (quantize --report): its table, its per-class lines, its notes, and
the runs that write it."""
from __future__ import annotations

import json

import pytest
from quant_helpers import Stop, stop

from yolox_edge.errors import UserError
from yolox_edge.quantize.report import ReportRow, format_table


def test_sizes_are_mib_as_bench_prints_them() -> None:
    """The report said '3.15 MB' (1e6 bytes) for a model bench listed as 3.00 MiB: one model, two sizes."""
    row = ReportRow("onnx", 0.4, 0.38, 0.6, 0.58, 3 * 1024 ** 2, 1024 ** 2 + 1024 ** 2 // 2, "f", "i")
    table = format_table([row])
    assert "| 3.00 MiB | 1.50 MiB | 50.00% |" in table
    assert " MB " not in table


def test_report_data_of_another_class_count_fails_before_quantizing(tiny_ckpt, refdata, tmp_path, monkeypatch):
    import yolox_edge.quantize.pipeline as pipeline

    def not_reached(*a, **k):
        raise AssertionError("calibration was loaded: the class count was checked too late")

    monkeypatch.setattr(pipeline, "load_calibration_set", not_reached)
    with pytest.raises(UserError, match="coco_tiny.*80 classes, the model has 3"):
        pipeline.run_quantize(tiny_ckpt, calib=tmp_path / "calib", formats=["onnx"], out=tmp_path / "out", report=True,
                              data=str(refdata / "coco_tiny" / "data.yaml"), progress=False, log=None)


def test_report_on_data_whose_names_differ_says_so(tiny_ckpt, shapes_spec, tmp_path, monkeypatch, capsys):
    """The model's a, b, c against the data's circle, square, triangle: AP pairs them by
    position; eval said so, quantize --report did not."""
    import yolox_edge.quantize.pipeline as pipeline

    monkeypatch.setattr(pipeline, "load_calibration_set", stop)  # the note comes before any work
    with pytest.raises(Stop):
        pipeline.run_quantize(tiny_ckpt, calib=tmp_path / "calib", formats=["onnx"], out=tmp_path / "out", report=True,
                              data=str(shapes_spec))
    assert "note: the model's classes (a, b, c) are not the data's (circle, square, triangle)" in capsys.readouterr().out


def test_report_writes_its_table_and_says_where(tiny_ckpt, shapes_spec, tmp_path, capsys):
    from yolox_edge.quantize.calib import build_calibration_set
    from yolox_edge.quantize.pipeline import run_quantize

    build_calibration_set(shapes_spec, tmp_path / "calib", img_size=64, count=4)
    run_quantize(tiny_ckpt, calib=tmp_path / "calib", formats=["onnx"], out=tmp_path / "out", report=True,
                 data=str(shapes_spec))
    out, err = capsys.readouterr()
    assert (tmp_path / "out" / "report.md").read_text().startswith("FP32 vs INT8")
    assert f"report -> {tmp_path / 'out' / 'report.md'}, {tmp_path / 'out' / 'report.json'}" in out
    # one format: --out is the INT8 export, its FP32 reference inside it (as the README says)
    assert (tmp_path / "out" / "metadata.json").is_file() and (tmp_path / "out" / "fp32" / "onnx").is_dir()
    assert "eval onnx FP32" in err and "eval onnx INT8" in err  # the bars say which eval runs
    # per class: FP32 and INT8 AP of each class the val split has boxes of, and the worst line
    doc = json.loads((tmp_path / "out" / "report.json").read_text())
    per_class = doc["rows"][0]["per_class"]
    assert {c["class"] for c in per_class} <= {"circle", "square", "triangle"} and len(per_class) >= 2
    assert all(c["instances"] > 0 and 0 <= c["int8_ap"] <= 1 for c in per_class)
    assert "AP drop per class, largest first" in (tmp_path / "out" / "report.md").read_text()


def test_report_says_when_the_int8_graph_approximates_silu(rational_run):
    """--silu rational --report: the FP32 reference keeps exact SiLU, so the drop includes the
    approximation; the report said nothing of it."""
    _, out, printed, _ = rational_run
    md = (out / "report.md").read_text()
    assert "openvino: the INT8 graph computes SiLU by the rational approximation" in md
    assert "onnx: the INT8 graph" not in md and "the drop includes the approximation" in printed
    assert json.loads((out / "report.json").read_text())["rational_silu"] == ["openvino"]


def test_worst_classes_line_orders_by_ap_lost() -> None:
    from yolox_edge.quantize.report import ReportRow, class_drops, worst_classes_line

    fp32 = [{"class": n, "instances": 5, "AP": ap, "AP50": ap} for n, ap in (("a", 0.5), ("b", 0.4), ("c", -1.0), ("d", 0.3))]
    int8 = [{"class": n, "instances": 5, "AP": ap, "AP50": ap} for n, ap in (("a", 0.45), ("b", 0.2), ("c", -1.0), ("d", 0.31))]
    drops = class_drops(fp32, int8)
    assert [c["class"] for c in drops] == ["a", "b", "d"]  # no boxes of c: nothing to compare
    row = ReportRow("onnx", 0.4, 0.32, 0.6, 0.5, 10, 3, "f", "i", drops)
    assert worst_classes_line(row, 2) == "onnx: b +20.00 (5 boxes), a +5.00 (5 boxes)"
    row.per_class[0]["instances"] = 1
    assert worst_classes_line(row, 3).endswith("d -1.00 (5 boxes)") and "a +5.00 (1 box)," in worst_classes_line(row)
    assert class_drops(fp32, None) == [] and worst_classes_line(ReportRow("onnx", 0, 0, 0, 0, 1, 1, "f", "i")) == ""
