"""COCO AP: perfect detections score 1.0 on a synthetic set, and ``yolox-edge eval`` of the
imported Nano equals the AP of the official ONNX with the OFFICIAL YOLOX postprocess,
re-implemented here independently of yolox_edge's decode/postprocess."""
from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from yolox_edge.data.spec import read_split
from yolox_edge.engine.evaluator import coco_ap, coco_gt_from_split, coco_scores, evaluate, per_class_lines
from yolox_edge.errors import UserError
from yolox_edge.postprocess import Detections


# ------------------------------------------------------------------ synthetic
def write_synthetic_coco(root: Path) -> Path:
    """Three 64x48 images, two categories (ids 3 and 1), a few boxes each."""
    (root / "imgs").mkdir(parents=True)
    images, anns = [], []
    boxes = {1: [(3, [4, 4, 20, 16])], 2: [(1, [30, 10, 12, 30]), (3, [2, 2, 10, 10])], 3: []}
    for iid, bb in boxes.items():
        cv2.imwrite(str(root / "imgs" / f"{iid}.jpg"), np.full((48, 64, 3), 60 * iid, np.uint8))
        images.append({"id": iid, "file_name": f"{iid}.jpg", "width": 64, "height": 48})
        for cat, (x, y, w, h) in bb:
            anns.append({"id": len(anns) + 1, "image_id": iid, "category_id": cat, "bbox": [x, y, w, h],
                         "area": w * h, "iscrowd": 0})
    gt = {"images": images, "annotations": anns,
          "categories": [{"id": 3, "name": "cat3"}, {"id": 1, "name": "cat1"}]}
    (root / "gt.json").write_text(json.dumps(gt))
    spec = root / "data.yaml"
    spec.write_text("format: coco\nval: {annotations: gt.json, images: imgs}\n")
    return spec


class OraclePredictor:
    """A predictor double answering each image with its ground truth (optionally shifted)."""

    def __init__(self, split, shift: float = 0.0) -> None:
        self.class_names = split.names
        self.split, self.shift = split, shift

    def predict_images(self, images: list[np.ndarray]) -> list[Detections]:
        # The evaluator reads images in sample order; the synthetic images differ by colour.
        out = []
        for im in images:
            s = next(s for s in self.split.samples if abs(int(im[0, 0, 0]) - 60 * s.image_id) < 8)
            n = len(s.boxes)
            out.append(Detections(s.boxes + self.shift, np.linspace(0.9, 0.5, n).astype(np.float32), s.labels))
        return out


def test_perfect_detections_give_ap_1(tmp_path) -> None:
    split = read_split(write_synthetic_coco(tmp_path), "val")
    assert split.names == ["cat1", "cat3"]
    res = evaluate(OraclePredictor(split), split, batch=2, progress=False)
    assert res["AP"] == pytest.approx(1.0) and res["AP50"] == pytest.approx(1.0)
    assert (res["images"], res["skipped"], res["detections"]) == (3, 0, 3)
    shifted = evaluate(OraclePredictor(split, shift=1.0), split, progress=False)  # IoU >= 0.68
    assert 0.0 < shifted["AP"] < 1.0 and shifted["AP50"] == pytest.approx(1.0)
    # A data spec path works too (its val split), as read_split takes one.
    assert evaluate(OraclePredictor(split), str(tmp_path / "data.yaml"), progress=False)["AP"] == pytest.approx(1.0)


def test_the_progress_bar_says_what_is_evaluated(tmp_path, capsys) -> None:
    """quantize --report evaluates FP32 and INT8 of every format: in a log each bar names its run."""
    split = read_split(write_synthetic_coco(tmp_path), "val")
    evaluate(OraclePredictor(split), split, desc="eval onnx INT8")
    err = capsys.readouterr().err
    assert "eval onnx INT8: 100%" in err and "\r" not in err  # not a terminal: plain lines


def test_unreadable_image_is_counted_not_fatal(tmp_path) -> None:
    split = read_split(write_synthetic_coco(tmp_path), "val")
    (tmp_path / "imgs" / "3.jpg").write_bytes(b"broken")
    res = evaluate(OraclePredictor(split), split, progress=False)
    assert res["skipped"] == 1 and res["images"] == 2 and res["AP"] == pytest.approx(1.0)


def test_unreadable_image_with_boxes_is_left_out_of_the_score(tmp_path) -> None:
    """Its ground truth counted as misses: AP 0.30 instead of 0.49 on a VOC set with 2 of 8 broken."""
    split = read_split(write_synthetic_coco(tmp_path), "val")
    (tmp_path / "imgs" / "2.jpg").write_bytes(b"broken")  # image 2 holds two of the three boxes
    res = evaluate(OraclePredictor(split), split, progress=False)
    assert res["skipped"] == 1 and res["images"] == 2 and res["AP"] == pytest.approx(1.0)


@pytest.mark.parametrize("edit", ["no_area", "no_iscrowd", "no_ids", "bad_bbox"])
def test_coco_json_of_other_tools_is_scored_not_a_traceback(tmp_path, edit) -> None:
    """pycocotools raised KeyError 'area' (and on a bbox the reader had already skipped) at the end
    of eval, and of every training epoch before last.pt was written."""
    spec = write_synthetic_coco(tmp_path)
    gt = json.loads((tmp_path / "gt.json").read_text())
    for a in gt["annotations"]:
        if edit == "no_area":
            del a["area"]
        elif edit == "no_iscrowd":
            del a["iscrowd"]
        elif edit == "no_ids":
            del a["id"]
    if edit == "bad_bbox":
        gt["annotations"].append({"id": 99, "image_id": 1, "category_id": 1, "bbox": [1, 2, 3], "area": 3})
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    split = read_split(spec, "val")
    res = evaluate(OraclePredictor(split), split, progress=False)
    assert res["AP"] == pytest.approx(1.0)


class LowScorePredictor(OraclePredictor):
    """Ground truth at score 0.1, filtered by the predictor's own ``conf`` as a real one is."""

    conf, iou, max_det = 0.3, 0.45, 300  # an app's thresholds

    def predict_images(self, images: list[np.ndarray]) -> list[Detections]:
        out = []
        for d in super().predict_images(images):
            keep = np.full(len(d.scores), 0.1, np.float32) >= self.conf
            out.append(Detections(d.boxes[keep], np.full(int(keep.sum()), 0.1, np.float32), d.labels[keep]))
        return out


def test_ap_is_taken_at_the_evaluation_thresholds_whatever_the_predictor_has(tmp_path) -> None:
    """evaluate(load_predictor(ckpt), split) gave 0.162 where `yolox-edge eval` gave 0.227."""
    split = read_split(write_synthetic_coco(tmp_path), "val")
    pred = LowScorePredictor(split)
    res = evaluate(pred, split, progress=False)
    assert res["AP"] == pytest.approx(1.0) and pred.conf == 0.3  # the caller's predictor is untouched
    assert evaluate(pred, split, progress=False, conf=None)["AP"] == 0.0  # None: its own thresholds
    assert res["class_names_match"]
    pred.class_names = ["a", "b"]  # same count, other names: scored by position, and said so
    assert not evaluate(pred, split, progress=False)["class_names_match"]


class AgnosticPredictor(OraclePredictor):
    """Its ground truth when class-aware; nothing when made class-agnostic (as if its NMS across
    classes had removed every box), so the AP says which setting the evaluation ran with."""

    conf, iou, max_det, agnostic = 0.3, 0.45, 300, True

    def predict_images(self, images: list[np.ndarray]) -> list[Detections]:
        found = super().predict_images(images)
        return [Detections(d.boxes[:0], d.scores[:0], d.labels[:0]) for d in found] if self.agnostic else found


def test_ap_is_class_aware_whatever_the_predictor_has(tmp_path) -> None:
    """evaluate overrode conf, iou and max_det but kept a class-agnostic predictor's NMS (or a
    bundle's agnostic: true): not YOLOX's evaluation, another AP than `yolox-edge eval`."""
    split = read_split(write_synthetic_coco(tmp_path), "val")
    pred = AgnosticPredictor(split)
    assert evaluate(pred, split, progress=False)["AP"] == pytest.approx(1.0) and pred.agnostic
    assert evaluate(pred, split, progress=False, agnostic=None)["AP"] == 0.0  # None: its own setting


def test_evaluate_hands_over_the_plain_results_it_scored(tmp_path) -> None:
    """evaluate(results=) gets the COCO results it scored, with the json's ids; pycocotools'
    loadRes had added area, id, iscrowd and a segmentation to each dict it was given."""
    split = read_split(write_synthetic_coco(tmp_path), "val")
    results: list[dict] = [{"earlier": 1}]  # a list holding results already: kept, not scored
    res = evaluate(OraclePredictor(split), split, progress=False, results=results)
    assert results.pop(0) == {"earlier": 1} and len(results) == res["detections"] == 3
    assert all(set(r) == {"image_id", "category_id", "bbox", "score"} for r in results)
    assert sorted((r["image_id"], r["category_id"]) for r in results) == [(1, 3), (2, 1), (2, 3)]
    assert coco_ap(split.coco_gt, results)["AP"] == pytest.approx(1.0) == res["AP"]
    assert [(r["class"], r["category_id"], r["instances"]) for r in res["per_class"]] == [("cat1", 1, 1),
                                                                                        ("cat3", 3, 2)]
    split.coco_gt, split.category_ids = None, None  # as a VOC/YOLO reader leaves them: no ids of its own
    res = evaluate(OraclePredictor(split), split, progress=False, results=(built := []))
    assert sorted((r["image_id"], r["category_id"]) for r in built) == [(1, 2), (2, 1), (2, 2)]  # index + 1
    assert "category_id" not in res["per_class"][0] and res["AP"] == pytest.approx(1.0)


def test_category_ids_note() -> None:
    from yolox_edge.engine.evaluator import category_ids_note

    assert category_ids_note([1, 2], [1, 2]) == category_ids_note(None, [1, 2]) == category_ids_note([1, 2], None) == ""
    note = category_ids_note(list(range(1, 81)), list(range(0, 80)))
    assert note.startswith("note: the model's category ids (1, 2, 3, 4, 5, 6 and 74 more) are not the data's (0, 1, 2, "
                           "3, 4, 5 and 74 more); AP pairs classes by position"), note


def test_class_count_mismatch_is_a_user_error(tmp_path) -> None:
    split = read_split(write_synthetic_coco(tmp_path), "val")
    pred = OraclePredictor(split)
    pred.class_names = ["only_one"]
    with pytest.raises(UserError, match="has 1 classes, but the dataset has 2"):
        evaluate(pred, split, progress=False)


def test_coco_gt_built_for_non_coco_splits(tmp_path) -> None:
    split = read_split(write_synthetic_coco(tmp_path), "val")
    split.coco_gt = None  # as a VOC/YOLO reader leaves it
    gt = coco_gt_from_split(split)
    assert [c["id"] for c in gt["categories"]] == [1, 2] and len(gt["annotations"]) == 3
    res = [{"image_id": a["image_id"], "category_id": a["category_id"], "bbox": a["bbox"], "score": 0.9}
           for a in gt["annotations"]]
    assert coco_ap(gt, res)["AP"] == pytest.approx(1.0)
    assert coco_ap(gt, [])["AP"] == 0.0


def test_no_detections_score_as_pycocotools_scores_a_miss() -> None:
    """With nothing detected every stat read 0.0; COCOeval gives -1 to an area range without an
    instance (APm and APl of a split of small boxes), as it does with one detection that misses."""
    gt = {"images": [{"id": 1, "width": 100, "height": 100}], "categories": [{"id": 1, "name": "a"}],
          "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 10, 10, 10], "area": 100,
                           "iscrowd": 0},
                          {"id": 2, "image_id": 1, "category_id": 1, "bbox": [0, 0, 100, 100], "area": 10000,
                           "iscrowd": 1}]}
    miss = [{"image_id": 1, "category_id": 1, "bbox": [60, 60, 5, 5], "score": 0.5}]
    want = {"AP": 0.0, "AP50": 0.0, "AP75": 0.0, "APs": 0.0, "APm": -1.0, "APl": -1.0}
    assert coco_ap(gt, miss) == want
    assert coco_ap(gt, []) == want
    assert coco_ap({**gt, "annotations": []}, []) == {k: -1.0 for k in want}


def test_a_flat_coco_bbox_is_not_scored_as_it_was_not_trained(tmp_path) -> None:
    """A bbox with a negative width, dropped by the reader (and so from training), stayed in the
    scored ground truth: an instance no detection could match (a perfect model's AP 1.0 -> 0.83)."""
    spec = write_synthetic_coco(tmp_path)
    gt = json.loads((tmp_path / "gt.json").read_text())
    gt["annotations"].append({"id": 99, "image_id": 3, "category_id": 3, "bbox": [40, 10, -12, 20], "area": 240,
                              "iscrowd": 0})
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    split = read_split(spec, "val")
    assert any("annotation 99" in p for p in split.problems)
    assert 99 not in {a["id"] for a in coco_gt_from_split(split)["annotations"]}
    res = evaluate(OraclePredictor(split), split, progress=False)
    assert res["AP"] == pytest.approx(1.0) and [r["instances"] for r in res["per_class"]] == [1, 2]


def test_a_box_wholly_outside_an_image_the_json_gives_no_size_is_not_scored(tmp_path) -> None:
    """Training decodes an unsized image and drops its boxes wholly outside; eval scored them (as
    instances no detection could match: a model finding every box there is scored below AP 1)."""
    spec = write_synthetic_coco(tmp_path)
    gt = json.loads((tmp_path / "gt.json").read_text())
    for im in gt["images"]:
        if im["id"] == 2:
            del im["width"], im["height"]
    gt["annotations"].append({"id": 99, "image_id": 2, "category_id": 1, "bbox": [200, 100, 10, 10], "area": 100,
                              "iscrowd": 0})
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    split = read_split(spec, "val")

    class InsideOnly(OraclePredictor):  # finds every box that is in the image (64 x 48), nothing else
        def predict_images(self, images):
            dets = super().predict_images(images)
            return [Detections(d.boxes[keep], d.scores[keep], d.labels[keep])
                    for d in dets for keep in [(d.boxes[:, 0] < 64) & (d.boxes[:, 1] < 48)]]

    scored: dict = {}
    res = evaluate(InsideOnly(split), split, progress=False, ground_truth=scored)
    assert res["AP"] == pytest.approx(1.0) and [r["instances"] for r in res["per_class"]] == [1, 2]
    assert 99 not in {a["id"] for a in scored["annotations"]}
    # the json's own sizes still rule where it gives them: image 1's boxes are kept as they were
    assert {a["id"] for a in scored["annotations"]} == {1, 2, 3}


def test_a_box_inside_the_file_is_scored_where_the_json_gives_the_image_another_size(tmp_path) -> None:
    """The json gives image 2 (a 64 x 48 file) as 48 x 64: a box at x 50-60 lies inside the file, and
    training (which clips to the decoded file) learns it, but eval judged 'wholly outside' by the
    json's size, left it out of the ground truth and scored the model's box on it as a false positive."""
    spec = write_synthetic_coco(tmp_path)
    gt = json.loads((tmp_path / "gt.json").read_text())
    for im in gt["images"]:
        if im["id"] == 2:
            im["width"], im["height"] = 48, 64
    gt["annotations"].append({"id": 99, "image_id": 2, "category_id": 1, "bbox": [50, 10, 10, 10], "area": 100,
                              "iscrowd": 0})
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    split = read_split(spec, "val")
    scored: dict = {}
    res = evaluate(OraclePredictor(split), split, progress=False, ground_truth=scored)
    assert 99 in {a["id"] for a in scored["annotations"]}
    assert res["AP"] == pytest.approx(1.0) and [r["instances"] for r in res["per_class"]] == [2, 2]


def test_the_ground_truth_scored_lists_each_image_once_and_only_known_categories(tmp_path) -> None:
    """An image entry listed twice (and another file given the same id) is read once, but the
    ground truth that ``eval --coco-gt`` writes listed the id twice ('24 images' where eval scored
    23), and kept a box of a category the json does not list, which the reader drops."""
    spec = write_synthetic_coco(tmp_path)
    gt = json.loads((tmp_path / "gt.json").read_text())
    gt["images"].append(dict(gt["images"][0]))  # the same entry again
    gt["images"].append({**gt["images"][1], "file_name": "3.jpg"})  # another file, image 2's id
    gt["annotations"].append({"id": 98, "image_id": 1, "category_id": 5, "bbox": [1, 1, 5, 5], "area": 25,
                              "iscrowd": 0})
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    split = read_split(spec, "val")
    res = evaluate(OraclePredictor(split), split, progress=False, ground_truth=(scored := {}))
    assert res["images"] == 3 and res["AP"] == pytest.approx(1.0)
    assert [(im["id"], im["file_name"]) for im in scored["images"]] == [(1, "1.jpg"), (2, "2.jpg"), (3, "3.jpg")]
    assert 98 not in {a["id"] for a in scored["annotations"]} and len(scored["annotations"]) == 3
    assert [im["id"] for im in coco_gt_from_split(split)["images"]] == [1, 2, 3]


def test_a_coco_bbox_wholly_outside_its_image_is_not_scored_as_it_was_not_trained(tmp_path) -> None:
    """A box wholly outside its image (training drops it: check.clean_boxes) was scored as a miss
    no detection could match; one partly outside stays as the json gives it (pycocotools scores it so)."""
    spec = write_synthetic_coco(tmp_path)
    gt = json.loads((tmp_path / "gt.json").read_text())
    gt["annotations"] += [{"id": 98, "image_id": 3, "category_id": 3, "bbox": [70, 10, 10, 10], "area": 100,
                           "iscrowd": 0},  # right of the 64x48 image
                          {"id": 97, "image_id": 3, "category_id": 1, "bbox": [50, 30, 20, 30], "area": 600,
                           "iscrowd": 0}]  # partly outside
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    split = read_split(spec, "val")
    scored = {a["id"]: a for a in coco_gt_from_split(split)["annotations"]}
    assert 98 not in scored and scored[97]["bbox"] == [50, 30, 20, 30] and scored[97]["area"] == 600

    class InsideOnly(OraclePredictor):  # a model boxes what is in the image
        def predict_images(self, images):
            out = []
            for d in super().predict_images(images):
                keep = (np.minimum(d.boxes[:, 2], 64) > np.maximum(d.boxes[:, 0], 0)) & \
                       (np.minimum(d.boxes[:, 3], 48) > np.maximum(d.boxes[:, 1], 0))
                out.append(Detections(d.boxes[keep], d.scores[keep], d.labels[keep]))
            return out

    res = evaluate(InsideOnly(split), split, progress=False)
    assert res["AP"] == pytest.approx(1.0) and [r["instances"] for r in res["per_class"]] == [2, 2]


def test_per_class_rows_follow_the_class_indices(tmp_path) -> None:
    """Category ids 3 and 1, listed unsorted: class 0 is id 1. Found only class 1 (id 3): its row
    scores 1, class 0's row 0, and the rows carry the spec's names (which may rename the json's)."""
    spec = write_synthetic_coco(tmp_path)
    spec.write_text(spec.read_text() + "names: [first, third]\n")
    split = read_split(spec, "val")
    assert split.names == ["first", "third"]

    class OnlyClassOne(OraclePredictor):
        def predict_images(self, images):
            return [Detections(d.boxes[d.labels == 1], d.scores[d.labels == 1], d.labels[d.labels == 1])
                    for d in super().predict_images(images)]

    rows = evaluate(OnlyClassOne(split), split, progress=False)["per_class"]
    assert [(r["class"], r["instances"], r["AP"]) for r in rows] == [("first", 1, 0.0), ("third", 2, 1.0)]


def test_per_class_ap(tmp_path) -> None:
    """A class found perfectly scores 1, a class missed 0, a class with no boxes -1; the overall
    AP is the mean over the classes that have boxes, as COCO defines it."""
    split = read_split(write_synthetic_coco(tmp_path), "val")
    split.coco_gt = None
    gt = coco_gt_from_split(split)
    gt["categories"].append({"id": 3, "name": "never"})
    by_cat = {c: [a for a in gt["annotations"] if a["category_id"] == c] for c in (1, 2)}
    assert all(by_cat.values())
    res = [{"image_id": a["image_id"], "category_id": 1, "bbox": a["bbox"], "score": 0.9} for a in by_cat[1]]
    stats, per_class = coco_scores(gt, res)
    assert [(r["class"], r["instances"], r["AP"], r["AP50"]) for r in per_class] == [
        (gt["categories"][0]["name"], len(by_cat[1]), 1.0, 1.0), (gt["categories"][1]["name"], len(by_cat[2]), 0.0, 0.0),
        ("never", 0, -1.0, -1.0)]
    assert stats["AP"] == pytest.approx(0.5)
    assert [r["detections"] for r in per_class] == [len(by_cat[1]), 0, 0]
    lines = per_class_lines(per_class)  # worst first; the class neither labelled nor predicted left out
    assert lines[1].split()[0] == gt["categories"][1]["name"] and len(lines) == 4
    assert lines[-1] == "  (1 class neither labelled nor predicted here left out of this table)"
    assert [r["AP"] for r in coco_scores(gt, [])[1]] == [0.0, 0.0, -1.0]


def test_the_per_class_table_leaves_out_classes_neither_labelled_nor_predicted(tmp_path) -> None:
    """COCO-format data with a small val split listed all 80 classes, 48 of them '-' with no
    boxes; --confusion already left those out. A class predicted but not labelled stays (its
    boxes are all false alarms), and every class stays in the record (--json)."""
    split = read_split(write_synthetic_coco(tmp_path), "val")
    split.coco_gt = None
    gt = coco_gt_from_split(split)
    gt["categories"] += [{"id": 3, "name": "ghost"}, {"id": 4, "name": "unseen"}, {"id": 5, "name": "absent"}]
    res = [{"image_id": a["image_id"], "category_id": a["category_id"], "bbox": a["bbox"], "score": 0.9}
           for a in gt["annotations"]]
    res.append({**res[0], "category_id": 3})  # a box of a class the split has no label of
    _, per_class = coco_scores(gt, res)
    assert [r["class"] for r in per_class][2:] == ["ghost", "unseen", "absent"]  # the record keeps them all
    lines = per_class_lines(per_class)
    assert [line.split()[0] for line in lines[1:-1]][-1] == "ghost" and len(lines) == 1 + 3 + 1
    assert lines[-1] == "  (2 classes neither labelled nor predicted here left out of this table)"
    assert not any("unseen" in line or "absent" in line for line in lines)
    old = [{k: v for k, v in r.items() if k != "detections"} for r in per_class]  # a record from before
    assert len(per_class_lines(old)) == 1 + 5 and "left out" not in per_class_lines(old)[-1]
    assert "left out" not in per_class_lines(coco_scores(gt, res)[1][:3])[-1]


# ------------------------------------------------------------------ official reference
def official_reference_ap(onnx_path: Path, coco_root: Path, size: int = 416) -> float:
    """AP of the official ONNX with the official YOLOX val pipeline (preproc, postprocess,
    COCOEvaluator.convert_to_coco_format), written from the official code's rules."""
    import onnxruntime as ort
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO(str(coco_root / "annotations" / "instances_val2017.json"))
    cat_ids = sorted(coco.getCatIds())
    grids, strides = [], []
    for s in (8, 16, 32):
        n = size // s
        ys, xs = np.mgrid[0:n, 0:n]
        grids.append(np.stack([xs.ravel(), ys.ravel()], 1))
        strides.append(np.full((n * n, 1), s))
    grid, stride = np.concatenate(grids).astype(np.float32), np.concatenate(strides).astype(np.float32)
    results = []
    for img_id in coco.getImgIds():
        info = coco.loadImgs(img_id)[0]
        img = cv2.imread(str(coco_root / "val2017" / info["file_name"]))
        h, w = img.shape[:2]
        # official preproc: top-left letterbox, pad 114, BGR, 0..255
        r = min(size / h, size / w)
        padded = np.full((size, size, 3), 114, np.uint8)
        padded[:int(h * r), :int(w * r)] = cv2.resize(img, (int(w * r), int(h * r)), interpolation=cv2.INTER_LINEAR)
        x = np.ascontiguousarray(padded.transpose(2, 0, 1)[None], dtype=np.float32)
        out = sess.run(None, {"images": x})[0][0]
        # decode (official demo_postprocess): obj/cls are already sigmoid-ed in the export
        cxcy = (out[:, :2] + grid) * stride
        wh = np.exp(out[:, 2:4]) * stride
        xyxy = np.concatenate([cxcy - wh / 2, cxcy + wh / 2], 1)
        cls_conf, cls_pred = out[:, 5:].max(1), out[:, 5:].argmax(1)
        score = out[:, 4] * cls_conf
        m = score >= 0.001
        xyxy, score, cls_pred = xyxy[m], score[m], cls_pred[m]
        # batched_nms(iou 0.65): greedy NMS within each class separately
        keep = []
        for c in np.unique(cls_pred):
            idx = np.flatnonzero(cls_pred == c)
            rects = [[float(a), float(b), float(cc - a), float(d - b)] for a, b, cc, d in xyxy[idx]]
            kept = cv2.dnn.NMSBoxes(rects, score[idx].tolist(), 0.0, 0.65)
            keep.extend(idx[np.asarray(kept, int).reshape(-1)])
        for i in keep:
            x1, y1, x2, y2 = (xyxy[i] / r).tolist()  # the official evaluator does not clip
            results.append({"image_id": img_id, "category_id": cat_ids[int(cls_pred[i])],
                            "bbox": [x1, y1, x2 - x1, y2 - y1], "score": float(score[i])})
    with contextlib.redirect_stdout(io.StringIO()):
        ev = COCOeval(coco, coco.loadRes(results), "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return float(ev.stats[0])


@pytest.mark.refdata
@pytest.mark.slow
def test_eval_equals_official_ap_on_coco_tiny(refdata, nano_coco_ckpt, run_cli, tmp_path) -> None:
    out_json = tmp_path / "eval.json"
    code, out, err = run_cli("eval", nano_coco_ckpt, "--data", refdata / "coco_tiny" / "data.yaml",
                             "--json", out_json)
    assert code == 0, err
    ours = json.loads(out_json.read_text())
    assert ours["images"] == 80 and ours["skipped"] == 0 and ours["input_size"] == [416, 416]
    ref = official_reference_ap(refdata / "models" / "yolox_nano.onnx", refdata / "coco_tiny")
    print(f"coco_tiny val AP: yolox-edge eval {ours['AP']:.4f}, official ONNX + official postprocess {ref:.4f}")
    assert ref > 0.2  # a working detector: the comparison is not between two zeros
    assert ours["AP"] == pytest.approx(ref, abs=0.002)
    # per class: 80 rows whose mean is the AP (COCO's definition), printed worst first
    per_class = ours["per_class"]
    assert len(per_class) == 80 and per_class[0]["class"] == "person"
    assert np.mean([r["AP"] for r in per_class if r["AP"] >= 0]) == pytest.approx(ours["AP"], abs=1e-5)
    assert sum(r["instances"] for r in per_class) > 500
    worst = min(per_class, key=lambda r: r["AP"] if r["AP"] >= 0 else 2)
    assert out.splitlines()[3].split()[0] == worst["class"].split()[0], out


def test_eval_save_dir_inside_the_datas_images_is_refused_before_any_work(tmp_path, run_cli) -> None:
    """--save-dir data/imgs wrote 00001_*.jpg beside the val images: they became background images
    of the split (data check counted them, every later AP with them)."""
    from yolox_edge.engine import save_checkpoint
    from yolox_edge.models import create_model

    spec = write_synthetic_coco(tmp_path / "data")
    ckpt = save_checkpoint(tmp_path / "m.pt", create_model("test", num_classes=2), class_names=["cat1", "cat3"])
    before = sorted(p.name for p in (tmp_path / "data" / "imgs").iterdir())
    for target in (tmp_path / "data" / "imgs", tmp_path / "data" / "imgs" / "drawn"):
        code, _, err = run_cli("eval", ckpt, "--data", spec, "--save-dir", target)
        assert code == 2 and len(err.strip().splitlines()) == 1, err
        assert f"{target}: --save-dir (save_dir= in Python) lies in" in err and "a folder of the data spec" in err, err
    assert sorted(p.name for p in (tmp_path / "data" / "imgs").iterdir()) == before


def test_eval_save_dir_draws_labels_and_boxes(tmp_path, run_cli) -> None:
    """Each val image written in split order, its labelled boxes drawn white (the synthetic
    images are flat grey, so a white pixel on a label's corner is the drawing); AP unchanged."""
    from yolox_edge.engine import save_checkpoint
    from yolox_edge.models import create_model

    spec = write_synthetic_coco(tmp_path / "data")
    ckpt = save_checkpoint(tmp_path / "m.pt", create_model("test", num_classes=2), class_names=["cat1", "cat3"])
    code, out, err = run_cli("eval", str(ckpt), "--data", str(spec), "--json", str(tmp_path / "a.json"))
    assert code == 0, err
    code, out, err = run_cli("eval", str(ckpt), "--data", str(spec), "--save-dir", str(tmp_path / "vis"),
                             "--json", str(tmp_path / "b.json"))
    assert code == 0, err
    assert "3 annotated image(s) -> " in out
    written = sorted(p.name for p in (tmp_path / "vis").iterdir())
    assert written == ["00000_1.jpg", "00001_2.jpg", "00002_3.jpg"]
    img = cv2.imread(str(tmp_path / "vis" / "00001_2.jpg"))
    assert img.shape == (48, 64, 3) and (img[10, 30] > 200).all() and img[30, 20].max() < 200  # a corner; grey
    a, b = (json.loads((tmp_path / n).read_text()) for n in ("a.json", "b.json"))
    assert a["AP"] == b["AP"]
    (tmp_path / "file").write_text("x")
    code, _out, err = run_cli("eval", str(ckpt), "--data", str(spec), "--save-dir", str(tmp_path / "file" / "vis"))
    assert code == 2 and "choose another --save-dir (save_dir= in Python)" in err, err


def test_eval_save_conf_draws_only_the_boxes_scoring_at_least_it(tmp_path, run_cli, monkeypatch,
                                                                 randomize_model) -> None:
    """``--save-conf`` filters what is drawn, not what is scored: each image gets exactly the
    boxes the evaluation found there at or above the threshold (AP the same)."""
    from yolox_edge import visualize
    from yolox_edge.engine import save_checkpoint
    from yolox_edge.models import create_model

    spec = write_synthetic_coco(tmp_path / "data")
    model = randomize_model(create_model("test", num_classes=2), seed=2)
    ckpt = save_checkpoint(tmp_path / "m.pt", model, class_names=["cat1", "cat3"])
    drawn: list[np.ndarray] = []
    real = visualize.draw_detections

    def spy(img, det, **kw):
        drawn.append(np.sort(det.scores))
        return real(img, det, **kw)

    monkeypatch.setattr(visualize, "draw_detections", spy)
    runs = {}
    for conf in ("0", None):
        drawn.clear()
        if conf is None:  # a threshold inside the scores of the first run
            conf = f"{float(np.median(np.concatenate(runs['0'][0]))):.4f}"
        code, _, err = run_cli("eval", str(ckpt), "--data", str(spec), "--save-dir", str(tmp_path / f"vis{conf}"),
                               "--save-conf", conf, "--json", str(tmp_path / f"{conf}.json"))
        assert code == 0, err
        runs[conf] = (list(drawn), json.loads((tmp_path / f"{conf}.json").read_text())["AP"])
    (every, ap0), (shown, ap) = runs.values()
    t = float(list(runs)[1])
    assert len(every) == len(shown) == 3 and sum(map(len, every)) > 2
    assert 0 < sum(map(len, shown)) < sum(map(len, every))
    for a, b in zip(every, shown):
        assert np.array_equal(b, a[a >= t])
    assert ap == ap0
    code, _, err = run_cli("eval", str(ckpt), "--data", str(spec), "--save-dir", str(tmp_path / "v"),
                           "--save-conf", "1.5")
    assert code == 2 and "--save-conf" in err, err


def _folder_flushes(fsync_log, folder: Path) -> int:
    st = folder.stat()
    return sum(1 for e in fsync_log.events if e[0] == "sync" and e[1] == (st.st_dev, st.st_ino))


def test_eval_save_dir_flushes_each_image_and_the_folder_once(tmp_path, fsync_log) -> None:
    """Each image is flushed before its rename (never half a file under its name), the folder
    once after the last one: a flush of the folder per image doubled the flushes."""
    from yolox_edge.engine import evaluate_model, save_checkpoint
    from yolox_edge.models import create_model

    spec = write_synthetic_coco(tmp_path / "data")
    ckpt = save_checkpoint(tmp_path / "m.pt", create_model("test", num_classes=2), class_names=["cat1", "cat3"])
    vis = tmp_path / "vis"
    fsync_log.events.clear()
    evaluate_model(ckpt, data=spec, save_dir=vis, batch=1, progress=False, log=None)
    images = sorted(vis.iterdir())
    assert [p.name for p in images] == ["00000_1.jpg", "00001_2.jpg", "00002_3.jpg"]
    last = max(fsync_log.assert_durable(p) for p in images)  # each flushed before its rename, the folder after
    assert _folder_flushes(fsync_log, vis) == 1, fsync_log.events
    assert fsync_log.synced(vis, last + 1), fsync_log.events


@pytest.mark.parametrize("stop", [KeyboardInterrupt, OSError])
def test_a_stopped_eval_save_dir_still_flushes_its_folder(tmp_path, fsync_log, monkeypatch, stop) -> None:
    """Ctrl-C (SIGTERM is one to eval: ``cli.signals.Terminated``) or an error after two images:
    those two are on disk, names and all, when evaluate_model raises."""
    from yolox_edge.engine import evaluate_model, save_checkpoint
    from yolox_edge.models import create_model
    from yolox_edge.runtime.predictor import Predictor

    spec = write_synthetic_coco(tmp_path / "data")
    ckpt = save_checkpoint(tmp_path / "m.pt", create_model("test", num_classes=2), class_names=["cat1", "cat3"])
    real, calls = Predictor.predict_images, []

    def third_stops(self, images):
        calls.append(1)
        if len(calls) == 3:
            raise stop("stopped at the third image")
        return real(self, images)

    monkeypatch.setattr(Predictor, "predict_images", third_stops)
    vis, saved = tmp_path / "vis", []
    fsync_log.events.clear()
    with pytest.raises(stop):
        evaluate_model(ckpt, data=spec, save_dir=vis, batch=1, progress=False, log=None, saved=saved)
    assert [p.name for p in saved] == ["00000_1.jpg", "00001_2.jpg"] == sorted(p.name for p in vis.iterdir())
    for p in saved:
        fsync_log.assert_durable(p)
    assert _folder_flushes(fsync_log, vis) == 1, fsync_log.events


def test_class_names_note_is_shared_by_eval_and_quantize_report():
    from yolox_edge.engine.evaluator import class_names_note

    assert class_names_note(["a", "b"], ["a", "b"]) == ""
    note = class_names_note(["person", "bicycle", "car", "bus", "cat"], ["bicycle", "person", "car", "bus", "cat"])
    assert note.startswith("note: the model's classes (person, bicycle, car, bus and 1 more) are not the data's "
                           "(bicycle, person, car, bus and 1 more)")


def test_evaluate_names_the_data_spec_it_was_given(tmp_path) -> None:
    spec = write_synthetic_coco(tmp_path)
    pred = OraclePredictor(read_split(spec, "val"))
    pred.class_names = ["only_one"]
    with pytest.raises(UserError, match=f"has 1 classes, but {spec} has 2"):
        evaluate(pred, spec, progress=False)


def test_evaluate_model_is_what_eval_json_writes(tmp_path, run_cli, capsys) -> None:
    """`eval` as one library call (the CLI loaded, resized, checked and recorded by itself): the
    record equals `eval --json`, and a class-name mismatch is a line to ``log``, by default printed."""
    from yolox_edge.engine import evaluate_model, save_checkpoint
    from yolox_edge.models import create_model

    spec = write_synthetic_coco(tmp_path / "data")
    ckpt = save_checkpoint(tmp_path / "m.pt", create_model("test", num_classes=2), class_names=["a", "b"])
    notes: list[str] = []
    rec = evaluate_model(str(ckpt), data=spec, img_size=96, progress=False, log=notes.append)
    assert rec["model"] == str(ckpt) and rec["data"] == str(spec) and rec["input_size"] == [96, 96]
    assert len(notes) == 1 and "not the data's" in notes[0]
    code, _, err = run_cli("eval", str(ckpt), "--data", str(spec), "--img-size", "96", "--json", str(tmp_path / "e.json"))
    assert code == 0 and notes[0] in err
    cli = json.loads((tmp_path / "e.json").read_text())
    assert {k: v for k, v in cli.items() if k != "seconds"} == {k: v for k, v in rec.items() if k != "seconds"}
    capsys.readouterr()
    evaluate_model(ckpt, data=spec, progress=False)
    assert "not the data's" in capsys.readouterr().out
    evaluate_model(ckpt, data=spec, progress=False, log=None)
    assert capsys.readouterr() == ("", "")
    with pytest.warns(DeprecationWarning, match=r"evaluate_model\(note=\) is deprecated; pass log=\.\.\."):
        evaluate_model(ckpt, data=spec, progress=False, note=notes.append)
    assert len(notes) == 2 and notes[1] == notes[0]
    with pytest.raises(TypeError, match="note= and log="):
        evaluate_model(ckpt, data=spec, note=notes.append, log=notes.append)
    with pytest.raises(UserError, match=r"m.pt: --img-size 100 \(img_size=100 in Python\)"):
        evaluate_model(ckpt, data=spec, img_size=100, progress=False)


def test_eval_at_a_rectangular_size(tmp_path, run_cli) -> None:
    """eval --img-size WxH runs a checkpoint (any size) at W x H; a static export at another size is refused."""
    from yolox_edge.engine import evaluate_model, save_checkpoint
    from yolox_edge.export import export_model
    from yolox_edge.models import create_model

    spec = write_synthetic_coco(tmp_path / "data")
    ckpt = save_checkpoint(tmp_path / "m.pt", create_model("test", num_classes=2), class_names=["a", "b"])
    code, _, err = run_cli("eval", str(ckpt), "--data", str(spec), "--img-size", "96x64", "--json", str(tmp_path / "e.json"))
    assert code == 0, err
    assert json.loads((tmp_path / "e.json").read_text())["input_size"] == [64, 96]
    static = export_model(ckpt, format="onnx", out=tmp_path / "x", img_size=(64, 96)).directory
    assert evaluate_model(static, data=spec, progress=False, log=None)["input_size"] == [64, 96]
    with pytest.raises(UserError, match=r"fixed input 96x64 \(width x height\); re-export it with --img-size 64x96 "
                                        r"\(img_size=\(96, 64\) in Python\)"):
        evaluate_model(static, data=spec, img_size=(96, 64), progress=False, log=None)
    square = export_model(ckpt, format="onnx", out=tmp_path / "sq", img_size=64).directory  # both sides written out
    with pytest.raises(UserError, match=r"fixed input 64x64 \(width x height\); re-export it with --img-size 64x96 "
                                        r"\(img_size=\(96, 64\) in Python\)"):
        evaluate_model(square, data=spec, img_size=(96, 64), progress=False, log=None)
    with pytest.raises(UserError, match=r"m.pt: --img-size 96x40 \(img_size=\(40, 96\) in Python\): .* the nearest "
                                        r"that is: 96x32"):
        evaluate_model(ckpt, data=spec, img_size=(40, 96), progress=False)


def test_coco_results_with_nan_or_infinity_are_left_out_of_the_file(tmp_path) -> None:
    """A NaN score or an infinite box was written as NaN / Infinity: not JSON, refused by the COCO
    server and by strict parsers."""
    from yolox_edge.engine.evaluator import write_coco_results

    def strict(name):
        raise ValueError(f"{name} in the file")

    good = {"image_id": 1, "category_id": 1, "bbox": [1.0, 2.0, 3.0, 4.0], "score": 0.5}
    results = [good, {**good, "score": float("nan")}, {**good, "bbox": [1.0, float("inf"), 3.0, 4.0]}]
    assert write_coco_results(results, tmp_path / "r.json") == 2
    assert json.loads((tmp_path / "r.json").read_text(), parse_constant=strict) == [good]
    assert write_coco_results([good], tmp_path / "r.json") == 0
