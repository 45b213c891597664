"""A Ctrl-C inside the work a progress bar counts: in a log (stderr not a terminal) the bar's last
state comes before the command's stop line, never after it.

A bar left open when the loop it counts was left by the stop was closed only when Python freed
the stopped frames, after the stop line had been printed: the log then ended with a bar at 33 %
below 'interrupted', as if the work had gone on. Each command that shows a bar is stopped here
from inside its loop, its stderr a StringIO (as a log file: plain lines)."""
from __future__ import annotations

import contextlib
import gc
import io
from pathlib import Path

import pytest
import torch

from yolox_edge.cli import main


def run_to_the_end(*args) -> tuple[int, list[str]]:
    """``yolox-edge ARGS`` in-process; (exit code, stderr's lines), read after every object the
    stop left was freed, so a bar that closes only when it is freed has written its line."""
    err = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        code = main([str(a) for a in args])
    gc.collect()
    return code, [line for line in err.getvalue().splitlines() if line.strip()]


def stop_at_call(n: int, real=None):
    """A stand-in that raises KeyboardInterrupt on its ``n``-th call (``real``'s result before)."""
    calls = [0]

    def stand_in(*a, **k):
        calls[0] += 1
        if calls[0] >= n:
            raise KeyboardInterrupt
        return real(*a, **k) if real is not None else None
    return stand_in


def assert_bar_then_stop(lines: list[str], bar: str, stop: str) -> None:
    """``stop`` is the last line, and the bar (lines starting with ``bar``) was shown and wrote
    its every line before the first line saying the command stopped (a command's own note on
    what it kept, where it has one, comes before ``stop``)."""
    assert lines and lines[-1].startswith(stop), lines
    bars = [i for i, line in enumerate(lines) if line.startswith(bar)]
    stopped = next(i for i, line in enumerate(lines) if "interrupted" in line)
    assert bars and bars[-1] < stopped, lines  # shown (the stop came inside its loop), and closed first


@pytest.fixture(scope="module")
def shapes(tmp_path_factory) -> Path:
    from yolox_edge.data.synthetic import make_shapes_dataset

    return make_shapes_dataset(tmp_path_factory.mktemp("shapes"), n_train=8, n_val=3, size=(64, 64))


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> Path:
    from yolox_edge.data.preprocess import PreprocessConfig
    from yolox_edge.engine.checkpoint import save_checkpoint
    from yolox_edge.models import create_model

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("model") / "m.pt"
    save_checkpoint(path, create_model("test_dw", num_classes=3), class_names=["circle", "square", "triangle"],
                    preprocess=PreprocessConfig(input_size=(64, 64)))
    return path


@pytest.fixture(scope="module")
def calib(tmp_path_factory, shapes) -> Path:
    from yolox_edge.quantize.calib import build_calibration_set

    out = tmp_path_factory.mktemp("calib") / "calib"
    build_calibration_set(shapes, out, img_size=64, count=8, seed=0)  # convert takes 8 at least
    return out


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread):
    """Small models: one torch thread is quicker and leaves the CPU to whatever else runs."""


def test_train(shapes, tmp_path, monkeypatch) -> None:
    import yolox_edge.loss as loss

    recipe = tmp_path / "r.yaml"
    recipe.write_text("model: {variant: test, input_size: 64}\ndata: {workers: 0}\n"
                      "aug: {mosaic_prob: 0.0, mixup_prob: 0.0}\ntrain: {epochs: 1, batch: 1, multiscale_range: 0}\n")
    monkeypatch.setattr(loss.YOLOXLoss, "forward", stop_at_call(2, loss.YOLOXLoss.forward))
    code, lines = run_to_the_end("train", "--recipe", recipe, "--data", shapes, "--out", tmp_path / "run")
    assert code == 130
    assert_bar_then_stop(lines, "epoch 1/1:", "yolox-edge train: interrupted; no epoch had finished")


def test_eval(ckpt, shapes, monkeypatch) -> None:
    from yolox_edge.runtime.predictor import Predictor

    monkeypatch.setattr(Predictor, "predict_images", stop_at_call(2, Predictor.predict_images))
    code, lines = run_to_the_end("eval", ckpt, "--data", shapes, "--batch", "1")
    assert code == 130
    assert_bar_then_stop(lines, "eval:", "yolox-edge eval: interrupted")


def test_bench(ckpt, monkeypatch) -> None:
    import yolox_edge.bench.runner as runner

    # the first call warms up, before the bar; the third is the second timed run
    monkeypatch.setattr(runner, "_time_once", stop_at_call(3, runner._time_once))
    code, lines = run_to_the_end("bench", ckpt, "--threads", "1", "--warmup", "1", "--runs", "4")
    assert code == 130
    assert_bar_then_stop(lines, "bench:", "yolox-edge bench: interrupted")


def test_data_check(shapes, monkeypatch) -> None:
    import yolox_edge.data.check as check

    monkeypatch.setattr(check, "load_image", stop_at_call(2, check.load_image))  # in a reader thread
    code, lines = run_to_the_end("data", "check", shapes, "--threads", "1")
    assert code == 130
    assert_bar_then_stop(lines, "check ", "yolox-edge data check: interrupted")


def test_convert(ckpt, tmp_path, calib, monkeypatch) -> None:
    import yolox_edge.engine.reconstruct as reconstruct

    monkeypatch.setattr(reconstruct, "_nmse", stop_at_call(2, reconstruct._nmse))
    code, lines = run_to_the_end("convert", ckpt, "--to", "test_hswish", "--calib", calib, "--out",
                                 tmp_path / "s.pt", "--steps", "1")
    assert code == 130
    assert_bar_then_stop(lines, "reconstruct ", "yolox-edge convert: interrupted")


def test_quantize_ncnn(ckpt, calib, tmp_path, monkeypatch) -> None:
    import yolox_edge.quantize.ncnn_calib as ncnn_calib

    monkeypatch.setattr(ncnn_calib, "int8_sim", stop_at_call(2, ncnn_calib.int8_sim))
    code, lines = run_to_the_end("quantize", ckpt, "--calib", calib, "--format", "ncnn", "--out", tmp_path / "q")
    assert code == 130
    assert_bar_then_stop(lines, "conv sensitivity:", "yolox-edge quantize: interrupted")


def test_predict_on_a_video(ckpt, tmp_path, monkeypatch) -> None:
    import cv2
    import numpy as np

    from yolox_edge.runtime.predictor import Predictor

    clip = tmp_path / "clip.mp4"
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (64, 48))
    for i in range(4):
        writer.write(np.full((48, 64, 3), 40 * i, np.uint8))
    writer.release()
    monkeypatch.setattr(Predictor, "predict", stop_at_call(2, Predictor.predict))
    code, lines = run_to_the_end("predict", ckpt, clip)
    assert code == 130
    assert_bar_then_stop(lines, "clip.mp4:", "yolox-edge predict: interrupted")
