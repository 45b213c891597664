"""CUDA: the loss and SimOTA on the GPU against the CPU, training with AMP, resume, checkpoints
that load on a CPU-only machine, QAT on the GPU.

Skipped without a CUDA GPU (CI has none). On a GPU machine: ``pytest tests/engine/test_cuda.py``.
"""
from __future__ import annotations

import pytest
import torch

from yolox_edge.assign import simota_assign
from yolox_edge.config import recipe_from_dict
from yolox_edge.decode import cxcywh_to_xyxy, decode_boxes, level_shapes, make_grid
from yolox_edge.engine.checkpoint import load_checkpoint, load_model
from yolox_edge.engine.hooks import Hook
from yolox_edge.engine.trainer import Trainer
from yolox_edge.loss import YOLOXLoss

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")

NO_AUG = {"mosaic_prob": 0.0, "mixup_prob": 0.0, "degrees": 0.0, "translate": 0.0, "shear": 0.0, "hsv_prob": 0.0}
TARGETS = torch.tensor([
    [[0, 4, 6, 30, 40], [2, 20, 20, 60, 50], [-1, 0, 0, 0, 0]],
    [[1, 10, 10, 22, 26], [0, 33, 5, 63, 28], [-1, 0, 0, 0, 0]],
], dtype=torch.float32)


def _maps(device: str, seed: int = 0) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    maps = [torch.randn(2, 5 + 3, h, w, generator=g) * 0.5 for h, w in level_shapes((64, 64))]
    return [m.to(device).requires_grad_(True) for m in maps]


def test_loss_and_its_gradients_on_cuda_match_the_cpu():
    loss = YOLOXLoss(3)
    outs, grads = {}, {}
    for dev in ("cpu", "cuda"):
        maps = _maps(dev)
        out = loss(maps, TARGETS.to(dev), use_l1=True)
        out["total"].backward()
        outs[dev] = out
        grads[dev] = torch.cat([m.grad.flatten().cpu() for m in maps])
    assert outs["cuda"]["num_fg"] == outs["cpu"]["num_fg"] > 0
    assert outs["cuda"]["num_gt"] == outs["cpu"]["num_gt"] == 4
    for k in ("total", "iou", "obj", "cls", "l1"):
        assert torch.allclose(outs["cuda"][k].cpu(), outs["cpu"][k], rtol=1e-4, atol=1e-5), k
    assert torch.allclose(grads["cuda"], grads["cpu"], rtol=1e-3, atol=1e-6)


@pytest.mark.parametrize("budget", [0, 10**9])  # per-image path, batched path
def test_simota_on_cuda_assigns_as_the_cpu_does(budget):
    res = {}
    for dev in ("cpu", "cuda"):
        grid, stride = make_grid(level_shapes((64, 64)), device=dev)
        raw = torch.cat([m.detach().flatten(2).transpose(1, 2) for m in _maps(dev, seed=3)], 1)
        boxes = cxcywh_to_xyxy(decode_boxes(raw[..., :4], grid, stride))
        t = TARGETS.to(dev)
        res[dev] = simota_assign(boxes, raw[..., 5:], raw[..., 4], t[..., 1:], t[..., 0].long(), t[..., 0] >= 0,
                                 (grid + 0.5) * stride, stride.squeeze(-1), budget=budget)
    cpu, gpu = res["cpu"], res["cuda"]
    assert gpu.fg_mask.device.type == "cuda" and gpu.num_fg == cpu.num_fg > 0
    assert torch.equal(gpu.fg_mask.cpu(), cpu.fg_mask)
    assert torch.equal(gpu.matched_gt.cpu()[cpu.fg_mask], cpu.matched_gt[cpu.fg_mask])
    assert torch.allclose(gpu.matched_iou.cpu(), cpu.matched_iou, atol=1e-5)


class _StopAfter(Hook):
    """Ctrl-C once ``epochs`` epochs are saved (the way a user stops a run)."""

    def __init__(self, epochs: int) -> None:
        self.epochs, self.seen = epochs, None

    def after_epoch(self, trainer, epoch: int, row: dict) -> None:
        self.seen = (trainer.device.type, trainer.use_amp)
        if epoch + 1 == self.epochs:
            raise KeyboardInterrupt


def _recipe(epochs: int) -> dict:
    return {"model": {"variant": "test"}, "data": {"workers": 0, "repeat": 4}, "aug": NO_AUG,
            "train": {"epochs": epochs, "batch": 4, "basic_lr_per_img": 0.002, "warmup_epochs": 1,
                      "no_aug_epochs": 1, "eval_interval": 1, "multiscale_range": 0, "device": "cuda", "amp": True}}


def test_amp_training_on_cuda_resumes_and_its_checkpoint_runs_on_the_cpu(synthetic_coco, tmp_path):
    spec, out = synthetic_coco(8), tmp_path / "run"
    tr = Trainer(recipe_from_dict(_recipe(3)), data=spec, out=out, progress=False, log=lambda m: None)
    stop = _StopAfter(2)
    tr.hooks.append(stop)
    with pytest.raises(KeyboardInterrupt):
        tr.train()
    assert stop.seen == ("cuda", True)
    saved = load_checkpoint(out / "last.pt")  # map_location cpu: what a CPU-only machine reads
    assert saved["epoch"] == 2
    assert all(v.device.type == "cpu" for v in saved["model"].values())
    scale = saved["train_state"]["scaler"]["scale"]
    assert scale > 0  # the GradScaler's state is kept for --resume

    msgs: list[str] = []
    res = Trainer(None, data=spec, out=out, resume=True, progress=False, log=msgs.append).train()
    assert any("resume:" in m and "epoch 2/3" in m for m in msgs), msgs
    rows = res["rows"]
    assert [r["epoch"] for r in rows] == [1, 2, 3]
    assert all(torch.isfinite(torch.tensor(r["loss_total"])) for r in rows)
    assert rows[-1]["loss_total"] < rows[0]["loss_total"]  # it learned through fp16 autocast
    assert "AP" in rows[-1]  # evaluation ran on the GPU

    # best.pt runs on the CPU and predicts what it predicted on the GPU
    model, _ = load_model(out / "best.pt")
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        cpu_maps = model(x)
        gpu_maps = model.to("cuda")(x.to("cuda"))
    for c, g in zip(cpu_maps, gpu_maps):
        assert torch.allclose(g.cpu(), c, rtol=1e-3, atol=1e-3)


def test_qat_fine_tunes_on_cuda_and_exports_onnx(tmp_path):
    pytest.importorskip("nncf")
    from yolox_edge.data.synthetic import make_shapes_dataset
    from yolox_edge.engine.checkpoint import save_checkpoint
    from yolox_edge.models import create_model
    from yolox_edge.quantize.calib import build_calibration_set
    from yolox_edge.quantize.pipeline import run_quantize
    from yolox_edge.runtime.loader import open_model

    spec = make_shapes_dataset(tmp_path / "shapes", n_train=8, n_val=4, size=(64, 80))
    ckpt = save_checkpoint(tmp_path / "tiny.pt", create_model("test_dw", num_classes=3), class_names=["a", "b", "c"])
    build_calibration_set(spec, tmp_path / "calib", img_size=64, count=8)
    res = run_quantize(ckpt, calib=tmp_path / "calib", formats=["onnx"], out=tmp_path / "out", qat=True,
                       data=str(spec), epochs=1,
                       batch=4, topk=0, keep_float=0, nncf_keep_float=0, subset_size=6, progress=False, log=None)
    q = res["onnx"].metadata["quantization"]
    assert res["onnx"].metadata["precision"] == "int8" and q["qat"]["epochs"] == 1
    backend, _ = open_model(res["onnx"].model_file)
    out = backend.infer(torch.full((1, 3, 64, 64), 114.0).numpy())
    assert torch.isfinite(torch.from_numpy(out["scores"])).all() and out["scores"].shape == (1, 84, 3)
