"""draw_detections, draw_ground_truth: boxes and labels on a copy of the image; their earlier
positional forms."""
from __future__ import annotations

import numpy as np
import pytest

from yolox_edge.postprocess import Detections
from yolox_edge.visualize import draw_detections, draw_ground_truth


def _det() -> Detections:
    return Detections(np.array([[8, 20, 40, 50]], np.float32), np.array([0.9], np.float32), np.array([1]))


def test_draw_detections_draws_on_a_copy_with_names_by_keyword() -> None:
    img = np.zeros((64, 64, 3), np.uint8)
    out = draw_detections(img, _det(), names=["cat", "dog"])
    assert out.shape == img.shape and out.any() and not img.any()  # the caller's image is left as it was
    assert (out[35, 8] > 0).any()  # the box's left edge
    assert draw_detections(img, _det(), names=["cat"]).any()  # a label past the names: drawn as its index


def test_draw_detections_takes_names_by_position_with_a_warning() -> None:
    """draw_detections(img, det, names), as the README wrote it: names= is a keyword now."""
    img = np.zeros((64, 64, 3), np.uint8)
    want = draw_detections(img, _det(), names=["cat", "dog"])
    with pytest.warns(DeprecationWarning, match=r"^draw_detections\(\): passing names by position is deprecated; "
                                                r"pass names= by keyword$"):
        np.testing.assert_array_equal(draw_detections(img, _det(), ["cat", "dog"]), want)
    with pytest.raises(TypeError, match="names"):
        draw_detections(img, _det())  # names is required, as before


def test_draw_ground_truth_takes_names_by_keyword_as_draw_detections_does() -> None:
    """draw_ground_truth(img, boxes, labels, names) was all positional beside draw_detections(img,
    det, *, names=); names= is a keyword now, the positional form warns."""
    img = np.zeros((64, 64, 3), np.uint8)
    boxes, labels = np.array([[8, 20, 40, 50]], np.float32), np.array([1])
    want = draw_ground_truth(img, boxes, labels, names=["cat", "dog"])
    assert want.shape == img.shape and want.any() and not img.any()
    assert (want[35, 8] > 0).all()  # the white frame's left edge
    with pytest.warns(DeprecationWarning, match=r"^draw_ground_truth\(\): passing names by position is deprecated; "
                                                r"pass names= by keyword$"):
        np.testing.assert_array_equal(draw_ground_truth(img, boxes, labels, ["cat", "dog"]), want)
    with pytest.raises(TypeError, match="names"):
        draw_ground_truth(img, boxes, labels)  # names is required, as before
