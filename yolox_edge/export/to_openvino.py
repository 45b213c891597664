"""OpenVINO IR export (xml + bin) through ``openvino.convert_model``, FP32 or FP16 weights."""
from __future__ import annotations

from pathlib import Path

import torch

from .to_onnx import export_onnx
from .wrapper import DeployModel


def export_openvino(deploy: DeployModel, example: torch.Tensor, xml_path: Path, *, precision: str = "fp32",
                    dynamic_batch: bool = False, silu: str = "exact") -> tuple[str, int]:
    """Write ``xml_path`` (+ .bin); returns (the input name, SiLUs rewritten).

    The IR is converted from the same simplified ONNX the ONNX export writes, so both
    formats run one graph (names boxes/scores/labels kept). ``fp16`` compresses the
    weights (OpenVINO decompresses them at load; execution precision is a runtime hint).
    ``silu="rational"``: see silu_rational.py.
    """
    import openvino as ov

    from ..telemetry import converter_telemetry_off

    onnx_path = xml_path.with_suffix(".tmp.onnx")
    try:
        input_name = export_onnx(deploy, example, onnx_path, dynamic_batch=dynamic_batch)
        with converter_telemetry_off():
            model = ov.convert_model(str(onnx_path))
        rewritten = save_ir(model, xml_path, compress_to_fp16=(precision == "fp16"), silu=silu)
    finally:
        onnx_path.unlink(missing_ok=True)
    return input_name, rewritten


def _redirect(old, new) -> None:
    """Every consumer of node ``old``'s output reads ``new``'s instead (old drops out of the graph)."""
    for target in list(old.output(0).get_target_inputs()):
        target.replace_source_output(new.output(0))


def _share_equal_constants(model) -> int:
    """Point every consumer of a constant at one node per distinct (type, shape, bytes).

    NNCF gives each FakeQuantize four range constants, and input and output ranges are
    usually equal; the .bin already stores equal data once, but the .xml keeps a layer
    per copy (about a third of an INT8 IR's constants). Returns the number merged.
    """
    seen: dict = {}
    merged = 0
    for op in model.get_ordered_ops():
        if op.get_type_name() != "Constant":
            continue
        key = (str(op.get_element_type()), tuple(op.get_output_shape(0)), op.get_data().tobytes())
        keep = seen.setdefault(key, op)
        if keep is op:
            continue
        _redirect(op, keep)
        merged += 1
    return merged


# Narrowest integer types tried for integer-valued float tables, smallest first.
_NARROW_TYPES = ("uint8", "int8", "uint16", "int16")
_NARROW_MIN_ELEMENTS = 1024  # below this the extra Convert layer's XML outweighs the saving


def _narrowest(data) -> tuple[str, int] | None:
    """(integer type, power-of-two divisor) storing ``data`` exactly in the fewest bytes.

    The divisor lets a table such as grid * stride (0..408, multiples of 8 in every level)
    fit u8; dividing by a power of two is exact in float, so the product restores it bit for bit.
    """
    import numpy as np

    nonzero = np.abs(data[data != 0]).astype(np.int64)
    divisor = 1
    while nonzero.size and divisor < 2 ** 16 and np.all(nonzero % (divisor * 2) == 0):
        divisor *= 2
    best = None
    for d in sorted({1, divisor}):
        lo, hi = float(data.min()) / d, float(data.max()) / d
        t = next((t for t in _NARROW_TYPES if np.iinfo(t).min <= lo and hi <= np.iinfo(t).max), None)
        # A divisor costs one more (constant-folded) layer: take it only for a narrower type.
        if t is not None and (best is None or np.dtype(t).itemsize < np.dtype(best[0]).itemsize):
            best = (t, d)
    return best


def _narrow_integer_constants(model) -> int:
    """Store large integer-valued f32 constants (the decode's grid and stride tables) as
    u8/i8/u16/i16 + Convert (+ Multiply by a power of two). The plugin folds these at
    compile time, so inference is unchanged; the .bin loses ~3 bytes per entry (~31 KB for
    Nano at 416). Returns the number of constants narrowed.
    """
    import numpy as np
    import openvino as ov

    narrowed = 0
    for op in model.get_ordered_ops():
        if op.get_type_name() != "Constant" or op.get_element_type() != ov.Type.f32:
            continue
        data = op.get_data()
        if data.size < _NARROW_MIN_ELEMENTS or not np.all(np.isfinite(data)) or np.any(data != np.round(data)):
            continue
        plan = _narrowest(data)
        if plan is None:
            continue
        dtype, divisor = plan
        wide = ov.opset13.convert(ov.opset13.constant((data / divisor).astype(dtype)), "f32")
        if divisor > 1:
            wide = ov.opset13.multiply(wide, ov.opset13.constant(np.float32(divisor)))
        wide.set_friendly_name(op.get_friendly_name())
        _redirect(op, wide)
        narrowed += 1
    return narrowed


def save_ir(model, xml_path: str | Path, *, compress_to_fp16: bool, silu: str = "exact") -> int:
    """``ov.save_model`` with equal constants shared, integer tables narrowed (not with
    ``compress_to_fp16``), and the XML written without indentation; ``silu="rational"`` first
    rewrites each SiLU (silu_rational.py). Returns the number of SiLUs rewritten.

    The three savings change only the bytes on disk (the graph read back computes the same, tested):
    the indentation alone is ~16 % of an IR's XML, which matters for what an app ships.
    """
    import re

    import openvino as ov

    from .silu_rational import SILU_MODES, rewrite_silu

    if silu not in SILU_MODES:
        raise ValueError(f"silu must be one of {SILU_MODES}, not {silu!r}")
    rewritten = rewrite_silu(model) if silu == "rational" else 0
    _share_equal_constants(model)
    if not compress_to_fp16:
        # A narrowed table (u8 + Convert + Multiply) reads to OpenVINO as weights compressed
        # already, and it then compresses none to fp16; fp16 halves those tables anyway.
        _narrow_integer_constants(model)
    # save_model compresses to fp16 by default: say what we want explicitly.
    ov.save_model(model, str(xml_path), compress_to_fp16=compress_to_fp16)
    text = Path(xml_path).read_text(encoding="utf-8")
    # Only whitespace between tags goes: IR XML has no text content that could hold it
    # ('<' cannot occur inside an attribute value).
    Path(xml_path).write_text(re.sub(r">\s+<", "><", text), encoding="utf-8")
    return rewritten


def ir_ops(xml_path: str | Path) -> dict[str, int]:
    """Op type -> count in an IR (used to report what the graph contains)."""
    import openvino as ov

    counts: dict[str, int] = {}
    for op in ov.Core().read_model(str(xml_path)).get_ordered_ops():
        t = op.get_type_name()
        counts[t] = counts.get(t, 0) + 1
    return counts
