"""Accuracy control and the exact 0..255 input quantizer set after NNCF's loop.

The edit changes the model NNCF scored, so the SDK scores the edited graph and writes NNCF's own
graph (calibrated input quantizer) when the edit breaks a limit NNCF's graph met, or when neither
meets it and NNCF's scored higher. The choice is a pure function of the scores; the runs below go
through NNCF's real loop on the tiny model with a COCO-free score computed from each graph.
"""
from __future__ import annotations

import pytest

from yolox_edge.quantize.accuracy import CALIBRATED_INPUT, EXACT_INPUT, choose_input_quantizer, summary_lines


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


def test_summary_of_an_entry_from_before_the_choice() -> None:
    """metadata.json written before the choice has no input_quantizer keys: read as the exact input."""
    old = _entry(int8_ap=0.3047, drop=0.0022, met=False)
    del old["input_quantizer"], old["int8_ap_exact_input"]
    lines = summary_lines(old)
    assert "    (as written: after NNCF, the input quantizer is set to exactly 0..255; what eval reports)" in lines
    assert lines[-1].endswith("the written one (exact input quantizer) does not; it is written anyway.")
