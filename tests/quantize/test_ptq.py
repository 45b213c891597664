"""End-to-end INT8 of a tiny model for each format: runs in its runtime, stays close to FP32,
keeps the decode float, carries INT8 metadata; bad calibration input fails before writing."""
from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from quant_helpers import Stop, stop

from yolox_edge.errors import BadArgument, UserError
from yolox_edge.quantize.calib import load_calibration_set
from yolox_edge.quantize.ptq import QuantizeOptions, quantize_checkpoint

FORMATS = ["onnx", "openvino", "ncnn"]


def fp32_outputs(ckpt: Path, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    from yolox_edge.engine.checkpoint import load_model
    from yolox_edge.export.wrapper import DeployModel

    model, _ = load_model(ckpt)
    with torch.no_grad():
        boxes, scores = DeployModel(model, kind="decoded")(torch.from_numpy(x))
    return boxes.numpy(), scores.numpy()


@pytest.fixture(scope="module", params=FORMATS)
def int8_artifact(request, tiny_ckpt, tiny_calib, tmp_path_factory):
    out = tmp_path_factory.mktemp(f"int8_{request.param}")
    # topk=0: the decoded graph, so outputs compare anchor by anchor with FP32.
    opts = QuantizeOptions(topk=0, keep_float=1, nncf_keep_float=2)  # different, to see each reach its formats
    res = quantize_checkpoint(tiny_ckpt, calib=tiny_calib, format=request.param, out=out, opts=opts)
    return request.param, res


@pytest.mark.slow
def test_int8_runs_close_to_fp32_with_int8_metadata(int8_artifact, tiny_ckpt, tiny_calib):
    from yolox_edge.runtime.loader import open_model

    fmt, res = int8_artifact
    cal = load_calibration_set(tiny_calib)
    backend, info = open_model(res.model_file)
    out = backend.infer(cal.data)
    ref_boxes, ref_scores = fp32_outputs(tiny_ckpt, cal.data)
    assert out["scores"].shape == ref_scores.shape
    # Boxes are pixels in a 64x64 input: INT8 may move them a little, never by much.
    box_err = np.abs(out["boxes"] - ref_boxes)
    assert np.median(box_err) < 1.0 and np.percentile(box_err, 99) < 6.0, (fmt, box_err.max())
    score_err = np.abs(out["scores"] - ref_scores)
    assert score_err.mean() < 0.02 and score_err.max() < 0.2, (fmt, score_err.max())
    # ...and INT8 really changed something (a float model would match to ~1e-5).
    assert score_err.max() > 1e-4
    meta = res.metadata
    assert meta["precision"] == "int8" and info.precision.startswith("int8")
    q = meta["quantization"]
    assert q["calibration"]["sha256"] == cal.sha256 and q["calibration"]["count"] == len(cal)
    assert q["method"] == "ptq" and q["bn_folded"] is True
    assert q["float_part"]["float_modules"] == ["decode"]
    assert len(q["float_convs"]) == (1 if fmt == "ncnn" else 2)


@pytest.mark.slow
def test_int8_graph_is_int8_and_decode_stays_float(int8_artifact):
    fmt, res = int8_artifact
    if fmt == "onnx":
        import onnx

        g = onnx.load(str(res.model_file)).graph
        ops = [n.op_type for n in g.node]
        assert ops.count("QuantizeLinear") >= 10 and "BatchNormalization" not in ops
        consumers = {i: n.name for n in g.node for i in n.input}
        q_out = [n.output[0] for n in g.node if n.op_type in ("QuantizeLinear", "DequantizeLinear")]
        # No quantizer feeds the decode or the wrapper's own ops: only detector nodes read them.
        fed = {consumers[o] for o in q_out if o in consumers}
        assert fed and all(n.startswith("/detector/") or n.startswith(("QuantizeLinear", "DequantizeLinear"))
                           for n in fed), sorted(fed)[:5]
    elif fmt == "openvino":
        import openvino as ov

        m = ov.Core().read_model(str(res.model_file))
        fqs = [op for op in m.get_ordered_ops() if op.get_type_name() == "FakeQuantize"]
        assert len(fqs) >= 10
        for fq in fqs:
            for t in fq.output(0).get_target_inputs():
                assert not t.get_node().get_friendly_name().startswith("/decode/")
        assert any(op.get_element_type().get_type_name() == "i8" for op in m.get_ordered_ops()
                   if op.get_type_name() == "Constant")
    else:
        text = Path(res.model_file).read_text()
        assert "8=2" in text and "8=1" in text  # INT8 Convolution and ConvolutionDepthWise
        assert "Scale" in text  # per-channel rescaling in front of depthwise convs
        assert res.metadata["quantization"]["layers_float"]  # keep_float=1: one conv left float


@pytest.mark.slow
def test_int8_input_quantizer_is_exact_on_pixels(int8_artifact, tmp_path):
    """NNCF's calibrated input range is replaced by exactly 0..255, so OpenVINO may take uint8
    pixels with the same numbers; an IR with a calibrated input range keeps the float input."""
    fmt, res = int8_artifact
    if fmt == "ncnn":  # its INT8 writer quantizes the input symmetrically inside the first conv
        assert "input_quantizer" not in res.metadata["quantization"]
        return
    assert res.metadata["quantization"]["input_quantizer"] == "pixels 0..255, exact"
    if fmt == "onnx":
        import onnx
        from onnx import numpy_helper

        g = onnx.load(str(res.model_file)).graph
        inits = {i.name: numpy_helper.to_array(i) for i in g.initializer}
        q = next(n for n in g.node if n.op_type == "QuantizeLinear" and n.input[0] == g.input[0].name)
        assert float(inits[q.input[1]]) == 1.0 and int(inits[q.input[2]]) == 0
        return
    import openvino as ov

    from yolox_edge.data.preprocess import to_network
    from yolox_edge.export import read_metadata
    from yolox_edge.runtime.loader import open_model
    from yolox_edge.runtime.openvino_backend import OpenVINOBackend

    backend, info = open_model(res.directory, threads=1)
    assert backend.takes_pixels
    pixels = (np.random.default_rng(0).random((1, 64, 64, 3)) * 255).astype(np.uint8)
    out_px, out_f = backend.infer(pixels), backend.infer(to_network(pixels[0], info.preprocess)[None])
    for k in out_f:
        np.testing.assert_array_equal(out_px[k], out_f[k])
    # An older IR: calibrated input range -> float input only.
    core = ov.Core()
    m = core.read_model(str(res.model_file))
    fq = next(iter(m.get_parameters()[0].output(0).get_target_inputs())).get_node()
    assert fq.get_type_name() == "FakeQuantize"
    fq.input(2).replace_source_output(ov.op.Constant(np.full(list(fq.input_value(2).get_shape()), 250.0,
                                                                np.float32)).output(0))
    ov.save_model(m, str(tmp_path / "old.xml"), compress_to_fp16=False)
    old = OpenVINOBackend(tmp_path / "old.xml", read_metadata(res.directory), threads=1)
    assert not old.takes_pixels
    with pytest.raises(ValueError, match="float32 NCHW"):
        old.infer(pixels)


def test_calibration_of_another_size_fails_before_writing(tiny_ckpt, calib_images, tmp_path):
    from yolox_edge.quantize.calib import build_calibration_set

    build_calibration_set(calib_images, tmp_path / "c96", img_size=96, count=2)
    out = tmp_path / "out"
    with pytest.raises(UserError, match="96x96 but the model takes 64x64"):
        quantize_checkpoint(tiny_ckpt, calib=tmp_path / "c96", format="onnx", out=out)
    assert not out.exists()


@pytest.mark.slow
def test_quantize_at_another_size_with_img_size(tiny_ckpt, calib_images, tmp_path, run_cli):
    """The INT8 graph of a 64-px checkpoint at 96, from a 96-px calibration set (was only
    'rebuild it', with no way to quantize at another size than the checkpoint's)."""
    from yolox_edge.export.metadata import read_metadata
    from yolox_edge.quantize.calib import build_calibration_set

    build_calibration_set(calib_images, tmp_path / "c96", img_size=96, count=2)
    code, _, err = run_cli("quantize", tiny_ckpt, "--calib", tmp_path / "c96", "--format", "onnx",
                           "--out", tmp_path / "no")
    assert code == 2 and "--img-size 96 (img_size=96 in Python)" in err and not (tmp_path / "no").exists()
    code, _, err = run_cli("quantize", tiny_ckpt, "--calib", tmp_path / "c96", "--format", "onnx",
                           "--img-size", "80", "--out", tmp_path / "no")
    assert code == 2 and "must be a positive multiple of 32" in err
    code, _, err = run_cli("quantize", tiny_ckpt, "--calib", tmp_path / "c96", "--format", "onnx",
                           "--img-size", "96", "--out", tmp_path / "q96")
    assert code == 0, err
    meta = read_metadata(tmp_path / "q96")
    assert meta["input"]["shape"][2:] == [96, 96] and meta["preprocess"]["input_size"] == [96, 96]
    from yolox_edge.runtime import load_predictor

    pred = load_predictor(tmp_path / "q96")
    assert pred.info.preprocess.input_size == (96, 96)
    pred.predict(np.full((50, 70, 3), 128, np.uint8))  # runs at its size


def test_cli_quantize_bad_inputs(tiny_ckpt, tmp_path, run_cli):
    code, _, err = run_cli("quantize", tiny_ckpt, "--calib", tmp_path / "nothing", "--format", "onnx",
                           "--out", tmp_path / "o")
    assert code == 2 and "nothing: not found; check the path" in err
    code, _, err = run_cli("quantize", tiny_ckpt, "--calib", tmp_path, "--format", "onnx", "--qat",
                           "--out", tmp_path / "o")
    assert code == 2 and "--data" in err
    assert not (tmp_path / "o").exists()


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["openvino", "onnx"])
def test_accuracy_control_on_the_default_nms_graph(fmt, tiny_ckpt, tiny_calib, tmp_path):
    """NNCF's accuracy-control loop scores candidates of the graph as exported (in-graph NMS, top-K)."""
    from yolox_edge.data.synthetic import make_shapes_dataset

    spec = make_shapes_dataset(tmp_path / "shapes", n_train=2, n_val=4, size=(64, 80))
    opts = QuantizeOptions(accuracy_control=True, data=str(spec), max_drop=0.5, keep_float=0, nncf_keep_float=0)
    res = quantize_checkpoint(tiny_ckpt, calib=tiny_calib, format=fmt, out=tmp_path / "out", opts=opts)
    meta = res.metadata
    assert meta["graph"]["output_kind"] == "topk" and meta["graph"]["nms"]
    ac = meta["quantization"]["accuracy_control"]
    assert ac["max_drop"] == 0.5 and ac["data"] == str(spec) and ac["val_images"] == 4
    # Real COCO AP of the tiny model, FP32 and PTQ, as NNCF compared them.
    assert 0 <= ac["fp32_ap"] <= 1 and 0 <= ac["int8_ap_ptq"] <= 1 and ac["drop"] == ac["fp32_ap"] - ac["int8_ap"]
    assert ac["met"] == (ac["drop"] <= 0.5)
    assert res.model_file.is_file()
    from yolox_edge.quantize.report import evaluate_artifact

    assert abs(evaluate_artifact(res.directory, spec)["AP"] - ac["int8_ap"]) < 1e-4  # the figure eval gives
    # What it says is INT8 is what the written graph holds (OpenVINO: weights stored compressed).
    from yolox_edge.quantize.accuracy import onnx_quant, openvino_quant

    if fmt == "onnx":
        import onnx

        shipped = onnx_quant(onnx.load(str(res.model_file)))
    else:
        import openvino as ov

        shipped = openvino_quant(ov.Core().read_model(str(res.model_file)))
    assert len(shipped.quantized_ops) == ac["quantized_ops"]["final"] > 10
    assert len(shipped.float_convs) == ac["float_convs"]
    if not ac["reverted_ops"]:
        assert ac["float_convs"] == ac["float_convs_ptq"] == 0  # nncf_keep_float=0


@pytest.fixture(scope="module")
def earlier_runs(tiny_ckpt, tiny_calib, tmp_path_factory):
    """run_quantize into "one" (formats="onnx") and "many" (onnx and openvino), str paths throughout,
    quiet, no conv scan: what the tests of later runs into such folders start from (they copy them)
    and what the format-string test reads. Returns the two results, what they printed and their folder."""
    import contextlib
    import io

    from yolox_edge.quantize.pipeline import run_quantize

    root = tmp_path_factory.mktemp("earlier_runs")
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        one = run_quantize(str(tiny_ckpt), calib=str(tiny_calib), formats="onnx", out=str(root / "one"),
                           progress=False, log=None, nncf_keep_float=0)
        many = run_quantize(str(tiny_ckpt), calib=str(tiny_calib), formats=["onnx", "openvino"],
                            out=str(root / "many"), progress=False, log=None, nncf_keep_float=0)
    return {"one": one, "many": many, "printed": printed.getvalue(), "root": root}


def _copy_run(earlier_runs, name: str, dest: Path) -> Path:
    """A copy of an earlier run's --out folder ("one" or "many") at ``dest``."""
    import shutil

    return Path(shutil.copytree(earlier_runs["root"] / name, dest))


def test_run_quantize_takes_a_format_string_and_str_paths(earlier_runs):
    """'onnx' used to be read as the formats 'o', 'n', 'n', 'x'; a str out failed with two formats."""
    one, many, out = earlier_runs["one"], earlier_runs["many"], earlier_runs["printed"]
    assert list(one) == ["onnx"] and (one["onnx"].directory / "metadata.json").is_file()
    assert "Statistics collection" not in out and "calibration set" not in out, out  # progress=False, log=None: quiet
    assert {r.directory.name for r in many.values()} == {"onnx", "openvino"}


def _activation_zero_points(model_file: Path) -> list[int]:
    """The zero points of an INT8 ONNX graph's activation quantizers (QuantizeLinear of a tensor
    computed in the graph, not of a stored weight)."""
    import onnx
    from onnx import numpy_helper

    g = onnx.load(str(model_file)).graph
    consts = {t.name: numpy_helper.to_array(t) for t in g.initializer}
    consts.update({n.output[0]: numpy_helper.to_array(n.attribute[0].t) for n in g.node if n.op_type == "Constant"})
    return [int(z) for n in g.node if n.op_type == "QuantizeLinear" and n.input[0] not in consts
            for z in np.ravel(consts[n.input[2]])]


def test_quantize_preset_performance_makes_the_activations_symmetric(earlier_runs, tiny_ckpt, tiny_calib, tmp_path,
                                                                     run_cli):
    """--preset performance: NNCF's symmetric activation quantizers (zero point 0), where the
    default mixed preset fits each activation's own range (SiLU outputs are lopsided)."""
    from yolox_edge.export.metadata import read_metadata

    mixed = _activation_zero_points(earlier_runs["one"]["onnx"].model_file)
    code, _, err = run_cli("quantize", tiny_ckpt, "--calib", tiny_calib, "--format", "onnx", "--preset",
                           "performance", "--nncf-keep-float", "0", "--out", tmp_path / "q")
    assert code == 0, err
    (model_file,) = (tmp_path / "q").glob("*.onnx")  # one format: its files are --out's
    perf = _activation_zero_points(model_file)
    assert len(perf) > 10 and set(perf) == {0}, perf
    assert len(mixed) > 10 and any(mixed), mixed
    assert read_metadata(tmp_path / "q")["quantization"]["preset"] == "performance"
    code, _, err = run_cli("quantize", tiny_ckpt, "--calib", tiny_calib, "--format", "onnx", "--preset", "fast",
                           "--out", tmp_path / "bad")
    assert code == 2 and "--preset" in err and not (tmp_path / "bad").exists(), err


def test_run_quantize_sends_its_lines_to_log_and_prints_nothing(tiny_ckpt, tiny_calib, tmp_path, capfd):
    """progress=False drops the bars (ours and NNCF's), log= takes every line: nothing reaches
    stdout or stderr, at the file descriptors either (NNCF and tqdm write there)."""
    from yolox_edge.quantize.pipeline import run_quantize

    lines: list[str] = []
    capfd.readouterr()
    run_quantize(tiny_ckpt, calib=tiny_calib, formats="onnx", out=tmp_path / "q", progress=False, log=lines.append)
    assert capfd.readouterr() == ("", "")
    text = "\n".join(lines)
    assert "calibration set: 8 images 64x64" in text and "[onnx] INT8 (ptq)" in text
    assert f"INT8 in place: {tmp_path / 'q'}" in text and "NNCF mixed INT8" in text  # ptq's own lines too
    import platform

    assert ("onnxruntime on x86 CPUs ran NNCF's ONNX INT8 slower" in text) == (platform.machine() in ("x86_64", "AMD64"))


def test_the_onnx_runtime_note_is_for_onnx_on_x86_only():
    from yolox_edge.quantize.pipeline import onnx_runtime_note

    assert "slower than the FP32 ONNX" in onnx_runtime_note(["openvino", "onnx"], "x86_64")
    assert "TensorRT" in onnx_runtime_note(["onnx"], "AMD64")
    assert onnx_runtime_note(["onnx"], "aarch64") is None and onnx_runtime_note(["onnx"], "arm64") is None
    assert onnx_runtime_note(["openvino", "ncnn"], "x86_64") is None


def test_quantize_checkpoint_reports_as_the_library_does(tiny_ckpt, tiny_calib, tmp_path, capfd):
    """quantize_checkpoint on the library's scheme: by default its phase lines print; with
    progress=False and a log, nothing reaches the file descriptors and the log has the lines;
    an opts.log set by the caller still wins."""
    capfd.readouterr()
    quantize_checkpoint(tiny_ckpt, calib=tiny_calib, format="onnx", out=tmp_path / "a",
                        opts=QuantizeOptions(nncf_keep_float=0))
    assert "NNCF mixed INT8 on 8 calibration images" in capfd.readouterr().out
    lines: list[str] = []
    quantize_checkpoint(tiny_ckpt, calib=tiny_calib, format="onnx", out=tmp_path / "b",
                        opts=QuantizeOptions(nncf_keep_float=0), progress=False, log=lines.append)
    assert capfd.readouterr() == ("", "")
    assert any("NNCF mixed INT8 on 8 calibration images" in line for line in lines), lines
    mine: list[str] = []
    quantize_checkpoint(tiny_ckpt, calib=tiny_calib, format="onnx", out=tmp_path / "c",
                        opts=QuantizeOptions(nncf_keep_float=0, log=mine.append), progress=False, log=None)
    assert capfd.readouterr() == ("", "") and mine
    # no bars, the lines still printed (stdout is not swallowed with the bars)
    quantize_checkpoint(tiny_ckpt, calib=tiny_calib, format="onnx", out=tmp_path / "d",
                        opts=QuantizeOptions(nncf_keep_float=0), progress=False)
    out, err = capfd.readouterr()
    assert "NNCF mixed INT8 on 8 calibration images" in out and "Statistics collection" not in out + err, (out, err)


def test_run_quantize_threads_set_torch_and_the_evaluations(tiny_ckpt, tiny_calib, shapes_spec, tmp_path,
                                                             monkeypatch):
    """threads=1: torch runs the quantization at 1 thread (on a busy 2-core machine the conv scan
    took 2 to 20 times longer at 2), the report's evaluations too, and OpenCV's pool (QAT's images,
    the scoring: it stayed at every core); the caller's counts are back after."""
    import cv2

    import yolox_edge.quantize.pipeline as pipeline
    import yolox_edge.quantize.report as report

    seen: dict[str, object] = {}

    def fake_int8(*a):
        seen["torch"] = torch.get_num_threads()
        seen["opencv"] = cv2.getNumThreads()
        seen["scoring"] = a[-1].threads  # QuantizeOptions: the accuracy control's own scoring
        return _fake_int8(*a)

    def fake_eval(directory, data, split="val", *, threads=None, progress=True, desc=""):
        seen.setdefault("eval", []).append((threads, torch.get_num_threads(), cv2.getNumThreads()))
        return {"AP": 0.5, "AP50": 0.7, "per_class": [], "backend": "onnxruntime"}

    monkeypatch.setattr(pipeline, "quantize_detector", fake_int8)
    monkeypatch.setattr(report, "evaluate_artifact", fake_eval)
    monkeypatch.setattr(report, "model_bytes", lambda d: 1)
    monkeypatch.setattr("yolox_edge.export.api.export_model", lambda *a, **k: None)
    before, before_cv = torch.get_num_threads(), cv2.getNumThreads()
    torch.set_num_threads(2)
    cv2.setNumThreads(2)
    try:
        pipeline.run_quantize(tiny_ckpt, calib=tiny_calib, formats="onnx", out=tmp_path / "q", threads=1, report=True,
                              data=str(shapes_spec), progress=False, log=None)
        assert seen == {"torch": 1, "opencv": 1, "scoring": 1, "eval": [(1, 1, 1), (1, 1, 1)]}, seen
        assert torch.get_num_threads() == 2 and cv2.getNumThreads() == 2
    finally:
        torch.set_num_threads(before)
        cv2.setNumThreads(before_cv)
    with pytest.raises(BadArgument, match=r"threads must be a whole number of at least 1 .*, not 0$"):
        pipeline.run_quantize(tiny_ckpt, calib=tiny_calib, formats="onnx", out=tmp_path / "r", threads=0)


@pytest.mark.parametrize("threads, omp, pct, said", [(None, None, 63.0, True), (None, None, 20.0, False),
                                                      (1, None, 90.0, False), (None, "PASSIVE", 90.0, False)],
                         ids=["busy", "quiet", "one-thread", "omp-set"])
def test_run_quantize_says_when_other_work_took_its_cores(tiny_ckpt, tiny_calib, tmp_path, monkeypatch,
                                                           threads, omp, pct, said) -> None:
    """The load reading is injected (torch at 2 threads): busy -> one line after the formats'
    work; quiet -> none; a user who chose --threads 1 or OMP_WAIT_POLICY -> none, nothing measured."""
    import yolox_edge.quantize.pipeline as pipeline
    from yolox_edge.bench import hostload

    reads: list[str] = []
    monkeypatch.setattr(pipeline, "quantize_detector", _fake_int8)
    monkeypatch.setattr(hostload, "sample", lambda *a, **k: reads.append("sample") or object())
    monkeypatch.setattr(hostload, "host_load", lambda start, end, **k: {"window_s": 3.0, "cpus": [0, 1],
                                                                         "other_pct": pct, "steal_pct": 0.0})
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    if omp:
        monkeypatch.setenv("OMP_WAIT_POLICY", omp)
    lines: list[str] = []
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        pipeline.run_quantize(tiny_ckpt, calib=tiny_calib, formats=["onnx", "openvino"], out=tmp_path / "q",
                              threads=threads, progress=False, log=lines.append)
    finally:
        torch.set_num_threads(before)
    notes = [line for line in lines if line.startswith("note: other processes used")]
    if said:
        assert notes == ["note: other processes used 63% of the 2 cores while quantizing; beside other work "
                         "torch's threads wait for each other (the conv scan ran 30-80x slower, measured on 2 "
                         "cores): try --threads 1 (threads=1 in Python) or OMP_WAIT_POLICY=PASSIVE in the "
                         "environment"], lines
        assert lines.index(notes[0]) < next(i for i, x in enumerate(lines) if x.startswith("INT8 in place"))
        assert reads == ["sample", "sample"]
    else:
        assert notes == [], lines
        assert reads == ([] if threads == 1 or omp else ["sample", "sample"])


def test_the_conv_sensitivity_scan_shows_a_bar(tiny_ckpt, tiny_calib, tmp_path, capfd, monkeypatch):
    """The scan that picks the float convs ran for minutes on a busy machine between two lines:
    it has a bar (per conv), and none with progress=False. (Each run stops where the FP32 graph
    would be written, after the scan: the rest is other tests'.)"""
    import yolox_edge.export.to_onnx as to_onnx

    monkeypatch.setattr(to_onnx, "export_onnx", stop)
    with pytest.raises(Stop):
        quantize_checkpoint(tiny_ckpt, calib=tiny_calib, format="onnx", out=tmp_path / "a",
                            opts=QuantizeOptions(nncf_keep_float=1), log=None)
    err = capfd.readouterr().err
    assert re.search(r"conv sensitivity: 100%.* (\d+)/\1 ", err), err
    with pytest.raises(Stop):
        quantize_checkpoint(tiny_ckpt, calib=tiny_calib, format="onnx", out=tmp_path / "b",
                            opts=QuantizeOptions(nncf_keep_float=1), progress=False, log=None)
    assert "conv sensitivity" not in capfd.readouterr().err


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _fake_int8(detector, ckpt, source, cal, fmt, out_dir, opts):
    """Stands in for ``ptq.quantize_detector`` (what it leaves, none of its work)."""
    from yolox_edge.quantize.ptq import QuantizeResult

    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / f"m.{fmt}").write_bytes(fmt.encode())
    meta = {"schema_version": 1, "format": fmt, "files": {f"m.{fmt}": hashlib.sha256(fmt.encode()).hexdigest()},
            "quantization": {"method": "ptq"}}
    (out_dir / "metadata.json").write_text(json.dumps(meta))
    return QuantizeResult(out_dir, out_dir / f"m.{fmt}", [out_dir / f"m.{fmt}", out_dir / "metadata.json"], meta)


def test_run_quantize_verbose_is_a_deprecated_spelling(tiny_ckpt, tiny_calib, tmp_path, monkeypatch, capsys):
    """verbose=False still quiets the run (progress=False, log=None), with a DeprecationWarning
    naming the new keywords; verbose= with progress= or log= is a TypeError, before any work."""
    import yolox_edge.quantize.pipeline as pipeline

    monkeypatch.setattr(pipeline, "quantize_detector", _fake_int8)
    with pytest.warns(DeprecationWarning, match=r"run_quantize\(verbose=\) is deprecated; pass progress=False, "
                                                r"log=None instead"):
        pipeline.run_quantize(tiny_ckpt, calib=tiny_calib, formats="onnx", out=tmp_path / "quiet", verbose=False)
    assert capsys.readouterr() == ("", "")
    with pytest.warns(DeprecationWarning, match="pass progress=True, log=print"):
        pipeline.run_quantize(tiny_ckpt, calib=tiny_calib, formats="onnx", out=tmp_path / "said", verbose=True)
    assert "calibration set: 8 images" in capsys.readouterr().out
    for new in ({"progress": False}, {"log": None}, {"progress": True, "log": print}):
        with pytest.raises(TypeError, match="verbose= and .*deprecated spelling of progress=, log="):
            pipeline.run_quantize(tiny_ckpt, calib=tiny_calib, formats="onnx", out=tmp_path / "both", verbose=False,
                                  **new)
    assert not (tmp_path / "both").exists()


def test_run_quantize_refuses_an_export_and_force_clears_the_old_report(tiny_ckpt, tiny_calib, tmp_path,
                                                                         earlier_runs):
    """The library refused nothing (only the CLI did), and --force left an earlier run's report and
    FP32 references beside a model they did not describe."""
    from yolox_edge.errors import UserError
    from yolox_edge.quantize.pipeline import run_quantize

    out = _copy_run(earlier_runs, "one", tmp_path / "q")  # an earlier run_quantize(formats="onnx")
    model = next(out.glob("*.onnx"))
    before = model.read_bytes()
    with pytest.raises(UserError, match=r"already holds an export.*--force \(force=True in Python\)"):
        run_quantize(str(tiny_ckpt), calib=str(tiny_calib), formats="onnx", out=str(out), progress=False, log=None)
    assert model.read_bytes() == before
    (out / "report.md").write_text("FP32 vs INT8 (ptq) on d.yaml:val\n|...")  # as report=True leaves them
    (out / "fp32" / "onnx").mkdir(parents=True)
    (out / "fp32" / "onnx" / "old.onnx").write_bytes(b"x")
    (out / "fp32" / "onnx" / "metadata.json").write_text(json.dumps({"schema_version": 1, "format": "onnx",
                                                                    "files": {"old.onnx": _sha(b"x")}}))
    with pytest.raises(UserError):  # a bad calibration path: nothing is removed, even with force
        run_quantize(str(tiny_ckpt), calib=str(tmp_path / "nocalib"), formats="onnx", out=str(out), progress=False,
                     log=None, force=True)
    assert model.is_file() and (out / "report.md").is_file()
    run_quantize(str(tiny_ckpt), calib=str(tiny_calib), formats="onnx", out=str(out), progress=False, log=None,
                 force=True, nncf_keep_float=0)
    assert not (out / "report.md").exists() and not (out / "fp32" / "onnx" / "old.onnx").exists()
    assert (out / "metadata.json").is_file()


def test_run_quantize_refuses_a_folder_of_the_other_layout(tiny_ckpt, tiny_calib, tmp_path, earlier_runs):
    """One format into a folder of an earlier several-format run (or the reverse) left the new
    export beside the old ones and their report."""
    from yolox_edge.errors import UserError
    from yolox_edge.quantize.pipeline import run_quantize

    many = _copy_run(earlier_runs, "many", tmp_path / "many")  # earlier runs of each layout
    one = _copy_run(earlier_runs, "one", tmp_path / "one")
    (many / "report.md").write_text("FP32 vs INT8 (ptq) on d.yaml:val\n|...")
    with pytest.raises(UserError, match=r"holds the exports and report openvino/, onnx/, report.md .*several formats"):
        run_quantize(str(tiny_ckpt), calib=str(tiny_calib), formats="onnx", out=str(many), progress=False, log=None)
    assert not (many / "metadata.json").exists()
    with pytest.raises(UserError, match="holds an export .*one format"):
        run_quantize(str(tiny_ckpt), calib=str(tiny_calib), formats=["onnx", "openvino"], out=str(one), progress=False,
                     log=None)
    assert not (one / "onnx").exists()


@pytest.mark.parametrize("kw, said", [({"accuracy_control": True}, "works through NNCF (openvino, onnx)"),
                                       ({"topk": 50}, "ncnn has no TopK")], ids=["accuracy-control", "topk"])
def test_an_option_ncnn_cannot_take_is_refused_before_the_other_formats_run(tiny_ckpt, tiny_calib, shapes_spec,
                                                                            tmp_path, monkeypatch, kw, said):
    """--format onnx ncnn --accuracy-control (or --topk 50) ran onnx's accuracy control (or a whole
    QAT) first, then stopped at ncnn's turn, threw it all away and said to run the command again."""
    import yolox_edge.quantize.pipeline as pipeline

    monkeypatch.setattr(pipeline, "quantize_detector", stop)
    monkeypatch.setattr(pipeline, "load_calibration_set", stop)
    with pytest.raises(UserError, match=re.escape(said)):
        pipeline.run_quantize(tiny_ckpt, calib=tiny_calib, formats=["onnx", "ncnn"], out=tmp_path / "q",
                              data=str(shapes_spec), progress=False, log=None, **kw)
    assert not (tmp_path / "q").exists()


def test_quantize_checkpoint_refuses_an_export_in_out_unless_force(tiny_ckpt, tiny_calib, tmp_path, monkeypatch):
    """quantize_checkpoint wrote an openvino INT8 into a folder holding an onnx one: the onnx files
    stayed beside a metadata.json listing only the new ones ('not listed in metadata.json')."""
    import yolox_edge.quantize.ptq as ptq

    out = tmp_path / "q"
    out.mkdir()
    (out / "old.onnx").write_bytes(b"x")
    (out / "metadata.json").write_text(json.dumps({"schema_version": 1, "format": "onnx",
                                                   "files": {"old.onnx": _sha(b"x")}}))
    monkeypatch.setattr(ptq, "quantize_detector", stop)
    with pytest.raises(UserError, match="already holds an export"):
        ptq.quantize_checkpoint(tiny_ckpt, calib=tiny_calib, format="openvino", out=out, log=None)
    assert (out / "old.onnx").exists()
    with pytest.raises(Stop):  # with force too, a run that stops leaves the earlier export whole
        ptq.quantize_checkpoint(tiny_ckpt, calib=tiny_calib, format="openvino", out=out, log=None, force=True)
    assert (out / "old.onnx").exists() and (out / "metadata.json").exists() and sorted(os.listdir(out)) == \
        ["metadata.json", "old.onnx"]  # and no staging folder
    monkeypatch.undo()
    res = ptq.quantize_checkpoint(tiny_ckpt, calib=tiny_calib, format="onnx", out=out, log=None, force=True,
                                  progress=False, opts=ptq.QuantizeOptions(nncf_keep_float=0))
    assert sorted(os.listdir(out)) == ["metadata.json", res.model_file.name]  # the earlier export went, once done


def test_quantize_refuses_to_write_over_a_file_of_its_models_name(tiny_ckpt, tiny_calib, tmp_path, monkeypatch):
    """A file named as the INT8 model (yolox_test_dw_int8.xml) in --out, with no metadata.json
    listing it, was replaced without --force."""
    import yolox_edge.quantize.pipeline as pipeline

    out = tmp_path / "q"
    out.mkdir()
    (out / "yolox_test_dw_int8.xml").write_text("mine")
    monkeypatch.setattr(pipeline, "quantize_detector", stop)
    with pytest.raises(UserError, match="yolox_test_dw_int8.xml: already there, and no export in"):
        pipeline.run_quantize(tiny_ckpt, calib=tiny_calib, formats="openvino", out=out, progress=False, log=None)
    assert (out / "yolox_test_dw_int8.xml").read_text() == "mine"
    with pytest.raises(Stop):  # --force: the work goes ahead
        pipeline.run_quantize(tiny_ckpt, calib=tiny_calib, formats="openvino", out=out, force=True, progress=False,
                              log=None)


def test_kept_float_line_reads_right_for_zero_one_and_more():
    from yolox_edge.quantize.ptq import _kept_float

    assert _kept_float(0) == "every conv INT8 (none kept float)"  # was "the 0 most error-sensitive convs"
    assert _kept_float(1) == "the most error-sensitive conv (kept float)"
    assert _kept_float(4) == "the 4 most error-sensitive convs (kept float)"


@pytest.mark.parametrize("flag", ["report", "accuracy_control", "qat"])
def test_run_quantize_without_data_is_a_user_error_before_any_work(tiny_ckpt, tiny_calib, tmp_path, flag):
    """Only the CLI checked it: ``run_quantize(..., report=True)`` without ``data`` quantized, then
    failed deep inside with 'expected str, bytes or os.PathLike object, not NoneType'."""
    from yolox_edge.quantize import run_quantize

    with pytest.raises(UserError, match=rf"--{flag.replace('_', '-')} \({flag}=True in Python\) needs --data SPEC "
                                        r"\(data='data.yaml' in Python\)"):
        run_quantize(tiny_ckpt, calib=tiny_calib, formats="onnx", out=tmp_path / "q", progress=False, log=None,
                     **{flag: True})
    assert not (tmp_path / "q").exists()


@pytest.mark.parametrize("fmt", ["ncnn", "openvino"])
def test_quantize_at_a_rectangular_size(fmt, tiny_ckpt, calib_images, tmp_path, run_cli):
    """quantize --img-size 96x64 from a 96x64 calibration set: an INT8 graph of that size that
    loads and predicts; a square set is refused with the sizes written width x height."""
    from yolox_edge.export.metadata import read_metadata
    from yolox_edge.quantize.calib import build_calibration_set
    from yolox_edge.runtime import load_predictor

    build_calibration_set(calib_images, tmp_path / "c", img_size=(64, 96), count=4)
    code, _, err = run_cli("quantize", tiny_ckpt, "--calib", tmp_path / "c", "--format", fmt,
                           "--out", tmp_path / "no")  # the checkpoint's own 64x64
    assert code == 2 and "calibration set is 96x64 but the model takes 64x64" in err, err
    assert "quantize at its size with --img-size 96x64 (img_size=(64, 96) in Python)" in err
    assert not (tmp_path / "no").exists()
    code, out, err = run_cli("quantize", tiny_ckpt, "--calib", tmp_path / "c", "--format", fmt,
                             "--img-size", "96x64", "--out", tmp_path / "q")
    assert code == 0, err
    assert "calibration set: 4 images 96x64 (sha256" in out  # width x height, as calibrate printed it
    meta = read_metadata(tmp_path / "q")
    assert meta["input_size"] == [64, 96] and meta["input"]["shape"][2:] == [64, 96]
    assert meta["precision"] == "int8"
    pred = load_predictor(tmp_path / "q", conf=0.01)
    assert tuple(pred.info.preprocess.input_size) == (64, 96)
    det = pred.predict(np.full((48, 64, 3), 128, np.uint8))
    assert np.isfinite(det.boxes).all()


def test_run_quantize_writes_rational_silu_into_the_openvino_export_only(tiny_ckpt, rational_run):
    """--silu rational rewrites the OpenVINO INT8 IR (after NNCF, before it is scored and written),
    says so in its metadata, and leaves the other formats' SiLU exact."""
    import openvino as ov

    from yolox_edge.runtime.loader import open_model

    res, _, _, calib = rational_run
    meta = res["openvino"].metadata
    assert meta["graph"]["silu"] == "rational" and meta["quantization"]["silus_rewritten"] > 0
    assert "silu" not in res["onnx"].metadata["graph"]
    ops = [n.get_type_name() for n in ov.Core().read_model(str(res["openvino"].model_file)).get_ordered_ops()]
    assert "Swish" not in ops and "FakeQuantize" in ops
    cal = load_calibration_set(calib)
    backend, info = open_model(res["openvino"].model_file)
    assert "rational SiLU" in info.precision
    _, ref_scores = fp32_outputs(tiny_ckpt, cal.data)
    assert np.abs(backend.infer(cal.data)["scores"] - ref_scores).mean() < 0.02  # as close as the exact INT8


def test_run_quantize_refuses_rational_silu_without_openvino(tiny_ckpt, tiny_calib, tmp_path):
    from yolox_edge.quantize.pipeline import run_quantize

    with pytest.raises(UserError, match="OpenVINO IR only"):
        run_quantize(tiny_ckpt, calib=tiny_calib, formats=["onnx", "ncnn"], out=tmp_path / "q", progress=False,
                     log=None, silu="rational")
    assert not (tmp_path / "q").exists()
    with pytest.raises(UserError, match="OpenVINO IR only.*onnx export"):
        quantize_checkpoint(tiny_ckpt, calib=tiny_calib, format="onnx", out=tmp_path / "c",
                            opts=QuantizeOptions(silu="rational"))


def test_full_bias_correction_on_onnx_is_refused_before_any_work(tiny_ckpt, tiny_calib, tmp_path, run_cli,
                                                                  monkeypatch):
    """--no-fast-bias-correction with ONNX died with NNCF's onnxruntime traceback (exit 1) after the
    conv scan and the statistics; now one line, exit 2, before the checkpoint is read."""
    import yolox_edge.quantize.pipeline as pipeline

    def not_reached(*a, **k):
        raise AssertionError("the refusal came after the work started")

    monkeypatch.setattr(pipeline, "load_calibration_set", not_reached)
    code, _, err = run_cli("quantize", tiny_ckpt, "--calib", tiny_calib, "--format", "openvino", "onnx",
                           "--no-fast-bias-correction", "--out", tmp_path / "q")
    assert code == 2 and "Traceback" not in err, err
    assert "--no-fast-bias-correction (fast_bias_correction=False in Python): NNCF's full bias correction fails" in err
    assert "use it with --format openvino only" in err and not (tmp_path / "q").exists()
    with pytest.raises(UserError, match="full bias correction fails on the ONNX graph"):
        quantize_checkpoint(tiny_ckpt, calib=tiny_calib, format="onnx", out=tmp_path / "c",
                            opts=QuantizeOptions(fast_bias_correction=False))
    assert not (tmp_path / "c").exists()


@pytest.mark.parametrize("fmt, flag, kw", [("onnx", "--nncf-keep-float", "nncf_keep_float"),
                                          ("ncnn", "--ncnn-keep-float", "keep_float")])
def test_keeping_every_conv_float_is_refused_before_the_scan(fmt, flag, kw, tiny_ckpt, tiny_calib, tmp_path, run_cli,
                                                             monkeypatch):
    """--nncf-keep-float 500 wrote an "INT8" export with all 113 convs float after the scan; as many
    float convs as the model has is refused (one fewer is allowed: one conv is INT8)."""
    import yolox_edge.quantize.pipeline as pipeline
    import yolox_edge.quantize.ptq as ptq
    from yolox_edge.engine.checkpoint import load_model
    from yolox_edge.quantize.ncnn_calib import conv_modules

    def not_reached(*a, **k):
        raise AssertionError("the work started")

    n = len(conv_modules(load_model(tiny_ckpt)[0]))
    with monkeypatch.context() as m:
        m.setattr(pipeline, "load_calibration_set", not_reached)  # refused before the first format's work
        code, _, err = run_cli("quantize", tiny_ckpt, "--calib", tiny_calib, "--format", "openvino", fmt, flag, n,
                               "--out", tmp_path / "q")
    assert code == 2 and f"{flag} {n} ({kw}={n} in Python): the model has {n} convolutions, so none would be INT8" in err
    assert not (tmp_path / "q").exists()
    monkeypatch.setattr(ptq, "sensitive_convs", not_reached)
    monkeypatch.setattr("yolox_edge.quantize.ncnn_calib.plan_ncnn_int8", not_reached)
    with pytest.raises(BadArgument, match=f"the model has {n} convolutions"):
        quantize_checkpoint(tiny_ckpt, calib=tiny_calib, format=fmt, out=tmp_path / "c",
                            opts=QuantizeOptions(**{kw: n + 5}))
    ptq.check_keep_float(load_model(tiny_ckpt)[0], [fmt], **{"keep_float": 4, "nncf_keep_float": 2, kw: n - 1})


def test_nncf_full_bias_correction_still_fails_on_a_tensor_feeding_two_convs(tmp_path):
    """Why the refusal above exists, on the smallest graph that shows it (a CSP block's fork: one
    SiLU output into two convolutions): NNCF's ONNX BiasCorrection lists that tensor twice among a
    subgraph's inputs, which onnxruntime refuses. When NNCF mends it this test fails: then drop
    ptq.check_bias_correction (and this test) and let ONNX take --no-fast-bias-correction."""
    import warnings

    import nncf
    import onnx
    from torch import nn

    class Fork(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem, self.a, self.b = nn.Conv2d(3, 8, 3, padding=1), nn.Conv2d(8, 8, 1), nn.Conv2d(8, 8, 1)
            self.out = nn.Conv2d(16, 4, 1)

        def forward(self, x):
            x = nn.functional.silu(self.stem(x))
            return self.out(torch.cat([nn.functional.silu(self.a(x)), nn.functional.silu(self.b(x))], 1))

    torch.manual_seed(0)
    with warnings.catch_warnings():  # the TorchScript exporter's deprecation notes, as export_onnx's
        warnings.simplefilter("ignore")
        torch.onnx.export(Fork().eval(), torch.rand(1, 3, 16, 16), str(tmp_path / "fork.onnx"), input_names=["x"],
                          dynamo=False)
    images = [np.random.default_rng(i).random((1, 3, 16, 16), np.float32) for i in range(2)]
    data = nncf.Dataset(images, lambda x: {"x": x})
    with pytest.raises(Exception, match="Duplicate definition-site"):
        nncf.quantize(onnx.load(str(tmp_path / "fork.onnx")), data, subset_size=2, fast_bias_correction=False)


@pytest.fixture(scope="module")
def ckpt_with_ids(tiny_ckpt, tmp_path_factory) -> Path:
    """The tiny model saved with category ids 7, 12, 40."""
    from yolox_edge.engine.checkpoint import load_checkpoint, save_checkpoint
    from yolox_edge.models import create_model

    model = create_model("test_dw", num_classes=3)
    model.load_state_dict(load_checkpoint(tiny_ckpt)["model"])
    return save_checkpoint(tmp_path_factory.mktemp("ids") / "ids.pt", model, class_names=["a", "b", "c"],
                           category_ids=[7, 12, 40])


@pytest.fixture(scope="module")
def onnx_options_run(ckpt_with_ids, tiny_calib, tmp_path_factory):
    """One ONNX quantization with --subset-size 3, --nms 0.6 --conf 0.2 of the model with category ids:
    what the tests of those options' metadata read (each ran a quantization of its own)."""
    return quantize_checkpoint(ckpt_with_ids, calib=tiny_calib, format="onnx", out=tmp_path_factory.mktemp("opts"),
                               opts=QuantizeOptions(subset_size=3, iou=0.6, conf=0.2, nncf_keep_float=0),
                               progress=False, log=None)


def test_metadata_says_how_many_calibration_images_were_used(onnx_options_run):
    """With --subset-size under the set's size the metadata said only the set's count (8), not
    that the statistics came from its first 3 images."""
    res = onnx_options_run
    cal = res.metadata["quantization"]["calibration"]
    assert cal["count"] == 8 and cal["used"] == 3
    # The graph keeps K = every anchor when there are fewer than 100 (84 at 64x64), as the FP32
    # export records it; the INT8 metadata said 100 over outputs of 84.
    assert res.metadata["graph"]["topk"] == res.metadata["outputs"][0]["shape"][1] == 84


@pytest.mark.parametrize("fmt", ["openvino", "onnx"])
def test_quantize_checkpoint_refuses_an_unknown_silu_mode(tiny_ckpt, tmp_path, fmt):
    """QuantizeOptions(silu="Rational") wrote an exact-SiLU OpenVINO IR without a word (and on
    ONNX said the mode rewrites OpenVINO IR only), after the whole quantization."""
    with pytest.raises(UserError, match="unknown SiLU mode 'Rational'"):
        quantize_checkpoint(tiny_ckpt, calib=tmp_path / "no_calib", format=fmt, out=tmp_path / "c",
                            opts=QuantizeOptions(silu="Rational"))
    assert not (tmp_path / "c").exists()


def test_an_unknown_preset_is_refused_before_any_work(tiny_ckpt, tiny_calib, tmp_path):
    """preset='Mixed' was found only at the NNCF step: after the conv sensitivity scan and the FP32
    graph (20 s for a test model, minutes for Nano), with its lines and bars on the way."""
    from yolox_edge.quantize import run_quantize

    lines: list[str] = []
    with pytest.raises(UserError, match="unknown preset 'Mixed'; choose one of mixed, performance"):
        run_quantize(tiny_ckpt, calib=tiny_calib, formats="onnx", out=tmp_path / "q", preset="Mixed", progress=False,
                     log=lines.append)
    assert lines == [] and not (tmp_path / "q").exists()
    with pytest.raises(UserError, match="unknown preset 'x'"):  # before the calibration set is even read
        quantize_checkpoint(tiny_ckpt, calib=tmp_path / "no_calib", format="onnx", out=tmp_path / "c",
                            opts=QuantizeOptions(preset="x"), progress=False, log=lines.append)
    assert lines == [] and not (tmp_path / "c").exists()


@pytest.mark.parametrize("opts, words", [
    (QuantizeOptions(subset_size=0), "--subset-size 0 (subset_size=0 in Python): must be at least 1"),
    (QuantizeOptions(subset_size="8"), "--subset-size 8 (subset_size='8' in Python): must be at least 1"),
    (QuantizeOptions(max_drop=2.0), "--max-drop 2.0 (max_drop=2.0 in Python): an absolute AP drop in (0, 1)"),
    (QuantizeOptions(max_drop=0), "--max-drop 0 (max_drop=0 in Python): an absolute AP drop in (0, 1)"),
])
def test_quantize_checkpoint_checks_its_options_before_any_work(tiny_ckpt, tmp_path, opts, words):
    """Only run_quantize checked subset_size and max_drop; quantize_checkpoint handed them to NNCF
    (subset_size=0 after the conv scan and the FP32 graph). Before the calibration set is read."""
    lines: list[str] = []
    with pytest.raises(UserError, match=re.escape(words)):
        quantize_checkpoint(tiny_ckpt, calib=tmp_path / "no_calib", format="onnx", out=tmp_path / "c", opts=opts,
                            progress=False, log=lines.append)
    assert lines == [] and not (tmp_path / "c").exists()


def test_quantize_checkpoint_takes_out_and_out_dir_still_works(tiny_ckpt, tmp_path):
    """out, as run_quantize and the README name the folder (out= was a TypeError); out_dir= warns."""
    with pytest.raises(UserError, match="no_calib"):  # past the arguments: the missing set is the error
        quantize_checkpoint(tiny_ckpt, calib=tmp_path / "no_calib", format="onnx", out=tmp_path / "q", log=None)
    with pytest.warns(DeprecationWarning, match=r"quantize_checkpoint\(out_dir=\) is deprecated; pass out="):
        with pytest.raises(UserError, match="no_calib"):
            quantize_checkpoint(tiny_ckpt, calib=tmp_path / "no_calib", format="onnx", out_dir=tmp_path / "q", log=None)


@pytest.mark.parametrize("fmt", ["onnx", "ncnn"])
def test_int8_metadata_carries_the_checkpoints_category_ids(fmt, ckpt_with_ids, tiny_calib, tmp_path, request):
    from yolox_edge.export.metadata import read_metadata

    if fmt == "onnx":
        res = request.getfixturevalue("onnx_options_run")
    else:
        res = quantize_checkpoint(ckpt_with_ids, calib=tiny_calib, format=fmt, out=tmp_path / "ids",
                                  opts=QuantizeOptions(nncf_keep_float=0), progress=False, log=None)
    assert read_metadata(res.directory)["category_ids"] == [7, 12, 40]


def test_quantize_options_name_the_in_graph_nms_iou_and_conf(tiny_ckpt, tiny_calib, tmp_path, onnx_options_run):
    """QuantizeOptions' NMS fields were nms_iou/nms_conf where every call and flag says iou/conf
    (--nms/--conf); the earlier keywords still construct the same options, with a warning."""
    from yolox_edge.export.api import DEFAULT_NMS_IOU

    assert (QuantizeOptions().iou, QuantizeOptions(iou=None).iou) == (DEFAULT_NMS_IOU, None)
    with pytest.warns(DeprecationWarning, match=r"^QuantizeOptions\(nms_iou=\) is deprecated; pass iou=\.\.\."):
        assert QuantizeOptions(nms_iou=0.6, subset_size=8) == QuantizeOptions(iou=0.6, subset_size=8)
    with pytest.warns(DeprecationWarning, match=r"^QuantizeOptions\(nms_conf=\) is deprecated; pass conf="):
        assert QuantizeOptions(nms_conf=0.3).conf == 0.3
    with pytest.raises(TypeError, match=r"nms_iou= and iou="):
        QuantizeOptions(nms_iou=0.5, iou=0.6)
    with pytest.raises(UserError, match=r"--nms 1\.5 \(iou=1\.5 in Python\)"):  # read before any NNCF work
        quantize_checkpoint(tiny_ckpt, calib=tiny_calib, format="onnx", out=tmp_path / "bad",
                            opts=QuantizeOptions(iou=1.5), progress=False, log=None)
    assert onnx_options_run.metadata["graph"]["nms"] == {"iou": 0.6, "conf": 0.2, "class_aware": True}


def test_quantize_options_read_and_set_the_earlier_nms_names_as_aliases():
    """The constructor took nms_iou=/nms_conf= but opts.nms_iou was an AttributeError, and
    dataclasses.replace(opts, nms_iou=) said 'got nms_iou= and iou=' of a call that gave one keyword."""
    import dataclasses

    opts = QuantizeOptions(iou=0.6, conf=0.2)
    with pytest.warns(DeprecationWarning, match=r"^QuantizeOptions\.nms_iou is deprecated; use QuantizeOptions\.iou "
                                                r"instead$"):
        assert opts.nms_iou == 0.6
    with pytest.warns(DeprecationWarning, match=r"^QuantizeOptions\.nms_conf is deprecated; use QuantizeOptions\.conf"):
        opts.nms_conf = 0.3
    assert opts.conf == 0.3
    with pytest.warns(DeprecationWarning, match=r"QuantizeOptions\.nms_iou is deprecated"):
        opts.nms_iou = None
    assert opts.iou is None
    # Aliases, not fields: what a dataclass shows of itself has the new names alone.
    names = [f.name for f in dataclasses.fields(QuantizeOptions)]
    assert "nms_iou" not in names and "nms_conf" not in names
    assert "nms_iou" not in dataclasses.asdict(opts) and "nms_iou" not in repr(opts)
    assert opts == QuantizeOptions(iou=None, conf=0.3)
    with pytest.raises(TypeError, match=r"got nms_iou= and iou=; .*; from dataclasses\.replace\(\), which passes "
                                        r"every field, call replace\(obj, iou=\.\.\.\) instead$"):
        dataclasses.replace(opts, nms_iou=0.5)
    with pytest.raises(TypeError, match=r"got nms_iou= and iou=; .*: pass only those; from dataclasses"):
        QuantizeOptions(iou=0.45, nms_iou=0.6)  # a plain call with both stays an error, as before
    assert dataclasses.replace(opts, iou=0.5).iou == 0.5


def test_quantize_never_writes_over_or_removes_a_users_own_report(tiny_ckpt, tiny_calib, shapes_spec, tmp_path,
                                                                 monkeypatch):
    """--format A B --report wrote over the user's report.md in --out without --force (only a
    metadata.json there was looked for), and one format with --force removed it with or without
    --report; an earlier run's report was replaced without --force."""
    import yolox_edge.quantize.pipeline as pipeline

    monkeypatch.setattr(pipeline, "quantize_detector", stop)
    monkeypatch.setattr(pipeline, "check_val_images", lambda *a, **k: None)
    out = tmp_path / "q"
    out.mkdir()
    (out / "report.md").write_text("MY NOTES - do not lose")
    for formats, kw in [(["onnx", "openvino"], {"report": True, "data": str(shapes_spec)}),
                        ("onnx", {"force": True, "report": True, "data": str(shapes_spec)})]:
        with pytest.raises(UserError, match=r"report\.md: not a report of 'yolox-edge quantize', and this run would "
                                            r"write over it; move it"):
            pipeline.run_quantize(tiny_ckpt, calib=tiny_calib, formats=formats, out=out, progress=False, log=None,
                                  **kw)
    monkeypatch.setattr(pipeline, "quantize_detector", _fake_int8)
    pipeline.run_quantize(tiny_ckpt, calib=tiny_calib, formats="onnx", out=out, progress=False, log=None, force=True)
    assert (out / "report.md").read_text() == "MY NOTES - do not lose"  # --force alone: kept, not removed
    monkeypatch.setattr(pipeline, "quantize_detector", stop)
    for f in (out / "m.onnx", out / "metadata.json"):
        f.unlink()
    (out / "report.md").write_text("FP32 vs INT8 (ptq) on d.yaml:val\n|...")  # an earlier --report run's
    with pytest.raises(UserError, match=r"holds report\.md of an earlier quantize --report run; .*--force"):
        pipeline.run_quantize(tiny_ckpt, calib=tiny_calib, formats=["onnx", "openvino"], out=out, progress=False,
                              log=None, report=True, data=str(shapes_spec))
    with pytest.raises(Stop):  # with --force it is this tool's own to replace: the work goes ahead
        pipeline.run_quantize(tiny_ckpt, calib=tiny_calib, formats=["onnx", "openvino"], out=out, progress=False,
                              log=None, report=True, data=str(shapes_spec), force=True)
