"""NNCF accuracy control (--accuracy-control): what it is given and what it reports.

NNCF's loop runs for real on the tiny model; where a test needs a known outcome, the COCO
scoring is replaced by a score computed from the candidate graph itself, so the figures the
SDK records can be checked against the graphs NNCF produced.
"""
from __future__ import annotations

import json

from yolox_edge.quantize import ptq
from yolox_edge.quantize.accuracy import onnx_quant, summary_lines
from yolox_edge.quantize.ptq import QuantizeOptions, quantize_checkpoint

VAL_ITEMS = 4


def fake_validation(score):
    """A stand-in for ``ptq._validation``: ``score(model) -> float`` over VAL_ITEMS items."""
    import nncf

    def install(fmt, data, pre, class_names, kind, *, threads=None):
        items = list(range(VAL_ITEMS))
        return nncf.Dataset(items), lambda model, items: (score(model), None), items
    return install


def test_accuracy_control_takes_qat_weights_without_bias_correction(tiny_ckpt, tiny_calib, tmp_path, monkeypatch):
    """QAT weights are quantized with bias correction off; with --accuracy-control that setting went to
    NNCF under the keyword of nncf.quantize and the run died with a TypeError."""
    monkeypatch.setattr(ptq, "_validation", fake_validation(lambda model: 0.5))
    opts = QuantizeOptions(accuracy_control=True, data="unused", bias_correction=False, method="qat",
                           keep_float=0, nncf_keep_float=0)
    res = quantize_checkpoint(tiny_ckpt, calib=tiny_calib, format="onnx", out=tmp_path / "out", opts=opts)
    assert res.model_file.is_file() and res.metadata["quantization"]["bias_correction"] is False


def test_accuracy_control_records_what_nncf_measured_and_reverted(tiny_ckpt, tiny_calib, tmp_path, monkeypatch):
    """A candidate scores 0.5 - 0.1 * (its activation quantizers / the PTQ graph's): the PTQ graph
    misses the limit by a hair, so NNCF reverts one group and stops. The recorded FP32 / PTQ / final
    scores must be those of the graphs it had (counted again here, independently)."""
    import onnx

    ptq_count = []

    def score(model):
        n = onnx_quant(model).activation_quantizers
        if n and not ptq_count:  # the first quantized graph NNCF scores is its PTQ model
            ptq_count.append(n)
        return 0.5 - 0.1 * n / ptq_count[0] if n else 0.5

    monkeypatch.setattr(ptq, "_validation", fake_validation(score))
    opts = QuantizeOptions(accuracy_control=True, data="spec.yaml", max_drop=0.099, keep_float=0, nncf_keep_float=0)
    res = quantize_checkpoint(tiny_ckpt, calib=tiny_calib, format="onnx", out=tmp_path / "out", opts=opts)
    ac = res.metadata["quantization"]["accuracy_control"]
    assert ac["max_drop"] == 0.099 and ac["data"] == "spec.yaml"  # the keys it always had
    n_ptq, n_final = ac["activation_quantizers"]["ptq"], ac["activation_quantizers"]["final"]
    assert n_ptq == ptq_count[0] and n_final < n_ptq  # the PTQ model missed the limit: something was reverted
    assert ac["fp32_ap"] == 0.5 and ac["val_images"] == VAL_ITEMS
    assert abs(ac["int8_ap_ptq"] - 0.4) < 1e-9
    assert abs(ac["int8_ap_nncf"] - (0.5 - 0.1 * n_final / n_ptq)) < 1e-9
    assert ac["int8_ap"] == ac["int8_ap_nncf"]  # scored again as written: the input quantizer edit keeps the count
    assert ac["met"] is True and abs(ac["drop"] - (0.5 - ac["int8_ap"])) < 1e-12 and ac["whole_split_scorings"] > 2
    # Counted again on the file written: the recorded final graph is the one shipped.
    shipped = onnx_quant(onnx.load(str(res.model_file)))
    assert shipped.activation_quantizers == n_final and len(shipped.quantized_ops) == ac["quantized_ops"]["final"]
    assert len(shipped.float_convs) == ac["float_convs"] and ac["float_convs_ptq"] == 0  # nncf_keep_float=0
    assert 0 < len(ac["reverted_ops"]) == ac["quantized_ops"]["ptq"] - ac["quantized_ops"]["final"]
    # Reverted convs are named by detector module (as float_convs), other ops by graph node.
    from yolox_edge.engine.checkpoint import load_model

    modules = dict(load_model(tiny_ckpt)[0].named_modules())
    convs = [n for n in ac["reverted_ops"] if n in modules]
    assert all(n.startswith("/detector/") for n in ac["reverted_ops"] if n not in modules), ac["reverted_ops"]
    assert ac["float_convs"] == len(convs)
    with open(res.directory / "metadata.json") as f:
        assert json.load(f)["quantization"]["accuracy_control"] == ac


def test_cli_says_when_the_limit_is_not_met_and_still_writes_the_model(tiny_ckpt, tiny_calib, tmp_path,
                                                                        monkeypatch, run_cli):
    """Every INT8 candidate scores 0.2 under FP32: NNCF reverts all it can and gives up. That is
    not an error; the summary says so, with the figures, and the export is written."""
    from yolox_edge.data.synthetic import make_shapes_dataset

    first = []

    def score(model):  # NNCF's first call is on the FP32 model (ONNX: the same object each time)
        if not first:
            first.append(model)
        return 0.5 if model is first[0] else 0.3

    monkeypatch.setattr(ptq, "_validation", fake_validation(score))
    spec = make_shapes_dataset(tmp_path / "shapes", n_train=1, n_val=2, size=(64, 80))
    out = tmp_path / "q"
    code, stdout, err = run_cli("quantize", tiny_ckpt, "--calib", tiny_calib, "--format", "onnx", "--out", out,
                                "--accuracy-control", "--data", spec, "--max-drop", "0.01", "--nncf-keep-float", "0")
    assert code == 0, err
    lines = [ln for ln in stdout.splitlines() if ln.startswith("[onnx]")]
    text = "\n".join(lines)
    assert f"COCO AP@[.50:.95] on {VAL_ITEMS} val images of {spec}" in text
    assert "FP32 50.00; INT8 30.00 after PTQ, 30.00 after reverting ops to float; 30.00 as written" in text, text
    assert "drop 20.00 AP points, limit 1.00 (--max-drop 0.01): NOT met" in text, text
    assert "written anyway" in text and "every quantized op was reverted" in text
    meta = json.loads((out / "metadata.json").read_text())
    ac = meta["quantization"]["accuracy_control"]
    assert ac["met"] is False and ac["fp32_ap"] == 0.5 and ac["int8_ap"] == 0.3
    assert (out / meta["model_file"]).is_file() and not list(out.glob(".quantize_*"))  # no temp folder left


def test_threads_reach_our_openvino_scoring_not_nncfs_own_compiles(tiny_ckpt, tiny_calib, tmp_path, monkeypatch):
    """threads=1: the graph as written is compiled and scored at 1 thread (it was OpenVINO's
    default). NNCF compiles its candidates through a Core of its own with no thread setting, so
    they run at OpenVINO's default, as the --threads help says (observed, not timed)."""
    import openvino as ov

    from yolox_edge.quantize.accuracy import ScoreLog

    def threads(model) -> int:
        return int(model.get_property("INFERENCE_NUM_THREADS"))

    seen: list[int] = []
    ours: list[int] = []
    real_score = ScoreLog.score

    def our_score(self, model):
        ours.append(threads(model))
        return real_score(self, model)

    monkeypatch.setattr(ScoreLog, "score", our_score)
    monkeypatch.setattr(ptq, "_validation", fake_validation(lambda model: seen.append(threads(model)) or 0.5))
    opts = QuantizeOptions(accuracy_control=True, data="unused", keep_float=0, nncf_keep_float=0, threads=1)
    quantize_checkpoint(tiny_ckpt, calib=tiny_calib, format="openvino", out=tmp_path / "out", opts=opts)
    assert ours and ours == [1] * len(ours) and seen[-len(ours):] == ours  # ours come last, after NNCF's
    p = ov.opset13.parameter([1, 4], ov.Type.f32)
    default = threads(ov.Core().compile_model(ov.Model([ov.opset13.relu(p)], [p]), "CPU"))
    assert set(seen[:-len(ours)]) == {default}, (seen, ours)


def test_threads_reach_the_onnxruntime_sessions_that_score_candidates(tiny_ckpt, tiny_calib, shapes_spec, tmp_path,
                                                                     monkeypatch):
    """ONNX candidates are scored in sessions this package makes: at ``threads`` intra-op threads
    (they ran at onnxruntime's default); NNCF's own statistics sessions keep the default (0)."""
    import sys

    import onnxruntime as ort

    made: list[tuple[bool, int]] = []  # (made while scoring, intra-op threads)
    real = ort.InferenceSession

    def session(model, options=None, *a, **k):
        f, scoring = sys._getframe(), False
        while f is not None and not scoring:
            scoring, f = f.f_code.co_name == "validation_fn", f.f_back
        made.append((scoring, options.intra_op_num_threads if options is not None else 0))
        return real(model, options, *a, **k)

    monkeypatch.setattr(ort, "InferenceSession", session)
    opts = QuantizeOptions(accuracy_control=True, data=str(shapes_spec), keep_float=0, nncf_keep_float=0, threads=1)
    quantize_checkpoint(tiny_ckpt, calib=tiny_calib, format="onnx", out=tmp_path / "out", opts=opts)
    scoring = [n for s, n in made if s]
    assert scoring and set(scoring) == {1}, made
    assert {n for s, n in made if not s} == {0}, made  # NNCF's: no way to pass a count


def test_cli_refuses_a_one_image_val_split_before_quantizing(tiny_ckpt, tiny_calib, tmp_path, run_cli):
    from yolox_edge.data.synthetic import make_shapes_dataset

    spec = make_shapes_dataset(tmp_path / "shapes", n_train=1, n_val=1, size=(64, 80))
    code, _, err = run_cli("quantize", tiny_ckpt, "--calib", tiny_calib, "--format", "openvino", "--out",
                           tmp_path / "q", "--accuracy-control", "--data", spec)
    assert code == 2 and "the val split has 1 image;" in err and "at least 2" in err, err
    assert not (tmp_path / "q").exists()


def test_summary_when_ptq_meets_the_limit():
    """The figures of the Nano on coco_tiny (README): no revert, the written model scores higher
    than NNCF's candidate because its input quantizer is set afterwards."""
    entry = {"max_drop": 0.005, "data": "d.yaml", "metric": "COCO AP@[.50:.95]", "val_images": 80,
             "fp32_ap": 0.30690, "int8_ap_ptq": 0.30301, "int8_ap_nncf": 0.30301, "int8_ap": 0.30468,
             "drop": 0.00222, "met": True, "reverted_ops": [], "quantized_ops": {"ptq": 134, "final": 134},
             "convs": 113, "float_convs_ptq": 2, "float_convs": 2,
             "activation_quantizers": {"ptq": 112, "final": 112}, "whole_split_scorings": 2}
    assert summary_lines(entry) == [
        "accuracy control: COCO AP@[.50:.95] on 80 val images of d.yaml",
        "    FP32 30.69; INT8 30.30 after PTQ (within the limit: nothing reverted); 30.47 as written",
        "    (as written: after NNCF, the input quantizer is set to exactly 0..255; what eval reports)",
        "    drop 0.22 AP points, limit 0.50 (--max-drop 0.005): met",
        "    float convs: 2 of 113 (2 before PTQ, --nncf-keep-float); accuracy control reverted none of the 134 "
        "quantized ops"]
    assert summary_lines({"max_drop": 0.005, "data": "d.yaml"}) == []  # an export from before these figures
    assert summary_lines(None) == []
