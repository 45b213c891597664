"""The FP32-vs-INT8 report table (quantize --report)."""
from __future__ import annotations

from yolox_edge.quantize.report import ReportRow, format_table


def test_sizes_are_mib_as_bench_prints_them() -> None:
    """The report said '3.15 MB' (1e6 bytes) for a model bench listed as 3.00 MiB: one model, two sizes."""
    row = ReportRow("onnx", 0.4, 0.38, 0.6, 0.58, 3 * 1024 ** 2, 1024 ** 2 + 1024 ** 2 // 2, "f", "i")
    table = format_table([row])
    assert "| 3.00 MiB | 1.50 MiB | 50.00% |" in table
    assert " MB " not in table
