"""THE grid decode: GridDecode (torch) and decode_numpy agree, and match a hand-computed case."""
from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch

from yolox_edge.decode import (GridDecode, cxcywh_to_xyxy, decode_boxes, decode_numpy, first_max, flatten_maps,
                               level_shapes, make_grid)


def random_maps(batch: int, c: int, hw: tuple[int, int], seed: int = 0) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(batch, 5 + c, h, w, generator=g) for h, w in level_shapes(hw)]


def test_level_shapes_and_grid_order() -> None:
    assert level_shapes((416, 416)) == [(52, 52), (26, 26), (13, 13)]
    assert level_shapes((64, 96)) == [(8, 12), (4, 6), (2, 3)]
    grid, stride = make_grid([(2, 3), (1, 2)], (8, 16))
    # Row-major within a level (x varies fastest), stride 8 level first.
    assert grid.tolist() == [[0, 0], [1, 0], [2, 0], [0, 1], [1, 1], [2, 1], [0, 0], [1, 0]]
    assert stride.flatten().tolist() == [8] * 6 + [16] * 2


@pytest.mark.parametrize("hw", [(64, 64), (64, 96), (416, 416)])
def test_grid_decode_matches_numpy(hw) -> None:
    maps = random_maps(2, 3, hw)
    boxes, scores = GridDecode()(maps)
    n = sum(h * w for h, w in level_shapes(hw))
    assert boxes.shape == (2, n, 4) and scores.shape == (2, n, 3)
    nb, ns = decode_numpy(flatten_maps(maps).numpy(), hw)
    np.testing.assert_allclose(boxes.numpy(), nb, rtol=1e-5, atol=1e-5)  # fp32: relative for big boxes
    np.testing.assert_allclose(scores.numpy(), ns, rtol=0, atol=1e-5)


@pytest.mark.parametrize("hw", [(64, 96), (416, 416)])
def test_best_class_equals_decode_then_max(hw) -> None:
    """The top-K graphs' channels-first decode gives the same boxes, scores and classes."""
    maps = random_maps(2, 5, hw, seed=2)
    boxes, scores = GridDecode()(maps)
    b, best, labels = GridDecode().best_class(maps)
    assert torch.equal(b, boxes)
    # Sigmoid keeps the order, so the same numbers (up to the last bit: torch's sigmoid takes
    # another code path on the contiguous per-level rows).
    np.testing.assert_allclose(best.numpy(), scores.amax(-1).numpy(), rtol=1e-6, atol=0)
    assert torch.equal(labels, scores.argmax(-1))


@pytest.mark.parametrize("hw", [(64, 96), (416, 416)])
def test_best_class_parts_equals_best_class_of_the_maps(hw) -> None:
    """The deploy graphs decode the head's parts; the maps are those parts concatenated."""
    maps = random_maps(2, 5, hw, seed=3)
    parts = [(m[:, :4].contiguous(), m[:, 4:5].contiguous(), m[:, 5:].contiguous()) for m in maps]
    for got, want in zip(GridDecode().best_class_parts(parts), GridDecode().best_class(maps)):
        assert torch.equal(got, want)


def test_first_max_takes_the_first_of_ties() -> None:
    x = torch.tensor([[[1.0, 3.0, 3.0], [2.0, 0.0, 3.0]], [[5.0, 5.0, 5.0], [-1.0, -2.0, -1.0]]])
    best, idx = first_max(x, 2)
    assert best.tolist() == [[3.0, 3.0], [5.0, -1.0]] and idx.tolist() == [[1, 2], [0, 0]]
    best, idx = first_max(x, 1)
    assert best.tolist() == [[2.0, 3.0, 3.0], [5.0, 5.0, 5.0]] and idx.tolist() == [[1, 0, 0], [0, 0, 0]]
    assert idx.dtype == torch.int64


def test_decode_numpy_activated_input() -> None:
    maps = random_maps(1, 4, (64, 64), seed=1)
    raw = flatten_maps(maps).numpy()
    act = raw.copy()
    act[..., 4:] = 1 / (1 + np.exp(-act[..., 4:]))
    b1, s1 = decode_numpy(raw, (64, 64))
    b2, s2 = decode_numpy(act, (64, 64), activated=True)
    np.testing.assert_array_equal(b1, b2)
    np.testing.assert_allclose(s1, s2, atol=1e-6)


def test_hand_computed_anchor() -> None:
    # Input 64x64: levels 8x8 (stride 8), 4x4 (16), 2x2 (32). Anchor at stride 16, cell
    # x=2, y=1 has flat index 64 + 1*4 + 2 = 70.
    maps = [torch.full((1, 6, h, w), -20.0) for h, w in level_shapes((64, 64))]
    maps[1][0, :, 1, 2] = torch.tensor([0.5, 0.25, math.log(2.0), 0.0, 0.0, math.log(3.0)])
    boxes, scores = GridDecode()(maps)
    # cx = (0.5 + 2) * 16 = 40, cy = (0.25 + 1) * 16 = 20, w = 2 * 16 = 32, h = 16
    torch.testing.assert_close(boxes[0, 70], torch.tensor([24.0, 12.0, 56.0, 28.0]))
    # sigmoid(0) * sigmoid(log 3) = 0.5 * 0.75
    assert scores[0, 70, 0].item() == pytest.approx(0.375, abs=1e-6)
    assert scores[0].argmax().item() == 70
    nb, ns = decode_numpy(flatten_maps(maps).numpy(), (64, 64))
    np.testing.assert_allclose(nb[0, 70], [24, 12, 56, 28], atol=1e-5)
    assert ns[0, 70, 0] == pytest.approx(0.375, abs=1e-6)


def test_decode_boxes_and_xyxy() -> None:
    reg = torch.tensor([[0.0, 0.0, 0.0, math.log(4.0)]])
    cxcywh = decode_boxes(reg, torch.tensor([[3.0, 5.0]]), torch.tensor([[32.0]]))
    torch.testing.assert_close(cxcywh, torch.tensor([[96.0, 160.0, 32.0, 128.0]]))
    torch.testing.assert_close(cxcywh_to_xyxy(cxcywh), torch.tensor([[80.0, 96.0, 112.0, 224.0]]))


def test_decode_numpy_rejects_wrong_anchor_count() -> None:
    raw = np.zeros((1, 10, 6), np.float32)
    with pytest.raises(ValueError, match="anchors"):
        decode_numpy(raw, (64, 64))


def test_decode_numpy_overflow_is_silent_and_matches_torch() -> None:
    # An untrained model's raw output (seen in the pipeline's baseline row) can hold logits
    # beyond float32 exp's range; numpy must give torch's inf / 0 without a RuntimeWarning.
    n = sum(h * w for h, w in level_shapes((64, 64)))
    raw = np.zeros((1, n, 6), np.float32)
    raw[0, 0, 2:4] = 120.0   # log-size: exp overflows
    raw[0, 1, 4:6] = -120.0  # obj/cls logits: exp(-x) overflows in the sigmoid
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a RuntimeWarning fails the test
        boxes, scores = decode_numpy(raw, (64, 64))
    assert np.isinf(boxes[0, 0]).all() and scores[0, 1, 0] == 0.0
    t_boxes, t_scores = GridDecode((8, 16, 32))(
        [torch.from_numpy(raw[0].T.copy()).reshape(6, -1)[:, s:e].reshape(1, 6, h, w)
         for (h, w), (s, e) in zip(level_shapes((64, 64)), _spans(level_shapes((64, 64))))])
    np.testing.assert_array_equal(boxes, t_boxes.numpy())
    np.testing.assert_allclose(scores, t_scores.numpy(), atol=1e-7)


def _spans(shapes):
    s = 0
    for h, w in shapes:
        yield s, s + h * w
        s += h * w
