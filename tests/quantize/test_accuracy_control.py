"""NNCF accuracy control (--accuracy-control): what it is given and what it reports.

NNCF's loop is driven for real on the tiny model; where a test needs a known outcome, the
COCO scoring is replaced by a score computed from the candidate graph itself, so that the
figures the SDK records can be checked against the graphs NNCF produced.
"""
from __future__ import annotations

import pytest

from yolox_edge.quantize import ptq
from yolox_edge.quantize.ptq import QuantizeOptions, quantize_checkpoint

VAL_ITEMS = 4


def fake_validation(score):
    """A stand-in for ``ptq._validation``: ``score(model) -> float`` over VAL_ITEMS items."""
    import nncf

    def install(fmt, data, pre, class_names, kind):
        return nncf.Dataset(list(range(VAL_ITEMS))), lambda model, items: (score(model), None)
    return install


def test_accuracy_control_takes_qat_weights_without_bias_correction(tiny_ckpt, tiny_calib, tmp_path, monkeypatch):
    """QAT weights are quantized with bias correction off; with --accuracy-control that setting went to
    NNCF under the keyword of nncf.quantize and the run died with a TypeError."""
    monkeypatch.setattr(ptq, "_validation", fake_validation(lambda model: 0.5))
    opts = QuantizeOptions(accuracy_control=True, data="unused", bias_correction=False, method="qat",
                           keep_float=0, nncf_keep_float=0)
    res = quantize_checkpoint(tiny_ckpt, tiny_calib, "onnx", tmp_path / "out", opts)
    assert res.model_file.is_file() and res.metadata["quantization"]["bias_correction"] is False
