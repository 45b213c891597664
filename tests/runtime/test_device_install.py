"""A device install (requirements-device.txt: the runtimes, no torch/NNCF/pnnx/onnx) runs the
device-side commands on exported artifacts, and the commands that need torch say so in one line."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from yolox_edge.cli import OPTIONAL_PACKAGES, missing_package_message
from yolox_edge.export import read_metadata
from yolox_edge.models import variant_counts

REPO = Path(__file__).resolve().parents[2]
# Packages requirements-device.txt leaves out; a sitecustomize makes importing them fail.
NOT_ON_DEVICE = ("torch", "nncf", "pnnx", "onnx", "onnxslim")


@pytest.fixture(scope="module")
def device_env(tmp_path_factory) -> dict:
    d = tmp_path_factory.mktemp("device_site")
    (d / "sitecustomize.py").write_text(
        "import sys\n" + "".join(f"sys.modules[{m!r}] = None\n" for m in NOT_ON_DEVICE))
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(d), str(REPO)])}


def _cli(env: dict, *args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "yolox_edge", *map(str, args)], env=env, capture_output=True,
                          text=True, timeout=300)


def test_blocker_really_blocks(device_env) -> None:
    proc = subprocess.run([sys.executable, "-c", "import torch"], env=device_env, capture_output=True, text=True)
    assert proc.returncode != 0 and "halted" in proc.stderr


def test_bench_predict_eval_package_verify_without_torch(tiny_ckpt, tiny_exports, device_env, tmp_path) -> None:
    img = tmp_path / "scene.png"
    cv2.imwrite(str(img), np.random.default_rng(0).integers(0, 255, (48, 80, 3), dtype=np.uint8))
    arts = [tiny_exports[f] for f in ("onnx", "openvino", "ncnn")]
    from yolox_edge.export import export_model
    raw = next(export_model(tiny_ckpt, format="onnx", out=tmp_path / "raw", raw=True).directory.glob("*.onnx"))
    proc = _cli(device_env, "bench", *arts, "--threads", "1", "--warmup", "1", "--runs", "2", "--image", img,
                "--baseline", raw, "--json", tmp_path / "b.json", "--md", tmp_path / "b.md")
    assert proc.returncode == 0, proc.stderr
    rows = json.loads((tmp_path / "b.json").read_text())["rows"]
    base = [r for r in rows if r["baseline"]]
    assert len(base) == 1 and base[0]["params_m"] is None  # no onnx here to read its convolutions with
    rows = [r for r in rows if not r["baseline"]]
    assert len(rows) == 3 and {r["backend"] for r in rows} == {"onnxruntime", "openvino", "ncnn"}
    # params and GFLOPs come from metadata.json when torch cannot count them
    want = variant_counts("test", num_classes=3, input_hw=(64, 64))
    assert all((r["params_m"], r["gflops"]) == (want["params_m"], want["gflops"]) for r in rows)
    assert all(r["latency_ms"]["e2e"]["n"] == 2 for r in rows)
    # the pair check a device run is read with (a second run: here the first one, every p50 5 % faster)
    second = json.loads((tmp_path / "b.json").read_text())
    for r in second["rows"]:
        for stats in r["latency_ms"].values():
            stats["p50"] *= 0.95
    (tmp_path / "b2.json").write_text(json.dumps(second))
    proc = _cli(device_env, "bench-compare", tmp_path / "b.json", tmp_path / "b2.json", "--fail-slower", "0")
    assert proc.returncode == 0 and "8 of 8 p50s within 15 %" in proc.stdout, proc.stderr

    proc = _cli(device_env, "predict", tiny_exports["onnx"], img, "--json", "--conf", "0.0")
    assert proc.returncode == 0, proc.stderr
    assert "detections" in proc.stdout
    clip = tmp_path / "clip.mp4"
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"mp4v"), 10, (80, 48))
    for _ in range(3):
        writer.write(cv2.imread(str(img)))
    writer.release()
    proc = _cli(device_env, "predict", tiny_exports["ncnn"], clip, "--save-dir", tmp_path / "vis")
    assert proc.returncode == 0 and f"{clip}: 3 frames" in proc.stdout, proc.stderr
    assert (tmp_path / "vis" / "clip_pred.mp4").stat().st_size > 0

    from yolox_edge.data.synthetic import make_shapes_dataset
    data = make_shapes_dataset(tmp_path / "shapes", n_train=1, n_val=3, size=(64, 80))
    proc = _cli(device_env, "eval", tiny_exports["openvino"], "--data", data)
    assert proc.returncode == 0, proc.stderr
    assert "AP " in proc.stdout and "3 images" in proc.stdout

    bundle = tmp_path / "m.zip"
    proc = _cli(device_env, "package", tiny_exports["ncnn"], "--target", "ncnn", "--out", bundle)
    assert proc.returncode == 0, proc.stderr
    proc = _cli(device_env, "verify", bundle)
    assert proc.returncode == 0 and "OK" in proc.stdout, proc.stderr
    for artifact in (tiny_exports["openvino"], bundle):
        proc = _cli(device_env, "info", artifact)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.startswith(f"{artifact}: {'ncnn bundle' if artifact == bundle else 'openvino export'}, fp32")


def test_torch_commands_say_what_to_install(tiny_ckpt, device_env, tmp_path) -> None:
    for args in (("bench", tiny_ckpt, "--runs", "1", "--warmup", "0"),
                 ("export", tiny_ckpt, "--format", "onnx", "--out", tmp_path / "x")):
        proc = _cli(device_env, *args)
        assert proc.returncode == 2, proc.stderr
        assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr, proc.stderr
        assert "PyTorch is not installed" in proc.stderr and "download.pytorch.org/whl/cpu" in proc.stderr
    assert not (tmp_path / "x").exists()


def test_missing_package_message_names_only_known_packages() -> None:
    msg = missing_package_message(ModuleNotFoundError("no openvino", name="openvino.runtime"))
    assert msg and "OpenVINO is not installed" in msg and "pip install openvino" in msg
    assert missing_package_message(ModuleNotFoundError("x", name="yolox_edge.nothing")) is None
    assert missing_package_message(ModuleNotFoundError("x", name=None)) is None
    assert set(NOT_ON_DEVICE) <= set(OPTIONAL_PACKAGES)


def test_device_requirements_leave_out_the_training_stack() -> None:
    req = (REPO / "requirements-device.txt").read_text().splitlines()
    names = {line.split(">")[0].split("=")[0].strip().lower() for line in req if line.strip() and line[0] != "#"}
    assert names.isdisjoint(NOT_ON_DEVICE)
    assert {"onnxruntime", "openvino", "ncnn", "numpy", "opencv-python-headless"} <= names


def test_export_writes_counts_into_metadata(tiny_exports) -> None:
    meta = read_metadata(tiny_exports["onnx"])
    assert meta["counts"] == variant_counts("test", num_classes=3, input_hw=(64, 64))
