"""QAT end to end on a tiny model: NNCF fake quantization, one epoch of the project trainer,
INT8 export with method 'qat' in the metadata; wrong class count is a clear error."""
from __future__ import annotations

import pytest
from quant_helpers import Stop, stop

from yolox_edge.errors import UserError


@pytest.fixture(scope="module")
def qat_run(tiny_ckpt, shapes_spec, tmp_path_factory):
    """One QAT run into two formats (ONNX, OpenVINO): (results, out folder, stdout, the folders
    evaluate_artifact scored, by name). Shared: each QAT run costs tens of seconds."""
    import contextlib
    import io

    import yolox_edge.quantize.report as report
    from yolox_edge.quantize.calib import build_calibration_set
    from yolox_edge.quantize.pipeline import run_quantize

    real, scored = report.evaluate_artifact, {}

    def counted(directory, *a, **k):
        scored.setdefault(directory.name, []).append(directory)
        return real(directory, *a, **k)

    tmp = tmp_path_factory.mktemp("qat_run")
    build_calibration_set(shapes_spec, tmp / "calib", img_size=64, count=8)
    printed = io.StringIO()
    with pytest.MonkeyPatch.context() as mp, contextlib.redirect_stdout(printed):
        mp.setattr(report, "evaluate_artifact", counted)
        res = run_quantize(tiny_ckpt, calib=tmp / "calib", formats=["onnx", "openvino"], out=tmp / "out", qat=True,
                           data=str(shapes_spec), epochs=1, batch=4, topk=0, keep_float=0, nncf_keep_float=0,
                           subset_size=6)
    return res, tmp / "out", printed.getvalue(), scored


@pytest.mark.slow
def test_qat_fine_tunes_and_exports_int8(qat_run):
    from yolox_edge.runtime.loader import open_model

    res = qat_run[0]["onnx"]
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


@pytest.mark.slow
def test_qat_fine_tunes_with_the_exports_float_convs_float(tiny_ckpt, shapes_spec, tmp_path, monkeypatch):
    """The conv an NNCF export leaves float (--nncf-keep-float) is float while QAT fine-tunes too,
    and the export keeps exactly that one. Trained INT8 but exported float, the fine-tuning's gain
    did not reach the file (coco_tiny, OpenVINO: +0.01 AP exported, +0.63 with every conv INT8)."""
    import nncf
    import torch

    from yolox_edge.engine.checkpoint import load_model
    from yolox_edge.quantize import scopes
    from yolox_edge.quantize.calib import build_calibration_set
    from yolox_edge.quantize.fold import fold_batchnorm
    from yolox_edge.quantize.pipeline import run_quantize

    real, fake_quantized = nncf.quantize, []

    def spy(model, *a, **k):
        q = real(model, *a, **k)
        if isinstance(model, torch.nn.Module):  # QAT's torch model (the exports quantize graphs)
            fake_quantized.append(q)
        return q

    monkeypatch.setattr(nncf, "quantize", spy)
    build_calibration_set(shapes_spec, tmp_path / "calib", img_size=64, count=4)
    lines = []
    res = run_quantize(tiny_ckpt, calib=tmp_path / "calib", formats=["onnx"], out=tmp_path / "out", qat=True,
                       data=str(shapes_spec),
                       epochs=1, batch=4, topk=0, nncf_keep_float=1, subset_size=4, progress=False, log=lines.append)
    # each long phase is announced as it starts (without bars the conv scan was minutes of silence)
    qat_lines = [ln for ln in lines if ln.startswith("QAT: ")]
    assert qat_lines[0] == ("QAT: measuring each conv's INT8 error on 4 calibration images to find the most "
                            "error-sensitive conv (kept float)")
    assert qat_lines[1].startswith("QAT: NNCF fake quantization on 4 calibration images")
    quant = res["onnx"].metadata["quantization"]
    float_convs = quant["qat"]["float_convs"]
    assert len(float_convs) == 1 and quant["float_convs"] == float_convs
    model, _ = load_model(tiny_ckpt)
    [node] = scopes.torch_conv_node_names(fold_batchnorm(model).eval(), torch.rand(1, 3, 64, 64) * 255,
                                          float_convs)
    [qmodel] = fake_quantized
    hooks = [k for k in qmodel.state_dict() if k.startswith("__nncf_hooks.")]
    assert any(".pre_hooks." in k and "__1." in k for k in hooks)  # other convs' weights are quantized
    assert not [k for k in hooks if f".pre_hooks.{node}__" in k], f"{node} was fake-quantized during QAT"


def test_qat_refuses_data_of_another_class_count(tiny_ckpt, refdata, tmp_path):
    from yolox_edge.engine.checkpoint import load_model
    from yolox_edge.quantize.calib import build_calibration_set
    from yolox_edge.quantize.qat import run_qat

    cal = build_calibration_set(refdata / "images", tmp_path / "c", img_size=64, count=2)
    model, ckpt = load_model(tiny_ckpt)
    with pytest.raises(UserError, match="80 classes, the model has 3"):
        run_qat(model, ckpt, cal, str(refdata / "coco_tiny" / "data.yaml"), log=lambda *_: None)


def test_qat_data_mistakes_are_one_line_before_the_run_starts(tiny_ckpt, tiny_calib, tmp_path, run_cli):
    """quantize --qat with a spec of another class count, or a damaged one: the one error line, no
    'stopped during QAT fine-tuning' line above it and no --out made (found when QAT began)."""
    (tmp_path / "imgs").mkdir()
    (tmp_path / "one.json").write_text('{"images": [], "annotations": [], "categories": [{"id": 1, "name": "a"}]}')
    (tmp_path / "cut.json").write_text('{"images": [], "annotations": [')
    for name, says in (("one", "1 classes, the model has 3"), ("cut", "not valid COCO json")):
        spec = tmp_path / f"{name}.yaml"
        spec.write_text(f"format: coco\ntrain: {{annotations: {name}.json, images: imgs}}\n")
        code, _out, err = run_cli("quantize", tiny_ckpt, "--calib", tiny_calib, "--format", "onnx", "--qat",
                                  "--data", spec, "--out", tmp_path / "out", "--no-progress")
        lines = err.strip().splitlines()
        assert code == 2 and len(lines) == 1 and says in lines[0], err
        assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_qat_keeps_the_start_when_fine_tuning_does_not_help(tiny_ckpt, shapes_spec, tmp_path):
    """A learning rate that wrecks the weights: QAT hands back the calibrated start (epoch 0)."""
    import torch

    from yolox_edge.engine.checkpoint import load_model
    from yolox_edge.quantize.calib import build_calibration_set
    from yolox_edge.quantize.fold import fold_batchnorm
    from yolox_edge.quantize.qat import run_qat

    cal = build_calibration_set(shapes_spec, tmp_path / "calib", img_size=64, count=4)
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


@pytest.mark.slow
def test_qat_scores_each_export_and_prints_that_ap_above_the_training_time_one(qat_run, shapes_spec):
    """QAT printed only its fake-quantized torch AP; users took it for the export's."""
    from yolox_edge.export.metadata import read_metadata
    from yolox_edge.quantize.report import evaluate_artifact

    res, out, printed, scored = qat_run
    summary = printed[printed.index("QAT result on"):]  # the last lines, after every export
    assert {f: len(d) for f, d in scored.items()} == {"onnx": 1, "openvino": 1}  # one eval per format written
    assert all(d[0].parent.name.startswith(".quantize_run_") for d in scored.values())  # before it was in place
    for fmt, r in res.items():
        qat = read_metadata(out / fmt)["quantization"]["qat"]  # hashes still verify after the rewrite
        ev = qat["exported_eval"]
        assert ev["split"] == "val" and ev["images"] == 4 and ev["data"] == str(shapes_spec)
        assert ev["backend"] == {"onnx": "onnxruntime"}.get(fmt, fmt) and ev["precision_hint"] == "f32"
        assert "fake_quant_ap" in qat and r.metadata["quantization"]["qat"]["exported_eval"] == ev
        assert ev["AP"] == evaluate_artifact(out / fmt, shapes_spec, progress=False)["AP"]  # the export's own
        line = f"exported INT8 AP   {100 * ev['AP']:6.2f}  {fmt} "
        assert line in summary and summary.index(line) < summary.index("  training-time AP")
    assert summary.startswith(f"QAT result on {shapes_spec}:val (4 images: the split QAT scored its epochs on)")


def test_qat_ap_summary_names_which_ap_is_which():
    from pathlib import Path

    from yolox_edge.quantize.qat_eval import ap_summary

    rec = {"AP": 0.3061, "AP50": 0.5, "data": "coco.yaml", "split": "val", "images": 80, "backend": "openvino",
           "precision_hint": "f32"}
    lines = ap_summary({"kept_epoch": 1, "fake_quant_ap": 0.31}, {"openvino": rec}, {"openvino": Path("qat")})
    assert lines[0] == "QAT result on coco.yaml:val (80 images: the split QAT scored its epochs on), COCO AP in %:"
    assert lines[1] == ("  exported INT8 AP    30.61  openvino (f32), measured on the model written to qat: "
                        "the figure to quote")
    onnx = ap_summary({"kept_epoch": 1, "fake_quant_ap": 0.31}, {"onnx": {**rec, "backend": "onnxruntime"}},
                      {"onnx": Path("qat")})
    assert "  onnx (onnxruntime, f32), measured" in onnx[1]
    assert lines[2] == ("  training-time AP    31.00  fake-quantized torch model during QAT (epoch 1, its "
                        "'AP 0.3100' above); not the exported model's")
    start = ap_summary({"kept_epoch": 0, "fake_quant_ap": 0.2}, {"openvino": rec}, {"openvino": Path("qat")})
    assert "(epoch 0, the untrained start)" in start[2]


def test_qat_at_a_rectangular_size_trains_at_that_size(tiny_ckpt, shapes_spec, tmp_path, monkeypatch):
    from yolox_edge.quantize import qat
    from yolox_edge.quantize.calib import build_calibration_set
    from yolox_edge.quantize.pipeline import run_quantize

    sizes = []
    real = qat.qat_recipe

    def spy(variant, input_size, **kw):
        recipe = real(variant, input_size, **kw)
        sizes.append((recipe.input_hw, recipe.test_hw))
        return recipe

    monkeypatch.setattr(qat, "qat_recipe", spy)
    build_calibration_set(shapes_spec, tmp_path / "calib", img_size=(64, 96), count=4)
    res = run_quantize(tiny_ckpt, calib=tmp_path / "calib", formats=["onnx"], out=tmp_path / "out", qat=True,
                       data=str(shapes_spec),
                       epochs=1, batch=4, topk=0, subset_size=4, img_size=(64, 96), progress=False, log=None)
    assert sizes == [((64, 96), (64, 96))]  # fine-tuned and scored on the 96x64 letterbox the graph sees
    assert res["onnx"].metadata["input_size"] == [64, 96]


@pytest.mark.parametrize("cache_max, cached", [(1 << 30, True), (0, False)], ids=["small-set", "large-set"])
def test_qat_takes_the_preset_and_threads_and_caches_only_a_small_train_split(tiny_ckpt, tiny_calib, shapes_spec,
                                                                               tmp_path, monkeypatch, cache_max,
                                                                               cached):
    """QAT fine-tuned under NNCF's mixed preset whatever --preset said (the exports then used the
    performance one), left OpenCV's pool at every core (train.threads unset), and cached every
    training image in memory (COCO train2017 at 416: ~46 GB, decoded before the first step)."""
    import nncf

    from yolox_edge.quantize import qat

    presets, recipes = [], []
    real_quantize, real_recipe = nncf.quantize, qat.qat_recipe

    def spy_quantize(model, *a, **k):
        presets.append(k.get("preset"))
        return real_quantize(model, *a, **k)

    def spy_recipe(*a, **k):
        recipes.append(real_recipe(*a, **k))
        raise Stop

    monkeypatch.setattr(nncf, "quantize", spy_quantize)
    monkeypatch.setattr(qat, "qat_recipe", spy_recipe)
    monkeypatch.setattr(qat, "CACHE_MAX_BYTES", cache_max)
    from yolox_edge.engine.checkpoint import load_model
    from yolox_edge.quantize.calib import load_calibration_set

    detector, ckpt = load_model(tiny_ckpt)
    with pytest.raises(Stop):
        qat.run_qat(detector, ckpt, load_calibration_set(tiny_calib), str(shapes_spec), subset_size=4, keep_float=0,
                    progress=False, log=None, preset="performance", threads=1)
    assert presets == [nncf.QuantizationPreset.PERFORMANCE]
    [recipe] = recipes
    assert recipe.train.threads == 1 and recipe.data.cache_images is cached


@pytest.fixture
def ids_ckpt(tmp_path, randomize_model):
    """The tiny model with other class names (a, b, c) and category ids (5, 6, 7) than shapes_spec's."""
    from yolox_edge.engine.checkpoint import save_checkpoint
    from yolox_edge.models import create_model

    path = tmp_path / "ids.pt"
    save_checkpoint(path, randomize_model(create_model("test_dw", num_classes=3), seed=1), class_names=["a", "b", "c"],
                    category_ids=[5, 6, 7])
    return path


NAMES_NOTE = "note: the model's classes (a, b, c) are not the data's (circle, square, triangle)"
IDS_NOTE = "note: the model's category ids (5, 6, 7) are not the data's (1, 2, 3)"


def test_qat_notes_other_class_names_and_category_ids_as_eval_does(ids_ckpt, shapes_spec, tmp_path, monkeypatch):
    """QAT checked only the class count: a model of other names or ids fine-tuned class i on the
    data's i-th class without a word, where eval notes both and train --resume refuses them."""
    import yolox_edge.quantize.qat as qat
    from yolox_edge.engine.checkpoint import load_model
    from yolox_edge.quantize.calib import build_calibration_set

    cal = build_calibration_set(shapes_spec, tmp_path / "c", img_size=64, count=2)
    monkeypatch.setattr(qat, "fold_batchnorm", stop)  # the notes come before any work
    model, ckpt = load_model(ids_ckpt)
    logs: list[str] = []
    with pytest.raises(Stop):
        qat.run_qat(model, ckpt, cal, str(shapes_spec), log=logs.append)
    assert len(logs) == 2 and logs[0].startswith(NAMES_NOTE) and logs[1].startswith(IDS_NOTE), logs
    # QAT trains on the data, it scores nothing: the notes said "AP pairs them by position"
    assert logs[0].endswith("; QAT pairs them by position, so the model's class i is fine-tuned on the data's i-th")
    assert "; QAT pairs classes by position" in logs[1] and logs[1].endswith("its class i is fine-tuned on another class")
    assert not any("AP" in m for m in logs), logs


def test_report_notes_other_category_ids_once(ids_ckpt, shapes_spec, tmp_path, monkeypatch):
    """quantize --report noted other class names but not other category ids (eval notes both);
    with --qat, QAT says them (of the same spec), not twice."""
    import yolox_edge.quantize.pipeline as pipeline

    monkeypatch.setattr(pipeline, "load_calibration_set", stop)  # the notes come before any work
    for qat, said in ((False, [NAMES_NOTE, IDS_NOTE]), (True, [])):
        logs: list[str] = []
        with pytest.raises(Stop):
            pipeline.run_quantize(ids_ckpt, calib=tmp_path / "calib", formats=["onnx"], out=tmp_path / "out",
                                  report=True, qat=qat, data=str(shapes_spec), log=logs.append)
        assert [m[:len(n)] for m, n in zip(logs, said)] == said and len(logs) == len(said), logs
        assert all("; AP pairs" in m for m in logs), logs  # --report scores AP: eval's wording


def test_nncfs_extension_timeout_is_one_line_that_names_the_lock(monkeypatch) -> None:
    """On a busy 2-core machine NNCF's first-use compile of its CPU extension outlasted NNCF's 60 s:
    the QAT run ended in NNCF's traceback. The wait is now longer, and its end one line."""
    from nncf.torch.extensions import ExtensionLoaderTimeoutException

    from yolox_edge.quantize.qat import EXTENSION_WAIT_S, nncf_extension_wait

    monkeypatch.delenv("NNCF_EXTENSION_LOAD_TIMEOUT", raising=False)
    with pytest.raises(UserError, match=rf"NNCF's CPU extension, compiled on the first QAT run, did not load within "
                                        rf"{EXTENSION_WAIT_S} s: .* left .*quantized_functions_cpu.*lock; if no other"):
        with nncf_extension_wait():
            raise ExtensionLoaderTimeoutException("The extension load function failed to execute within 900 seconds")
    monkeypatch.setenv("NNCF_EXTENSION_LOAD_TIMEOUT", "30")  # the user's own setting stands
    with pytest.raises(UserError, match="did not load within 30 s"), nncf_extension_wait():
        raise ExtensionLoaderTimeoutException("...")
    with pytest.raises(ValueError, match="other errors pass"), nncf_extension_wait():
        raise ValueError("other errors pass")
