"""Multi-scale sizes: a rectangular training size is drawn at its own aspect ratio, the long side
in units of 32 as train.random_size gives it; a square one exactly as before."""
from __future__ import annotations

import random

import pytest

from yolox_edge.engine.multiscale import describe_sizes, size_at, size_range


def test_square_sizes_are_the_drawn_side_on_both_sides() -> None:
    assert size_range((416, 416), 5, None) == (8, 18)
    assert [size_at(u, (416, 416)) for u in (8, 13, 18)] == [(256, 256), (416, 416), (576, 576)]
    assert describe_sizes((160, 160), (4, 6)) == "trained at 128-192 (multi-scale from 160)"
    assert describe_sizes((160, 160), None) == "trained at 160"


@pytest.mark.parametrize("hw", [(320, 416), (416, 320), (256, 416), (64, 96), (384, 640)])
def test_rectangular_sizes_keep_the_aspect_ratio(hw) -> None:
    """Every drawn size: long side = units x 32 on the same axis, short side the nearest multiple
    of 32 to the ratio's; the training size itself is among them."""
    long_axis = 0 if hw[0] > hw[1] else 1
    ratio = min(hw) / max(hw)
    lo, hi = size_range(hw, 5, None)
    assert (lo, hi) == (max(max(hw) // 32 - 5, 1), max(hw) // 32 + 5)
    assert size_at(max(hw) // 32, hw) == hw
    for units in range(lo, hi + 1):
        size = size_at(units, hw)
        assert size[long_axis] == units * 32 and size[1 - long_axis] % 32 == 0
        assert size[1 - long_axis] >= 32 and abs(size[1 - long_axis] / 32 - units * ratio) <= 0.5 + 1e-9
        assert (size[0] > size[1]) == (hw[0] > hw[1]) or size[0] == size[1]  # never turned on its side


def test_random_size_is_the_long_side_and_is_described_width_first() -> None:
    assert size_range((320, 416), 5, (11, 15)) == (11, 15)  # an explicit range wins
    assert size_at(11, (320, 416)) == (256, 352) and size_at(15, (320, 416)) == (384, 480)
    assert describe_sizes((320, 416), (11, 15)) == \
        "trained at 352x256-480x384 (multi-scale from 416x320, aspect kept)"
    assert describe_sizes((416, 320), None) == "trained at 320x416"
    assert size_range((320, 416), 0, None) is None


def test_trainer_draws_only_sizes_of_the_ratio(tmp_path) -> None:
    """Trainer._random_size (what the batches are resized to) over the recipe's range."""
    from yolox_edge.config import recipe_from_dict
    from yolox_edge.engine.distributed import DistInfo
    from yolox_edge.engine.trainer import Trainer

    r = recipe_from_dict({"model": {"variant": "test", "input_size": [64, 96]},
                          "train": {"random_size": [2, 5]}})
    tr = Trainer(r, data=tmp_path / "unused.yaml", out=tmp_path / "run", log=None)
    tr.input_size, tr.dist, tr.device = r.input_hw, DistInfo(), None  # what _setup sets
    random.seed(0)
    drawn = {tr._random_size() for _ in range(200)}
    assert drawn == {size_at(u, (64, 96)) for u in range(2, 6)} == {(32, 64), (64, 96), (96, 128), (96, 160)}


def test_resize_batch_scales_x_boxes_by_the_width_and_y_boxes_by_the_height() -> None:
    """A box drawn on the batch still frames its region after the resize to a drawn size."""
    import torch

    from yolox_edge.engine.multiscale import resize_batch

    images = torch.zeros(2, 3, 64, 96)
    images[0, :, 16:48, 24:72] = 255.0  # x 24..72, y 16..48
    targets = torch.tensor([[[1, 24, 16, 72, 48]], [[-1, 0, 0, 0, 0]]], dtype=torch.float32)
    same_images, same_targets = resize_batch(images, targets, (64, 96))
    assert same_images is images and same_targets is targets
    out, t = resize_batch(images, targets, (96, 160))  # x 5/3, y 3/2
    assert out.shape == (2, 3, 96, 160)
    torch.testing.assert_close(t[0, 0], torch.tensor([1, 40, 24, 120, 72], dtype=torch.float32))
    assert t[1, 0, 0] == -1 and targets[0, 0, 1] == 24  # padding rows stay, the input is not changed
    x1, y1, x2, y2 = (int(v) for v in t[0, 0, 1:])
    assert out[0, 0, y1 + 1:y2 - 1, x1 + 1:x2 - 1].min() > 250  # inside the box: the region
    assert out[0, 0, :y1 - 1].max() < 5 and out[0, 0, :, x2 + 1:].max() < 5  # outside: not
