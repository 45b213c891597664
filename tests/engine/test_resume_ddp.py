"""Real processes: SIGKILL mid-epoch then --resume; DDP with torchrun (2 CPU ranks, gloo)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from yolox_edge.engine.checkpoint import load_checkpoint, load_model

REPO = Path(__file__).resolve().parents[2]


def _env() -> dict:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _train_cmd(recipe: Path, spec: Path, out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "yolox_edge", "train", "--recipe", str(recipe), "--data", str(spec),
            "--out", str(out), "--no-progress", *extra]


def _epoch_of(path: Path) -> int:
    return int(torch.load(path, map_location="cpu", weights_only=True)["epoch"])


@pytest.mark.slow
def test_sigkill_mid_epoch_then_resume(synthetic_coco, tiny_recipe, tmp_path):
    spec = synthetic_coco(8)
    out = tmp_path / "run"
    # 8 images x repeat 10 / batch 4 = 20 iterations per epoch: long enough to land a kill inside one
    cmd = _train_cmd(tiny_recipe, spec, out, "--set", "data.repeat=10", "--epochs", "3")
    proc = subprocess.Popen(cmd, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 240
    try:
        while not (out / "log.json").is_file():
            assert proc.poll() is None, proc.stdout.read()
            assert time.monotonic() < deadline, "first epoch never finished"
            time.sleep(0.05)
        time.sleep(0.3)  # a few iterations into epoch 2
        assert proc.poll() is None, "training ended before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    saved = _epoch_of(out / "last.pt")
    assert 1 <= saved < 3

    res = subprocess.run(_train_cmd(tiny_recipe, spec, out, "--resume"), env=_env(), capture_output=True,
                         text=True, timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
    assert f"at epoch {saved}/3" in res.stdout
    assert f"epoch {saved + 1}/3" in res.stdout and f"epoch {saved}/3 " not in res.stdout.split("resume:")[1]
    ckpt = load_checkpoint(out / "last.pt")
    assert ckpt["epoch"] == 3 and ckpt["optimizer"] and ckpt["ema"] and ckpt["train_state"]["rng"]
    model, _ = load_model(out / "best.pt")
    assert model.num_classes == 2
    rows = json.loads((out / "log.json").read_text())
    assert [r["epoch"] for r in rows] == [1, 2, 3]


@pytest.mark.slow
def test_ddp_two_cpu_processes_with_torchrun(synthetic_coco, tiny_recipe, tmp_path):
    spec = synthetic_coco(8)
    out = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "yolox_edge", "train", "--recipe", str(tiny_recipe), "--data", str(spec), "--out", str(out),
           "--no-progress", "--epochs", "2", "--device", "cpu"]
    res = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    rows = json.loads((out / "log.json").read_text())
    # batch 4 over 2 ranks: each rank runs 2 iterations of 2 images on its own half of the 8 images
    assert [r["epoch"] for r in rows] == [1, 2] and all(r["iters"] == 2 for r in rows)
    assert res.stdout.count("epoch 2/2") == 1  # only rank 0 logs
    model, ckpt = load_model(out / "last.pt")
    assert ckpt["epoch"] == 2 and model.num_classes == 2
