"""`eval --confusion` end to end: a tiny checkpoint loads and runs through the CLI as usual, its
boxes replaced by known ones (a found box, a class confusion, a false alarm, a box in a crowd
region and one below the app threshold), so every printed and written number is known."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from yolox_edge.postprocess import Detections

# image id -> labelled boxes (category, [x, y, w, h], crowd); categories 1 'a' and 2 'b'
LABELS = {1: [(1, [4, 4, 16, 12], 0)], 2: [(2, [30, 10, 12, 30], 0), (1, [2, 2, 8, 8], 0)],
          3: [(2, [40, 0, 20, 40], 1)]}
# image id -> the model's boxes (x1, y1, x2, y2, score, class index)
BOXES = {1: [(4, 4, 20, 16, 0.9, 0)],                    # a found
         2: [(30, 10, 42, 40, 0.8, 0),                   # the b called a
             (50, 40, 60, 47, 0.5, 1),                   # b where nothing is
             (2, 2, 10, 10, 0.1, 0)],                    # the a, found only below 0.3
         3: [(45, 5, 55, 30, 0.7, 1)]}                   # inside the crowd of b: counted nowhere


def write_data(root: Path) -> Path:
    (root / "imgs").mkdir(parents=True)
    images, anns = [], []
    for iid, labels in LABELS.items():
        cv2.imwrite(str(root / "imgs" / f"{iid}.png"), np.full((48, 64, 3), 60 * iid, np.uint8))
        images.append({"id": iid, "file_name": f"{iid}.png", "width": 64, "height": 48})
        for cat, (x, y, w, h), crowd in labels:
            anns.append({"id": len(anns) + 1, "image_id": iid, "category_id": cat, "bbox": [x, y, w, h],
                         "area": w * h, "iscrowd": crowd})
    gt = {"images": images, "annotations": anns, "categories": [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}]}
    (root / "gt.json").write_text(json.dumps(gt))
    (root / "data.yaml").write_text("format: coco\nval: {annotations: gt.json, images: imgs}\n")
    return root / "data.yaml"


@pytest.fixture
def setup(tmp_path, monkeypatch):
    """(checkpoint, data spec) with the checkpoint's Predictor answering BOXES (images told apart by grey level)."""
    from yolox_edge.engine import save_checkpoint
    from yolox_edge.models import create_model
    from yolox_edge.runtime.predictor import Predictor

    def known_boxes(self, images):
        out = []
        for im in images:
            rows = np.asarray(BOXES[int(round(im[0, 0, 0] / 60))], np.float32)
            out.append(Detections(rows[:, :4], rows[:, 4], rows[:, 5].astype(np.int64)))
        return out

    monkeypatch.setattr(Predictor, "predict_images", known_boxes)
    ckpt = save_checkpoint(tmp_path / "m.pt", create_model("test", num_classes=2), class_names=["a", "b"])
    return ckpt, write_data(tmp_path / "data")


def test_eval_confusion_prints_writes_json_and_draws(setup, run_cli, tmp_path) -> None:
    ckpt, spec = setup
    png, out_json = tmp_path / "plots" / "confusion.png", tmp_path / "e.json"
    code, out, err = run_cli("eval", ckpt, "--data", spec, "--confusion-png", png, "--json", out_json,
                             "--save-dir", tmp_path / "vis")
    assert code == 0, err
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("confusion at score >= 0.30, IoU 0.5"))
    report = lines[start:]
    assert report[1:3] == ["  most confused (true -> predicted, boxes):", "    b -> a  1"]
    rows = {line.split()[0]: line.split()[1:] for line in report[3:7]}
    # class: boxes, found, missed, false+, P, R, F1, best F1 'at' score
    assert rows["a"] == ["2", "1", "1", "0", "0.50", "0.50", "0.50", "0.80", "at", "0.06"]
    assert rows["b"] == ["1", "0", "0", "1", "0.00", "0.00", "0.00", "-"]
    assert rows["all"] == ["3", "1", "0.33", "0.33", "0.33"]
    assert report[7] == "  best F1 0.57 at score 0.06 (app default 0.30: F1 0.33), precision 0.50, recall 0.67"
    assert f"measured on {spec}:val (3 images)" in report[8]
    assert [line.split() for line in report[9:13]] == [["true", "\\", "predicted", "a", "b", "missed"],
                                                       ["a", "1", "0", "1"], ["b", "1", "0", "0"],
                                                       ["background", "0", "1"]]
    assert f"confusion heat map -> {png}" in out and len(list((tmp_path / "vis").iterdir())) == 3
    c = json.loads(out_json.read_text())["confusion"]
    assert c["matrix"] == [[1, 0, 1], [1, 0, 0], [0, 1, 0]]
    assert (c["rows"], c["columns"], c["conf"], c["iou"], c["nms"]) == (["a", "b", "background"],
                                                                       ["a", "b", "missed"], 0.3, 0.5, 0.45)
    assert c["best"] == {"f1": 0.5714, "conf": 0.06, "precision": 0.5, "recall": 0.6667, "app_conf": 0.3,
                         "f1_at_app_conf": 0.3333}
    assert c["confused"] == [{"true": "b", "predicted": "a", "count": 1}] and len(c["f1_curve"]["f1"]) == 99
    assert [r["class"] for r in c["per_class"]] == ["a", "b"]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and cv2.imread(str(png)).shape[0] >= 500


def test_evaluate_model_confusion_is_the_clis_and_follows_the_apps_threshold(setup, run_cli, tmp_path,
                                                                              monkeypatch) -> None:
    """The library returns what `eval --json` writes; a higher --confusion-conf drops the 0.8 box; the
    default is the predictor's own (a bundle's) threshold, and a record without the flag has no key."""
    from yolox_edge import runtime
    from yolox_edge.engine import evaluate_model

    ckpt, spec = setup
    code, _, err = run_cli("eval", ckpt, "--data", spec, "--confusion", "--json", tmp_path / "e.json")
    assert code == 0, err
    rec = evaluate_model(ckpt, spec, progress=False, log=None, confusion=True)
    assert rec["confusion"] == json.loads((tmp_path / "e.json").read_text())["confusion"]
    assert "confusion" not in evaluate_model(ckpt, spec, progress=False, log=None)
    high = evaluate_model(ckpt, spec, progress=False, log=None, confusion_conf=0.85)["confusion"]
    assert high["conf"] == 0.85 and high["matrix"] == [[1, 0, 1], [0, 0, 1], [0, 0, 0]]
    loader = runtime.load_predictor

    def as_a_bundle(*args, **kw):  # a bundle packaged with --conf 0.6
        pred = loader(*args, **kw)
        pred.conf = 0.6
        return pred

    monkeypatch.setattr(runtime, "load_predictor", as_a_bundle)
    bundled = evaluate_model(ckpt, spec, progress=False, log=None, confusion=True)["confusion"]
    assert bundled["conf"] == 0.6 and bundled["best"]["app_conf"] == 0.6
    assert bundled["matrix"] == [[1, 0, 1], [1, 0, 0], [0, 0, 0]]  # the 0.5 false alarm is below it


def test_eval_confusion_bad_input_is_one_line_and_exit_2(setup, run_cli, tmp_path) -> None:
    ckpt, spec = setup
    code, _, err = run_cli("eval", ckpt, "--data", spec, "--conf", "0.5", "--confusion-conf", "0.3")
    assert code == 2 and "--confusion-conf 0.3 (confusion_conf=0.3 in Python) is below the evaluation's score " \
        "threshold 0.5" in err and "--confusion-conf of at least 0.5" in err, err
    code, _, err = run_cli("eval", ckpt, "--data", spec, "--confusion-png", tmp_path / "c.jpg")
    assert code == 2 and "expected a file name ending in .png, not" in err, err
    (tmp_path / "f").write_text("x")
    code, _, err = run_cli("eval", ckpt, "--data", spec, "--confusion-png", tmp_path / "f" / "c.png")
    assert code == 2 and "choose another path for the confusion plot" in err, err
