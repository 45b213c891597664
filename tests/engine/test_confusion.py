"""Confusion matrix and F1 sweep on hand-made boxes, where every count is known."""
from __future__ import annotations

import numpy as np
import pytest

from yolox_edge.engine.confusion import BACKGROUND, IGNORED, ConfusionCounter, match_image
from yolox_edge.engine.confusion_report import confusion_lines, write_confusion_png
from yolox_edge.postprocess import Detections

NAMES = ["cat", "dog", "bird"]


def det(*rows: tuple) -> Detections:
    """Detections from (x1, y1, x2, y2, score, label) rows."""
    a = np.asarray(rows, np.float64).reshape(-1, 6)
    return Detections(a[:, :4].astype(np.float32), a[:, 4].astype(np.float32), a[:, 5].astype(np.int64))


# One image: a cat at (0,0)-(10,10), a dog at (20,0)-(30,10), a bird at (40,0)-(50,10) no box finds,
# and a crowd of birds at (0,20)-(40,40).
GT_BOXES = np.array([[0, 0, 10, 10], [20, 0, 30, 10], [40, 0, 50, 10], [0, 20, 40, 40]], np.float32)
GT_LABELS = np.array([0, 1, 2, 2])
CROWD = np.array([False, False, False, True])
PRED = det((0, 0, 10, 10, 0.9, 0),     # the cat, found: cat -> cat
           (20, 0, 30, 11, 0.8, 0),    # the dog called a cat (IoU 0.91): dog -> cat
           (0, 0, 10, 9, 0.7, 0),      # the cat again: its object is taken, a false alarm
           (60, 0, 70, 10, 0.6, 1),    # a dog where nothing is: a false alarm
           (5, 22, 15, 32, 0.5, 2),    # inside the crowd region: counted nowhere
           (20, 0, 30, 10, 0.2, 1))    # the dog, rightly, but below 0.3


def test_match_is_greedy_by_score_to_the_best_free_box_of_any_class() -> None:
    true = match_image(PRED.boxes, PRED.scores, GT_BOXES, GT_LABELS, CROWD)
    assert true.tolist() == [0, 1, BACKGROUND, BACKGROUND, IGNORED, BACKGROUND]
    # The order of the boxes does not matter, their scores do: the 0.7 box listed first still loses the cat.
    order = [2, 0, 1, 3, 4, 5]
    assert match_image(PRED.boxes[order], PRED.scores[order], GT_BOXES, GT_LABELS, CROWD).tolist() == true[order].tolist()
    # Without the crowd flag the crowd region is an object (IoU of the 0.5 box with it is 0.125 < 0.5).
    assert match_image(PRED.boxes, PRED.scores, GT_BOXES, GT_LABELS)[4] == BACKGROUND
    # Of two free objects the box takes the one it overlaps most, not the first listed.
    two = np.array([[0, 0, 10, 10], [0, 0, 10, 8]], np.float32)
    assert match_image(det((0, 0, 10, 8, 0.9, 1)).boxes, [0.9], two, [0, 1]).tolist() == [1]
    assert match_image(np.zeros((0, 4)), [], two, [0, 1]).tolist() == []
    assert match_image(PRED.boxes[:1], PRED.scores[:1], np.zeros((0, 4)), []).tolist() == [BACKGROUND]


def test_a_crowd_region_hides_only_boxes_of_its_own_class() -> None:
    """A cat box on the crowd of birds was left out as the bird box there is; COCO's AP scores it
    a cat false positive (a crowd region is ignored for its own category only)."""
    boxes = det((5, 22, 15, 32, 0.5, 2), (5, 22, 15, 32, 0.6, 0))
    assert match_image(boxes.boxes, boxes.scores, GT_BOXES, GT_LABELS, CROWD, labels=boxes.labels).tolist() == [
        IGNORED, BACKGROUND]
    counter = ConfusionCounter(3)
    counter.add(boxes, GT_BOXES, GT_LABELS, crowd=CROWD)
    assert counter.matrix(0.3)[3].tolist() == [1, 0, 0, 0]  # background row: the cat box only


def test_matrix_counts_each_kind_of_box_once() -> None:
    counter = ConfusionCounter(3)
    counter.add(PRED, GT_BOXES, GT_LABELS, crowd=CROWD)
    m = counter.matrix(0.3)
    # rows cat, dog, bird, background; columns cat, dog, bird, missed
    assert m.tolist() == [[1, 0, 0, 0],
                          [1, 0, 0, 0],
                          [0, 0, 0, 1],   # the bird missed; the crowd box is no miss
                          [1, 1, 0, 0]]   # the cat duplicate, the dog on nothing; the box in the crowd left out
    assert counter.instances.tolist() == [1, 1, 1]
    # At 0.1 the late dog box counts, but its dog is taken by the 0.8 box: one more false alarm.
    assert counter.matrix(0.1)[3].tolist() == [1, 2, 0, 0]
    # Above every score: all labelled boxes missed, nothing predicted.
    assert counter.matrix(0.95).tolist() == [[0, 0, 0, 1], [0, 0, 0, 1], [0, 0, 0, 1], [0, 0, 0, 0]]


def test_summary_names_pairs_and_per_class_scores() -> None:
    counter = ConfusionCounter(3)
    counter.add(PRED, GT_BOXES, GT_LABELS, crowd=CROWD)
    s = counter.summary(NAMES, 0.3, app_conf=0.3)
    assert s["rows"] == [*NAMES, "background"] and s["columns"] == [*NAMES, "missed"]
    assert s["confused"] == [{"true": "dog", "predicted": "cat", "count": 1}]
    cat, dog, bird = s["per_class"]
    # cat: 3 boxes predicted (the cat, the dog, the duplicate), 1 right; 1 labelled, found
    assert (cat["correct"], cat["predicted"], cat["instances"]) == (1, 3, 1)
    assert cat["precision"] == pytest.approx(1 / 3, abs=1e-4) and cat["recall"] == 1.0
    assert cat["f1"] == pytest.approx(0.5) and cat["false_positives"] == 1 and cat["missed"] == 0
    assert (dog["precision"], dog["recall"], dog["f1"]) == (0.0, 0.0, 0.0)
    assert (bird["precision"], bird["recall"], bird["f1"], bird["best_conf"]) == (None, 0.0, 0.0, None)
    assert s["overall"] == {"correct": 1, "predicted": 4, "instances": 3, "precision": 0.25,
                            "recall": pytest.approx(1 / 3, abs=1e-4), "f1": pytest.approx(2 / 7, abs=1e-4)}
    lines = confusion_lines(s, "t.yaml:val (1 images)")
    assert "    dog -> cat  1" in lines
    assert any(line.split()[:4] == ["cat", "1", "1", "0"] for line in lines)
    table = lines[lines.index(next(line for line in lines if "true \\ predicted" in line)):]
    assert table[0].split()[-4:] == ["cat", "dog", "bird", "missed"] and table[-1].split() == ["background", "1", "1", "0"]


def test_a_class_neither_labelled_nor_predicted_is_left_out_of_the_table_in_words() -> None:
    """'(1 classes ... left out)' read as a typo, and the matrix below still has the class."""
    counter = ConfusionCounter(4)
    counter.add(PRED, GT_BOXES, GT_LABELS, crowd=CROWD)
    lines = confusion_lines(counter.summary([*NAMES, "fish"], 0.3, app_conf=0.3), "x")
    assert "  (1 class neither labelled nor predicted here left out of this table)" in lines
    assert not any(line.split()[:1] == ["fish"] and len(line.split()) == 9 for line in lines)


def test_the_f1_sweep_finds_the_known_best_threshold() -> None:
    """One class, 4 objects; boxes by score right, right, wrong, right, wrong, wrong, right:
    F1 = 2 * right / (boxes + 4) is 0.75 with the top four (3 right), for any threshold in
    (0.5, 0.6]; the sweep's 0.01 steps there are 0.51 .. 0.60, and it gives their middle."""
    gt = np.array([[0, 0, 10, 10], [20, 0, 30, 10], [40, 0, 50, 10], [60, 0, 70, 10]], np.float32)
    hit = [(0, 0, 10, 10), (20, 0, 30, 10), (40, 0, 50, 10), (60, 0, 70, 10)]
    miss = (100, 100, 110, 110)
    rows = [(*hit[0], 0.9, 0), (*hit[1], 0.8, 0), (*miss, 0.7, 0), (*hit[2], 0.6, 0), (*miss, 0.5, 0),
            (*miss, 0.4, 0), (*hit[3], 0.2, 0)]
    counter = ConfusionCounter(1, min_conf=0.001)
    counter.add(det(*rows), gt, [0, 0, 0, 0])
    expected = {0.9: 2 / 5, 0.8: 4 / 6, 0.7: 4 / 7, 0.6: 6 / 8, 0.5: 6 / 9, 0.4: 6 / 10, 0.2: 8 / 11}
    for t, f1 in expected.items():
        assert counter.scores_at(t)["f1"] == pytest.approx(f1)
    assert counter.best_f1() == (pytest.approx(0.75), 0.56)
    assert counter.best_f1(cls=0) == counter.best_f1()  # one class: its own sweep is the overall one
    curve = counter.f1_curve()
    assert len(curve["conf"]) == 99 and max(curve["f1"]) == 0.75 and curve["f1"][55] == 0.75
    best = counter.summary(["raccoon"], 0.3, app_conf=0.3)["best"]
    assert best == {"f1": 0.75, "conf": 0.56, "precision": 0.75, "recall": 0.75, "app_conf": 0.3,
                    "f1_at_app_conf": pytest.approx(0.6)}
    # An evaluation that kept only boxes >= 0.65 cannot judge lower thresholds: the sweep starts there.
    high = ConfusionCounter(1, min_conf=0.65)
    high.add(det(*rows[:3]), gt, [0, 0, 0, 0])
    assert high.best_f1() == (pytest.approx(4 / 6), 0.76)  # 0.71 .. 0.80 tie: 2 boxes, both right


def test_the_apps_nms_is_redone_on_the_evaluations_boxes() -> None:
    """eval keeps boxes overlapping up to IoU 0.65; the app (NMS 0.45) would show one of two at IoU 0.6."""
    pair = det((0, 0, 10, 10, 0.9, 0), (0, 0, 10, 6, 0.8, 0))  # IoU 0.6
    gt = np.array([[0, 0, 10, 10]], np.float32)
    plain = ConfusionCounter(1)
    plain.add(pair, gt, [0])
    assert plain.matrix(0.3).tolist() == [[1, 0], [1, 0]]  # the second a duplicate
    app = ConfusionCounter(1, nms=0.45, max_det=300)
    app.add(pair, gt, [0])
    assert app.matrix(0.3).tolist() == [[1, 0], [0, 0]]
    capped = ConfusionCounter(1, nms=0.45, max_det=1)
    capped.add(det((0, 0, 10, 10, 0.9, 0), (50, 50, 60, 60, 0.95, 0)), gt, [0])
    assert capped.matrix(0.3).tolist() == [[0, 1], [1, 0]]  # the best box alone, on nothing


def test_nothing_found_and_nothing_labelled() -> None:
    counter = ConfusionCounter(2)
    counter.add(Detections(), np.zeros((0, 4)), [])
    s = counter.summary(["a", "b"], 0.3)
    assert s["matrix"] == [[0, 0, 0]] * 3 and s["best"] == {"f1": None, "conf": None}
    assert s["overall"]["f1"] is None
    assert "best F1: none" in "\n".join(confusion_lines(s, "x"))


def test_heat_map_is_written_for_80_classes(tmp_path) -> None:
    rng = np.random.default_rng(0)
    names = [f"class{i}" for i in range(80)]
    counter = ConfusionCounter(80)
    for _ in range(5):
        gt = np.tile(rng.uniform(0, 200, (30, 2)), 2) + [0, 0, 20, 20]
        labels = rng.integers(0, 60, 30)  # 20 classes never occur: left out of the picture
        counter.add(Detections(gt[:20].astype(np.float32), rng.uniform(0.3, 1, 20).astype(np.float32),
                               (labels[:20] + rng.integers(0, 2, 20)) % 60), gt, labels)
    out = write_confusion_png(counter.summary(names, 0.3), tmp_path / "sub" / "c.png")
    import cv2

    img = cv2.imread(str(out))
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and 1000 < img.shape[0] < 2500
    assert [p.name for p in out.parent.iterdir()] == ["c.png"]  # no temp file left
