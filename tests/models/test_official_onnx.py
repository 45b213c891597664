"""The imported official YOLOX-Nano computes what the official ONNX computes (onnxruntime)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from yolox_edge.data.preprocess import PreprocessConfig, preprocess, read_image
from yolox_edge.decode import flatten_maps
from yolox_edge.engine.checkpoint import load_model

pytestmark = pytest.mark.refdata


def official_onnx_output(onnx_path, x: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    return sess.run(None, {sess.get_inputs()[0].name: x})[0]


def test_torch_matches_official_onnx_on_dog(refdata, nano_coco_ckpt) -> None:
    model, ckpt = load_model(nano_coco_ckpt)
    assert ckpt["variant"] == "nano" and len(ckpt["class_names"]) == 80
    assert ckpt["source"]["kind"] == "official-onnx" and ckpt["bn_folded"] is True
    x, _ = preprocess(read_image(refdata / "images" / "dog.jpg"), PreprocessConfig(input_size=(416, 416)))
    x = x[None]
    ref = official_onnx_output(refdata / "models" / "yolox_nano.onnx", x)  # [1, 3549, 85], obj/cls sigmoid-ed
    with torch.no_grad():
        raw = flatten_maps(model(torch.from_numpy(x))).numpy()
    ours = raw.copy()
    ours[..., 4:] = 1 / (1 + np.exp(-raw[..., 4:]))  # the official export applies the sigmoid in-graph
    assert ours.shape == ref.shape == (1, 3549, 85)
    diff = np.abs(ours - ref)
    print(f"max |torch - onnx|: reg {diff[..., :4].max():.2e}, obj/cls {diff[..., 4:].max():.2e}")
    assert diff.max() < 1e-3
    assert ref[..., 4].max() > 0.8  # the image has confident objects: the check is not vacuous
