"""The bench on a tiny model: a few iterations, the result validates against the schema."""
from __future__ import annotations

import csv
import json
import os
import platform
import re
from pathlib import Path

import jsonschema
import numpy as np
import pytest
import torch

import yolox_edge.bench as bench_pkg
from yolox_edge.bench import best_ratio, markdown_table, run_bench, write_csv, write_plot
from yolox_edge.bench.machine import cpu_flags
from yolox_edge.bench.stats import latency_stats
from yolox_edge.data.preprocess import PreprocessConfig
from yolox_edge.engine.checkpoint import save_checkpoint
from yolox_edge.errors import UserError
from yolox_edge.models import create_model

SCHEMA = json.loads((Path(bench_pkg.__file__).parent / "schema.json").read_text())


@pytest.fixture(scope="module")
def tiny_ckpt(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    model = create_model("test", num_classes=3)
    path = tmp_path_factory.mktemp("bench") / "tiny.pt"
    save_checkpoint(path, model, class_names=["a", "b", "c"], preprocess=PreprocessConfig(input_size=(64, 64)))
    return path


def test_latency_stats_values():
    s = latency_stats([0.001, 0.002, 0.003, 0.004])
    assert s["min"] == 1.0 and s["mean"] == 2.5 and s["n"] == 4
    assert s["p50"] == pytest.approx(2.5) and s["ips"] == pytest.approx(400.0)
    with pytest.raises(ValueError):
        latency_stats([])


def test_cpu_flags_portable_names():
    assert cpu_flags({"Features": "fp asimd asimddp i8mm"})[:3] == ["neon", "dotprod", "i8mm"] or \
        set(cpu_flags({"Features": "fp asimd asimddp i8mm"})) >= {"neon", "dotprod", "i8mm"}
    assert cpu_flags({"flags": "fpu avx2 avx512f avx512_vnni"}) == ["avx2", "avx512f", "avx512_vnni"]


@pytest.mark.parametrize("machine, features, want", [
    ("armv7l", "half thumb fastmult vfp edsp neon vfpv3 tls vfpv4 idiva idivt", ["neon"]),
    ("armv8l", "half thumb fastmult vfp edsp neon vfpv3 asimddp i8mm", ["neon", "dotprod", "i8mm"]),
    ("armv8l", "half thumb fastmult vfp edsp vfpv3", ["neon"]),  # Armv8 under a 32-bit userland: NEON all the same
    ("aarch64", "fp asimd evtstrm asimddp i8mm", ["neon", "dotprod", "i8mm"]),
])
def test_neon_is_named_under_a_32_bit_arm_kernel(monkeypatch, machine, features, want):
    """A 32-bit kernel (Raspberry Pi OS 32-bit, armv7l; Android's 32-bit userland, armv8l) lists
    'neon', not 'asimd': the header showed no NEON, and bench-compare called the ISA different."""
    import platform

    monkeypatch.setattr(platform, "machine", lambda: machine)
    assert cpu_flags({"Features": features}) == want


def test_bench_tiny_model_schema_and_reports(tiny_ckpt, tmp_path):
    res = run_bench([str(tiny_ckpt)], threads=[1, 2], warmup=1, runs=3, mode="both", rss=True, progress=False)
    jsonschema.validate(res, SCHEMA)
    assert len(res["rows"]) == 2 and {r["threads"] for r in res["rows"]} == {1, 2}
    row = res["rows"][0]
    assert row["latency_ms"]["model"]["n"] == 3 and row["latency_ms"]["e2e"]["n"] == 3
    # decoded output of the 'test' variant at 64 px: 84 anchors x (4 box + 3 scores) float32
    assert row["output_bytes_per_image"] == 84 * 7 * 4
    assert row["size_bytes"] == tiny_ckpt.stat().st_size
    assert row["peak_rss_mb"] and row["peak_rss_mb"] > 10
    assert row["params_m"] > 0 and row["gflops"] > 0
    assert row["variant"] == "test"  # from the checkpoint: best_by_variant groups by it
    assert len(res["config"]["order"]) == 4  # 2 rows x 2 modes, one of each per round
    md = markdown_table(res)
    assert sum(line.startswith("| ") for line in md.splitlines()) == 3 and "tiny.pt" in md  # header + 2 rows
    head, _, first = [[c.strip() for c in line.strip("|").split("|")] for line in md.splitlines()[:3]]
    assert first[head.index("params M")] == f"{row['params_m']:.3f}"  # the issue asks for both in the output
    assert first[head.index("GFLOPs")] == f"{row['gflops']:.2f}"
    write_csv(res, tmp_path / "b.csv")
    assert (tmp_path / "b.csv").read_text().count("\n") == 5  # header + 2 rows x 2 modes
    write_plot(res, tmp_path / "b.png")
    assert (tmp_path / "b.png").read_bytes()[:4] == b"\x89PNG"
    write_plot(res, tmp_path / "b.svg")  # the suffix picks the format
    assert b"<svg" in (tmp_path / "b.svg").read_bytes()[:2000]
    write_plot(res, tmp_path / "b.jpg")
    assert (tmp_path / "b.jpg").read_bytes()[:2] == b"\xff\xd8"
    assert best_ratio(res) is None  # no baseline row
    if Path("/proc/stat").is_file():  # the timed window's other load, over the cores the bench had
        assert res["host_load"]["cpus"] == sorted(os.sched_getaffinity(0)) and "Other load on core" in md


def test_baseline_row_and_ratio(tiny_ckpt, tmp_path):
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    # A raw-output stand-in for the official export: [1,3,64,64] -> [1,84,8] (sigmoid-ed obj/cls columns).
    n = 84
    w = helper.make_tensor("w", TensorProto.FLOAT, [1, n * 8], np.zeros(n * 8, np.float32))
    g = helper.make_graph(
        [helper.make_node("ReduceMean", ["images"], ["m"], keepdims=0),
         helper.make_node("Reshape", ["m", "one"], ["m2"]),
         helper.make_node("Mul", ["m2", "w"], ["flat"]),
         helper.make_node("Reshape", ["flat", "shape"], ["output"])],
        "raw", [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, 64, 64])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, n, 8])],
        [w, helper.make_tensor("one", TensorProto.INT64, [2], [1, 1]),
         helper.make_tensor("shape", TensorProto.INT64, [3], [1, n, 8])])
    path = tmp_path / "raw.onnx"
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)], ir_version=8), path)
    # --data scores every row, the batch-1 baseline too (the evaluator hands it batches).
    from yolox_edge.data.synthetic import make_shapes_dataset

    spec = make_shapes_dataset(tmp_path / "shapes", n_train=1, n_val=10, size=(64, 80))
    res = run_bench([str(tiny_ckpt)], threads=[1], warmup=1, runs=2, baseline=str(path), rss=False, progress=False,
                    data=str(spec))
    jsonschema.validate(res, SCHEMA)
    base = [r for r in res["rows"] if r["baseline"]]
    assert len(base) == 1 and base[0]["output_bytes_per_image"] == n * 8 * 4
    assert base[0]["params_m"] is None  # no YOLOX variant has this graph's convolutions
    assert base[0]["variant"] is None  # the baseline is no model's row
    assert all(r["ap"] is not None for r in res["rows"])
    best = best_ratio(res)
    assert best is not None and best["ratio"] > 0


def test_artifact_size_counts_only_the_files_metadata_names(tmp_path):
    """A quantize --report folder holds fp32/ reference exports: they are not the artifact's size."""
    from yolox_edge.bench.runner import artifact_files
    from yolox_edge.export.metadata import write_metadata

    (tmp_path / "m.xml").write_bytes(b"x" * 10)
    (tmp_path / "m.bin").write_bytes(b"b" * 20)
    (tmp_path / "fp32" / "openvino").mkdir(parents=True)
    (tmp_path / "fp32" / "openvino" / "big.bin").write_bytes(b"f" * 1000)
    write_metadata(tmp_path, {"format": "openvino"}, ["m.xml", "m.bin"])
    assert [p.name for p in artifact_files(tmp_path)] == ["m.bin", "m.xml"]
    # any file of the export, its weights too (bench m.bin read the .bin's size alone)
    for given in ("m.xml", "m.bin", "metadata.json"):
        assert [p.name for p in artifact_files(tmp_path / given)] == ["m.bin", "m.xml"], given
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "a.onnx").write_bytes(b"o")
    assert [p.name for p in artifact_files(plain)] == ["a.onnx"]


@pytest.mark.parametrize("hw", [(480, 640), (700, 300), (416, 416), (2, 4000), (5000, 3)])
def test_baseline_preprocessing_is_the_official_steps_and_ours_equals_it(hw):
    """The baseline runs the official demo's preprocessing; ours produces the same array."""
    from yolox_edge.bench.baseline import official_preprocess
    from yolox_edge.data.preprocess import preprocess

    img = np.random.default_rng(1).integers(0, 256, (*hw, 3), dtype=np.uint8)
    cfg = PreprocessConfig(input_size=(416, 416))
    x_off, r_off = official_preprocess(img, cfg)
    x, r = preprocess(img, cfg)
    assert r == r_off and x_off.shape == (3, 416, 416) and x_off.dtype == np.float32
    np.testing.assert_array_equal(x, x_off)


def test_rows_with_the_same_folder_name_keep_their_paths() -> None:
    from yolox_edge.bench.runner import display_names

    assert display_names(["q2/openvino", "q3/openvino", "runs/x/best.pt", "q2/onnx"]) == [
        "q2/openvino", "q3/openvino", "best.pt", "onnx"]


def test_precision_hints_give_openvino_a_row_each(tiny_ckpt, tmp_path):
    from yolox_edge.bench.runner import _hints_for
    from yolox_edge.errors import UserError
    from yolox_edge.export import export_model

    ov_dir = export_model(tiny_ckpt, format="openvino", out=tmp_path / "ov").directory
    res = run_bench([str(ov_dir), str(tiny_ckpt)], threads=[1], warmup=1, runs=2, rss=False, progress=False,
                    precision_hints=["bf16", "f32"])
    jsonschema.validate(res, SCHEMA)
    ov = [r for r in res["rows"] if r["backend"] == "openvino"]
    assert len(ov) == 2 and len({r["label"] for r in ov}) == 2  # the torch row is not repeated
    assert [r["backend"] for r in res["rows"]].count("torch") == 1
    assert "bf16 inference" in ov[0]["label"] or "(bf16 asked)" in ov[0]["label"]  # CPUs without bf16 run f32
    assert "f32 inference" in ov[1]["label"] and "asked" not in ov[1]["label"]
    assert res["config"]["precision_hints"] == ["bf16", "f32"]
    assert _hints_for("ncnn", ["f32", "bf16"], "m") == ["f32"]
    with pytest.raises(UserError, match="ncnn takes the precision hints f32, f16"):
        _hints_for("ncnn", ["bf16"], "m")


def test_a_precision_hint_no_artifact_takes_is_refused(tiny_ckpt):
    """bench m.onnx --precision-hint f16 ran the f32 row without a word and recorded f16 as asked."""
    with pytest.raises(UserError, match=r"--precision-hint f16 \(precision_hints=\['f16'\] in Python\): no artifact "
                                        r"here takes a precision hint \(OpenVINO IRs and ncnn exports do\); drop it"):
        run_bench([str(tiny_ckpt)], threads=[1], warmup=0, runs=1, rss=False, progress=False, precision_hints=["f16"])
    # f32 is what such an artifact runs: asked, it is no surprise to be refused
    run_bench([str(tiny_ckpt)], threads=[1], warmup=0, runs=1, rss=False, progress=False, precision_hints=["f32"])


@pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64"), reason="what ncnn runs f16 as on x86")
def test_an_ncnn_f16_row_on_x86_says_it_ran_f32(tiny_ckpt, tmp_path):
    """ncnn's x86 layers take no fp16 path (outputs identical to f32), yet the row read 'f16 inference'."""
    from yolox_edge.export import export_model

    nc_dir = export_model(tiny_ckpt, format="ncnn", out=tmp_path / "nc").directory
    res = run_bench([str(nc_dir)], threads=[1], warmup=0, runs=1, rss=False, progress=False,
                    precision_hints=["f32", "f16"])
    labels = [r["label"] for r in res["rows"]]
    assert labels == ["nc [ncnn fp32 weights, f32 inference]", "nc [ncnn fp32 weights, f32 inference (f16 asked)]"]
    assert [r["effective_precision"] for r in res["rows"]] == ["fp32 weights, f32 inference"] * 2


def test_turn_sizes_split_runs_into_rounds():
    from yolox_edge.bench.schedule import turn_sizes

    assert turn_sizes(100, 10) == [10] * 10
    assert turn_sizes(5, 2) == [2, 2, 1]
    assert turn_sizes(3, 10) == [3]
    with pytest.raises(ValueError):
        turn_sizes(0, 10)


def test_settle_waits_for_busy_threads_and_not_for_an_idle_process():
    import threading
    import time

    from yolox_edge.bench.schedule import settle

    settle(slice_s=0.005, max_s=0.5)  # whatever earlier work left spinning (e.g. BLAS threads after import)
    assert settle(slice_s=0.005, max_s=0.5) < 0.05
    stop = time.perf_counter() + 0.15

    def spin():  # stands in for a runtime's worker busy-waiting after a call
        while time.perf_counter() < stop:
            pass

    t = threading.Thread(target=spin)
    t.start()
    waited = settle(slice_s=0.005, max_s=0.5)
    t.join()
    assert 0.1 <= waited < 0.5


def test_rows_take_turns_with_untimed_switch_in_calls(tiny_ckpt, monkeypatch):
    from yolox_edge.bench import runner
    from yolox_edge.bench.schedule import SWITCH_IN_CALLS

    timed, infers = [], []
    real = runner._time_once

    def record(row, mode, img, x):
        timed.append((row.threads, mode))
        return real(row, mode, img, x)

    monkeypatch.setattr(runner, "_time_once", record)
    real_build = runner.build_rows

    def build(*a, **k):
        rows = real_build(*a, **k)
        for r in rows:
            infer = r.backend.infer
            r.backend.infer = lambda x, _r=r, _f=infer: (infers.append(_r.threads), _f(x))[1]
        return rows

    monkeypatch.setattr(runner, "build_rows", build)
    res = run_bench([str(tiny_ckpt)], threads=[1, 2], warmup=0, runs=5, runs_per_turn=2, rss=False, progress=False)
    jsonschema.validate(res, SCHEMA)
    assert res["config"]["runs_per_turn"] == 2
    turn = lambda t, n: [(t, "model"), (t, "e2e")] * n  # noqa: E731
    assert timed == turn(1, 2) + turn(2, 2) + turn(1, 2) + turn(2, 2) + turn(1, 1) + turn(2, 1)
    # three rounds, each row's turn opening with its untimed calls (the timed ones infer too)
    model_and_e2e = 5 * 2
    assert infers.count(1) == infers.count(2) == 3 * SWITCH_IN_CALLS + model_and_e2e + 1  # +1: the output-size call
    assert all(r["latency_ms"]["model"]["n"] == 5 for r in res["rows"])


def test_a_pipe_in_a_row_label_stays_in_its_markdown_cell():
    """A label shows the path as typed; 'v1|v2/m.pt' split its row into one cell too many."""
    row = {"label": "v1|v2/m.pt [torch fp32]", "threads": 1, "baseline": False, "size_bytes": 1,
           "output_bytes_per_image": 1, "peak_rss_mb": None, "ap": None, "drift_pct": {"e2e": None},
           "latency_ms": {"e2e": {"p50": 1.0, "p90": 1.0, "ips": 1.0}}}
    res = {"rows": [row], "config": {"modes": ["e2e"], "runs": 10, "warmup": 1, "image": "x"},
           "machine": {"cpu": "c", "arch": "a", "logical_cores": 2, "isa": [], "os": "o", "runtimes": {}}}
    head, _, body = markdown_table(res).splitlines()[:3]
    cells = lambda line: len(re.split(r"(?<!\\)\|", line)) - 2  # noqa: E731
    assert cells(body) == cells(head) and "v1\\|v2/m.pt" in body, (head, body)


def test_drift_is_the_second_half_against_the_first_and_reported():
    from yolox_edge.bench.stats import drift_pct

    assert drift_pct([0.010] * 5 + [0.012] * 5) == pytest.approx(20.0)
    assert drift_pct([0.010, 0.010, 0.0095, 0.0095]) == pytest.approx(-5.0)
    assert drift_pct([0.01] * 3) is None
    row = {"label": "m", "threads": 2, "baseline": False, "size_bytes": 1, "output_bytes_per_image": 1,
           "peak_rss_mb": None, "ap": None, "drift_pct": {"e2e": 20.0},
           "latency_ms": {"e2e": {"p50": 1.0, "p90": 1.0, "ips": 1.0}}}
    res = {"rows": [row, dict(row, label="steady", drift_pct={"e2e": -3.0})],
           "config": {"modes": ["e2e"], "runs": 10, "warmup": 1, "image": "x"},
           "machine": {"cpu": "c", "arch": "a", "logical_cores": 2, "isa": [], "os": "o", "runtimes": {}}}
    md = markdown_table(res)
    assert "Not steady (e2e p50, second half of a row's runs against the first): m x2 20% slower." in md and "steady x2" not in md and "Machine not steady" not in md
    # The host slowing mid-run moves every row: one line for the machine, rows only beyond it.
    res["rows"] = [dict(row, label=f"r{i}", drift_pct={"e2e": d}) for i, d in enumerate([28.0, 31.0, 30.0, 52.0, 25.0])]
    from yolox_edge.bench.report import drift_warnings

    lines = drift_warnings(res)
    assert lines[0].startswith("Machine not steady: nearly every row ran 30% slower") and len(lines) == 3
    assert lines[2] == "For times that repeat on such a machine, spread each row over more turns: --runs 300 --runs-per-turn 5."
    assert lines[1].startswith("Not steady beyond the machine's +30% (e2e p50, second half of a row's runs against "
                               "the first): r3 x2 22 points slower.")
    res["rows"] = [dict(row, label="edge", drift_pct={"e2e": -10.4})]  # over 10 %, so not printed as '10%'
    assert "edge x2 10.4% faster" in markdown_table(res)
    res["rows"] = [dict(row, label=f"r{i}", drift_pct={"e2e": d}) for i, d in enumerate([28.0, 31.0, 30.0, 52.0, 25.0])]
    res["rows"][2]["drift_pct"] = {"e2e": 5.0}  # two rows beyond the machine: still one line, naming both
    lines = drift_warnings(res)
    assert len(lines) == 3 and "r2 x2 23 points faster; r3 x2 24 points slower." in lines[1]  # median now 28
    res["config"].update(runs=300, runs_per_turn=5)  # already run that way: no advice to repeat it
    assert len(drift_warnings(res)) == 2
    res["config"].update(runs=100, runs_per_turn=10)
    res["rows"][0]["drift_pct"] = {"e2e": -28.0}  # rows moving both ways: no common cause to name
    res["rows"][1]["drift_pct"] = {"e2e": -31.0}
    assert not any(w.startswith("Machine") for w in drift_warnings(res))


def test_official_baseline_row_counts_like_ours(refdata):
    from yolox_edge.bench.runner import build_rows, model_counts

    rows = build_rows([], [1], baseline=str(refdata / "models" / "yolox_nano.onnx"), conf=0.25, iou=0.45)
    params, gflops = model_counts(rows[0].predictor.info)
    assert params == pytest.approx(0.91, abs=0.005) and gflops == pytest.approx(1.08, abs=0.005)  # YOLOX README


def test_baseline_from_our_raw_export_counts_its_variant(tiny_ckpt, tmp_path):
    from yolox_edge.bench.runner import build_rows, model_counts
    from yolox_edge.export import export_model
    from yolox_edge.models import variant_counts

    raw = export_model(tiny_ckpt, format="onnx", out=tmp_path / "raw", raw=True).directory
    rows = build_rows([], [1], baseline=str(next(raw.glob("*.onnx"))), conf=0.25, iou=0.45)
    want = variant_counts("test", num_classes=3, input_hw=(64, 64))
    assert model_counts(rows[0].predictor.info) == (want["params_m"], want["gflops"])
    res = run_bench([], threads=[1], warmup=0, runs=1, baseline=str(raw), rss=False, progress=False)
    assert res["rows"][0]["baseline"] and res["rows"][0]["size_bytes"] > 0  # the folder export --raw wrote
    # Its memory is measured without torch (which only counting params loads): ~200 MB too much before.
    code = ("import sys; from yolox_edge.bench.baseline import baseline_predictor; "
            f"baseline_predictor({str(raw)!r}, threads=1, count_variant=False); print('torch' in sys.modules)")
    import subprocess
    import sys
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "False"
    with pytest.raises(UserError, match=r"nope.onnx: not found; pass the official YOLOX ONNX"):
        build_rows([], [1], baseline=str(tmp_path / "nope.onnx"), conf=0.25, iou=0.45)
    # Our decoded export (top-K rows, not one per grid cell) is refused with the fix, not a traceback.
    dec = export_model(tiny_ckpt, format="onnx", out=tmp_path / "dec").directory
    with pytest.raises(UserError, match="not a raw YOLOX ONNX.*export --raw"):
        build_rows([], [1], baseline=str(next(dec.glob("*.onnx"))), conf=0.25, iou=0.45)


def test_fps_paces_runs_and_reports_cpu_per_frame(tiny_ckpt):
    import time

    t0 = time.perf_counter()
    res = run_bench([str(tiny_ckpt)], threads=[1], warmup=0, runs=4, runs_per_turn=2, fps=25, rss=False,
                    progress=False)
    # 4 runs x 2 modes, each given its 40 ms frame (a tiny model needs far less)
    assert time.perf_counter() - t0 >= 8 * 0.04
    jsonschema.validate(res, SCHEMA)
    assert res["config"]["fps"] == 25
    row = res["rows"][0]
    assert set(row["cpu_ms"]) == {"model", "e2e"} and all(v > 0 for v in row["cpu_ms"].values())
    assert "e2e CPU ms/frame" in markdown_table(res) and "paced at 25 frames/s" in markdown_table(res)
    assert "not keeping up" not in markdown_table(res)  # a tiny model: far under 40 ms
    res["rows"][0]["latency_ms"]["e2e"]["p50"] = 41.0  # a model slower than a frame is named
    assert "Slower than a frame (40.0 ms) at p50, so not keeping up with 25 frames/s: tiny.pt" in markdown_table(res)
    with pytest.raises(ValueError, match="fps"):
        run_bench([str(tiny_ckpt)], threads=[1], runs=1, fps=0, rss=False, progress=False)


def test_cpus_pin_for_the_run_and_give_the_cores_back(tiny_ckpt):
    import os

    from yolox_edge.errors import UserError

    before = os.sched_getaffinity(0)
    core = min(before)
    res = run_bench([str(tiny_ckpt)], threads=[1], warmup=0, runs=1, cpus=[core], rss=False, progress=False)
    assert res["config"]["cpus"] == [core]  # pinned while it measured
    assert os.sched_getaffinity(0) == before  # and not after: a library caller keeps its cores
    with pytest.raises(UserError, match=r"--cpus 4096 \(cpus=\[4096\] in Python\)"):
        run_bench([str(tiny_ckpt)], threads=[1], runs=1, cpus=[4096], rss=False, progress=False)
    assert os.sched_getaffinity(0) == before


def test_cpus_pin_every_thread_of_the_process_and_give_each_its_cores_back(tiny_ckpt, monkeypatch):
    """sched_setaffinity(0) pins the calling thread only: a thread already running (a notebook's
    torch pool) kept every core during the bench, and the threads the runtimes started during it
    stayed pinned after it."""
    import threading

    from yolox_edge.bench import runner

    stop = threading.Event()
    waiting = threading.Thread(target=stop.wait, daemon=True)
    waiting.start()
    before = os.sched_getaffinity(0)
    own = {tid: os.sched_getaffinity(tid) for tid in runner._thread_ids()}  # a runtime may pin its own threads
    core = min(before)
    seen = {}
    real = runner._take_turns

    def turns(*a, **k):
        seen.update({tid: os.sched_getaffinity(tid) for tid in runner._thread_ids()})
        threading.Thread(target=lambda: seen.setdefault("started", os.sched_getaffinity(0))).start()
        return real(*a, **k)

    monkeypatch.setattr(runner, "_take_turns", turns)
    try:
        run_bench([str(tiny_ckpt)], threads=[1], warmup=0, runs=1, cpus=[core], rss=False, progress=False)
        assert waiting.native_id in seen and all(v == {core} for v in seen.values()), seen
        after = {tid: os.sched_getaffinity(tid) for tid in runner._thread_ids()}
        # each thread its own cores again; one started during the bench those of the thread that started it
        assert after[waiting.native_id] == before and all(v == own.get(tid, before) for tid, v in after.items()), (
            after, own)
    finally:
        stop.set()


def test_the_rows_run_opencv_on_their_thread_count_and_the_callers_count_is_put_back(tiny_ckpt, monkeypatch):
    """The e2e rows' resize ran on OpenCV's process-wide pool (every core) whatever the row's thread
    count; the bench now holds it to the row's count and gives the caller's back."""
    import cv2

    from yolox_edge.bench import runner

    before = cv2.getNumThreads()
    cv2.setNumThreads(3)
    counts = []
    real = runner._time_once

    def timed(r, m, img, x):
        counts.append((r.threads, cv2.getNumThreads()))
        return real(r, m, img, x)

    monkeypatch.setattr(runner, "_time_once", timed)
    try:
        run_bench([str(tiny_ckpt)], threads=[1, 2], warmup=1, runs=2, rss=False, progress=False)
        assert counts and all(t == n for t, n in counts[len(counts) // 2:]), counts
        assert cv2.getNumThreads() == 3
    finally:
        cv2.setNumThreads(before)


def test_peak_rss_is_measured_at_the_rows_input_size(tiny_ckpt, monkeypatch):
    """The RSS child ran every artifact at its own size with the f32 hint: an --img-size row read
    the default size's memory (the tiny model at 1024: 258 MiB as at 64, 334 by hand)."""
    import subprocess

    calls = []
    real = subprocess.run

    def run(cmd, *a, **k):
        calls.append(cmd)
        return real(cmd, *a, **k)

    monkeypatch.setattr(subprocess, "run", run)
    res = run_bench([str(tiny_ckpt)], threads=[1], warmup=0, runs=1, img_size=(64, 96), rss=True, progress=False)
    rss = [c for c in calls if "yolox_edge.bench.rss" in c]
    assert len(rss) == 1 and rss[0][-2:] == ["--img-size", "96x64"], rss
    assert res["rows"][0]["peak_rss_mb"] and res["rows"][0]["input_size"] == [64, 96]


def test_cpus_with_ncnn_powersave_is_refused_before_any_work(tiny_ckpt, run_cli):
    import os

    from yolox_edge.errors import UserError

    before = os.sched_getaffinity(0)
    with pytest.raises(UserError, match=r"--cpus and --powersave \(cpus= and powersave= in Python\)"):
        run_bench([str(tiny_ckpt)], threads=[1], runs=1, cpus=[min(before)], powersave=2, rss=False,
                  progress=False)
    assert os.sched_getaffinity(0) == before
    # the CLI: the refusal alone, not first a note about threads above the one pinned core
    code, _out, err = run_cli("bench", tiny_ckpt, "--runs", "1", "--threads", "2", "--cpus", str(min(before)),
                              "--powersave", "2")
    assert code == 2 and "--cpus and --powersave" in err and "note:" not in err, err


def test_bad_inputs_fail_before_any_timing(tiny_ckpt, tmp_path, monkeypatch, run_cli):
    """A wrong data spec or output path costs a second, not the whole run."""
    import yolox_edge.bench.runner as runner
    from yolox_edge.errors import UserError

    def no_rows(*a, **k):
        raise AssertionError("models were loaded before the input was checked")

    monkeypatch.setattr(runner, "build_rows", no_rows)
    with pytest.raises(UserError, match="nothere.yaml"):
        run_bench([str(tiny_ckpt)], threads=[1], runs=1, data=str(tmp_path / "nothere.yaml"), rss=False,
                  progress=False)
    with pytest.raises(ValueError, match="threads"):
        run_bench([str(tiny_ckpt)], threads=[0], runs=1, rss=False, progress=False)
    blocker = tmp_path / "file"
    blocker.write_text("")
    for flag, path in (("--json", tmp_path), ("--csv", blocker / "sub" / "r.csv"),
                       ("--plot", tmp_path / "chart.gif"),  # PNG bytes went into any name: now the known ones
                       ("--md", blocker), ("--csv", tmp_path / "model.pt")):  # a table replaced a checkpoint
        code, _out, err = run_cli("bench", tiny_ckpt, "--runs", "1", flag, path)
        assert code == 2 and "Traceback" not in err, err
        assert str(path) in err and "AssertionError" not in err, err


def test_best_by_variant_gives_each_model_its_own_best_row(run_cli, tmp_path):
    """A run of the SiLU Nano beside nano_hswish: the headline is nano_hswish's row, which said
    nothing of the SiLU Nano's best; each variant gets its own, the baseline shared."""
    from yolox_edge.bench import best_by_variant

    def row(label, threads, p50, variant, baseline=False):
        return {"label": label, "threads": threads, "baseline": baseline, "variant": variant,
                "latency_ms": {"e2e": {"p50": p50}}}

    res = {"rows": [row("silu int8", 1, 10.0, "nano"), row("silu fp32", 1, 16.0, "nano"),
                    row("hswish int8", 1, 8.0, "nano_hswish"), row("old", 1, 4.0, None), row("base", 1, 17.0, None, True)],
           "config": {"modes": ["e2e"]}}
    per = best_by_variant(res)
    assert list(per) == ["nano", "nano_hswish"]  # the rows' order; a row without a variant in none
    assert per["nano"] == {"label": "silu int8", "threads": 1, "ratio": 1.7}
    assert per["nano_hswish"]["label"] == "hswish int8" and per["nano_hswish"]["ratio"] == 17.0 / 8.0
    assert best_ratio(res)["label"] == "old"  # the overall headline still takes every row
    assert best_by_variant({**res, "rows": [r for r in res["rows"] if r["variant"] != "nano_hswish"]}) == {
        "nano": per["nano"]}


def test_speedups_pair_each_row_with_the_baseline_at_its_thread_count(tmp_path):
    from yolox_edge.bench.report import speedups

    def row(label, threads, p50, baseline=False):
        return {"label": label, "threads": threads, "baseline": baseline, "backend": "onnxruntime", "ap": None,
                "latency_ms": {"e2e": {"p50": p50, "p90": p50 * 1.1}}}

    res = {"rows": [row("a", 1, 10.0), row("a", 2, 6.0), row("b", 4, 5.0), row("base", 1, 20.0, True),
                    row("base", 2, 15.0, True)],
           "config": {"modes": ["e2e"]}, "machine": {"cpu": "test cpu", "arch": "x86_64"}}
    assert speedups(res, "e2e") == [2.0, 2.5, None, 1.0, 1.0]  # no 4-thread baseline: no ratio
    assert best_ratio(res) == {"label": "a", "threads": 2, "ratio": 2.5}
    over = {**res, "rows": [dict(r) for r in res["rows"]]}
    over["rows"][0]["latency_ms"] = {"e2e": {"p50": 4.0}}   # a 1-thread row at 5x its baseline...
    over["rows"][0]["oversubscribed"] = over["rows"][3]["oversubscribed"] = True  # ...with too many threads
    assert best_ratio(over)["ratio"] == 2.5  # the headline is a row that had its cores
    for r in over["rows"]:
        r["oversubscribed"] = True
    assert best_ratio(over)["ratio"] == 5.0  # unless every row was oversubscribed
    write_plot(res, tmp_path / "bars.png")  # the bar chart (no AP) with a row lacking a ratio
    assert (tmp_path / "bars.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_library_callers_may_pass_one_artifact_and_one_thread_count(tiny_ckpt):
    res = run_bench(tiny_ckpt, threads=1, warmup=0, runs=1, rss=False, progress=False)
    assert [(r["artifact"], r["threads"]) for r in res["rows"]] == [(str(tiny_ckpt), 1)]


def _fake_row(label: str, backend: str, threads: int, p50: float, ap: float | None, baseline: bool = False) -> dict:
    stats = {"min": p50, "p50": p50, "p90": p50 * 1.1, "p99": p50 * 1.2, "mean": p50, "std": 0.1,
             "ips": 1000 / p50, "n": 5}
    return {"label": label, "artifact": label, "backend": backend, "baseline": baseline, "threads": threads,
            "latency_ms": {"e2e": stats, "model": stats}, "ap": ap, "ap50": None}


def test_latency_vs_ap_labels_do_not_overlap(tmp_path):
    """Rows that land close together in the chart (one model, several runtimes) keep readable labels."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from yolox_edge.bench.report import _place_labels

    fig, ax = plt.subplots(figsize=(9, 5))
    pts = [(f"yolox_nano row {i} x1", 10 + 0.2 * i, 0.30 + 0.001 * (i % 3)) for i in range(7)]
    ax.scatter([p[1] for p in pts], [p[2] for p in pts])
    ax.set_xlim(0, 40)
    ax.set_ylim(0.2, 0.4)
    anns, crossed = _place_labels(fig, ax, pts)
    renderer = fig.canvas.get_renderer()
    from matplotlib.text import Text
    boxes = [Text.get_window_extent(a, renderer) for a in anns]  # the text alone, not its leader line
    assert len(anns) == 7 and sorted(a.get_text() for a in anns) == sorted(p[0] for p in pts)
    assert not any(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1:])
    plt.close(fig)

    rows = [_fake_row(f"nano {b}", b, t, 10 + t + i, 0.30 - 0.001 * i)
            for t in (1, 2) for i, b in enumerate(("onnxruntime", "openvino", "ncnn"))]
    rows += [_fake_row("baseline", "onnxruntime", t, 25 - 5 * t, None, baseline=True) for t in (1, 2)]
    res = {"rows": rows, "machine": {"cpu": "Test CPU", "arch": "x86_64"}, "config": {"modes": ["e2e"]}}
    write_plot(res, tmp_path / "ap.svg")
    svg = (tmp_path / "ap.svg").read_text()
    assert "COCO AP" in svg and "official-style baseline x2" in svg and "2 threads" in svg
    assert "@" not in svg  # one input size: no sizes in the labels
    # models at 224 beside the official 416 baseline: the baseline's line says its size, as the points do
    for r in rows:
        r["input_size"] = [416, 416] if r["baseline"] else [224, 224]
    write_plot(res, tmp_path / "ap2.svg")
    svg = (tmp_path / "ap2.svg").read_text()
    assert "official-style baseline x2 @416x416" in svg and "@224x224" in svg
    # a fresh model (every AP 0): neither axis runs below zero (they went to AP -0.06 and -20 ms)
    from yolox_edge.bench.report import _scatter

    for r in rows:
        r["ap"] = None if r["baseline"] else 0.0
    fig, ax = plt.subplots(figsize=(9, 5))
    _scatter(fig, ax, res, "e2e")
    assert ax.get_ylim()[0] >= 0 and ax.get_xlim()[0] >= 0 and ax.get_ylim()[1] > 0
    # ...and its six points on the bottom edge have no room for their names (they printed over each other):
    # numbers at the points, the names in a key under the chart
    texts = [c.get_text() for c in ax.get_children() if isinstance(c, Text) and c.get_text()]
    assert sorted(t for t in texts if t.isdigit()) == sorted(map(str, range(1, 7)))
    key = "\n".join(t.get_text() for t in fig.texts)
    assert all(f"{i}  {r['label'][len('nano '):]} x{r['threads']}" in key
               for i, r in enumerate((r for r in rows if not r["baseline"]), 1))
    plt.close(fig)
    # points far apart keep their names beside them, no key
    spread = [_fake_row(f"m{i}", "openvino", 1, 5 + 15 * i, 0.1 + 0.1 * i) for i in range(3)]
    fig, ax = plt.subplots(figsize=(9, 5))
    _scatter(fig, ax, dict(res, rows=spread), "e2e")
    texts = [c.get_text() for c in ax.get_children() if isinstance(c, Text) and c.get_text()]
    assert {"m0 x1", "m1 x1", "m2 x1"} <= set(texts) and not fig.texts
    plt.close(fig)


def test_twin_rows_are_dropped_and_metadata_json_reads_as_its_folder(tiny_ckpt, tmp_path):
    from yolox_edge.bench.runner import display_names
    from yolox_edge.export import export_model

    assert display_names(["a/q/metadata.json", "b/onnx", "c/onnx"]) == ["q", "b/onnx", "c/onnx"]
    exp = export_model(tiny_ckpt, format="onnx", out=tmp_path / "exp").directory
    model = next(exp.glob("*.onnx"))  # the folder, its model file and its metadata.json: one export
    res = run_bench([str(exp), str(exp) + "/", str(model), str(exp / "metadata.json"), str(tiny_ckpt)],
                    threads=[1, 1, 2], warmup=0, runs=1, rss=False, progress=False, mode="model")
    assert [(r["label"].split(" ")[0], r["threads"]) for r in res["rows"]] == [
        ("exp", 1), ("exp", 2), ("tiny.pt", 1), ("tiny.pt", 2)]
    alone = run_bench([str(exp / "metadata.json")], threads=[1], warmup=0, runs=1, rss=False, progress=False,
                      mode="model")  # its size is the export's files, not the json's few bytes
    assert alone["rows"][0]["size_bytes"] == res["rows"][0]["size_bytes"] > model.stat().st_size - 1


def test_img_size_leaves_static_exports_and_ratios_at_their_size(tiny_ckpt, tmp_path):
    """--img-size moves the checkpoint row only; a row at another size than the baseline gets no
    speed-up (it would compare 96 px with 64 px), and the table says which size each row ran at."""
    from yolox_edge.bench.report import speedups
    from yolox_edge.export import export_model

    static = export_model(tiny_ckpt, format="onnx", out=tmp_path / "static").directory
    raw = export_model(tiny_ckpt, format="onnx", out=tmp_path / "raw", raw=True).directory
    res = run_bench([str(tiny_ckpt), str(static)], threads=[1], warmup=0, runs=2, img_size=96, baseline=str(raw),
                    rss=False, progress=False)
    sizes = {r["label"].split(" ")[0]: r["input_size"] for r in res["rows"]}
    assert sizes == {"tiny.pt": [96, 96], "static": [64, 64], "official-style": [64, 64]}
    ratios = dict(zip([r["label"].split(" ")[0] for r in res["rows"]], speedups(res, "e2e")))
    assert ratios["tiny.pt"] is None and ratios["static"] is not None
    md = markdown_table(res)
    assert "Model input sizes differ (width x height): 96x96: tiny.pt" in md and "64x64: static" in md
    # columns nothing measured are left out (no --data, --no-rss); a cell one row lacks reads "-"
    head, _, *body = [[c.strip() for c in line.strip("|").split("|")] for line in md.splitlines()[:5]]
    assert "AP" not in head and "peak RSS MiB" not in head
    cell = {row[0].split(" ")[0]: row[head.index("e2e speed-up vs baseline")] for row in body}
    assert cell["tiny.pt"] == "-" and cell["static"].endswith("x") and cell["official-style"] == "1.00x"
    from yolox_edge.bench.report import chart_labels
    assert [c.split(" ")[0] + c.split(" ")[-1] for c in chart_labels(res)] == ["tiny.pt@96x96", "static@64x64",
                                                                               "official-style@64x64"]
    with pytest.raises(UserError, match=r"--img-size 96 \(img_size=96 in Python\): every artifact is a static export at its own "
                                        r"size: .*static \(64x64\)"):
        run_bench([str(static)], threads=[1], warmup=0, runs=1, img_size=96, rss=False, progress=False)
    one = run_bench([str(static)], threads=[1], warmup=0, runs=1, rss=False, progress=False)
    assert "Model input 64x64 (width x height), every row." in markdown_table(one)


def test_threads_above_the_cores_are_named_before_and_after_the_runs(tiny_ckpt, run_cli, tmp_path):
    from yolox_edge.bench.report import oversubscription_note

    assert oversubscription_note([1, 2], [0, 1]) == ""
    assert oversubscription_note([1, 2, 8], [4, 5]).startswith("rows at 8 threads run on 2 cores (4-5)")
    code, out, err = run_cli("bench", tiny_ckpt, "--threads", "1,2", "--cpus", "0", "--runs", "1", "--warmup", "0",
                             "--no-rss", "--mode", "model")
    assert code == 0, err
    assert "note: rows at 2 threads run on 1 core (0)" in err and "Rows at 2 threads run on 1 core (0)" in out
    res = run_bench([str(tiny_ckpt)], threads=[1, 2], warmup=0, runs=1, cpus=[0], rss=False, progress=False,
                    mode="model")
    assert {r["threads"]: r["oversubscribed"] for r in res["rows"]} == {1: False, 2: True}
    jsonschema.validate(res, SCHEMA)
    write_csv(res, tmp_path / "o.csv")
    with open(tmp_path / "o.csv", newline="") as f:
        assert {r["threads"]: r["oversubscribed"] for r in csv.DictReader(f)} == {"1": "False", "2": "True"}
    code, out, err = run_cli("bench", tiny_ckpt, "--threads", "2", "--cpus", "999", "--runs", "1", "--no-rss")
    assert code == 2 and "cannot pin" in err and "note:" not in err  # the pinning is the error, not the threads
    code, out, err = run_cli("bench", tiny_ckpt, "--threads", "1", "--fps", "29.97", "--runs", "1", "--warmup", "0",
                             "--no-rss", "--mode", "model")
    assert code == 0 and "paced at 29.97 frames/s" in out, err  # a camera's NTSC rate


def test_data_with_other_classes_is_refused_before_timing(tiny_ckpt, refdata, monkeypatch):
    from yolox_edge.bench import runner
    from yolox_edge.errors import UserError

    def no_timing(*a, **k):
        raise AssertionError("timed runs before the class check")

    monkeypatch.setattr(runner, "_take_turns", no_timing)
    spec = refdata / "raccoon_voc" / "data.yaml"  # one class; the tiny model has three
    with pytest.raises(UserError, match=rf"tiny.pt: has 3 classes, but {re.escape(str(spec))} has 1"):
        run_bench([str(tiny_ckpt)], threads=[1], warmup=0, runs=1, data=str(spec), rss=False, progress=False)


def _raw_onnx(path: Path, classes: int, size: int = 64) -> Path:
    """A raw-output stand-in for an official export with ``classes`` classes (zero scores)."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    n, c = sum((size // s) ** 2 for s in (8, 16, 32)), 5 + classes
    g = helper.make_graph(
        [helper.make_node("ReduceMean", ["images"], ["m"], keepdims=0),
         helper.make_node("Reshape", ["m", "one"], ["m2"]),
         helper.make_node("Mul", ["m2", "w"], ["flat"]),
         helper.make_node("Reshape", ["flat", "shape"], ["output"])],
        "raw", [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, size, size])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, n, c])],
        [helper.make_tensor("w", TensorProto.FLOAT, [1, n * c], np.zeros(n * c, np.float32)),
         helper.make_tensor("one", TensorProto.INT64, [2], [1, 1]),
         helper.make_tensor("shape", TensorProto.INT64, [3], [1, n, c])])
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)], ir_version=8), path)
    return path


def test_a_baseline_of_other_classes_than_data_is_timed_and_left_unscored(tiny_ckpt, tmp_path):
    # The official 80-class baseline beside a model of the data's classes with --data: it took
    # the rows' class names, passed the class check and failed with an IndexError while scoring,
    # after all the timing. It is the usual latency pair: timed, its AP left empty, and said why.
    from yolox_edge.bench.report import markdown_table
    from yolox_edge.data.synthetic import make_shapes_dataset

    base = _raw_onnx(tmp_path / "official.onnx", classes=5)
    spec = make_shapes_dataset(tmp_path / "shapes", n_train=1, n_val=2, size=(64, 80))  # 3 classes, as tiny.pt
    res = run_bench([str(tiny_ckpt)], threads=[1], warmup=0, runs=1, baseline=str(base), data=str(spec), rss=False,
                    progress=False)
    model, baseline = res["rows"]
    assert baseline["baseline"] and baseline["ap"] is None and "5 classes" in baseline["ap_skipped"]
    assert model["ap"] is not None and "ap_skipped" not in model
    jsonschema.validate(res, SCHEMA)
    assert "Official-style baseline (official.onnx): AP not scored, 5 classes, " in markdown_table(res)


def test_environment_knobs_are_recorded_and_printed(monkeypatch):
    from yolox_edge.bench.machine import describe_machine

    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX512_CORE_VNNI")
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    m = describe_machine()
    assert m["env"]["ONEDNN_MAX_CPU_ISA"] == "AVX512_CORE_VNNI" and "OMP_NUM_THREADS" not in m["env"]
    jsonschema.validate(m, SCHEMA["properties"]["machine"])
    row = dict(_fake_row("m", "openvino", 1, 10.0, None), size_bytes=1, output_bytes_per_image=1, peak_rss_mb=None,
               precision="fp32 weights, f32 inference")
    res = {"rows": [row], "machine": m, "host_load": None,
           "config": {"modes": ["e2e"], "runs": 5, "warmup": 1, "image": "x", "threads": [1]}}
    assert "Environment: ONEDNN_MAX_CPU_ISA=AVX512_CORE_VNNI (these change" in markdown_table(res)
    m.update(isa=["avx512f", "amx_int8"], env={})  # AMX free to use, an OpenVINO row: the hint
    assert "This CPU has AMX" in markdown_table(res) and "add --precision-hint f32,bf16" in markdown_table(res)
    res["rows"].append(dict(row, precision="fp32 weights, bf16 inference"))  # bf16 measured: not suggested again
    assert "This CPU has AMX" in markdown_table(res) and "--precision-hint" not in markdown_table(res)
    m["env"] = {"ONEDNN_MAX_CPU_ISA": "AVX512_CORE_FP16"}  # capped: its bf16 rows ran without AMX, said so
    assert "This CPU has AMX" not in markdown_table(res) and "bf16 rows ran without AMX" in markdown_table(res)
    res["rows"].pop()
    assert "AMX" not in markdown_table(res).split("Environment:")[1]
    m.update(env={}, isa=["avx512f"])
    assert "This CPU has AMX" not in markdown_table(res)
    res["config"]["ncnn_powersave"] = 2  # ncnn's policy with no ncnn row: said, not silently ignored
    assert "--powersave 2 is ncnn's CPU policy: no ncnn row here" in markdown_table(res)
    res["rows"][0]["backend"] = "ncnn"
    assert "--powersave" not in markdown_table(res)


def test_best_ratio_is_the_table_ratio_and_follows_the_headline_mode():
    """The summary line printed the ratio rounded twice (1.5354 -> 1.535 -> '1.53x' beside the table's
    '1.54x'), and nothing at all with --mode model although the table had a speed-up column."""
    def row(label, p50, baseline=False):
        return {"label": label, "threads": 1, "baseline": baseline, "latency_ms": {"model": {"p50": p50}}}

    res = {"rows": [row("a", 10.71), row("base", 16.444, True)], "config": {"modes": ["model"]}}
    best = best_ratio(res, mode="model")
    assert f"{best['ratio']:.2f}" == "1.54"
    from yolox_edge.cli import build_parser
    from yolox_edge.cli import bench as cli_bench
    import contextlib, io
    from unittest import mock
    args = build_parser().parse_args(["bench", "a.onnx", "--mode", "model", "--no-rss"])
    buf = io.StringIO()
    with mock.patch("yolox_edge.bench.run_bench", return_value=res), \
            mock.patch("yolox_edge.bench.markdown_table", return_value="TABLE"), contextlib.redirect_stdout(buf):
        cli_bench.run(args)
    assert "best model-only speed-up vs the official-style baseline: 1.54x (a, 1 thread(s))" in buf.getvalue()


def test_a_precision_hint_given_twice_is_one_row():
    """--precision-hint f32,f32 gave two rows of one label (JSON order and AP are keyed by label)."""
    from yolox_edge.cli.bench import _hints

    assert _hints("f32,f32") == ["f32"] and _hints("bf16, f32,bf16") == ["bf16", "f32"]


def test_bench_gives_back_torch_threads_and_the_ncnn_policy(tiny_ckpt) -> None:
    """The rows pinned torch's process-wide thread count and ncnn's CPU policy and left them at the
    last row's: a notebook ran on after a bench with other settings than it had."""
    import ncnn
    import torch

    before, policy = torch.get_num_threads(), ncnn.get_cpu_powersave()
    try:
        torch.set_num_threads(3)
        run_bench([str(tiny_ckpt)], threads=[1, 2], warmup=0, runs=1, powersave=2 if policy != 2 else 1,
                  rss=False, progress=False)
        assert torch.get_num_threads() == 3 and ncnn.get_cpu_powersave() == policy
    finally:
        torch.set_num_threads(before)


def test_bad_arguments_are_user_errors_and_paths_are_taken(tiny_ckpt, tmp_path) -> None:
    """A notebook's bad value was a bare ValueError (the CLI's argparse kept them out); a Path image
    came back as a Path in the result, which json.dumps refused."""
    import cv2

    from yolox_edge.errors import UserError

    for kw, name in (({"mode": "fast"}, "mode 'fast'"), ({"threads": [0]}, "threads"), ({"runs": 0}, "runs 0"),
                     ({"fps": 0}, "fps 0")):
        with pytest.raises(UserError, match=name) as e:
            run_bench(tiny_ckpt, warmup=0, rss=False, progress=False, **{"runs": 1, **kw})
        assert isinstance(e.value, ValueError)  # still one for callers that catch those
    # An empty list timed nothing and returned rows of NaN means (numpy's 'Mean of empty slice').
    with pytest.raises(UserError, match="one or more models") as e:
        run_bench([], threads=1, warmup=0, runs=1, rss=False, progress=False)
    assert isinstance(e.value, ValueError)
    cv2.imwrite(str(tmp_path / "img.png"), np.full((48, 64, 3), 90, np.uint8))
    res = run_bench(tiny_ckpt, threads=1, warmup=0, runs=1, image=tmp_path / "img.png", rss=False, progress=False)
    assert json.loads(json.dumps(res))["config"]["image"] == str(tmp_path / "img.png")


def test_img_size_width_x_height_moves_the_checkpoint_row(tiny_ckpt, tmp_path):
    """--img-size 96x64 runs the checkpoint at H 64, W 96; a static export of that size takes it,
    a square one keeps its own, and the refusal writes sizes as WxH."""
    from yolox_edge.bench.report import markdown_table
    from yolox_edge.export import export_model

    rect = export_model(tiny_ckpt, format="onnx", out=tmp_path / "rect", img_size=(64, 96)).directory
    square = export_model(tiny_ckpt, format="onnx", out=tmp_path / "square").directory
    res = run_bench([str(tiny_ckpt), str(rect), str(square)], threads=[1], warmup=0, runs=1, img_size=(64, 96),
                    rss=False, progress=False)
    sizes = {r["label"].split(" ")[0]: r["input_size"] for r in res["rows"]}
    assert sizes == {"tiny.pt": [64, 96], "rect": [64, 96], "square": [64, 64]}
    assert re.search(r"96x64: tiny.pt [^;]*, rect ", markdown_table(res))
    with pytest.raises(UserError, match=r"--img-size 128x64 \(img_size=\(64, 128\) in Python\): every artifact is a "
                                        r"static export .*rect \(96x64\)"):
        run_bench([str(rect)], threads=[1], warmup=0, runs=1, img_size=(64, 128), rss=False, progress=False)


def test_bench_names_each_models_best_row_when_it_times_several(tiny_ckpt, run_cli, tmp_path):
    """The CLI's headline is the fastest row of any model; with two variants a line gives each its own."""
    from yolox_edge.export import export_model

    torch.manual_seed(1)
    other = tmp_path / "hs.pt"
    save_checkpoint(other, create_model("test_hswish", num_classes=3), class_names=["a", "b", "c"],
                    preprocess=PreprocessConfig(input_size=(64, 64)))
    raw = next(export_model(tiny_ckpt, format="onnx", out=tmp_path / "raw", raw=True).directory.glob("*.onnx"))
    args = ["--threads", "1", "--runs", "2", "--warmup", "0", "--no-rss", "--no-progress", "--baseline", raw]
    code, out, err = run_cli("bench", tiny_ckpt, other, *args)
    assert code == 0, err
    assert "best end-to-end speed-up" in out
    line = next(x for x in out.splitlines() if x.startswith("best per model: "))
    assert line.index("test ") < line.index("test_hswish ") and line.count("thread(s)") == 2, line
    code, out, err = run_cli("bench", tiny_ckpt, *args)  # one model: its best is the headline, no second line
    assert code == 0 and "best per model" not in out, err


def test_a_stop_before_the_last_output_leaves_every_earlier_output_as_it_was(tiny_ckpt, tmp_path, monkeypatch,
                                                                            run_cli):
    """bench wrote --json, --csv, --md and --plot one after another: a stop in between left this
    run's JSON beside an earlier run's chart. They are renamed into place together now."""
    import yolox_edge.bench as bench_pkg

    outs = {flag: tmp_path / f"run{suffix}" for flag, suffix in
            (("--json", ".json"), ("--csv", ".csv"), ("--md", ".md"), ("--plot", ".png"))}
    for path in outs.values():
        path.write_text("an earlier run's")

    def stopped(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(bench_pkg, "write_plot", stopped)
    args = [x for flag, path in outs.items() for x in (flag, path)]
    code, _out, _err = run_cli("bench", tiny_ckpt, "--runs", "2", "--warmup", "0", "--no-rss", *args)
    assert code == 130
    assert all(p.read_text() == "an earlier run's" for p in outs.values())
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in outs.values())  # no temp left
    monkeypatch.undo()
    code, _out, err = run_cli("bench", tiny_ckpt, "--runs", "2", "--warmup", "0", "--no-rss", *args)
    assert code == 0, err
    assert all(p.read_bytes() != b"an earlier run's" for p in outs.values())
