"""Pascal VOC reader: the refdata raccoon split and generated edge cases."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from data_synth import make_voc
from yolox_edge.data.check import (DUPLICATE, EMPTY, MISSING, OUTSIDE, SIZE_MISMATCH, UNKNOWN_CLASS, UNREADABLE,
                                    problem_kind)
from yolox_edge.data.spec import read_split
from yolox_edge.errors import UserError


def test_raccoon_splits_load_as_written(refdata: Path) -> None:
    spec = refdata / "raccoon_voc" / "data.yaml"
    train, val = read_split(spec, "train"), read_split(spec, "val")
    assert (len(train.samples), len(val.samples)) == (160, 40)
    assert train.names == ["raccoon"] and not train.problems and not val.problems
    assert sum(len(s.labels) for s in train.samples) + sum(len(s.labels) for s in val.samples) == 217
    stems = (refdata / "raccoon_voc" / "splits" / "test.txt").read_text().split()
    assert [s.image.stem for s in val.samples] == stems
    s = train.samples[0]  # raccoon-1.xml: 650x417, xmin 81 ymin 88 xmax 522 ymax 408
    assert s.image.name == "raccoon-1.jpg" and (s.width, s.height) == (650, 417)
    np.testing.assert_allclose(s.boxes, [[80, 87, 522, 408]])
    assert s.labels.tolist() == [0] and len({x.image_id for x in train.samples}) == 160


def test_voc_folder_without_list(tmp_path: Path) -> None:
    spec = make_voc(tmp_path, {"a": (64, 48, [("cat", (5, 6, 20, 30)), ("dog", (30, 10, 60, 40))]),
                               "b": (32, 32, [])})
    split = read_split(spec, "train")
    assert [s.image.stem for s in split.samples] == ["a", "b"] and split.problems == []
    np.testing.assert_allclose(split.samples[0].boxes, [[4, 5, 20, 30], [29, 9, 60, 40]])
    assert split.samples[0].labels.tolist() == [0, 1] and len(split.samples[1].labels) == 0
    assert split.category_ids is None  # VOC has class names only, no ids


def test_voc_problems_name_the_file(tmp_path: Path) -> None:
    spec = make_voc(tmp_path, {"a": (64, 48, [("cat", (5, 6, 20, 30)), ("horse", (1, 1, 9, 9))])},
                    list_stems=["a", "a", "nope"])
    (tmp_path / "annotations" / "empty.xml").write_text("")
    split = read_split(spec, "train")
    kinds = {problem_kind(p): p for p in split.problems}
    assert set(kinds) == {UNKNOWN_CLASS, DUPLICATE, MISSING}
    assert "a.xml" in kinds[UNKNOWN_CLASS] and "horse" in kinds[UNKNOWN_CLASS]
    assert "nope.xml" in kinds[MISSING] and "list.txt" in kinds[DUPLICATE]
    assert len(split.samples) == 1 and split.samples[0].labels.tolist() == [0]
    # without a list every XML is read: the empty one is reported, not fatal
    spec.write_text(spec.read_text().replace(", list: list.txt", ""))
    split = read_split(spec, "train")
    assert any(problem_kind(p) == EMPTY and "empty.xml" in p for p in split.problems)


def test_voc_spec_errors_are_user_errors(tmp_path: Path) -> None:
    spec = make_voc(tmp_path, {"a": (16, 16, [("cat", (1, 1, 8, 8))])})
    spec.write_text(spec.read_text().replace("names: [cat, dog]\n", ""))
    with pytest.raises(UserError, match="needs 'names"):
        read_split(spec, "train")
    spec.write_text("format: voc\nnames: [cat]\ntrain: {annotations: nowhere, images: images}\n")
    with pytest.raises(UserError, match="nowhere"):
        read_split(spec, "train")


def test_a_list_naming_stems_with_spaces_reads_them_whole(tmp_path: Path) -> None:
    # the 'stem flag' form of VOC ImageSets cut "IMG 0001" to "IMG": a missing file, the sample lost
    spec = make_voc(tmp_path, {"IMG 0001": (32, 32, [("cat", (1, 1, 8, 8))]), "b": (32, 32, []),
                               "ñandú 猫": (32, 32, [])},
                    list_stems=["IMG 0001", "b  1", "ñandú 猫", "b -1"])
    split = read_split(spec, "train")
    assert split.problems == []
    assert [s.image.stem for s in split.samples] == ["IMG 0001", "b", "ñandú 猫"]
    (tmp_path / "list.txt").write_text("b -1\nIMG 0001 1\n")  # the flag form still reads
    assert [s.image.stem for s in read_split(spec, "train").samples] == ["IMG 0001"]


@pytest.mark.parametrize("xml", [
    "<annotation><size>",                                                                 # not valid XML
    "<annotation><object><name>cat</name></object></annotation>",                         # no <bndbox>
    "<annotation><object><name>cat</name><bndbox><xmin>1</xmin></bndbox></object></annotation>",  # no <ymin>
    "<annotation><object><name>cat</name><bndbox><xmin>a</xmin><ymin>1</ymin><xmax>5</xmax><ymax>5</ymax>"
    "</bndbox></object></annotation>",                                                    # not a number
])
def test_an_xml_that_cannot_be_used_says_its_image_was_skipped(tmp_path: Path, xml: str) -> None:
    spec = make_voc(tmp_path, {"a": (16, 16, [("cat", (1, 1, 8, 8))]), "b": (16, 16, [])})
    (tmp_path / "annotations" / "b.xml").write_text(xml)
    split = read_split(spec, "train")
    assert [s.image.stem for s in split.samples] == ["a"]
    (p,) = split.problems
    assert "b.xml: bad annotation: " in p and p.endswith("; the image was skipped"), p


def _set_xml_size(xml: Path, w: int, h: int) -> None:
    """Rewrite the <size> of one XML (as a converted or hand-edited annotation has it)."""
    text = xml.read_text()
    start, end = text.index("<size>"), text.index("</size>") + len("</size>")
    xml.write_text(f"{text[:start]}<size><width>{w}</width><height>{h}</height><depth>3</depth></size>{text[end:]}")


def test_a_size_smaller_than_the_file_does_not_cut_boxes_that_fit_the_file(tmp_path: Path) -> None:
    """a.xml says 40x30, a.png is 80x60: the reader clipped the box to 40x30 (cut in training and in
    eval ground truth; dropped when wholly past it), where COCO keeps what fits the file."""
    from yolox_edge.data.check import check_dataset, split_problems
    from yolox_edge.data.dataset import DetectionDataset
    from yolox_edge.data.spec import load_spec
    from yolox_edge.engine.evaluator import coco_gt_from_split

    spec = make_voc(tmp_path, {"a": (80, 60, [("cat", (31, 21, 70, 55)), ("dog", (51, 41, 60, 50))]),
                               "b": (32, 32, [("cat", (1, 1, 8, 8))])})
    _set_xml_size(tmp_path / "annotations" / "a.xml", 40, 30)
    line = (f"{tmp_path / 'images' / 'a.png'}: image size differs from annotation: annotated 40x30, the file is "
            "80x60; training uses the file's size (boxes clipped to 80x60); correct its width/height in the "
            "annotations (and its boxes, if the image was resized after labelling)")
    for cached in (False, True):
        split = read_split(spec, "train")
        assert getattr(split, "from_cache", False) == cached
        a = split.samples[0]
        assert (a.width, a.height) == (80, 60) and split.problems == [line]
        np.testing.assert_allclose(a.boxes, [[30, 20, 70, 55], [50, 40, 60, 50]])
    # data check (decoding or headers only) and training's opening count: the same one line
    report = check_dataset(spec, splits=["train"], progress=False)
    assert report["problems"] == [line] and report["splits"]["train"]["boxes"] == 3
    assert split_problems(load_spec(spec), "train", split, decode=False)[0] == [line]
    _, boxes, labels = DetectionDataset([a], img_size=80, aug=None).load_augmented(0)
    np.testing.assert_allclose(boxes, [[30, 20, 70, 55], [50, 40, 60, 50]])
    gt = coco_gt_from_split(split)  # eval's ground truth for a VOC split
    assert gt["images"][0]["width"] == 80
    assert [ann["bbox"] for ann in gt["annotations"] if ann["image_id"] == a.image_id] == [[30, 20, 40, 35],
                                                                                            [50, 40, 10, 10]]


def test_a_size_larger_than_the_file_clips_to_the_file_once(tmp_path: Path) -> None:
    """The boxes are checked against the file's 40x30 (the size training uses), by the reader."""
    spec = make_voc(tmp_path, {"a": (40, 30, [("cat", (31, 21, 70, 55)), ("dog", (2, 2, 10, 10))])})
    _set_xml_size(tmp_path / "annotations" / "a.xml", 80, 60)
    split = read_split(spec, "train")
    assert [problem_kind(p) for p in split.problems] == [SIZE_MISMATCH, OUTSIDE]
    assert split.problems[1].endswith("box [30, 20, 70, 55] in a 40x30 image; clipped to [30, 20, 40, 30]")
    np.testing.assert_allclose(split.samples[0].boxes, [[30, 20, 40, 30], [1, 1, 10, 10]])
    from yolox_edge.data.check import check_dataset

    assert check_dataset(spec, splits=["train"], progress=False)["problems"] == split.problems


@pytest.mark.parametrize("size", [(0, 0), None])
def test_a_size_of_zero_or_none_is_read_from_the_image(tmp_path: Path, size) -> None:
    spec = make_voc(tmp_path, {"a": (80, 60, [("cat", (31, 21, 70, 55))])})
    xml = tmp_path / "annotations" / "a.xml"
    if size is None:
        text = xml.read_text()
        xml.write_text(text[:text.index("<size>")] + text[text.index("</size>") + len("</size>"):])
    else:
        _set_xml_size(xml, *size)
    split = read_split(spec, "train")
    assert split.problems == [] and (split.samples[0].width, split.samples[0].height) == (80, 60)
    np.testing.assert_allclose(split.samples[0].boxes, [[30, 20, 70, 55]])
    (tmp_path / "images" / "a.png").write_bytes(b"not an image")  # no size anywhere: skipped, named
    split = read_split(spec, "train")
    assert split.samples == [] and [problem_kind(p) for p in split.problems] == [UNREADABLE]


def test_a_list_saved_with_a_bom_finds_its_first_stem(tmp_path: Path) -> None:
    # Notepad's byte-order mark became part of the first stem: '\ufeffa' was not found
    spec = make_voc(tmp_path, {"a": (16, 16, [("cat", (1, 1, 8, 8))]), "b": (16, 16, [])})
    (tmp_path / "list.txt").write_text("\ufeffa\nb\n", encoding="utf-8")
    (tmp_path / "data.yaml").write_text("format: voc\nnames: [cat, dog]\n"
                                        "train: {annotations: annotations, images: images, list: list.txt}\n")
    split = read_split(spec, "train")
    assert [s.image.stem for s in split.samples] == ["a", "b"] and split.problems == [], split.problems


def test_an_xml_whose_image_is_a_gif_finds_it_and_one_opencv_cannot_decode_is_named(tmp_path: Path) -> None:
    """An XML without <filename> is matched to its image by stem, among JPEG/PNG/... only: its
    .gif (which this OpenCV decodes) was 'not found'. Now it is found (a.png still before a.gif),
    and an image OpenCV cannot decode is named as such, not as missing."""
    import cv2

    from data_synth import voc_xml

    spec = make_voc(tmp_path, {"a": (64, 48, [("cat", (5, 6, 20, 30))])})
    images, anns = tmp_path / "images", tmp_path / "annotations"
    picture = cv2.imread(str(images / "a.png"))
    for stem in ("a", "g"):
        (images / f"{stem}.gif").write_bytes(cv2.imencode(".gif", picture)[1].tobytes())
    (images / "x.jxl").write_bytes(b"\xff\x0a" + bytes(40))
    for stem in ("g", "x"):
        (anns / f"{stem}.xml").write_text(voc_xml("", 64, 48, [("dog", (5, 6, 20, 30))]))
    split = read_split(spec, "train")
    assert [s.image.name for s in split.samples] == ["a.png", "g.gif"] and split.samples[1].labels.tolist() == [1]
    assert split.problems == [f"{images / 'x.jxl'}: unreadable image: the image of x.xml, but this OpenCV cannot "
                              "decode .jxl files: convert it to JPEG or PNG; the sample was skipped"]


def test_a_list_of_stems_not_in_utf8_is_named(tmp_path: Path) -> None:
    """A list saved in a Windows code page ('café' in cp1252) was a UnicodeDecodeError traceback."""
    import pytest

    from yolox_edge.errors import UserError

    spec = make_voc(tmp_path, {"a": (40, 40, [("cat", (5, 5, 20, 20))])}, list_stems=["a"])
    (tmp_path / "list.txt").write_bytes("a\ncaf\xe9\n".encode("cp1252"))
    with pytest.raises(UserError, match=r"list\.txt: not UTF-8 text \(byte 0xe9 at offset 5\); save it as UTF-8"):
        read_split(spec, "train")


def test_a_size_turned_a_quarter_is_said_to_be_the_exif_orientation(tmp_path: Path) -> None:
    """A phone photo stored 60x40 with an EXIF orientation that turns it to 40x60 (as OpenCV and
    training read it), labelled on the stored pixels: the advice was to correct the width/height,
    which leaves every box turned."""
    spec = make_voc(tmp_path, {"a": (40, 60, [("cat", (5, 5, 20, 20))])})
    _set_xml_size(tmp_path / "annotations" / "a.xml", 60, 40)
    (line,) = [p for p in read_split(spec, "train").problems if problem_kind(p) == SIZE_MISMATCH]
    assert "annotated 60x40, the file is 40x60 as its EXIF orientation turns it" in line
    assert "strip the file's orientation tag" in line and "correct its width/height" not in line
