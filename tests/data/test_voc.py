"""Pascal VOC reader: the refdata raccoon split and generated edge cases."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from data_synth import make_voc
from yolox_edge.data.check import DUPLICATE, EMPTY, MISSING, UNKNOWN_CLASS, problem_kind
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
