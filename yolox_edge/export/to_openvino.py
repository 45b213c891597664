"""OpenVINO IR export (xml + bin) through ``openvino.convert_model``, FP32 or FP16 weights."""
from __future__ import annotations

from pathlib import Path

import torch

from .to_onnx import export_onnx
from .wrapper import DeployModel


def export_openvino(deploy: DeployModel, example: torch.Tensor, xml_path: Path, *, precision: str = "fp32",
                    dynamic_batch: bool = False) -> str:
    """Write ``xml_path`` (+ .bin); returns the input name.

    The IR is converted from the same simplified ONNX the ONNX export writes, so both
    formats run one graph (names boxes/scores/labels kept). ``fp16`` compresses the
    weights (OpenVINO decompresses them at load; execution precision is a runtime hint).
    """
    import openvino as ov

    onnx_path = xml_path.with_suffix(".tmp.onnx")
    try:
        input_name = export_onnx(deploy, example, onnx_path, dynamic_batch=dynamic_batch)
        model = ov.convert_model(str(onnx_path))
        # save_model compresses to fp16 by default: say what we want explicitly.
        ov.save_model(model, str(xml_path), compress_to_fp16=(precision == "fp16"))
    finally:
        onnx_path.unlink(missing_ok=True)
    return input_name


def ir_ops(xml_path: str | Path) -> dict[str, int]:
    """Op type -> count in an IR (used to report what the graph contains)."""
    import openvino as ov

    counts: dict[str, int] = {}
    for op in ov.Core().read_model(str(xml_path)).get_ordered_ops():
        t = op.get_type_name()
        counts[t] = counts.get(t, 0) + 1
    return counts
