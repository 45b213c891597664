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


def write_data(root: Path, image_ids: dict[int, int] | None = None, category_ids: dict[int, int] | None = None) -> Path:
    """The COCO set of LABELS; ``image_ids``/``category_ids`` renumber the json's ids (the image
    files keep their grey levels and names, the classes their order a, b)."""
    image_ids, category_ids = image_ids or {i: i for i in LABELS}, category_ids or {1: 1, 2: 2}
    (root / "imgs").mkdir(parents=True)
    images, anns = [], []
    for iid, labels in LABELS.items():
        cv2.imwrite(str(root / "imgs" / f"{iid}.png"), np.full((48, 64, 3), 60 * iid, np.uint8))
        images.append({"id": image_ids[iid], "file_name": f"{iid}.png", "width": 64, "height": 48})
        for cat, (x, y, w, h), crowd in labels:
            anns.append({"id": len(anns) + 1, "image_id": image_ids[iid], "category_id": category_ids[cat],
                         "bbox": [x, y, w, h], "area": w * h, "iscrowd": crowd})
    gt = {"images": images, "annotations": anns,
          "categories": [{"id": category_ids[1], "name": "a"}, {"id": category_ids[2], "name": "b"}]}
    (root / "gt.json").write_text(json.dumps(gt))
    (root / "data.yaml").write_text("format: coco\nval: {annotations: gt.json, images: imgs}\n")
    return root / "data.yaml"


def write_yolo_images(root: Path) -> Path:
    """LABELS as a YOLO-txt folder pair (images/, labels/) under ``root``; returns ``root``."""
    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir()
    for iid, labels in LABELS.items():
        cv2.imwrite(str(root / "images" / f"{iid}.png"), np.full((48, 64, 3), 60 * iid, np.uint8))
        (root / "labels" / f"{iid}.txt").write_text("".join(
            f"{cat - 1} {(x + w / 2) / 64} {(y + h / 2) / 48} {w / 64} {h / 48}\n" for cat, (x, y, w, h), _ in labels))
    return root


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
    rec = evaluate_model(ckpt, data=spec, progress=False, log=None, confusion=True)
    assert rec["confusion"] == json.loads((tmp_path / "e.json").read_text())["confusion"]
    assert "confusion" not in evaluate_model(ckpt, data=spec, progress=False, log=None)
    high = evaluate_model(ckpt, data=spec, progress=False, log=None, confusion_conf=0.85)["confusion"]
    assert high["conf"] == 0.85 and high["matrix"] == [[1, 0, 1], [0, 0, 1], [0, 0, 0]]
    loader = runtime.load_predictor

    def as_a_bundle(*args, **kw):  # a bundle packaged with --conf 0.6
        pred = loader(*args, **kw)
        pred.conf = 0.6
        return pred

    monkeypatch.setattr(runtime, "load_predictor", as_a_bundle)
    bundled = evaluate_model(ckpt, data=spec, progress=False, log=None, confusion=True)["confusion"]
    assert bundled["conf"] == 0.6 and bundled["best"]["app_conf"] == 0.6
    assert bundled["matrix"] == [[1, 0, 1], [1, 0, 0], [0, 0, 0]]  # the 0.5 false alarm is below it


def test_confusion_per_class_rows_carry_the_category_id_as_evals_do(setup, run_cli, tmp_path) -> None:
    """eval's own per_class rows had each COCO category_id, the confusion's rows had none; YOLO
    data (no ids) still has none in either."""
    ckpt, _ = setup
    spec = write_data(tmp_path / "renumbered", category_ids={1: 5, 2: 9})
    out_json = tmp_path / "e.json"
    code, _, err = run_cli("eval", ckpt, "--data", spec, "--confusion", "--json", out_json)
    assert code == 0, err
    rec = json.loads(out_json.read_text())
    assert [(r["class"], r["category_id"]) for r in rec["per_class"]] == [("a", 5), ("b", 9)]
    assert [(r["class"], r["category_id"]) for r in rec["confusion"]["per_class"]] == [("a", 5), ("b", 9)]
    assert list(rec["confusion"]["per_class"][0])[:2] == ["class", "category_id"]  # as in eval's rows
    from yolox_edge.engine.confusion import ConfusionCounter

    assert "category_id" not in ConfusionCounter(2).summary(["a", "b"], 0.3)["per_class"][0]


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


# --coco-results: the json's ids renumbered away from positions, so a file using positions fails
IMAGE_IDS, CATEGORY_IDS = {1: 101, 2: 57, 3: 230}, {1: 3, 2: 7}


def pycocotools_ap(gt_json: Path, results_json: Path) -> float:
    """AP of a results file against a ground-truth json, scored by pycocotools alone."""
    import contextlib
    import io

    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO(str(gt_json))
        ev = COCOeval(coco, coco.loadRes(str(results_json)), "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return float(ev.stats[0])


@pytest.mark.parametrize("form", ["checkpoint", "onnx"])
def test_eval_coco_results_give_evals_ap_in_pycocotools(setup, run_cli, tmp_path, form) -> None:
    """The file holds the detections eval scored with the json's own image and category ids (not
    positions), and nothing pycocotools added while scoring, so pycocotools on it with the val
    json gives the AP eval printed; an export writes it as a checkpoint does."""
    ckpt, _ = setup
    spec = write_data(tmp_path / "ids", IMAGE_IDS, CATEGORY_IDS)
    model = ckpt
    if form == "onnx":
        from yolox_edge.export import export_model

        model = export_model(ckpt, format="onnx", out=tmp_path / "x", img_size=64).directory
    res_file, rec_file = tmp_path / "out" / "results.json", tmp_path / "e.json"
    code, out, err = run_cli("eval", model, "--data", spec, "--coco-results", res_file, "--json", rec_file)
    assert code == 0, err
    results, rec = json.loads(res_file.read_text()), json.loads(rec_file.read_text())
    assert len(results) == rec["detections"] == 5
    assert all(set(r) == {"image_id", "category_id", "bbox", "score"} for r in results)
    assert sorted({r["image_id"] for r in results}) == [57, 101, 230] and {r["category_id"] for r in results} == {3, 7}
    assert next(r for r in results if r["image_id"] == 101) == {"image_id": 101, "category_id": 3,
                                                                "bbox": [4.0, 4.0, 16.0, 12.0],
                                                                "score": pytest.approx(0.9)}
    assert 0.1 < rec["AP"] < 0.9 and pycocotools_ap(spec.parent / "gt.json", res_file) == pytest.approx(rec["AP"],
                                                                                                         abs=1e-12)
    assert rec["coco_results"] == {"file": str(res_file), "ids": "json"}
    assert [(r["class"], r["category_id"]) for r in rec["per_class"]] == [("a", 3), ("b", 7)]
    assert f"5 detection(s) as COCO results -> {res_file} (image_id and category_id: the split's json's)" in out
    assert "category ids" not in err  # the checkpoint has none: nothing to compare


def test_eval_coco_results_of_yolo_data_use_the_built_ids(setup, run_cli, tmp_path) -> None:
    """YOLO data has no ids: the file uses the ground truth eval builds (image_id the image's number
    in the split, category_id class index + 1), said on the line naming the file; pycocotools on it
    with that ground truth gives eval's AP."""
    from yolox_edge.data.spec import read_split
    from yolox_edge.engine.evaluator import coco_gt_from_split

    ckpt, _ = setup
    root = write_yolo_images(tmp_path / "yolo")
    spec = root / "data.yaml"
    spec.write_text("format: yolo\nnames: [a, b]\nval: {images: images, labels: labels}\n")
    res_file, rec_file = tmp_path / "results.json", tmp_path / "e.json"
    code, out, err = run_cli("eval", ckpt, "--data", spec, "--coco-results", res_file, "--json", rec_file)
    assert code == 0, err
    results, rec = json.loads(res_file.read_text()), json.loads(rec_file.read_text())
    assert {r["image_id"] for r in results} == {1, 2, 3} and {r["category_id"] for r in results} == {1, 2}
    assert rec["coco_results"]["ids"] == "built" and all("category_id" not in r for r in rec["per_class"])
    assert ("this data has no ids of its own, so image_id is the image's number in the split as read (1 to 3, in "
            "file-name order or the list file's) and category_id the class index + 1 (a 1, b 2)") in out
    (tmp_path / "gt.json").write_text(json.dumps(coco_gt_from_split(read_split(spec, "val"))))
    assert pycocotools_ap(tmp_path / "gt.json", res_file) == pytest.approx(rec["AP"], abs=1e-12) and rec["AP"] > 0.1


def test_eval_says_once_when_the_models_category_ids_are_not_the_datas(setup, run_cli, tmp_path) -> None:
    """A model trained on another id mapping (ids 1, 2 where the val json has 3, 7) is scored by
    position: a note says so; the same ids, or a model without any, say nothing."""
    from yolox_edge.engine import evaluate_model, save_checkpoint
    from yolox_edge.models import create_model

    spec = write_data(tmp_path / "ids", IMAGE_IDS, CATEGORY_IDS)
    model = create_model("test", num_classes=2)
    other = save_checkpoint(tmp_path / "other.pt", model, class_names=["a", "b"], category_ids=[1, 2])
    code, _, err = run_cli("eval", other, "--data", spec)
    assert code == 0, err
    assert [line for line in err.splitlines() if "category ids" in line] == [
        "note: the model's category ids (1, 2) are not the data's (3, 7); AP pairs classes by position (class i "
        "with the data's i-th id in sorted order), so if the model was trained on another id mapping its AP may "
        "mean nothing"]
    notes: list[str] = []
    evaluate_model(other, data=spec, progress=False, log=notes.append)
    assert len(notes) == 1 and notes[0].startswith("note: the model's category ids (1, 2)")
    same = save_checkpoint(tmp_path / "same.pt", model, class_names=["a", "b"], category_ids=[3, 7])
    evaluate_model(same, data=spec, progress=False, log=notes.append)
    assert len(notes) == 1


def test_eval_coco_results_bad_paths_are_one_line_before_the_evaluation(setup, run_cli, tmp_path,
                                                                          monkeypatch) -> None:
    from yolox_edge.engine import evaluator

    def never(*args, **kw):
        raise AssertionError("evaluated before the output path was checked")

    ckpt, spec = setup
    monkeypatch.setattr(evaluator, "evaluate", never)
    code, _, err = run_cli("eval", ckpt, "--data", spec, "--coco-results", tmp_path / "r.txt")
    assert code == 2 and "expected a file name ending in .json, not" in err, err
    (tmp_path / "f").write_text("x")
    code, _, err = run_cli("eval", ckpt, "--data", spec, "--coco-results", tmp_path / "f" / "r.json")
    assert code == 2 and "choose another path for the COCO results" in err, err
    code, _, err = run_cli("eval", ckpt, "--data", spec, "--coco-results", tmp_path / "same.json",
                           "--json", tmp_path / "same.json")
    assert code == 2 and "named by both --coco-results and --json" in err, err
    assert not (tmp_path / "same.json").exists()
    # the split's own annotation json: the results (or the built ground truth) would replace the labels
    labels = (spec.parent / "gt.json").read_bytes()
    for flag in ("--coco-results", "--coco-gt"):
        code, _, err = run_cli("eval", ckpt, "--data", spec, flag, spec.parent / "gt.json")
        assert code == 2 and f"{flag} names a file of the data spec" in err, err
    assert (spec.parent / "gt.json").read_bytes() == labels


def test_eval_coco_gt_writes_the_built_ground_truth_that_gives_evals_ap(setup, run_cli, tmp_path) -> None:
    """--coco-results on YOLO data used the ids of a ground truth eval built and never wrote:
    --coco-gt writes it as scored (an unreadable image and its boxes left out, as from the score),
    and pycocotools on the two files alone gives eval's AP."""
    from yolox_edge.engine import evaluate_model

    ckpt, _ = setup
    root = write_yolo_images(tmp_path / "yolo")
    noise = np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    cut = cv2.imencode(".jpg", noise)[1].tobytes()
    (root / "images" / "4.jpg").write_bytes(cut[:-500])  # cut short: its header reads, eval skips it, not scored
    (root / "labels" / "4.txt").write_text("0 0.5 0.5 0.2 0.2\n")
    spec = root / "data.yaml"
    spec.write_text("format: yolo\nnames: [a, b]\nval: {images: images, labels: labels}\n")
    res_file, gt_file, rec_file = tmp_path / "results.json", tmp_path / "out" / "gt.json", tmp_path / "e.json"
    code, out, err = run_cli("eval", ckpt, "--data", spec, "--coco-results", res_file, "--coco-gt", gt_file,
                             "--json", rec_file)
    assert code == 0, err
    gt, rec = json.loads(gt_file.read_text()), json.loads(rec_file.read_text())
    assert [im["file_name"] for im in gt["images"]] == ["1.png", "2.png", "3.png"] and len(gt["annotations"]) == 4
    assert gt["categories"] == [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}]
    assert rec["coco_gt"] == {"file": str(gt_file), "images": 3, "annotations": 4} and rec["skipped"] == 1
    assert pycocotools_ap(gt_file, res_file) == pytest.approx(rec["AP"], abs=1e-12) and rec["AP"] > 0.1
    assert (f"ground truth as scored (3 images, 4 boxes) -> {gt_file} (the ids of --coco-results: pycocotools on "
            "the two files gives this AP)") in out
    again = tmp_path / "again.json"  # the Python keyword beside coco_results=
    record = evaluate_model(ckpt, data=spec, progress=False, log=None, coco_gt=again)
    assert json.loads(again.read_text()) == gt and record["coco_gt"]["file"] == str(again)
    code, _, err = run_cli("eval", ckpt, "--data", spec, "--coco-results", res_file, "--coco-gt", res_file)
    assert code == 2 and "named by both --coco-results and --coco-gt" in err, err


def test_eval_coco_gt_is_strict_json_where_the_users_json_holds_nan(setup, run_cli, tmp_path) -> None:
    """A NaN in the user's json (Python's json reads it) was copied into --coco-gt as NaN, which
    is not JSON: a NaN area is taken as w * h (as a missing one), a NaN no box is scored from is
    written as null with a note, and pycocotools on the two files still gives eval's AP."""
    ckpt, _ = setup
    spec = write_data(tmp_path / "nan")
    gt = json.loads((spec.parent / "gt.json").read_text())
    gt["annotations"][0]["area"] = float("nan")
    gt["annotations"][1]["segmentation"] = [[1.0, float("inf"), 3.0, 4.0]]
    gt["images"][0]["width"] = float("nan")
    (spec.parent / "gt.json").write_text(json.dumps(gt))
    res_file, gt_file, rec_file = tmp_path / "r.json", tmp_path / "g.json", tmp_path / "e.json"
    code, _, err = run_cli("eval", ckpt, "--data", spec, "--coco-results", res_file, "--coco-gt", gt_file,
                           "--json", rec_file)
    assert code == 0, err

    def refuse(constant):
        raise AssertionError(f"{constant} in {gt_file}")

    written = json.loads(gt_file.read_text(), parse_constant=refuse)
    assert written["annotations"][0]["area"] == 16 * 12 and written["images"][0]["width"] is None
    assert written["annotations"][1]["segmentation"] == [[1.0, None, 3.0, 4.0]]
    rec = json.loads(rec_file.read_text())
    assert rec["coco_gt"]["nulled"] == ["image 1 width", "annotation 2 segmentation"]
    assert (f"note: 2 NaN or infinite number(s) of the ground truth (image 1 width, annotation 2 segmentation) "
            f"written as null in {gt_file}") in err, err
    assert pycocotools_ap(gt_file, res_file) == pytest.approx(rec["AP"], abs=1e-12)


def test_eval_notes_annotations_scored_with_w_h_for_their_area(setup, run_cli, tmp_path) -> None:
    """A NaN, missing or negative area in the json was taken as w * h (a negative one kept, and
    pycocotools then ignored the box in every area range, 'all' too) without a word: APs, APm and
    APl changed silently. One note names the json, how many and what area was used, with or
    without --coco-gt, and the scores are those of the json with w * h written in."""
    ckpt, clean = setup
    spec = write_data(tmp_path / "area")
    gt = json.loads((spec.parent / "gt.json").read_text())
    gt["annotations"][0]["area"] = float("nan")
    del gt["annotations"][1]["area"]
    gt["annotations"][2]["area"] = -5.0
    (spec.parent / "gt.json").write_text(json.dumps(gt))
    code, _, err = run_cli("eval", ckpt, "--data", clean, "--json", tmp_path / "clean.json")
    assert code == 0 and "usable area" not in err, err
    expected = json.loads((tmp_path / "clean.json").read_text())
    assert "area_taken" not in expected
    note = (f"note: 3 annotation(s) of {spec.parent / 'gt.json'} (annotation 1, annotation 2, annotation 3) have no "
            "usable area (missing, NaN, infinite or negative): scored with their box's w * h instead, which decides "
            "whether APs, APm and APl count them")
    for extra in ([], ["--coco-gt", tmp_path / "g.json"]):
        code, _, err = run_cli("eval", ckpt, "--data", spec, "--json", tmp_path / "e.json", *extra)
        assert code == 0, err
        assert err.count(note) == 1 and err.count("usable area") == 1, err
        rec = json.loads((tmp_path / "e.json").read_text())
        assert {k: rec[k] for k in ("AP", "AP50", "APs", "APm", "APl")} == \
            {k: expected[k] for k in ("AP", "AP50", "APs", "APm", "APl")}
        # --json says so too, as coco_gt's nulled: APs/APm/APl read from it later are those of w * h
        assert rec["area_taken"] == {"json": str(spec.parent / "gt.json"), "count": 3,
                                     "first": ["annotation 1", "annotation 2", "annotation 3"]}


@pytest.mark.parametrize("where", ["--coco-gt", "--json", "--confusion-png"])
def test_a_stop_between_evals_writes_leaves_every_earlier_file_as_it_was(setup, run_cli, tmp_path, monkeypatch,
                                                                         request, where) -> None:
    """A Ctrl-C between eval's writes left this run's --coco-results beside an earlier run's
    --coco-gt and --json, after a bare 'interrupted': the files are now renamed into place together,
    so a stop before leaves them all as they were (no temp left), and its line says so."""
    import os
    import signal

    import yolox_edge.cli.eval as cli_eval
    import yolox_edge.engine.confusion_report as confusion_report
    import yolox_edge.engine.evaluator as evaluator

    ckpt, spec = setup
    out = tmp_path / "out"
    out.mkdir()
    files = {flag: out / name for flag, name in (("--json", "e.json"), ("--coco-results", "r.json"),
                                                 ("--coco-gt", "gt.json"), ("--confusion-png", "c.png"))}
    for path in files.values():
        path.write_text("earlier")
    args = ["eval", ckpt, "--data", spec, *(a for flag, path in files.items() for a in (flag, path))]

    def stop(*a, **k):
        if where == "--confusion-png":  # SIGTERM: systemd, docker stop, timeout
            os.kill(os.getpid(), signal.SIGTERM)
        raise KeyboardInterrupt

    def unhandled(signum, frame):  # a regression must fail the test, not end pytest
        raise AssertionError("SIGTERM reached the test's own handler")

    old = signal.signal(signal.SIGTERM, unhandled)
    request.addfinalizer(lambda: signal.signal(signal.SIGTERM, old))
    target = {"--coco-gt": (evaluator, "write_coco_gt"), "--json": (cli_eval, "write_json"),
              "--confusion-png": (confusion_report, "write_confusion_png")}[where]
    real = getattr(*target)
    monkeypatch.setattr(*target, stop)
    code, _, err = run_cli(*args)
    assert signal.getsignal(signal.SIGTERM) is unhandled  # put back after the run
    assert code == (143 if where == "--confusion-png" else 130), err
    assert all(path.read_text() == "earlier" for path in files.values())
    assert sorted(p.name for p in out.iterdir()) == ["c.png", "e.json", "gt.json", "r.json"]  # no temp left
    how = "stopped by SIGTERM" if where == "--confusion-png" else "interrupted"
    names = [str(files[f]) for f in ("--json", "--coco-results", "--coco-gt", "--confusion-png")]
    listed = f"{', '.join(names[:-1])} and {names[-1]}"
    assert (f"eval: {how}: none of {listed} was written ({listed} still hold an earlier run's, untouched): the files "
            "are written together once the evaluation is done") in err.splitlines(), err
    # stopped once they are in place, while the report is printed: all are this run's, and the line says so
    monkeypatch.setattr(*target, real)
    monkeypatch.setattr(cli_eval, "_report", stop)
    code, _, err = run_cli(*args)
    assert code in (130, 143) and not any(path.read_bytes() == b"earlier" for path in files.values()), err
    assert f"eval: {how} after its files were written: {listed} hold this run's results" in err.splitlines()


def test_an_error_in_evals_writes_leaves_every_earlier_file_as_it_was(setup, run_cli, tmp_path, monkeypatch) -> None:
    """A failure writing --coco-gt (or the plot) after --coco-results was written left the two runs' files
    side by side; now none is replaced, by eval_model in Python too."""
    import yolox_edge.engine.evaluator as evaluator
    from yolox_edge.engine import evaluate_model

    ckpt, spec = setup
    res_file, gt_file = tmp_path / "r.json", tmp_path / "gt.json"
    res_file.write_text("earlier")

    def full_disk(*a, **k):
        raise OSError(28, "No space left on device", str(gt_file))

    monkeypatch.setattr(evaluator, "write_coco_gt", full_disk)
    code, _, err = run_cli("eval", ckpt, "--data", spec, "--coco-results", res_file, "--coco-gt", gt_file)
    assert code == 2 and f"{gt_file}: No space left on device" in err, err
    assert res_file.read_text() == "earlier" and sorted(p.name for p in tmp_path.glob("*.json")) == ["r.json"]
    with pytest.raises(OSError):
        evaluate_model(ckpt, data=spec, progress=False, log=None, coco_results=res_file, coco_gt=gt_file)
    assert res_file.read_text() == "earlier" and not gt_file.exists()


@pytest.mark.parametrize("how", ["interrupted", "stopped by SIGTERM"])
def test_a_stopped_eval_says_how_many_annotated_images_save_dir_holds(setup, run_cli, tmp_path, monkeypatch, request,
                                                                      how) -> None:
    """--save-dir's images are written one by one as they are drawn, each whole (a temp renamed into
    place), not staged with --json: a stop part way said nothing of them (a bare 'interrupted'
    without --json), so the images done read as a whole run's, beside an earlier run's. The line
    now counts this run's, names the first and last, and counts the earlier run's still there."""
    import os
    import signal

    import yolox_edge.fileio as fileio

    ckpt, spec = setup
    vis = tmp_path / "vis"
    vis.mkdir()
    for name in ("00000_1.jpg", "00001_2.jpg", "00002_3.jpg", "00003_4.jpg"):  # an earlier run's, of 4 images
        (vis / name).write_bytes(b"earlier")
    real, renames = os.replace, []

    def replace(src, dst, *a, **k):
        if str(dst).endswith(".jpg"):
            renames.append(dst)
            if len(renames) == 2:  # the stop comes as the second image is about to be renamed into place
                if how == "stopped by SIGTERM":
                    os.kill(os.getpid(), signal.SIGTERM)
                raise KeyboardInterrupt
        return real(src, dst, *a, **k)

    def unhandled(signum, frame):  # a regression must fail the test, not end pytest
        raise AssertionError("SIGTERM reached the test's own handler")

    old = signal.signal(signal.SIGTERM, unhandled)
    request.addfinalizer(lambda: signal.signal(signal.SIGTERM, old))
    monkeypatch.setattr(fileio.os, "replace", replace)
    json_args = ["--json", str(tmp_path / "e.json")] if how == "stopped by SIGTERM" else []
    code, _, err = run_cli("eval", ckpt, "--data", spec, "--save-dir", vis, *json_args)
    assert code == (143 if json_args else 130), err
    assert sorted(p.name for p in vis.iterdir()) == ["00000_1.jpg", "00001_2.jpg", "00002_3.jpg", "00003_4.jpg"]
    assert cv2.imread(str(vis / "00000_1.jpg")) is not None  # this run's, whole
    assert all((vis / n).read_bytes() == b"earlier" for n in ("00001_2.jpg", "00002_3.jpg", "00003_4.jpg"))
    saved = f"1 annotated image of this run in {vis} (00000_1.jpg, each whole); 3 others there are an earlier run's"
    want = (f"eval: {how}: {tmp_path / 'e.json'} was not written; {saved}" if json_args
            else f"eval: {how}: {saved}")
    assert want in err.splitlines(), err
