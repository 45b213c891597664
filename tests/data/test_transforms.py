"""Augmentations keep boxes consistent with the image: colour under each box, bounds, scale range."""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from data_synth import COLORS, write_image
from yolox_edge.data import transforms as T
from yolox_edge.data.dataset import DetectionDataset
from yolox_edge.data.sample import Sample

S = 128


def _colour_dataset(tmp_path: Path, aug: T.AugConfig, size=S) -> DetectionDataset:
    """Four images with filled boxes; a box's class is the index of its colour."""
    layouts = [(200, 160, [(10, 10, 60, 70), (100, 40, 180, 120)]),
               (120, 120, [(20, 30, 70, 100)]),
               (160, 100, [(5, 5, 40, 40), (60, 20, 150, 90), (45, 50, 58, 95)]),
               (90, 140, [(10, 60, 80, 130)])]
    samples = []
    for k, (w, h, boxes) in enumerate(layouts):
        p = tmp_path / f"img{k}.png"
        write_image(p, w, h, boxes)
        samples.append(Sample(p, np.array(boxes, np.float32), np.arange(len(boxes)), width=w, height=h))
    return DetectionDataset(samples, img_size=size, aug=aug, seed=3)


def _check_colours(img: np.ndarray, boxes: np.ndarray, labels: np.ndarray, hw=(S, S)) -> float:
    """Assert each box mostly shows its colour; return the share of coloured pixels covered by boxes."""
    assert img.shape == (*hw, 3) and img.dtype == np.uint8
    assert len(boxes) == len(labels)
    if len(boxes):
        assert (boxes >= 0).all() and (boxes[:, [0, 2]] <= hw[1]).all() and (boxes[:, [1, 3]] <= hw[0]).all()
        assert (boxes[:, 2] > boxes[:, 0]).all() and (boxes[:, 3] > boxes[:, 1]).all()
    covered = total = 0
    for k, colour in enumerate(COLORS[:3]):
        mask = (np.abs(img.astype(int) - colour).max(2) < 30)
        inside = np.zeros_like(mask)
        for b in boxes[labels == k]:
            x1, y1, x2, y2 = np.floor(b[:2]).astype(int).tolist() + np.ceil(b[2:]).astype(int).tolist()
            inside[y1:y2, x1:x2] = True
            ix1, iy1, ix2, iy2 = int(b[0]) + 1, int(b[1]) + 1, int(b[2]) - 1, int(b[3]) - 1
            # Boxes cut by the canvas edge are left to the coverage share: the hull of a rotated,
            # sheared box cut there can be mostly background (3-49% colour, on a third of seeds)
            cut = b[0] <= 0 or b[1] <= 0 or b[2] >= hw[1] or b[3] >= hw[0]
            if not cut and ix2 - ix1 >= 8 and iy2 - iy1 >= 8:
                share = mask[iy1:iy2, ix1:ix2].mean()
                assert share > 0.5, f"box {b} of colour {colour} shows its colour on {share:.0%} only"
        covered += (mask & inside).sum()
        total += mask.sum()
    return covered / max(total, 1)


@pytest.mark.parametrize("hw", [(S, S), (96, 160), (160, 96)], ids=["square", "landscape", "portrait"])
@pytest.mark.parametrize("mosaic_prob", [1.0, 0.0])
def test_boxes_follow_the_image(tmp_path: Path, mosaic_prob: float, hw) -> None:
    aug = T.AugConfig(mosaic_prob=mosaic_prob, mosaic_scale=(0.5, 1.5), mixup_prob=0.0, hsv_prob=0.0,
                      degrees=10, translate=0.1, shear=2)
    ds = _colour_dataset(tmp_path, aug, hw if hw[0] != hw[1] else hw[0])
    shares = [_check_colours(*ds.load_augmented(i % 4), hw=hw) for i in range(40)]
    # colour left outside every box = slivers of boxes dropped as mostly cut off
    assert np.mean(shares) > 0.97


def test_flip_maps_boxes() -> None:
    img = np.zeros((20, 30, 3), np.uint8)
    img[2:8, 3:10] = 255
    out, b = T.hflip(img, np.array([[3, 2, 10, 8]], np.float32))
    np.testing.assert_array_equal(b, [[20, 2, 27, 8]])
    assert (out[2:8, 20:27] == 255).all() and out.sum() == img.sum()


def test_identity_affine_keeps_everything() -> None:
    img = np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    boxes = np.array([[5, 6, 30, 40]], np.float32)
    cfg = T.AugConfig(mosaic_scale=(1, 1), degrees=0, translate=0, shear=0)
    out, b, lab = T.random_affine(img, boxes, np.array([2]), 64, np.random.default_rng(0), cfg)
    np.testing.assert_array_equal(out, img)
    np.testing.assert_allclose(b, boxes, atol=1e-4)
    assert lab.tolist() == [2]


@pytest.mark.parametrize("hw", [(S, S), (96, 160)])
def test_mosaic_size_and_scale_range(hw) -> None:
    lo, hi = 0.5, 1.5
    cfg = T.AugConfig(mosaic_scale=(lo, hi), degrees=0, translate=0, shear=0)
    img = np.full((*hw, 3), 40, np.uint8)
    box = np.array([[40, 40, 60, 70]], np.float32)  # 20 x 30
    img[40:70, 40:60] = 200
    ratios = []
    limit = np.array([hw[1], hw[0], hw[1], hw[0]], np.float32)  # x1, y1, x2, y2 bounds
    for seed in range(150):
        out, boxes, labels = T.mosaic([(img, box, np.array([k])) for k in range(4)], hw if hw[0] != hw[1] else S,
                                      np.random.default_rng(seed), cfg)
        assert out.shape == (*hw, 3) and (boxes >= 0).all() and (boxes <= limit).all()
        w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
        whole = (boxes > 0.5).all(1) & (boxes < limit - 0.5).all(1)  # not cut by the output border
        ratios += (w[whole] / 20).tolist()
        np.testing.assert_allclose(h[whole] / 30, w[whole] / 20, rtol=1e-4)
    ratios = np.array(ratios)
    assert len(ratios) > 30
    assert ratios.min() >= lo - 1e-4 and ratios.max() <= hi + 1e-4
    assert ratios.min() < lo + 0.2 and ratios.max() > hi - 0.2  # the whole range is used


def test_mixup_blends_half_and_half() -> None:
    a = np.full((S, S, 3), (10, 20, 30), np.uint8)
    b = np.full((S, S, 3), (200, 100, 50), np.uint8)
    a_boxes, b_boxes = np.array([[1, 1, 50, 50]], np.float32), np.array([[20, 20, 100, 90]], np.float32)
    for seed in range(5):
        out, boxes, labels = T.mixup(a, a_boxes, np.array([0]), (b, b_boxes, np.array([1])),
                                     np.random.default_rng(seed), (1.0, 1.5))
        # other image scaled >= 1 covers the whole output: every pixel is the 0.5/0.5 blend
        assert np.abs(out.astype(int) - (105, 60, 40)).max() <= 1
        assert labels.tolist() == [0, 1] and (boxes[1] >= 0).all() and (boxes[1] <= S).all()
        np.testing.assert_array_equal(boxes[0], a_boxes[0])
    out, _, _ = T.mixup(a, a_boxes, np.array([0]), (b[:64], b_boxes[:0], np.zeros(0, np.int64)),
                        np.random.default_rng(0), (0.5, 0.5))
    # a small other image: the rest of the canvas is the pad value blended in
    assert np.abs(out[-1, -1].astype(int) - (62, 67, 72)).max() <= 1


def test_hsv_changes_colour_only() -> None:
    img = np.random.default_rng(1).integers(0, 255, (32, 32, 3), dtype=np.uint8)
    outs = [T.augment_hsv(img, np.random.default_rng(s)) for s in range(8)]
    assert all(o.shape == img.shape and o.dtype == np.uint8 for o in outs)
    assert any(np.abs(o.astype(int) - img).mean() > 2 for o in outs)


def test_aug_config_validates() -> None:
    with pytest.raises(ValueError, match="mosaic_scale"):
        T.AugConfig(mosaic_scale=(2.0, 1.0))
    with pytest.raises(ValueError, match="flip_prob"):
        T.AugConfig(flip_prob=1.5)
    assert T.AugConfig(mixup_scale=[0.5, 1.5]).mixup_scale == (0.5, 1.5)
    assert T.AUG_PRESETS["nano"].mosaic_prob == 0.5 and T.AUG_PRESETS["nano"].mixup_prob == 0


def test_mosaic_sample_is_fast(tmp_path: Path) -> None:
    """~10 ms per Mosaic sample at 416 (cached images; generous bound for a loaded CI machine)."""
    samples = []
    for k in range(4):
        p = tmp_path / f"{k}.jpg"
        write_image(p, 640, 480, [(50, 60, 300, 400), (350, 100, 600, 300)])
        samples.append(Sample(p, np.array([[50, 60, 300, 400], [350, 100, 600, 300]], np.float32), [0, 1]))
    ds = DetectionDataset(samples, img_size=416, aug=T.AugConfig(mosaic_prob=1.0, mixup_prob=0.0),
                          cache_images=True)
    ds[0]
    times = []
    for i in range(30):
        t = time.perf_counter()
        ds[i % 4]
        times.append(time.perf_counter() - t)
    ms = 1000 * float(np.median(times))
    print(f"median Mosaic sample at 416: {ms:.1f} ms")
    assert ms < 60
