"""``yolox-edge predict --json`` with the imported official Nano on the official dog.jpg."""
from __future__ import annotations

import json

import numpy as np
import pytest

pytestmark = pytest.mark.refdata

# refdata/README.md: official ONNX, onnxruntime, conf 0.3, class-aware NMS 0.45, original pixels.
EXPECTED = {
    "dog": (0.855, [133, 207, 326, 543]),
    "bicycle": (0.803, [52, 137, 572, 424]),
    "car": (0.798, [466, 78, 692, 171]),
    "truck": (0.306, [464, 78, 683, 173]),
}


def test_predict_dog_json(refdata, nano_coco_ckpt, run_cli, tmp_path) -> None:
    dog = refdata / "images" / "dog.jpg"
    code, out, err = run_cli("predict", nano_coco_ckpt, dog, "--conf", "0.3", "--json", "--save-dir", tmp_path)
    assert code == 0, err
    (result,) = json.loads(out)
    assert result["image"] == str(dog)
    dets = result["detections"]
    names = [d["name"] for d in dets]
    assert sorted(names) == sorted(EXPECTED), names
    for d in dets:
        score, box = EXPECTED[d["name"]]
        assert d["score"] == pytest.approx(score, abs=0.005), d
        assert np.abs(np.asarray(d["box"]) - box).max() <= 2.0, d
    # import-official stores COCO's own category ids: dog 18, bicycle 2, car 3, truck 8
    assert {d["name"]: d["category_id"] for d in dets} == {"dog": 18, "bicycle": 2, "car": 3, "truck": 8}
    assert (tmp_path / "dog_pred.jpg").stat().st_size > 0
    assert not list(tmp_path.glob(".*.tmp"))  # written atomically, no temp file left


def test_predict_text_output_and_agnostic(refdata, nano_coco_ckpt, run_cli) -> None:
    dog = refdata / "images" / "dog.jpg"
    code, out, err = run_cli("predict", nano_coco_ckpt, dog, "--conf", "0.3")
    assert code == 0, err
    assert "4 detections" in out and "bicycle" in out
    # Class-agnostic NMS: the truck box overlaps the car box almost fully and goes.
    code, out, _ = run_cli("predict", nano_coco_ckpt, dog, "--conf", "0.3", "--agnostic", "--json")
    assert code == 0
    assert sorted(d["name"] for d in json.loads(out)[0]["detections"]) == ["bicycle", "car", "dog"]


def test_predict_counts_one_detection_in_the_singular(refdata, nano_coco_ckpt, run_cli) -> None:
    dog = refdata / "images" / "dog.jpg"
    code, out, err = run_cli("predict", nano_coco_ckpt, dog, "--conf", "0.85")  # the dog alone (0.855)
    assert code == 0, err
    assert f"{dog}: 1 detection\n" in out, out
    code, out, err = run_cli("predict", nano_coco_ckpt, dog, "--conf", "0.95")
    assert code == 0 and f"{dog}: 0 detections\n" in out, out


def test_predict_at_a_rectangular_size_finds_the_same_objects(refdata, nano_coco_ckpt, run_cli) -> None:
    # dog.jpg is 768x576 (4:3): letterboxed into 416x320 it fills the same 416x312 as in the
    # square 416 canvas, so the square-trained weights see the same pixels with less padding.
    dog = refdata / "images" / "dog.jpg"
    code, out, err = run_cli("predict", nano_coco_ckpt, dog, "--conf", "0.3", "--img-size", "416x320", "--json")
    assert code == 0, err
    dets = json.loads(out)[0]["detections"]
    assert sorted(d["name"] for d in dets) == sorted(EXPECTED)
    for d in dets:
        score, box = EXPECTED[d["name"]]
        assert d["score"] == pytest.approx(score, abs=0.03), d
        assert np.abs(np.asarray(d["box"]) - box).max() <= 4.0, d
    code, _, err = run_cli("predict", nano_coco_ckpt, dog, "--img-size", "416x300")
    assert code == 2 and "416x288" in err  # the nearest valid size is named


def test_demo_says_when_it_replaced_its_picture(run_cli, tmp_path) -> None:
    """demo writes demo_pred.jpg by default: a second run replaced the first's without a word."""
    save = tmp_path / "demo_pred.jpg"
    code, out, err = run_cli("demo", "--save", save)
    assert code == 0 and f"annotated image: {save}\n" in out, err
    code, out, err = run_cli("demo", "--save", save)
    assert code == 0 and f"annotated image: {save} (replaced the file there)\n" in out, err
