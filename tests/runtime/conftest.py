"""Fixtures for the runtime/export tests: a tiny 'test' checkpoint and its exports, built once.

The head's prediction convs get random weights (std 0.2) so scores spread out: a freshly
initialised head gives near-identical scores whose top-K order would be decided by ties.
"""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

CLASS_NAMES = ["cat", "dog", "car"]


def make_tiny_checkpoint(path: Path, variant: str = "test", seed: int = 0) -> Path:
    """A 3-class checkpoint of a tiny variant (input 64) with spread-out scores."""
    from yolox_edge.engine.checkpoint import save_checkpoint
    from yolox_edge.models import create_model

    torch.manual_seed(seed)
    model = create_model(variant, num_classes=len(CLASS_NAMES))
    with torch.no_grad():
        for conv in [*model.head.cls_preds, *model.head.obj_preds, *model.head.reg_preds]:
            conv.weight.normal_(0.0, 0.2)
            conv.bias.normal_(0.0, 0.5)
    return save_checkpoint(path, model, class_names=CLASS_NAMES)


@pytest.fixture(scope="session")
def tiny_ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_checkpoint(tmp_path_factory.mktemp("tiny") / "tiny.pt")


@pytest.fixture(scope="session")
def tiny_hswish_ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_checkpoint(tmp_path_factory.mktemp("tiny_hs") / "hs.pt", variant="test_hswish")


@pytest.fixture(scope="session")
def tiny_exports(tiny_ckpt: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One export folder per format with the formats' defaults (ONNX/OpenVINO top-100, ncnn decoded)."""
    from yolox_edge.export import export_model

    root = tmp_path_factory.mktemp("exports")
    return {fmt: export_model(tiny_ckpt, format=fmt, out=root / fmt).directory for fmt in ("onnx", "openvino", "ncnn")}
