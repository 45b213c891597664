"""`data check` on generated datasets with every kind of problem; the dataset skips the same ones."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from torch.utils.data import DataLoader

from data_synth import make_voc, write_image
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
    report = check.check_dataset(spec, ["train"], progress=False)
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
    code, out, err = run_cli("data", "check", tmp_path / "data.yaml")
    assert code == 2 and "[train] cannot be read" in out and "val" in out  # the readable split still reported
    assert "yolox-edge data check: error:" in err and "split train cannot be read" in err
    # A split the user asks for that the spec lacks is their mistake: one line, before any work.
    with pytest.raises(UserError, match="has no split 'test'.*has: train, val"):
        check.check_dataset(tmp_path / "data.yaml", ["test"], progress=False)
    code, out, err = run_cli("data", "check", tmp_path / "data.yaml", "--split", "test")
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1
