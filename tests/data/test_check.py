"""`data check` on generated datasets with every kind of problem; the dataset skips the same ones."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from torch.utils.data import DataLoader

from data_synth import make_broken_coco, make_voc, write_image
from yolox_edge.data import check
from yolox_edge.data.dataset import DetectionDataset, collate
from yolox_edge.data.spec import read_split
from yolox_edge.data.transforms import AUG_PRESETS
from yolox_edge.errors import UserError


def make_broken_voc(root: Path) -> Path:
    """A VOC dataset with one of each problem (see the expectations in the test)."""
    spec = make_voc(root, {
        "ok1": (64, 48, [("cat", (5, 6, 20, 30))]),
        "ok2": (64, 48, [("dog", (30, 10, 60, 40))]),
        "outside": (64, 48, [("cat", (40, 10, 80, 40))]),   # xmax 80 > width 64
        "flat": (64, 48, [("dog", (10, 10, 9, 30)), ("cat", (5, 5, 20, 20))]),  # zero width
        "horse": (64, 48, [("horse", (5, 5, 20, 20))]),     # not in names
        "corrupt": (64, 48, [("cat", (5, 5, 20, 20))]),
        "cut": (64, 48, [("cat", (5, 5, 20, 20))]),
        "gone": (64, 48, [("cat", (5, 5, 20, 20))]),
    }, list_stems=["ok1", "ok2", "outside", "flat", "horse", "corrupt", "cut", "gone", "empty", "ok1"])
    img = root / "images"
    (img / "corrupt.png").write_bytes(b"this is not an image" * 10)             # unreadable
    write_image(img / "cut.jpg", 64, 48)
    (img / "cut.png").unlink()
    (root / "annotations" / "cut.xml").write_text((root / "annotations" / "cut.xml").read_text()
                                                  .replace("cut.png", "cut.jpg"))
    data = (img / "cut.jpg").read_bytes()
    (img / "cut.jpg").write_bytes(data[: len(data) * 2 // 3])                    # truncated
    (img / "gone.png").unlink()                                                   # missing image
    (root / "annotations" / "empty.xml").write_text("")                           # empty annotation
    return spec


EXPECTED = {  # kind -> a file name the problem line must name
    check.UNREADABLE: "corrupt.png", check.TRUNCATED: "cut.jpg", check.MISSING: "gone.png",
    check.OUTSIDE: "outside.xml", check.DEGENERATE: "flat.xml", check.UNKNOWN_CLASS: "horse.xml",
    check.EMPTY: "empty.xml", check.DUPLICATE: "list.txt",
}


def test_check_reports_every_problem_by_file(tmp_path: Path, run_cli) -> None:
    spec = make_broken_voc(tmp_path / "ds")
    report = check.check_dataset(spec, splits=["train"], progress=False)
    by_kind: dict[str, list[str]] = {}
    for p in report["problems"]:
        by_kind.setdefault(check.problem_kind(p), []).append(p)
    assert set(by_kind) == set(EXPECTED), by_kind
    for kind, name in EXPECTED.items():
        assert len(by_kind[kind]) == 1 and name in by_kind[kind][0], (kind, by_kind[kind])
    s = report["splits"]["train"]
    # ok1 ok2 outside flat horse corrupt cut = 7 records (gone/empty/the duplicate are not samples)
    assert s["images"] == 7 and s["classes"] == {"cat": 5, "dog": 1} and s["background_images"] == 1
    assert sum(s["box_sizes"].values()) == 6

    code, out, err = run_cli("data", "check", spec, "--split", "train", "--json", tmp_path / "r.json")
    assert code == 0, err
    for kind, name in EXPECTED.items():
        assert any(kind in line and name in line for line in out.splitlines()), (kind, out)
    assert json.loads((tmp_path / "r.json").read_text())["problems"] == report["problems"]
    assert run_cli("data", "check", spec, "--split", "train", "--strict")[0] == 1
    assert run_cli("data", "check", tmp_path / "nope.yaml")[0] == 2


def test_training_skips_the_same_samples(tmp_path: Path) -> None:
    spec = make_broken_voc(tmp_path / "ds")
    split = read_split(spec, "train")
    # the reader already dropped what it can see without decoding; clipping is visible in the boxes
    outside = next(s for s in split.samples if s.image.stem == "outside")
    np.testing.assert_allclose(outside.boxes, [[39, 9, 64, 40]])
    flat = next(s for s in split.samples if s.image.stem == "flat")
    assert flat.labels.tolist() == [0]
    ds = DetectionDataset(split.samples, img_size=64, aug=AUG_PRESETS["nano"], seed=0)
    for epoch in range(2):
        ds.set_epoch(epoch)
        for images, targets in DataLoader(ds, batch_size=4, shuffle=True, collate_fn=collate):
            assert images.shape[1:] == (3, 64, 64) and targets.shape[-1] == 5
    assert ds.skipped == 2
    assert sorted(Path(f).name for f in ds.skipped_files()) == ["corrupt.png", "cut.jpg"]
    assert ds.skip_summary().startswith("2 of 7 samples skipped")


def test_coco_problems(tmp_path: Path) -> None:
    """COCO json: duplicate image/annotation ids and boxes outside the image, by the same checks."""
    write_image(tmp_path / "im" / "a.png", 40, 30)
    write_image(tmp_path / "im" / "b.png", 40, 30)
    gt = {"images": [{"id": 1, "file_name": "a.png", "width": 40, "height": 30},
                     {"id": 1, "file_name": "b.png", "width": 40, "height": 30}],
          "annotations": [{"id": 5, "image_id": 1, "category_id": 3, "bbox": [30, 5, 20, 10], "iscrowd": 0},
                          {"id": 5, "image_id": 1, "category_id": 3, "bbox": [1, 1, 0, 5], "iscrowd": 0}],
          "categories": [{"id": 3, "name": "car"}]}
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    (tmp_path / "data.yaml").write_text("format: coco\nval: {annotations: gt.json, images: im}\n")
    report = check.check_dataset(tmp_path / "data.yaml", progress=False)
    kinds = [check.problem_kind(p) for p in report["problems"]]
    assert kinds.count(check.DUPLICATE) == 2  # image id 1 twice, annotation id 5 twice
    assert any(p.endswith("annotation id 5 is used more than once; its boxes are all kept") for p in report["problems"])
    assert check.OUTSIDE in kinds and check.DEGENERATE in kinds
    assert all("gt.json" in p for p in report["problems"])


def test_refdata_raccoon_is_clean(refdata: Path) -> None:
    report = check.check_dataset(refdata / "raccoon_voc" / "data.yaml", progress=False)
    assert report["problems"] == []
    assert {k: v["images"] for k, v in report["splits"].items()} == {"train": 160, "val": 40}
    assert report["splits"]["train"]["classes"] == {"raccoon": 173}


def test_a_split_that_cannot_be_read_is_named_and_the_cli_exits_2(tmp_path: Path, run_cli) -> None:
    write_image(tmp_path / "im" / "a.png", 40, 30)
    (tmp_path / "gt.json").write_text(json.dumps({"images": [{"id": 1, "file_name": "a.png", "width": 40, "height": 30}],
                                                  "annotations": [], "categories": [{"id": 1, "name": "car"}]}))
    (tmp_path / "data.yaml").write_text("format: coco\nval: {annotations: gt.json, images: im}\n"
                                        "train: {annotations: nope.json, images: im}\n")
    report = check.check_dataset(tmp_path / "data.yaml", progress=False)
    assert list(report["splits"]) == ["val"] and "nope.json" in report["unreadable_splits"]["train"]
    assert report["problems"] == []  # not a 'missing file' problem among the data's
    assert "[train] cannot be read:" in check.format_report(report)
    # the summary line does not call the dataset clean when a split went unchecked
    assert ("problems: 0 in the split(s) read; not checked: train (cannot be read, above)"
            in check.format_report(report).splitlines())
    code, out, err = run_cli("data", "check", tmp_path / "data.yaml")
    assert code == 2 and "[train] cannot be read" in out and "val" in out  # the readable split still reported
    assert "yolox-edge data check: error:" in err and "split train cannot be read" in err
    # A split the user asks for that the spec lacks is their mistake: one line, before any work.
    with pytest.raises(UserError, match="has no split 'test'.*has: train, val"):
        check.check_dataset(tmp_path / "data.yaml", splits=["test"], progress=False)
    code, out, err = run_cli("data", "check", tmp_path / "data.yaml", "--split", "test")
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1


def test_a_thread_count_under_one_is_refused(tmp_path: Path) -> None:
    """threads=0 (or -1) was taken as 1 without a word, and None failed in the pool as a TypeError;
    the library's other calls refuse them as BadArgument (a UserError and a ValueError)."""
    write_image(tmp_path / "im" / "a.png", 40, 30)
    (tmp_path / "gt.json").write_text(json.dumps({"images": [{"id": 1, "file_name": "a.png", "width": 40, "height": 30}],
                                                  "annotations": [], "categories": [{"id": 1, "name": "car"}]}))
    (tmp_path / "data.yaml").write_text("format: coco\nval: {annotations: gt.json, images: im}\n")
    for bad in (0, -1, None, 1.5):
        with pytest.raises(UserError, match="threads must be a whole number of at least 1") as e:
            check.check_dataset(tmp_path / "data.yaml", threads=bad, progress=False)
        assert isinstance(e.value, ValueError)
    assert check.check_dataset(tmp_path / "data.yaml", threads=1, progress=False)["splits"]["val"]["images"] == 1


def test_each_bad_box_is_one_line_saying_what_became_of_it() -> None:
    # A NaN box was 'zero or negative area'; a box wholly outside was reported twice (outside,
    # then zero area once clipped); the kind said '(clipped)' for a box that was dropped.
    probs: list[str] = []
    boxes, labels, _ = check.clean_boxes(
        np.array([[np.nan, 1, 5, 5], [1, 1, np.inf, 5], [50, 40, 60, 50], [30, 5, 50, 15], [1, 1, 1, 6],
                  [10, 10, 20, 20]], np.float32), np.arange(6), 40, 30, "gt.json", problems=probs)
    assert labels.tolist() == [3, 5]
    np.testing.assert_allclose(boxes, [[30, 5, 40, 15], [10, 10, 20, 20]])
    assert probs == [
        "gt.json: bad annotation: box [nan, 1, 5, 5] is not a number; dropped",
        "gt.json: bad annotation: box [1, 1, inf, 5] is infinite; dropped",
        "gt.json: box outside the image: box [50, 40, 60, 50] in a 40x30 image; nothing of it is inside: dropped",
        "gt.json: box outside the image: box [30, 5, 50, 15] in a 40x30 image; clipped to [30, 5, 40, 15]",
        "gt.json: zero or negative area box: box [1, 1, 1, 6]; dropped",
    ]
    again: list[str] = []
    check.clean_boxes(boxes, labels, 40, 30, "gt.json", problems=again)
    assert again == []
    # problem lines written before the kinds lost their '(clipped)'/'(dropped)' (a cached index) keep their kind
    assert check.problem_kind("a.xml: box outside the image (clipped): box [1, 2, 3, 4]") == check.OUTSIDE
    assert check.problem_kind("a.xml: zero or negative area box (dropped): box [1, 2, 3, 4]") == check.DEGENERATE


def test_a_nan_box_in_coco_or_voc_is_not_a_number_and_an_outside_box_is_reported_once(tmp_path: Path) -> None:
    write_image(tmp_path / "coco" / "im" / "a.png", 40, 30)
    gt = {"images": [{"id": 1, "file_name": "a.png", "width": 40, "height": 30}],
          "annotations": [{"id": 1, "image_id": 1, "category_id": 3, "bbox": [float("nan"), 1, 5, 5]},
                          {"id": 2, "image_id": 1, "category_id": 3, "bbox": [50, 40, 10, 10]}],
          "categories": [{"id": 3, "name": "car"}]}
    (tmp_path / "coco" / "gt.json").write_text(json.dumps(gt))  # json writes NaN, and reads it back
    (tmp_path / "coco" / "data.yaml").write_text("format: coco\nval: {annotations: gt.json, images: im}\n")
    voc = make_voc(tmp_path / "voc", {"a": (40, 30, [("cat", (3, 2, 6, 6)), ("cat", (51, 41, 60, 50))])})
    xml = tmp_path / "voc" / "annotations" / "a.xml"
    xml.write_text(xml.read_text().replace("<xmin>3</xmin>", "<xmin>nan</xmin>"))
    for spec in (tmp_path / "coco" / "data.yaml", voc):
        report = check.check_dataset(spec, splits=["val"], progress=False)
        probs = report["problems"]
        assert [check.problem_kind(p) for p in probs] == [check.BAD_ANNOTATION, check.OUTSIDE], probs
        assert probs[0].endswith("is not a number; dropped") and "box [nan, " in probs[0], probs
        assert probs[1].endswith("in a 40x30 image; nothing of it is inside: dropped"), probs
        assert report["splits"]["val"]["boxes"] == 0


def test_coco_size_mismatch_is_clipped_to_the_file_as_training_does(tmp_path: Path) -> None:
    """gt.json records big.png as 40x30, the file is 80x60: data check said the box inside the file
    was 'outside' and 'dropped' (it clipped to the json's size) while training kept it."""
    spec = make_broken_coco(tmp_path)
    report = check.check_dataset(spec, splits=["train"], progress=False)
    big = [p for p in report["problems"] if "big.png" in p]
    assert big == [f"{tmp_path / 'im' / 'big.png'}: image size differs from annotation: annotated 40x30, the file "
                   "is 80x60; training uses the file's size (boxes clipped to 80x60); correct its width/height in "
                   "the annotations (and its boxes, if the image was resized after labelling)"]
    assert report["splits"]["train"]["boxes"] == 3  # a.png's clipped box, g.png's, big.png's
    split = read_split(spec, "train")
    (s,) = [s for s in split.samples if s.image.name == "big.png"]
    _, boxes, _ = DetectionDataset([s], img_size=80, aug=None).load_augmented(0)
    np.testing.assert_allclose(boxes, [[50, 40, 60, 50]])  # training keeps it, at the file's scale


def test_reading_headers_finds_what_decoding_finds(tmp_path: Path, run_cli) -> None:
    """The header-only check (train's opening count, data check --no-decode) lists the same problems
    as decoding every image; --no-decode only looked for missing files."""
    spec = make_broken_coco(tmp_path)
    split = read_split(spec, "train")
    from yolox_edge.data.spec import load_spec

    decoded, _ = check.split_problems(load_spec(spec), "train", split, decode=True)
    headers, _ = check.split_problems(load_spec(spec), "train", split, decode=False)
    assert headers == decoded
    kinds = {check.problem_kind(p) for p in headers}
    assert {check.UNREADABLE, check.TRUNCATED, check.MISSING, check.SIZE_MISMATCH} <= kinds
    code, out, _ = run_cli("data", "check", spec, "--split", "train", "--no-decode", "--no-progress")
    assert code == 0 and f"problems: {len(decoded)}" in out and "truncated image" in out and "size differs" in out


def test_only_samples_with_a_box_to_clip_or_drop_are_cleaned_one_by_one(tmp_path: Path, monkeypatch) -> None:
    """split_problems cleans the samples that need it (clipped, dropped boxes) and passes the others as
    they are: cleaning each of a 120k-image split's took ~4 s. Problems and samples are what cleaning
    every sample gives."""
    from yolox_edge.data.sample import Sample
    from yolox_edge.data.spec import load_spec

    spec = make_broken_coco(tmp_path)
    split = read_split(spec, "train")
    # every sample cleaned, as before: the reference
    monkeypatch.setattr(check, "already_clean", lambda ss: np.zeros(len(ss), bool))
    probs, samples = check.split_problems(load_spec(spec), "train", split, decode=False)
    monkeypatch.undo()
    cleaned: list[str] = []
    real = check.clean_sample
    monkeypatch.setattr(check, "clean_sample", lambda s, *a, **k: cleaned.append(s.image.name) or real(s, *a, **k))
    again, kept = check.split_problems(load_spec(spec), "train", split, decode=False)
    assert again == probs and [s.image for s in kept] == [s.image for s in samples]
    for a, b in zip(kept, samples):
        np.testing.assert_array_equal(a.boxes, b.boxes)
        np.testing.assert_array_equal(a.labels, b.labels)
        assert (a.width, a.height) == (b.width, b.height)
    # cleaned: the samples whose boxes change, and big.png (its file is larger than annotated)
    need = {s.image.name for s in split.samples if not np.array_equal(real(s).boxes, s.boxes)} | {"big.png"}
    assert cleaned and set(cleaned) <= need and len(cleaned) < len(split.samples)
    # the rule itself, box by box, against clean_sample's verdict (NaN, empty, outside, at the edge, unsized)
    boxes = [[0, 0, 40, 30], [1, 1, 5, float("nan")], [5, 5, 5, 9], [-1, 0, 4, 4], [30, 20, 40.2, 30], [2, 2, 9, 9]]
    cases = [Sample(Path(f"{i}.png"), [b], [0], width=40, height=30) for i, b in enumerate(boxes)]
    cases += [Sample(Path("unsized.png"), [[-5, -5, 50, 50]], [0]), Sample(Path("none.png"))]
    for c, ok in zip(cases, check.already_clean(cases)):
        said: list[str] = []
        out = check.clean_sample(c, said)
        assert ok == (not said and np.array_equal(out.boxes, c.boxes)), c


def test_already_clean_agrees_with_clean_sample_on_random_boxes() -> None:
    """already_clean restates clean_boxes' rule in one vectorised pass; the two must never disagree
    (a sample it calls clean is passed on uncleaned). Seeded boxes near every edge of that rule:
    the image border and its slack, NaN, infinities, empty and reversed boxes, unsized images."""
    from yolox_edge.data.sample import Sample

    rng = np.random.default_rng(0)
    near = np.array([0, 40, 30, 40.2, 40.5, 40.6, 30.4, 30.6, -0.3, -0.5, -0.6, -1, 5, 9, np.nan, np.inf, -np.inf,
                     1e-7, 39.99999], np.float32)
    cases = []
    for i in range(3000):
        n = int(rng.integers(0, 3))
        boxes = np.tile(np.float32([5, 5, 9, 9]), (n, 1))  # a clean box, some of its sides moved to an edge
        edge = rng.random((n, 4)) < 0.3
        boxes[edge] = rng.choice(near, size=int(edge.sum()))
        w, h = (40, 30) if rng.random() < 0.8 else (0, 0)
        cases.append(Sample(Path(f"{i}.png"), np.asarray(boxes, np.float32), [0] * n, width=w, height=h))
    verdicts = check.already_clean(cases)
    assert 0 < verdicts.sum() < len(cases)
    for c, ok in zip(cases, verdicts):
        said: list[str] = []
        out = check.clean_sample(c, said)
        assert ok == (not said and np.array_equal(out.boxes, c.boxes)), (c.boxes, c.width, c.height, said)


def test_yolo_sizes_come_from_the_index_not_from_the_headers_again(tmp_path: Path, monkeypatch) -> None:
    from data_synth import make_yolo
    from yolox_edge.data.spec import load_spec

    spec = make_yolo(tmp_path, {"a": (100, 50, "0 0.5 0.5 0.2 0.4\n"), "b": (40, 40, "0 0.5 0.5 0.2 0.2\n")})
    read_split(spec, "train")
    split = read_split(spec, "train")  # from the index
    assert getattr(split, "from_cache", False) and split.sizes_from_files
    data = (tmp_path / "images" / "b.png").read_bytes()
    (tmp_path / "images" / "b.png").write_bytes(data[:-20])  # cut after indexing: the end marker is gone
    calls = []
    monkeypatch.setattr(check, "image_size", lambda p: calls.append(p))
    probs, _ = check.split_problems(load_spec(spec), "train", split, decode=False)
    assert calls == [] and [check.problem_kind(p) for p in probs] == [check.TRUNCATED]


def test_an_image_that_cannot_be_opened_is_a_bad_sample(tmp_path: Path, monkeypatch) -> None:
    """A file without read permission (root reads anything, so the refusal is simulated) is
    skipped and named like an undecodable one, not a PermissionError through the training loop."""
    img = tmp_path / "locked.jpg"
    write_image(img, 32, 24)

    def refuse(*_a, **_k):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(check.np, "fromfile", refuse)
    with pytest.raises(check.BadSample, match=r"locked\.jpg: unreadable image: cannot be opened \(Permission denied\)"):
        check.load_image(img)


def test_a_motion_photo_is_whole_to_training_and_data_check_as_to_predict(tmp_path: Path) -> None:
    """A phone's motion photo (a video after the JPEG's end marker) has no end marker in its last
    4 KiB: training and data check skipped it as truncated, while predict and eval (read_image,
    which walks the JPEG's segments) read it. A JPEG cut short is still refused by both."""
    import cv2

    from yolox_edge.data.preprocess import read_image

    rng = np.random.default_rng(0)
    img = cv2.GaussianBlur(rng.integers(0, 256, (48, 64, 3)).astype(np.uint8), (5, 5), 2)
    whole = cv2.imencode(".jpg", img)[1].tobytes()
    video = b"\x00\x00\x00\x18ftypmp42" + rng.integers(0, 256, 20000, np.uint8).tobytes()
    assert b"\xff\xd9" not in video[-4096:]  # no end marker's two bytes by chance in the tail
    motion = tmp_path / "PXL_MP.jpg"
    motion.write_bytes(whole + video)
    assert read_image(motion).shape == (48, 64, 3)
    assert check.load_image(motion).shape == (48, 64, 3)
    assert check.check_image_file(motion) == (64, 48)
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(whole[: len(whole) * 6 // 10])
    for read in (check.load_image, check.check_image_file):
        with pytest.raises(check.BadSample, match="truncated image: file ends before the image data does"):
            read(cut)


def test_an_image_pillow_cannot_size_is_sized_by_opencv_and_used(tmp_path: Path) -> None:
    """A Radiance .hdr (or OpenEXR) that this OpenCV decodes, and predict reads, but Pillow cannot
    open was skipped from YOLO and VOC data with 'header cannot be read': OpenCV sizes it instead."""
    import cv2

    from data_synth import make_yolo, voc_xml
    from yolox_edge.data.check import check_dataset, check_image_file, image_size, load_image

    spec = make_yolo(tmp_path / "yolo", {"a": (40, 30, "0 0.5 0.5 0.5 0.5\n")})
    hdr = tmp_path / "yolo" / "images" / "sky.hdr"
    try:
        written = cv2.imwrite(str(hdr), np.full((48, 64, 3), 0.5, np.float32))
    except cv2.error:
        written = False
    if not written or not cv2.haveImageReader(str(hdr)):
        pytest.skip("this OpenCV cannot write and read Radiance .hdr")
    (tmp_path / "yolo" / "labels" / "sky.txt").write_text("1 0.5 0.5 0.25 0.5\n")
    assert image_size(hdr) == check_image_file(hdr) == (64, 48) and load_image(hdr).shape == (48, 64, 3)
    split = read_split(spec, "val")
    assert split.problems == [] and [s.image.name for s in split.samples] == ["a.png", "sky.hdr"]
    sky = split.samples[1]
    assert (sky.width, sky.height) == (64, 48) and sky.labels.tolist() == [1]
    np.testing.assert_allclose(sky.boxes, [[24, 12, 40, 36]], atol=1e-4)
    assert check_dataset(spec, splits=["val"], progress=False)["splits"]["val"]["images"] == 2

    # VOC: the size is taken from the image file, as for every other image
    voc = tmp_path / "voc"
    (voc / "JPEGImages").mkdir(parents=True)
    (voc / "Annotations").mkdir()
    (voc / "JPEGImages" / "sky.hdr").write_bytes(hdr.read_bytes())
    (voc / "Annotations" / "sky.xml").write_text(voc_xml("sky.hdr", 64, 48, [("cat", (17, 13, 32, 24))]))
    (voc / "data.yaml").write_text("format: voc\nnames: [cat]\n"
                                   "val: {images: JPEGImages, annotations: Annotations}\n")
    split = read_split(voc / "data.yaml", "val")
    assert split.problems == [] and [(s.image.name, s.width, s.height) for s in split.samples] == [("sky.hdr", 64, 48)]


def test_a_spec_naming_no_split_is_one_line_and_exit_2(tmp_path: Path, run_cli) -> None:
    """It printed an empty table and 'problems: 0' and exited 0, as if the dataset were clean."""
    (tmp_path / "data.yaml").write_text("format: coco\nnames: [car]\n")
    with pytest.raises(UserError, match=r"data\.yaml: names no split, so there is nothing to check"):
        check.check_dataset(tmp_path / "data.yaml", progress=False)
    code, out, err = run_cli("data", "check", tmp_path / "data.yaml")
    assert code == 2 and out == "" and err.count("\n") == 1 and "names no split" in err


def test_in_order_keeps_the_order_queues_a_few_and_cancels_the_rest_when_stopped():
    """data check's per-file work: Executor.map queued every sample before the first result (6.4 s
    and 375 MiB on 200,000); in_order keeps at most ahead x threads queued."""
    import threading
    import time

    from yolox_edge.data.check import in_order

    pulled, ran = [], []
    lock = threading.Lock()

    def items():
        for i in range(1000):
            pulled.append(i)
            yield i

    def slow_first(i):  # the first finishes last: results still come in the items' order
        time.sleep(0.05 if i == 0 else 0.0)
        with lock:
            ran.append(i)
        return i * i

    results = in_order(slow_first, items(), 2, ahead=3)
    assert next(results) == 0 and len(pulled) <= 2 * 3
    assert [next(results) for _ in range(4)] == [1, 4, 9, 16]
    results.close()  # a stop (Ctrl-C, an exception) while the bar runs
    time.sleep(0.1)
    assert len(pulled) <= 5 + 2 * 3 and len(ran) <= len(pulled)  # nothing beyond the window ran
    assert list(in_order(slow_first, range(50), 3)) == [i * i for i in range(50)]

    def fails(i):
        if i == 7:
            raise ValueError("sample 7")
        return i

    with pytest.raises(ValueError, match="sample 7"):
        list(in_order(fails, range(100), 2))
