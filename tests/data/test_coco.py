"""COCO reader: sorted category ids -> class indices, xywh -> xyxy, crowd flags, problems
counted, clear errors for a bad spec or annotation file; the real coco_tiny spec reads."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from yolox_edge.data.coco_names import COCO_CLASSES
from yolox_edge.data.spec import load_spec, read_split
from yolox_edge.errors import UserError


def write_coco(root: Path, gt: dict, extra: str = "") -> Path:
    (root / "ann").mkdir(parents=True, exist_ok=True)
    (root / "ann" / "val.json").write_text(json.dumps(gt))
    (root / "imgs").mkdir(exist_ok=True)
    spec = root / "data.yaml"
    spec.write_text(f"format: coco\nval: {{annotations: ann/val.json, images: imgs}}\n{extra}")
    return spec


GT = {
    "images": [{"id": 7, "file_name": "a.jpg", "width": 64, "height": 48},
               {"id": 3, "file_name": "b.jpg", "width": 32, "height": 32}],
    # Unsorted ids: class index follows the sorted ids (2 -> 0, 5 -> 1, 9 -> 2).
    "categories": [{"id": 9, "name": "nine"}, {"id": 2, "name": "two"}, {"id": 5, "name": "five"}],
    "annotations": [
        {"id": 1, "image_id": 7, "category_id": 5, "bbox": [1, 2, 10, 20], "iscrowd": 0, "area": 200},
        {"id": 2, "image_id": 7, "category_id": 9, "bbox": [0, 0, 4, 4], "iscrowd": 1, "area": 16},
        {"id": 3, "image_id": 7, "category_id": 42, "bbox": [0, 0, 4, 4], "iscrowd": 0, "area": 16},
    ],
}


def test_read_coco(tmp_path) -> None:
    split = read_split(write_coco(tmp_path, GT), "val")
    assert split.names == ["two", "five", "nine"]
    assert [s.image_id for s in split.samples] == [7, 3]
    a, b = split.samples
    assert a.image == tmp_path / "imgs" / "a.jpg" and (a.width, a.height) == (64, 48)
    np.testing.assert_array_equal(a.boxes, [[1, 2, 11, 22], [0, 0, 4, 4]])
    assert a.labels.tolist() == [1, 2] and a.crowd.tolist() == [False, True]
    assert b.boxes.shape == (0, 4) and b.labels.shape == (0,)
    assert len(split.problems) == 1 and "42" in split.problems[0]
    assert split.coco_gt["categories"] == GT["categories"]


def test_names_override_and_mismatch(tmp_path) -> None:
    spec = write_coco(tmp_path, GT, "names: [x, y, z]\n")
    assert read_split(spec, "val").names == ["x", "y", "z"]
    spec = write_coco(tmp_path, GT, "names: [two, five, nine]\n")  # the json's own, in class order
    assert read_split(spec, "val").names == ["two", "five", "nine"]
    spec = write_coco(tmp_path, GT, "names: [x, y]\n")
    with pytest.raises(UserError, match="names lists 2 classes"):
        read_split(spec, "val")
    # the json's names in the json's own order (ids 9, 2, 5): class 0 (id 2, 'two') was named
    # 'nine' and class 2 'five', without a word, into the checkpoint, labels and predictions
    spec = write_coco(tmp_path, GT, "names: [nine, two, five]\n")
    with pytest.raises(UserError, match=r"names puts 'nine' at class 0, but in .*val\.json it is category id 9, "
                                        r"class 2 \(class i is the i-th category id in sorted order: two, five, nine\)"):
        read_split(spec, "val")


def test_a_json_without_annotations_is_said_to_have_none(tmp_path) -> None:
    """An image_info json (COCO test-dev's: images and categories, no annotations) read as a split
    of background images with no word about it."""
    gt = {k: v for k, v in GT.items() if k != "annotations"}
    split = read_split(write_coco(tmp_path, gt), "val")
    assert len(split.samples) == 2 and all(len(s.labels) == 0 for s in split.samples)
    assert [p for p in split.problems if "no 'annotations' list: every image is a background image" in p], \
        split.problems


def test_coco_errors_name_the_file(tmp_path) -> None:
    spec = write_coco(tmp_path, GT)
    with pytest.raises(UserError, match="no split 'train'"):
        read_split(spec, "train")
    (tmp_path / "ann" / "val.json").write_text("{not json")
    with pytest.raises(UserError, match="val.json: not valid COCO json"):
        read_split(spec, "val")
    (tmp_path / "ann" / "val.json").write_text(json.dumps({"annotations": []}))
    with pytest.raises(UserError, match="val.json: not a COCO instances file"):
        read_split(spec, "val")
    (tmp_path / "ann" / "val.json").unlink()
    with pytest.raises(UserError, match="val.json: annotation file not found"):
        read_split(spec, "val")
    write_coco(tmp_path, GT)
    (tmp_path / "imgs").rmdir()  # a wrong 'images:' was one 'missing file' problem per image
    with pytest.raises(UserError, match=r"imgs: images folder not found \(named by .*data.yaml, split 'val'\)"):
        read_split(spec, "val")


@pytest.mark.parametrize("text,match", [
    ("format: coco\nval: [a, b]\n", "must be a mapping"),
    ("format: kitti\n", "format must be one of"),
    ("format: coco\nvall: {}\n", "unknown key"),
    ("- just a list\n", "YAML mapping"),
    ("format: coco\nnames: [1, 2]\n", "names must be a list of strings"),
    ("format: [unclosed\n", "not valid YAML"),
])
def test_spec_errors(tmp_path, text: str, match: str) -> None:
    p = tmp_path / "bad.yaml"
    p.write_text(text)
    with pytest.raises(UserError, match=match) as e:
        load_spec(p)
    assert "bad.yaml" in str(e.value)


def test_spec_yaml_error_says_where(tmp_path) -> None:
    # an unclosed list: the message named only PyYAML's context ('while parsing a flow
    # sequence'), not the line to look at nor what was wrong there
    p = tmp_path / "bad.yaml"
    p.write_text("format: voc\nnames: [raccoon\ntrain: {annotations: a, images: b}\n")
    with pytest.raises(UserError) as e:
        load_spec(p)
    msg = str(e.value)
    assert "bad.yaml: not valid YAML (line 3, column 6: expected ',' or ']'" in msg
    assert "started on line 2" in msg
    p.write_text("format: voc\n\tnames: [a]\n")  # a tab indent
    with pytest.raises(UserError, match=r"line 2, column 1: found character '\\t'"):
        load_spec(p)


def test_spec_missing_and_directory(tmp_path) -> None:
    with pytest.raises(UserError, match="data spec not found"):
        load_spec(tmp_path / "nope.yaml")
    with pytest.raises(UserError, match=f"{tmp_path}: a folder without a data.yaml; pass the data spec"):
        load_spec(tmp_path)  # there, but no spec in it: not 'not found'
    write_coco(tmp_path, GT)
    assert load_spec(tmp_path).path == tmp_path / "data.yaml"


@pytest.mark.refdata
def test_coco_tiny_reads(refdata) -> None:
    split = read_split(refdata / "coco_tiny" / "data.yaml", "val")
    assert len(split.samples) == 80 and split.names == COCO_CLASSES and not split.problems
    assert sum(len(s.boxes) for s in split.samples) == 815
    assert all(s.image.is_file() for s in split.samples)
    assert all((s.boxes[:, 2:] >= s.boxes[:, :2]).all() for s in split.samples)


def test_broken_entries_are_skipped_and_counted_not_a_traceback(tmp_path) -> None:
    gt = json.loads(json.dumps(GT))
    del gt["annotations"][0]["bbox"]                 # KeyError before
    gt["annotations"][1]["bbox"] = [0, 0, 4]         # ValueError (unpack) before
    gt["images"].append({"id": 11})                  # no file_name: KeyError before
    split = read_split(write_coco(tmp_path, gt), "val")
    assert [s.image_id for s in split.samples] == [7, 3] and len(split.samples[0].boxes) == 0
    bad = [p for p in split.problems if "bad annotation" in p]
    assert len(bad) == 3 and all("val.json" in p for p in bad)
    assert any("annotation 1: no 'bbox'" in p for p in bad) and any("image entry 2" in p for p in bad)


def test_a_bbox_with_a_negative_or_zero_side_is_said_as_written_with_its_id(tmp_path) -> None:
    """It was said as the corner box made from it ('box [50, 20, 40, 50]' for [50, 20, -10, 30]),
    without the annotation id: neither could be found in the json."""
    gt = {**GT, "annotations": GT["annotations"][:2] + [
        {"id": 21, "image_id": 7, "category_id": 5, "bbox": [50, 20, -10, 30]},
        {"id": 22, "image_id": 7, "category_id": 5, "bbox": [10, 20, 30.5, 0]},
        {"id": 23, "image_id": 3, "category_id": 2, "bbox": [1, 2, -3, -4]}]}
    split = read_split(write_coco(tmp_path, gt), "val")
    ann = tmp_path / "ann" / "val.json"
    flat = [p for p in split.problems if "zero or negative area box" in p]
    assert flat == [
        f"{ann} [a.jpg]: zero or negative area box: annotation 21: bbox [50, 20, -10, 30] (x, y, w, h) has a "
        "negative width; dropped",
        f"{ann} [a.jpg]: zero or negative area box: annotation 22: bbox [10, 20, 30.5, 0] (x, y, w, h) has a zero "
        "height; dropped",
        f"{ann} [b.jpg]: zero or negative area box: annotation 23: bbox [1, 2, -3, -4] (x, y, w, h) has a negative "
        "width and a negative height; dropped"]
    a, b = split.samples
    assert len(a.boxes) == 2 and len(b.boxes) == 0  # dropped, as before


def test_data_check_says_the_flat_bbox_once_as_written(tmp_path) -> None:
    """data check cleans the boxes again (clean_sample): the dropped one is not said a second time."""
    import cv2

    from yolox_edge.data.check import check_dataset

    gt = {**GT, "annotations": GT["annotations"][:2] + [
        {"id": 21, "image_id": 7, "category_id": 5, "bbox": [50, 20, -10, 30]}]}
    spec = write_coco(tmp_path, gt)
    for im in GT["images"]:
        cv2.imwrite(str(tmp_path / "imgs" / im["file_name"]), np.zeros((im["height"], im["width"], 3), np.uint8))
    flat = [p for p in check_dataset(spec, progress=False)["problems"] if "zero or negative" in p]
    assert len(flat) == 1 and "annotation 21: bbox [50, 20, -10, 30] (x, y, w, h) has a negative width" in flat[0]


@pytest.mark.parametrize("gt_change, spec_extra, words", [
    ({"categories": [{"name": "no id"}]}, "", "category 0 needs an integer 'id'"),
    # true is no id: a checkpoint refuses it (after an epoch of training, as a ValueError)
    ({"categories": [{"id": True, "name": "yes"}]}, "", "category 0 needs an integer 'id'"),
    # one id twice: two classes for one id, and a checkpoint that refused them after an epoch of training
    ({"categories": GT["categories"] + [{"id": 5, "name": "five again"}]}, "",
     "category id 5 is listed twice ('five' and 'five again'); give each category its own id"),
    ({}, "train: {annotations: ann/val.json, images: imgs, labels: typo}\n", "unknown key(s) labels"),
    ({}, "train: {annotations: null, images: imgs}\n", "key 'annotations' must be a path, not None"),
])
def test_a_broken_class_list_or_spec_is_one_error(tmp_path, gt_change, spec_extra, words) -> None:
    split = "train" if spec_extra else "val"
    with pytest.raises(UserError, match=words.replace("(", r"\(").replace(")", r"\)")):
        read_split(write_coco(tmp_path, {**GT, **gt_change}, spec_extra), split)


def test_a_second_file_with_an_image_id_taken_is_skipped_not_given_its_boxes(tmp_path) -> None:
    """Annotations name images by id: b.jpg sharing a.jpg's id trained on a.jpg's boxes."""
    gt = {**GT, "images": GT["images"] + [{"id": 7, "file_name": "c.jpg", "width": 64, "height": 48}]}
    split = read_split(write_coco(tmp_path, gt), "val")
    assert [s.image.name for s in split.samples] == ["a.jpg", "b.jpg"]
    (dup,) = [p for p in split.problems if "image id 7" in p]
    assert "used by a.jpg and c.jpg; c.jpg skipped (give each image its own id)" in dup


def test_an_image_listed_twice_is_read_once(tmp_path) -> None:
    """The same images entry twice trained twice an epoch and, in val, scored its detections twice."""
    gt = {**GT, "images": GT["images"] + [dict(GT["images"][0])]}
    split = read_split(write_coco(tmp_path, gt), "val")
    assert [s.image.name for s in split.samples] == ["a.jpg", "b.jpg"]
    (dup,) = [p for p in split.problems if "image id 7" in p]
    assert "image id 7 (a.jpg) is listed more than once; the repeat skipped" in dup


def test_annotations_of_an_image_not_listed_are_a_problem(tmp_path) -> None:
    gt = {**GT, "annotations": GT["annotations"] + [
        {"id": 8, "image_id": 12345, "category_id": 5, "bbox": [1, 2, 3, 4], "iscrowd": 0, "area": 12}]}
    split = read_split(write_coco(tmp_path, gt), "val")
    assert any("1 annotation(s) (first: 8) name image_id 12345, which is not in images; dropped" in p
               for p in split.problems), split.problems


def test_an_image_given_as_the_spec_is_called_no_yaml_file(tmp_path, run_cli) -> None:
    """'data check dog.jpg' said 'not UTF-8 text (byte 0xff at offset 0); save it as UTF-8'."""
    img = tmp_path / "dog.jpg"
    img.write_bytes(b"\xff\xd8\xff\xe0" + bytes(64))
    code, _, err = run_cli("data", "check", img)
    assert code == 2 and "dog.jpg: not a YAML file (binary data); give the .yaml file here" in err


def test_a_spec_or_recipe_that_is_not_utf8_is_one_line(tmp_path, run_cli) -> None:
    """Latin-1 bytes were a UnicodeDecodeError traceback (exit 1); a BOM is fine."""
    from yolox_edge.config import load_recipe

    latin = tmp_path / "latin.yaml"
    latin.write_bytes("format: coco\nnames: [caf\xe9]\n".encode("latin-1"))
    with pytest.raises(UserError, match=r"latin.yaml: not UTF-8 text \(byte 0xe9 at offset 24\)"):
        load_spec(latin)
    with pytest.raises(UserError, match="latin.yaml: not UTF-8"):
        load_recipe(latin)
    code, _, err = run_cli("data", "check", latin)
    assert code == 2 and "Traceback" not in err and "not UTF-8" in err
    bom = tmp_path / "bom.yaml"
    bom.write_bytes("\ufeffformat: coco\nnames: [café]\n".encode("utf-8"))
    assert load_spec(bom).names == ["café"]


def test_odd_ids_and_sizes_are_problems_not_a_traceback(tmp_path) -> None:
    from yolox_edge.data.check import BAD_ANNOTATION, UNKNOWN_CLASS, problem_kind

    gt = json.loads(json.dumps(GT))
    gt["annotations"][0]["category_id"] = [5]         # TypeError: unhashable type: 'list' before
    gt["annotations"][1]["image_id"] = {"id": 7}      # the same, grouping by image
    gt["images"][1].update(width=None, height="32")   # int(None): TypeError before
    split = read_split(write_coco(tmp_path, gt), "val")
    kinds = [problem_kind(p) for p in split.problems]
    assert kinds == [BAD_ANNOTATION, BAD_ANNOTATION, UNKNOWN_CLASS]  # 42 is not a category: a kind of its own
    assert "category_id must be an integer" in split.problems[0] and "image_id" in split.problems[1]
    assert "category_id 42" in split.problems[2] and "box dropped" in split.problems[2]
    b = split.samples[1]
    assert (b.width, b.height) == (0, 32)  # 0: unknown, taken from the file when it is read


def test_a_json_saved_with_a_bom_reads(tmp_path) -> None:
    # as text, json refused it: 'not valid COCO json (Unexpected UTF-8 BOM ...)'
    spec = write_coco(tmp_path, GT)
    ann = tmp_path / "ann" / "val.json"
    ann.write_bytes(b"\xef\xbb\xbf" + ann.read_bytes())
    assert read_split(spec, "val").names == ["two", "five", "nine"]


# Ids a user's own label database might use: not 1..N, listed out of order.
IDS_GT = {"images": [{"id": 1, "file_name": "a.jpg", "width": 32, "height": 32}],
          "categories": [{"id": 40, "name": "forty"}, {"id": 7, "name": "seven"}, {"id": 12, "name": "twelve"}],
          "annotations": [{"id": 1, "image_id": 1, "category_id": 40, "bbox": [1, 1, 8, 8]}]}


def test_split_keeps_the_category_id_of_each_class_index(tmp_path) -> None:
    split = read_split(write_coco(tmp_path, IDS_GT), "val")
    assert split.names == ["seven", "twelve", "forty"] and split.category_ids == [7, 12, 40]
    assert split.samples[0].labels.tolist() == [2]  # id 40 -> index 2 -> category_ids[2] == 40
    # names: in the spec renames the classes; the ids stay the json's
    renamed = read_split(write_coco(tmp_path, IDS_GT, "names: [a, b, c]\n"), "val")
    assert renamed.names == ["a", "b", "c"] and renamed.category_ids == [7, 12, 40]


def test_a_large_json_read_through_the_index_keeps_its_category_ids(tmp_path, monkeypatch) -> None:
    from yolox_edge.data import coco, index

    monkeypatch.setattr(index, "COCO_CACHE_MIN_BYTES", 0)
    spec = write_coco(tmp_path, IDS_GT)
    assert read_split(spec, "val").category_ids == [7, 12, 40]
    monkeypatch.setattr(coco, "read_coco", lambda *a: pytest.fail("a cache hit must not parse the json"))
    second = read_split(spec, "val")
    assert second.from_cache and second.category_ids == [7, 12, 40]
