"""QAT end to end on a tiny model: NNCF fake quantization, one epoch of the project trainer,
INT8 export with method 'qat' in the metadata; wrong class count is a clear error."""
from __future__ import annotations

import pytest

from yolox_edge.errors import UserError


@pytest.fixture(scope="module")
def shapes_spec(tmp_path_factory):
    from yolox_edge.data.synthetic import make_shapes_dataset

    return make_shapes_dataset(tmp_path_factory.mktemp("shapes"), n_train=8, n_val=4, size=(64, 80))


@pytest.mark.slow
def test_qat_fine_tunes_and_exports_int8(tiny_ckpt, shapes_spec, tmp_path):
    from yolox_edge.quantize.calib import build_calibration_set
    from yolox_edge.quantize.pipeline import run_quantize
    from yolox_edge.runtime.loader import open_model

    build_calibration_set(shapes_spec, tmp_path / "calib", size=64, count=8)
    res = run_quantize(tiny_ckpt, tmp_path / "calib", ["onnx"], tmp_path / "out", qat=True, data=str(shapes_spec),
                       epochs=1, batch=4, topk=0, keep_float=0, nncf_keep_float=0, subset_size=6,
                       verbose=False)["onnx"]
    q = res.metadata["quantization"]
    # Fine-tuned weights are exported without a second bias correction; when the start (epoch 0)
    # is kept, the export is PTQ's and says so, the QAT attempt recorded beside it.
    fine_tuned = q["qat"]["kept_epoch"] > 0
    assert res.metadata["precision"] == "int8" and q["method"] == ("qat" if fine_tuned else "ptq")
    assert q["qat"]["epochs"] == 1 and "Trainer" in q["qat"]["trainer"]
    assert q["bias_correction"] is not fine_tuned
    assert q["qat"]["calibration_images"] == 6  # --subset-size holds for QAT's statistics too (it took all 8)
    import json

    on_disk = json.loads((res.directory / "metadata.json").read_text())
    assert on_disk["quantization"]["method"] == q["method"] and "qat" in on_disk["quantization"]
    backend, _ = open_model(res.model_file)
    import numpy as np

    out = backend.infer(np.full((1, 3, 64, 64), 114, np.float32))
    assert np.isfinite(out["scores"]).all() and out["scores"].shape == (1, 84, 3)


def test_qat_refuses_data_of_another_class_count(tiny_ckpt, refdata, tmp_path):
    from yolox_edge.engine.checkpoint import load_model
    from yolox_edge.quantize.calib import build_calibration_set
    from yolox_edge.quantize.qat import run_qat

    cal = build_calibration_set(refdata / "images", tmp_path / "c", size=64, count=2)
    model, ckpt = load_model(tiny_ckpt)
    with pytest.raises(UserError, match="80 classes, the model has 3"):
        run_qat(model, ckpt, cal, str(refdata / "coco_tiny" / "data.yaml"), log=lambda *_: None)


@pytest.mark.slow
def test_qat_keeps_the_start_when_fine_tuning_does_not_help(tiny_ckpt, shapes_spec, tmp_path):
    """A learning rate that wrecks the weights: QAT hands back the calibrated start (epoch 0)."""
    import torch

    from yolox_edge.engine.checkpoint import load_model
    from yolox_edge.quantize.calib import build_calibration_set
    from yolox_edge.quantize.fold import fold_batchnorm
    from yolox_edge.quantize.qat import run_qat

    cal = build_calibration_set(shapes_spec, tmp_path / "calib", size=64, count=4)
    model, ckpt = load_model(tiny_ckpt)
    start = fold_batchnorm(model).state_dict()
    logs: list[str] = []
    out, info = run_qat(model, ckpt, cal, str(shapes_spec), epochs=1, lr=50.0, batch=4, log=logs.append)
    assert info["kept_epoch"] == 0 and set(info["fake_quant_ap_per_epoch"]) == {0, 1}
    assert any("kept epoch 0" in m for m in logs)
    for k, v in out.state_dict().items():
        torch.testing.assert_close(v, start[k], rtol=0, atol=0, msg=k)


def test_freeze_quantizer_ranges_leaves_only_model_weights_trainable(tiny_ckpt):
    import nncf
    import torch

    from yolox_edge.engine.checkpoint import load_model
    from yolox_edge.quantize.fold import fold_batchnorm
    from yolox_edge.quantize.qat import freeze_quantizer_ranges

    model, _ = load_model(tiny_ckpt)
    det = fold_batchnorm(model).eval()
    names = {n for n, _ in det.named_parameters()}
    ds = nncf.Dataset([torch.rand(1, 3, 64, 64) * 255 for _ in range(2)])
    q = nncf.quantize(det, ds, preset=nncf.QuantizationPreset.MIXED, subset_size=2)
    assert freeze_quantizer_ranges(q) > 10
    trainable = {n for n, p in q.named_parameters() if p.requires_grad}
    assert trainable == names  # the detector's own weights and biases, nothing of NNCF's


def test_report_data_of_another_class_count_fails_before_quantizing(tiny_ckpt, refdata, tmp_path, monkeypatch):
    import yolox_edge.quantize.pipeline as pipeline

    def not_reached(*a, **k):
        raise AssertionError("calibration was loaded: the class count was checked too late")

    monkeypatch.setattr(pipeline, "load_calibration_set", not_reached)
    with pytest.raises(UserError, match="coco_tiny.*80 classes, the model has 3"):
        pipeline.run_quantize(tiny_ckpt, tmp_path / "calib", ["onnx"], tmp_path / "out", report=True,
                              data=str(refdata / "coco_tiny" / "data.yaml"), verbose=False)


def test_report_on_data_whose_names_differ_says_so(tiny_ckpt, shapes_spec, tmp_path, monkeypatch, capsys):
    """The model's a, b, c against the data's circle, square, triangle: AP pairs them by
    position; eval said so, quantize --report did not."""
    import yolox_edge.quantize.pipeline as pipeline

    class Stop(Exception):
        pass

    def stop(*a, **k):
        raise Stop

    monkeypatch.setattr(pipeline, "load_calibration_set", stop)  # the note comes before any work
    with pytest.raises(Stop):
        pipeline.run_quantize(tiny_ckpt, tmp_path / "calib", ["onnx"], tmp_path / "out", report=True,
                              data=str(shapes_spec), verbose=True)
    assert "note: the model's classes (a, b, c) are not the data's (circle, square, triangle)" in capsys.readouterr().out


def test_report_writes_its_table_and_says_where(tiny_ckpt, shapes_spec, tmp_path, capsys):
    from yolox_edge.quantize.calib import build_calibration_set
    from yolox_edge.quantize.pipeline import run_quantize

    build_calibration_set(shapes_spec, tmp_path / "calib", size=64, count=4)
    run_quantize(tiny_ckpt, tmp_path / "calib", ["onnx"], tmp_path / "out", report=True, data=str(shapes_spec))
    out, err = capsys.readouterr()
    assert (tmp_path / "out" / "report.md").read_text().startswith("FP32 vs INT8")
    assert f"report -> {tmp_path / 'out' / 'report.md'}, {tmp_path / 'out' / 'report.json'}" in out
    # one format: --out is the INT8 export, its FP32 reference inside it (as the README says)
    assert (tmp_path / "out" / "metadata.json").is_file() and (tmp_path / "out" / "fp32" / "onnx").is_dir()
    assert "eval onnx FP32" in err and "eval onnx INT8" in err  # the bars say which eval runs
