"""The generated shapes dataset: readable through the data spec, boxes consistent with pixels."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from yolox_edge.data.spec import read_split
from yolox_edge.data.synthetic import CLASSES, make_shapes_dataset


def test_shapes_dataset_roundtrip(tmp_path):
    spec = make_shapes_dataset(tmp_path / "shapes", n_train=6, n_val=3, size=(96, 128), seed=3)
    train, val = read_split(spec, "train"), read_split(spec, "val")
    assert len(train.samples) == 6 and len(val.samples) == 3 and train.names == CLASSES
    for s in train.samples:
        img = cv2.imread(str(s.image))
        assert img.shape == (96, 128, 3) and len(s.labels) >= 1
        assert (s.boxes[:, :2] >= 0).all() and (s.boxes[:, 2] <= 128).all() and (s.boxes[:, 3] <= 96).all()
        for b in s.boxes.astype(int):
            inside = img[b[1]:b[3], b[0]:b[2]].reshape(-1, 3).astype(float)
            assert inside.std(0).max() > 5  # shape + background, not empty background


def test_shapes_dataset_deterministic(tmp_path):
    a = make_shapes_dataset(tmp_path / "a", n_train=2, n_val=1, size=(64, 64), seed=7)
    b = make_shapes_dataset(tmp_path / "b", n_train=2, n_val=1, size=(64, 64), seed=7)
    sa, sb = read_split(a, "train").samples, read_split(b, "train").samples
    assert all(np.array_equal(x.boxes, y.boxes) for x, y in zip(sa, sb))


def test_synthetic_scene_is_a_library_image() -> None:
    """The generated scene bench and demo run on is importable from the data package and repeatable."""
    from yolox_edge.data import synthetic_scene

    a, b = synthetic_scene(), synthetic_scene()
    assert a.shape == (480, 640, 3) and a.dtype == np.uint8 and np.array_equal(a, b)
    assert synthetic_scene(h=240, w=320, seed=1).shape == (240, 320, 3)
    assert not np.array_equal(synthetic_scene(seed=1), a)
    with pytest.warns(DeprecationWarning, match=r"passing h, w, seed by position is deprecated"):
        old = synthetic_scene(240, 320, 1)  # the earlier positional form binds as it did
    assert np.array_equal(old, synthetic_scene(h=240, w=320, seed=1))


def test_make_shapes_dataset_writes_to_out(tmp_path) -> None:
    """Its folder is out=, as every call that writes one names it (it was out_dir)."""
    from yolox_edge.data import make_shapes_dataset

    spec = make_shapes_dataset(out=tmp_path / "s", n_train=1, n_val=1, size=(64, 64))
    assert spec == tmp_path / "s" / "data.yaml" and spec.is_file()
