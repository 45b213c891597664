"""Accuracy control and the exact 0..255 input quantizer set after NNCF's loop.

The edit changes the model NNCF scored, so the SDK scores the edited graph and writes NNCF's own
graph (calibrated input quantizer) when the edit breaks a limit NNCF's graph met, or when neither
meets it and NNCF's scored higher. The choice is a pure function of the scores; the runs below go
through NNCF's real loop on the tiny model with a COCO-free score computed from each graph.
"""
from __future__ import annotations

import json

import numpy as np
import pytest

from yolox_edge.quantize import accuracy, ptq
from yolox_edge.quantize.accuracy import (CALIBRATED_INPUT, EXACT_INPUT, choose_input_quantizer, onnx_quant,
                                          summary_lines)
from yolox_edge.quantize.ptq import QuantizeOptions, quantize_checkpoint

VAL_ITEMS = 4


@pytest.mark.parametrize("fp32, nncf, exact, limit, keep", [
    (0.5, 0.499, 0.498, 0.005, EXACT_INPUT),  # both within the limit: the exact one (lossless, uint8 input)
    (0.5, 0.499, 0.501, 0.005, EXACT_INPUT),
    (0.5, 0.499, 0.490, 0.005, CALIBRATED_INPUT),  # the edit breaks the limit NNCF's graph met
    (0.3069, 0.3113, 0.3047, 0.001, CALIBRATED_INPUT),  # Nano on coco_tiny, --max-drop 0.001 (OpenVINO)
    (0.5, 0.45, 0.44, 0.005, CALIBRATED_INPUT),  # neither meets it: the higher score
    (0.5, 0.44, 0.45, 0.005, EXACT_INPUT),
    (0.5, 0.44, 0.44, 0.005, EXACT_INPUT),  # a tie: exact
    (0.5, 0.4975, 0.4975, 0.0025, EXACT_INPUT),  # exactly at the limit counts as met (as 'met' does)
    (None, None, 0.3, 0.005, EXACT_INPUT),  # NNCF's figures unknown: nothing to compare with
])
def test_choose_input_quantizer(fp32, nncf, exact, limit, keep) -> None:
    assert choose_input_quantizer(fp32, nncf, exact, limit) == keep


def _entry(**changes) -> dict:
    """An ``accuracy_control`` entry of a run with nothing reverted (figures in AP 0..1)."""
    entry = {"max_drop": 0.001, "data": "d.yaml", "metric": "COCO AP@[.50:.95]", "val_images": 80,
             "fp32_ap": 0.3069, "int8_ap_ptq": 0.3113, "int8_ap_nncf": 0.3113, "int8_ap": 0.3113,
             "drop": -0.0044, "met": True, "input_quantizer": CALIBRATED_INPUT, "int8_ap_exact_input": 0.3047,
             "reverted_ops": [], "quantized_ops": {"ptq": 134, "final": 134}, "convs": 113,
             "float_convs_ptq": 2, "float_convs": 2, "activation_quantizers": {"ptq": 112, "final": 112},
             "whole_split_scorings": 2}
    entry.update(changes)
    return entry


def test_summary_when_the_calibrated_input_quantizer_is_kept() -> None:
    lines = summary_lines(_entry())
    assert lines[1] == "    FP32 30.69; INT8 31.13 after PTQ (within the limit: nothing reverted); 31.13 as written"
    assert lines[2] == ("    input quantizer: NNCF's calibrated one kept; with the exact 0..255 one the model "
                        "scored 30.47, over the limit")
    assert lines[3] == "    drop -0.44 AP points, limit 0.10 (--max-drop 0.001): met"
    assert not any("exactly 0..255; what eval reports" in ln or "written anyway" in ln for ln in lines), lines


def test_summary_when_neither_input_quantizer_meets_the_limit() -> None:
    calibrated = summary_lines(_entry(int8_ap_ptq=0.30, int8_ap_nncf=0.30, int8_ap=0.30, drop=0.0069, met=False,
                                      int8_ap_exact_input=0.29))
    assert ("    input quantizer: NNCF's calibrated one kept, it scored higher than the exact 0..255 one "
            "(30.00 vs 29.00); neither meets the limit") in calibrated
    assert any("NOT met" in ln for ln in calibrated) and any("written anyway" in ln for ln in calibrated)
    exact = summary_lines(_entry(int8_ap_ptq=0.29, int8_ap_nncf=0.29, int8_ap=0.30, drop=0.0069, met=False,
                                 input_quantizer=EXACT_INPUT, int8_ap_exact_input=0.30))
    assert ("    input quantizer: the exact 0..255 one kept, it scored higher than NNCF's calibrated one "
            "(30.00 vs 29.00); neither meets the limit") in exact
    assert "    (as written: after NNCF, the input quantizer is set to exactly 0..255; what eval reports)" in exact
    assert any("NOT met" in ln for ln in exact)


def test_summary_names_no_input_edit_that_was_not_made() -> None:
    """Not raw pixels (no edit: None) or no input quantizer to edit: a score that moved between NNCF's
    pass and the one as written is not put down to the 0..255 quantizer."""
    for kept in (None, CALIBRATED_INPUT):
        lines = summary_lines(_entry(int8_ap=0.3110, input_quantizer=kept, int8_ap_exact_input=None))
        assert not any("input quantizer" in ln for ln in lines), lines


def test_summary_of_an_entry_from_before_the_choice() -> None:
    """metadata.json written before the choice has no input_quantizer keys: read as the exact input."""
    old = _entry(int8_ap=0.3047, drop=0.0022, met=False)
    del old["input_quantizer"], old["int8_ap_exact_input"]
    lines = summary_lines(old)
    assert "    (as written: after NNCF, the input quantizer is set to exactly 0..255; what eval reports)" in lines
    assert lines[-1].endswith("the written one (exact input quantizer) does not; it is written anyway.")


def _onnx_input_exact(model) -> bool:
    """True when the QuantizeLinear on the graph input has scale 1 (pixel_input.exact_onnx_input)."""
    from onnx import numpy_helper

    g = model.graph
    inits = {i.name: numpy_helper.to_array(i) for i in g.initializer}
    qs = [n for n in g.node if n.op_type == "QuantizeLinear" and n.input[0] == g.input[0].name]
    assert len(qs) == 1, "the tiny model's INT8 graph has one input quantizer"
    return float(inits[qs[0].input[1]]) == 1.0


def counting_validation(score, whole: list):
    """A stand-in for ``ptq._validation``: ``score(model)`` over VAL_ITEMS items; appends to ``whole``
    each call that saw every item (NNCF's and the SDK's own passes over the val split)."""
    import nncf

    def install(fmt, data, pre, class_names, kind, *, threads=None):
        items = list(range(VAL_ITEMS))

        def fn(model, seen):
            seen = list(seen)
            if len(seen) == VAL_ITEMS:
                whole.append(model)
            return score(model), None
        return nncf.Dataset(items), fn, items
    return install


@pytest.mark.parametrize("exact_ap, written, extra_passes", [
    (0.498, EXACT_INPUT, 1),  # within --max-drop 0.005 either way: the exact one, scored once
    (0.490, CALIBRATED_INPUT, 2),  # the edit breaks the limit: NNCF's graph, scored again as written
])
def test_the_written_onnx_model_meets_the_limit_nncf_met(exact_ap, written, extra_passes, tiny_ckpt, tiny_calib,
                                                          tmp_path, monkeypatch):
    """FP32 scores 0.5, NNCF's PTQ graph 0.499 (within 0.005: nothing reverted); with the exact input
    quantizer the graph scores ``exact_ap``. Before the fix the exact graph was always written, and
    with 0.490 the summary said NOT met about a model NNCF had accepted."""
    import onnx

    def score(model) -> float:
        if not onnx_quant(model).activation_quantizers:
            return 0.5
        return exact_ap if _onnx_input_exact(model) else 0.499

    whole: list = []
    monkeypatch.setattr(ptq, "_validation", counting_validation(score, whole))
    opts = QuantizeOptions(accuracy_control=True, data="spec.yaml", max_drop=0.005, keep_float=0, nncf_keep_float=0)
    res = quantize_checkpoint(tiny_ckpt, calib=tiny_calib, format="onnx", out=tmp_path / "out", opts=opts)
    quant = res.metadata["quantization"]
    ac = quant["accuracy_control"]
    assert quant["input_quantizer"] == ac["input_quantizer"] == written
    assert ac["fp32_ap"] == 0.5 and ac["int8_ap_nncf"] == 0.499 and ac["whole_split_scorings"] == 2
    assert ac["int8_ap_exact_input"] == exact_ap and ac["met"] is True
    assert ac["int8_ap"] == (exact_ap if written == EXACT_INPUT else 0.499)
    assert len(whole) - ac["whole_split_scorings"] == extra_passes  # at most one pass more than before
    shipped = onnx.load(str(res.model_file))
    assert _onnx_input_exact(shipped) == (written == EXACT_INPUT)
    assert score(shipped) == ac["int8_ap"]  # the recorded figure is the file's
    with open(res.directory / "metadata.json") as f:
        assert json.load(f)["quantization"]["accuracy_control"] == ac


def test_openvino_writes_nncf_graph_when_it_is_chosen(tiny_ckpt, tiny_calib, tmp_path, monkeypatch):
    """OpenVINO: the choice made, the IR written is NNCF's graph, input range as NNCF calibrated it
    (so the runtime keeps the float input), scored again as written."""
    import openvino as ov

    from yolox_edge.runtime.openvino_backend import _exact_on_pixels, input_fake_quantizes

    whole: list = []
    monkeypatch.setattr(ptq, "_validation", counting_validation(lambda model: 0.5, whole))
    chosen = []

    def choose(*args):
        chosen.append(args)
        return CALIBRATED_INPUT
    monkeypatch.setattr(accuracy, "choose_input_quantizer", choose)
    opts = QuantizeOptions(accuracy_control=True, data="spec.yaml", max_drop=0.005, keep_float=0, nncf_keep_float=0)
    res = quantize_checkpoint(tiny_ckpt, calib=tiny_calib, format="openvino", out=tmp_path / "out", opts=opts)
    assert chosen == [(0.5, 0.5, 0.5, 0.005)]
    quant = res.metadata["quantization"]
    assert quant["input_quantizer"] == quant["accuracy_control"]["input_quantizer"] == CALIBRATED_INPUT
    assert len(whole) - quant["accuracy_control"]["whole_split_scorings"] == 2
    ir = ov.Core().read_model(str(res.model_file))
    fqs = input_fake_quantizes(ir)
    assert len(fqs) == 1 and not _exact_on_pixels(ir)
    high = float(np.max(fqs[0].input_value(2).get_node().get_data()))
    assert 0 < high < 255  # NNCF's calibrated range (the synthetic images are dark), not 0..255
