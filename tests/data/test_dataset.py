"""DetectionDataset and collate: the inference contract without aug, bad samples skipped and counted."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from data_synth import write_image
from yolox_edge.data.dataset import DetectionDataset, collate
from yolox_edge.data.preprocess import PreprocessConfig, preprocess, read_image
from yolox_edge.data.sample import Sample
from yolox_edge.data.transforms import AugConfig
from yolox_edge.errors import UserError


def _samples(tmp_path: Path, n: int = 4) -> list[Sample]:
    out = []
    for k in range(n):
        p = tmp_path / f"s{k}.png"
        w, h = 80 + 10 * k, 60
        write_image(p, w, h, [(10, 10, 40, 50)])
        out.append(Sample(p, [[10, 10, 40, 50], [0, 0, 5, 5]], [k % 2, 1], image_id=k, width=w, height=h,
                          crowd=[False, True]))
    return out


def test_no_aug_is_the_inference_contract(tmp_path: Path) -> None:
    samples = _samples(tmp_path)
    ds = DetectionDataset(samples, img_size=64, aug=None)
    for i in range(len(ds)):
        x, t = ds[i]
        ref, r = preprocess(read_image(samples[i].image), PreprocessConfig(input_size=(64, 64)))
        assert x.dtype == torch.float32 and x.shape == (3, 64, 64)
        np.testing.assert_array_equal(x.numpy(), ref)
        # the crowd box is dropped; the other is scaled by the letterbox ratio
        np.testing.assert_allclose(t.numpy(), [[i % 2, 10 * r, 10 * r, 40 * r, 50 * r]], rtol=1e-5)


@pytest.mark.parametrize("hw", [(64, 96), (96, 64)])
def test_no_aug_at_a_rectangle_is_the_inference_contract_at_h_x_w(tmp_path: Path, hw) -> None:
    """img_size=(H, W): the letterbox of preprocess at (H, W), boxes scaled by its ratio and inside."""
    samples = _samples(tmp_path)
    ds = DetectionDataset(samples, img_size=hw, aug=None)
    for i in range(len(ds)):
        x, t = ds[i]
        ref, r = preprocess(read_image(samples[i].image), PreprocessConfig(input_size=hw))
        assert x.shape == (3, *hw)
        np.testing.assert_array_equal(x.numpy(), ref)
        assert r == min(hw[0] / 60, hw[1] / (80 + 10 * i))
        np.testing.assert_allclose(t.numpy(), [[i % 2, 10 * r, 10 * r, 40 * r, 50 * r]], rtol=1e-5)


@pytest.mark.parametrize("cache", [False, True])
@pytest.mark.parametrize("aug", [None, AugConfig(mosaic_prob=1.0)], ids=["no_aug", "mosaic"])
def test_a_strip_thinner_than_a_pixel_at_the_input_size_trains_as_inference_reads_it(tmp_path: Path, aug,
                                                                                    cache: bool) -> None:
    """A 1200x2 image at 64: its letterbox height is under a pixel. Inference keeps one row; the
    training loader resized to 0 rows, a cv2 traceback mid-epoch (or at the start, with the image
    cache)."""
    p = tmp_path / "strip.png"
    write_image(p, 1200, 2, [(100, 0, 400, 2)])
    ds = DetectionDataset([Sample(p, [[100, 0, 400, 2]], [0], image_id=1, width=1200, height=2)], img_size=64,
                          aug=aug, cache_images=cache)
    x, _ = ds[0]
    assert x.shape == (3, 64, 64) and ds.skipped == 0
    if aug is None:  # the inference contract, row for row
        ref, _ = preprocess(read_image(p), PreprocessConfig(input_size=(64, 64)))
        np.testing.assert_array_equal(x.numpy(), ref)


@pytest.mark.parametrize("cache", [False, True])
def test_augmented_samples_at_a_rectangle_are_h_x_w_with_boxes_inside(tmp_path: Path, cache: bool) -> None:
    """Mosaic (with MixUp), the plain path and the no-aug stage all give H x W canvases."""
    hw = (64, 128)
    ds = DetectionDataset(_samples(tmp_path), img_size=hw, aug=AugConfig(mosaic_prob=0.5, mixup_prob=0.5), seed=2,
                          cache_images=cache)
    boxes_seen = 0
    for aug in (True, False):
        ds.set_aug(aug)
        for i in range(12):
            x, t = ds[i % 4]
            assert x.shape == (3, *hw)
            b = t[:, 1:].numpy()
            assert (b >= 0).all() and (b[:, [0, 2]] <= hw[1]).all() and (b[:, [1, 3]] <= hw[0]).all()
            assert (b[:, 2] > b[:, 0]).all() and (b[:, 3] > b[:, 1]).all()
            boxes_seen += len(b)
    assert boxes_seen > 12


def test_collate_pads_with_minus_one(tmp_path: Path) -> None:
    ds = DetectionDataset(_samples(tmp_path), img_size=64, aug=AugConfig(mixup_prob=0), seed=1)
    batch = [ds[0], (torch.zeros(3, 64, 64), torch.zeros(0, 5)), ds[1]]
    images, targets = collate(batch)
    assert images.shape == (3, 3, 64, 64)
    m = max(b[1].shape[0] for b in batch)
    assert targets.shape == (3, m, 5) and (targets[1, :, 0] == -1).all()
    for k, (_, t) in enumerate(batch):
        torch.testing.assert_close(targets[k, :len(t)], t)
        assert (targets[k, len(t):, 0] == -1).all()


def test_set_aug_off_leaves_flip_only(tmp_path: Path) -> None:
    samples = _samples(tmp_path)
    ds = DetectionDataset(samples, img_size=64, aug=AugConfig(hsv_prob=0.0), seed=0)
    ds.set_aug(False)
    for i in range(8):
        _, t = ds[i % 4]
        r = 64 / (80 + 10 * (i % 4))
        x1, x2 = sorted([10 * r, 40 * r])
        flipped = [64 - 40 * r, 64 - 10 * r]
        assert t.shape == (1, 5)
        got = t[0, [1, 3]].tolist()
        assert np.allclose(got, [x1, x2], atol=1e-4) or np.allclose(got, flipped, atol=1e-4)


@pytest.mark.parametrize("mosaic_prob", [0.0, 1.0], ids=["no_mosaic", "aug_off"])
def test_a_flipped_sample_without_mosaic_keeps_the_letterbox_at_the_top_left(tmp_path: Path, mosaic_prob) -> None:
    """Without Mosaic (its probability missed, or the last no-aug epochs) the colour jitter and the
    flip came after the pad: a flipped portrait image sat at the right of its canvas, where
    inference's letterbox never puts it, on a pad the jitter had recoloured."""
    p = tmp_path / "tall.png"
    write_image(p, 40, 80, [(4, 10, 14, 70)])
    ds = DetectionDataset([Sample(p, [[4, 10, 14, 70]], [0], image_id=0, width=40, height=80)], img_size=64,
                          aug=AugConfig(mosaic_prob=mosaic_prob, hsv_prob=1.0, flip_prob=1.0), seed=0)
    ds.set_aug(mosaic_prob == 0.0)
    recoloured = False
    for _ in range(6):
        img, boxes, _ = ds.load_augmented(0)
        assert (img[:, 32:] == 114).all()  # the image fits 32 x 64, the pad stays the pad value
        np.testing.assert_allclose(boxes, [[32 - 14 * 0.8, 10 * 0.8, 32 - 4 * 0.8, 70 * 0.8]], atol=1e-4)
        recoloured |= not np.array_equal(img[:, :32], ds.load_augmented(0)[0][:, :32])
    assert recoloured  # the jitter ran


def test_bad_samples_are_replaced_and_counted(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    samples = _samples(tmp_path, 6)
    (tmp_path / "bad.jpg").write_bytes(b"not an image at all")
    good = (tmp_path / "s0.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(good[: len(good) // 2])
    samples[1] = Sample(tmp_path / "bad.jpg", [[1, 1, 5, 5]], [0])
    samples[3] = Sample(tmp_path / "cut.png", [[1, 1, 5, 5]], [0])
    samples[4] = Sample(tmp_path / "missing.png", [[1, 1, 5, 5]], [0])
    ds = DetectionDataset(samples, img_size=64, aug=AugConfig(mixup_prob=0.5), seed=0)
    loader = DataLoader(ds, batch_size=3, num_workers=2, collate_fn=collate)
    n = sum(images.shape[0] for images, _ in loader)  # workers log one line per bad file
    assert n == 6 and ds.skipped == 3  # the workers' findings reach the main process
    assert {Path(f).name for f in ds.skipped_files()} == {"bad.jpg", "cut.png", "missing.png"}
    assert "3 of 6 samples skipped" in ds.skip_summary()
    fresh = DetectionDataset(samples, img_size=64, aug=None)
    x, t = fresh[1]  # the no-aug path replaces too
    assert any("bad.jpg: unreadable image" in r.getMessage() for r in caplog.records)
    assert x.shape == (3, 64, 64) and fresh.skipped == 1


def test_all_bad_is_one_user_error(tmp_path: Path) -> None:
    ds = DetectionDataset([Sample(tmp_path / "none.jpg")], img_size=32, aug=None)
    with pytest.raises(UserError, match="no readable image"):
        ds[0]
    with pytest.raises(UserError, match="no samples"):
        DetectionDataset([], img_size=32, aug=None)


def test_reduced_jpeg_decode_matches_full(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Large JPEGs decode at 1/2..1/8 for training; geometry is that of the full-size path."""
    import cv2

    from yolox_edge.data import check

    p = tmp_path / "big.jpg"
    img = write_image(p, 1300, 970, [(100, 200, 700, 900), (800, 50, 1250, 400)])
    box = [[100, 200, 700, 900], [800, 50, 1250, 400]]
    calls = []
    real = check.load_image
    monkeypatch.setattr(check, "load_image", lambda path, reduce=1: calls.append(reduce) or real(path, reduce))
    aug = AugConfig(mosaic_prob=0.0, hsv_prob=0.0, flip_prob=0.0)
    x, t = DetectionDataset([Sample(p, box, [0, 1], width=1300, height=970)], img_size=160, aug=aug)[0]
    assert calls == [8]
    ref, r = preprocess(cv2.imread(str(p)), PreprocessConfig(input_size=(160, 160)))
    np.testing.assert_allclose(t[:, 1:].numpy(), np.array(box) * r, rtol=1e-5)
    assert np.abs(x.numpy() - ref).mean() < 3  # same picture, decoder-scaled
    calls.clear()  # a wrong recorded size falls back to the full decode
    x, t = DetectionDataset([Sample(p, box, [0, 1], width=2600, height=1940)], img_size=160, aug=aug)[0]
    assert calls == [8, 1] and x.shape == (3, 160, 160)
    assert img.shape == (970, 1300, 3)


def test_augmentation_stream_is_reproducible_per_epoch(tmp_path: Path) -> None:
    samples = _samples(tmp_path)

    def epoch_targets(ds: DetectionDataset, epoch: int) -> list:
        ds.set_epoch(epoch)
        return [ds[i][1].numpy().round(3).tolist() for i in range(4)]

    a = DetectionDataset(samples, img_size=64, aug=AugConfig(mixup_prob=0), seed=5)
    e0, e1 = epoch_targets(a, 0), epoch_targets(a, 1)
    b = DetectionDataset(samples, img_size=64, aug=AugConfig(mixup_prob=0), seed=5)
    assert epoch_targets(b, 1) == e1 and epoch_targets(b, 0) == e0  # as after a resume at epoch 1
    assert e0 != e1


def test_augmentation_does_not_depend_on_the_number_of_workers(tmp_path: Path) -> None:
    """The worker count is a setting of the machine (a resumed run may change it): the same epoch
    draws the same augmented batches with 0, 1 or 2 DataLoader workers. The stream was keyed by
    the worker's seed and a per-process call count, so each worker count trained on other inputs."""
    ds = DetectionDataset(_samples(tmp_path, 6), img_size=64, aug=AugConfig(mixup_prob=0.5), seed=1)

    def epoch(workers: int) -> list:
        ds.set_epoch(3)
        g = torch.Generator().manual_seed(7)
        loader = DataLoader(ds, batch_size=2, shuffle=True, generator=g, num_workers=workers, collate_fn=collate)
        return [(x.numpy().tobytes(), t.numpy().tobytes()) for x, t in loader]

    assert epoch(0) == epoch(1) == epoch(2)
    # An index past the end is its sample drawn again (data.repeat), with an augmentation of its own
    ds.set_epoch(0)
    plain = DetectionDataset(ds.samples, img_size=64, aug=None)
    assert all(torch.equal(a, b) for a, b in zip(plain[7], plain[1]))
    assert not torch.equal(ds[7][0], ds[1][0])
