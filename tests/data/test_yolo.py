"""YOLO txt reader on a generated tiny dataset."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from data_synth import make_yolo
from yolox_edge.data.check import BAD_ANNOTATION, DEGENERATE, MISSING, OUTSIDE, UNKNOWN_CLASS, problem_kind
from yolox_edge.data.spec import load_spec, read_split
from yolox_edge.data.yolo import default_labels_dir


def test_yolo_boxes_in_pixels(tmp_path: Path) -> None:
    spec = make_yolo(tmp_path, {
        "a": (100, 50, "0 0.5 0.5 0.2 0.4\n1 0.25 0.5 0.1 0.2\n"),
        "b": (40, 40, "1 0.1 0.1 0.3 0.1 0.3 0.3\n"),  # a polygon: its bounding box
        "c": (20, 20, None),                          # no label file: background, no problem
    })
    for split_name in ("train", "val"):  # default labels dir and an explicit one
        split = read_split(spec, split_name)
        assert split.problems == [] and split.names == ["cat", "dog"]
        a, b, c = split.samples
        np.testing.assert_allclose(a.boxes, [[40, 15, 60, 35], [20, 20, 30, 30]], atol=1e-4)
        assert a.labels.tolist() == [0, 1] and (a.width, a.height) == (100, 50)
        np.testing.assert_allclose(b.boxes, [[4, 4, 12, 12]], atol=1e-4)
        assert len(c.labels) == 0


def test_yolo_problems(tmp_path: Path) -> None:
    spec = make_yolo(tmp_path, {
        "a": (100, 100, "0 0.95 0.5 0.2 0.2\n0 0.5 0.5 0 0.1\n7 0.5 0.5 0.1 0.1\n1 0.5 x 0.1 0.1\n0 0.5 0.5\n"),
        "e": (10, 10, ""),
    })
    (tmp_path / "labels" / "ghost.txt").write_text("0 0.5 0.5 0.1 0.1\n")
    split = read_split(spec, "train")
    kinds = {problem_kind(p): p for p in split.problems}
    # e.txt, empty, is a background image (CVAT, Roboflow and Label Studio write one per image
    # without objects): no problem, it was one for each such image and 'data check --strict' failed
    assert set(kinds) == {OUTSIDE, DEGENERATE, UNKNOWN_CLASS, BAD_ANNOTATION, MISSING}
    assert all(n in kinds[k] for n, k in [("a.txt", OUTSIDE), ("a.txt", UNKNOWN_CLASS),
                                          ("ghost", MISSING), ("a.txt", DEGENERATE)])
    # every line about a box says what became of it ('not numbers' and a wrong value count did not)
    box_lines = [p for p in split.problems if problem_kind(p) in (OUTSIDE, DEGENERATE, UNKNOWN_CLASS, BAD_ANNOTATION)]
    assert len(box_lines) == 5 and all(p.endswith(("dropped", "clipped to [85, 40, 100, 60]")) for p in box_lines), \
        box_lines
    assert any("line 4: not numbers: '1 0.5 x 0.1 0.1'; box dropped" in p for p in box_lines)
    assert any("line 5: expected 'class cx cy w h', got 3 values; box dropped" in p for p in box_lines)
    a, e = split.samples
    np.testing.assert_allclose(a.boxes, [[85, 40, 100, 60]], atol=1e-4)  # clipped at the right edge
    assert len(e.labels) == 0  # an empty file is a background image


def test_a_missing_labels_folder_is_an_error_not_a_dataset_of_backgrounds(tmp_path: Path) -> None:
    import shutil

    import pytest

    from yolox_edge.errors import UserError

    spec = make_yolo(tmp_path, {"a": (100, 50, "0 0.5 0.5 0.2 0.4\n"), "b": (40, 40, None)})
    shutil.move(tmp_path / "labels", tmp_path / "label")  # the typo: 0 boxes, 'no problems', exit 0
    with pytest.raises(UserError, match=r"labels folder not found \(the default for images .*set 'labels:'"):
        read_split(spec, "train")
    (tmp_path / "labels").mkdir()  # there, but the files are elsewhere: one problem says so
    split = read_split(spec, "train")
    assert [problem_kind(p) for p in split.problems] == [MISSING]
    assert "no label file for any of the 2 images" in split.problems[0]


def test_a_box_touching_the_border_by_rounding_is_clipped_without_a_problem(tmp_path: Path) -> None:
    # cy + h/2 = 1.0000005: 195.0001 px in a 195-pixel image, as a clean conversion writes it
    spec = make_yolo(tmp_path, {"a": (259, 195, "0 0.5 0.5 0.6 1.000001\n0 0.5 0.5 0.6 1.02\n")})
    split = read_split(spec, "train")
    assert [problem_kind(p) for p in split.problems] == [OUTSIDE]  # only the one 2 px out
    np.testing.assert_allclose(split.samples[0].boxes[:, 3], [195, 195])


def test_default_labels_dir() -> None:
    assert default_labels_dir(Path("/d/images/train")) == Path("/d/labels/train")
    assert default_labels_dir(Path("/d/pics")) == Path("/d/labels")


def test_exif_rotated_jpeg_uses_the_decoded_size(tmp_path: Path) -> None:
    """A phone photo stored landscape with EXIF 'rotate 90': labels refer to the upright image."""
    import cv2
    from PIL import Image

    from yolox_edge.data.check import image_size

    (tmp_path / "images").mkdir()
    im = Image.fromarray(np.zeros((100, 200, 3), np.uint8))
    exif = im.getexif()
    exif[0x0112] = 6
    im.save(tmp_path / "images" / "p.jpg", "JPEG", exif=exif.tobytes())
    assert cv2.imread(str(tmp_path / "images" / "p.jpg")).shape[:2] == (200, 100)
    assert image_size(tmp_path / "images" / "p.jpg") == (100, 200)
    (tmp_path / "labels").mkdir()
    (tmp_path / "labels" / "p.txt").write_text("0 0.5 0.5 0.5 0.5\n")
    (tmp_path / "data.yaml").write_text("format: yolo\nnames: [a]\ntrain: {images: images}\n")
    s = read_split(tmp_path / "data.yaml", "train").samples[0]
    assert (s.width, s.height) == (100, 200)
    np.testing.assert_allclose(s.boxes, [[25, 50, 75, 150]])


def test_a_roboflow_exports_data_yaml_reads_its_splits_below_its_own_folder(tmp_path: Path) -> None:
    """A Roboflow YOLOv8 export: data.yaml at the root naming '../train/images' and '../valid/images'
    (Ultralytics reads those below the root when '../' does not exist). It was refused: 'images
    folder not found' outside the dataset. A '../' folder that does exist is still the one read."""
    root = tmp_path / "export"
    make_yolo(root / "train", {"a": (100, 50, "0 0.5 0.5 0.2 0.4\n"), "b": (40, 40, "1 0.5 0.5 0.5 0.5\n")})
    make_yolo(root / "valid", {"c": (60, 60, "1 0.5 0.5 0.5 0.5\n")})
    (root / "data.yaml").write_text("train: ../train/images\nval: ../valid/images\ntest: ../test/images\n"
                                    "nc: 2\nnames: ['cat', 'dog']\nroboflow:\n  workspace: w\n  version: 1\n")
    # no test folder (Roboflow names one in every export): no test split, as Ultralytics reads it;
    # it was a split that could not be read, and 'data check' exited 2 on a dataset that trains
    assert list(load_spec(root / "data.yaml").splits) == ["train", "val"]
    train, val = read_split(root / "data.yaml", "train"), read_split(root / "data.yaml", "val")
    assert [s.image.name for s in train.samples] == ["a.png", "b.png"] and train.problems == []
    assert [s.image.name for s in val.samples] == ["c.png"] and val.problems == []
    assert train.names == ["cat", "dog"] and [list(s.labels) for s in train.samples] == [[0], [1]]
    # the same file one folder down, beside a real ../train: that one is read, as Ultralytics does
    (root / "sub").mkdir()
    (root / "sub" / "data.yaml").write_text("train: ../train/images\nnames: [cat, dog]\n")
    assert [s.image.name for s in read_split(root / "sub" / "data.yaml", "train").samples] == ["a.png", "b.png"]


def test_ultralytics_data_yaml_reads_as_the_same_yolo_split(tmp_path: Path) -> None:
    """An Ultralytics data.yaml (path, folder strings, names as {i: name}, nc, download) gives the
    same samples as our own spec for the same folders."""
    import pytest

    from yolox_edge.errors import UserError

    ours = make_yolo(tmp_path / "ds", {"a": (100, 50, "0 0.5 0.5 0.2 0.4\n1 0.25 0.5 0.1 0.2\n"),
                                       "b": (40, 40, None)})
    ul = tmp_path / "ul.yaml"
    ul.write_text("path: ds\ntrain: images\nval: images\ntest:\nnc: 2\nnames:\n  0: cat\n  1: dog\n"
                  "download: https://example.invalid/ds.zip\n"
                  "roboflow:\n  workspace: w\n  project: p\n  version: 1\n")  # as a Roboflow export writes
    want, got = read_split(ours, "train"), read_split(ul, "val")
    assert got.names == ["cat", "dog"] and got.problems == []
    assert [s.image.resolve() for s in got.samples] == [s.image.resolve() for s in want.samples]
    for g, w in zip(got.samples, want.samples):
        np.testing.assert_array_equal(g.boxes, w.boxes)
        np.testing.assert_array_equal(g.labels, w.labels)
    (tmp_path / "ds" / "plain.yaml").write_text("train: images\nval: images\nnames: [cat, dog]\n")
    assert len(read_split(tmp_path / "ds" / "plain.yaml", "train").samples) == 2  # no path: the YAML's folder
    (tmp_path / "ds" / "quoted.yaml").write_text("train: images\nnames: {'1': dog, '0': cat}\n")
    assert read_split(tmp_path / "ds" / "quoted.yaml", "train").names == ["cat", "dog"]

    for text, says in [
        ("path: nowhere\ntrain: images\nnames: [cat]\n", "nowhere: dataset folder not found"),
        ("path: ds\ntrain: [images, images]\nnames: [cat]\n", "give one images folder"),
        ("path: ds\ntrain: train.txt\nnames: [cat]\n", "labels: DIR}, adding list: FILE.txt"),
        ("path: ds\ntrain: images\nnames: {0: cat, 2: dog}\n", "keys 0..1"),
        ("path: ds\ntrain: images\nnames: {0: cat, x: dog}\n", "keys 0..1 (got 0, x)"),
        ("path: ds\ntrain: images\nnc: 3\nnames: [cat, dog]\n", "nc is 3 but names has 2"),
        ("path: ds\ntrain: images\nnames: [cat]\nkpt_shape: [17, 3]\n", "unknown key(s) kpt_shape"),
        ("path: ds\ntrain: images\nnames: [cat, dog, cat]\n", "'cat' listed more than once"),
        ("path: ds\ntrain: images\nnames: {0: cat, 1: cat}\n", "'cat' listed more than once"),
    ]:
        ul.write_text(text)
        with pytest.raises(UserError, match=r"ul\.yaml|nowhere") as e:
            read_split(ul, "train")
        assert says in str(e.value), (says, str(e.value))


def test_nan_or_inf_in_a_label_line_drops_the_line_with_a_problem(tmp_path: Path) -> None:
    # float() takes 'nan' and 'inf': an infinite class id made int() raise mid-read (a traceback
    # from `data check` and `train`), a NaN coordinate passed as a 'zero or negative area' box
    spec = make_yolo(tmp_path, {
        "a": (100, 100, "inf 0.5 0.5 0.2 0.2\nnan 0.5 0.5 0.2 0.2\n0 nan 0.5 0.2 0.2\n0 0.5 0.5 0.2 0.2\n"),
    })
    split = read_split(spec, "train")
    assert [problem_kind(p) for p in split.problems] == [BAD_ANNOTATION] * 3
    assert all("a.txt" in p and "not finite" in p for p in split.problems)
    np.testing.assert_allclose(split.samples[0].boxes, [[40, 40, 60, 60]], atol=1e-4)


def test_exif_rotated_phone_mpo_and_png_use_the_decoded_size(tmp_path: Path) -> None:
    """Pillow calls a phone JPEG holding a second picture 'MPO', and OpenCV rotates a PNG by its
    EXIF too: both were indexed at the stored size, so the labels were scaled along the wrong axes."""
    import cv2
    from PIL import Image

    (tmp_path / "images").mkdir()
    (tmp_path / "labels").mkdir()
    im = Image.fromarray(np.zeros((100, 200, 3), np.uint8))
    exif = im.getexif()
    exif[0x0112] = 6
    im.save(tmp_path / "images" / "m.jpg", "MPO", save_all=True, append_images=[im.copy()], exif=exif.tobytes())
    im.save(tmp_path / "images" / "p.png", "PNG", exif=exif.tobytes())
    for stem in ("m", "p"):
        (tmp_path / "labels" / f"{stem}.txt").write_text("0 0.5 0.5 0.5 0.5\n")
    (tmp_path / "data.yaml").write_text("format: yolo\nnames: [a]\ntrain: {images: images}\n")
    for s in read_split(tmp_path / "data.yaml", "train").samples:
        decoded = cv2.imread(str(s.image)).shape[:2]
        assert (s.height, s.width) == decoded, s.image.name
        if decoded == (200, 100):  # OpenCV rotated it (a JPEG always; a PNG from OpenCV 4.x on)
            np.testing.assert_allclose(s.boxes, [[25, 50, 75, 150]])


def test_a_label_or_list_file_saved_with_a_bom_reads_its_first_line(tmp_path: Path) -> None:
    """Windows Notepad writes UTF-8 with a byte-order mark: line 1 was 'not numbers: '\\ufeff0 0.5 ...'
    and its box lost; a BOM-only file was not seen as empty; a list's first image was not found."""
    bom = "\ufeff"
    spec = make_yolo(tmp_path, {"a": (100, 50, bom + "0 0.5 0.5 0.2 0.4\n1 0.25 0.5 0.1 0.2\n"),
                                "b": (40, 40, bom)})
    split = read_split(spec, "train")
    assert split.problems == []  # b.txt, a BOM alone, is empty: a background image
    assert split.samples[0].labels.tolist() == [0, 1] and split.samples[1].labels.tolist() == []
    (tmp_path / "list.txt").write_text(bom + "a.png\nb.png\n", encoding="utf-8")
    (tmp_path / "data.yaml").write_text("format: yolo\nnames: [cat, dog]\n"
                                        "train: {images: images, list: list.txt}\n")
    split = read_split(spec, "train")
    assert [s.image.name for s in split.samples] == ["a.png", "b.png"], split.problems
    assert not any(problem_kind(p) == MISSING for p in split.problems), split.problems


def test_a_label_file_in_pixels_is_one_line_saying_yolo_coordinates_are_fractions(tmp_path: Path) -> None:
    """Pixel labels gave a 'box outside the image: box [52650, 36696, ...]' line per box (the pixels
    times the image size again) and no hint of the cause; now one line per file says it."""
    from yolox_edge.data.check import NOT_FRACTIONS, check_dataset

    spec = make_yolo(tmp_path, {
        "a": (650, 417, "0 325.0 248.0 441.0 320.0\n1 100 100 50 50\n0 0.5 0.5 0.1 0.1\n"),
        "b": (100, 100, "0 0.5 0.5 0.2 1.004\n"),  # rounding at the border: no problem at all
        "c": (100, 100, "1 0.5 0.95 0.2 1.2\n"),  # above 1 but not pixels: the rule, without the guess
    })
    split = read_split(spec, "train")
    lines = [p for p in split.problems if problem_kind(p) == NOT_FRACTIONS]
    assert len(lines) == 2 and not any(problem_kind(p) == OUTSIDE for p in split.problems), split.problems
    a_line, c_line = lines
    assert "a.txt: coordinates above 1: values up to 441 in a 650x417 image, but YOLO coordinates are " \
           "fractions of the image (0..1); these look like pixels: divide x and w by the image width, y and h " \
           "by its height; 2 of its 3 box(es) dropped" in a_line, a_line
    assert "c.txt" in c_line and "(0..1); 0 of its 1 box(es) dropped, 1 clipped to the image" in c_line, c_line
    a, b, c = split.samples
    np.testing.assert_allclose(a.boxes, [[292.5, 187.65, 357.5, 229.35]], atol=1e-3)  # the line in fractions
    assert len(b.labels) == 1 and len(c.labels) == 1
    report = check_dataset(spec, splits=["train"], progress=False)
    assert report["problem_kinds"] == {NOT_FRACTIONS: 2} and report["splits"]["train"]["problems"] == 2


def test_a_yolo_split_has_no_category_ids(tmp_path: Path) -> None:
    spec = make_yolo(tmp_path, {"a": (100, 50, "0 0.5 0.5 0.2 0.4\n")})
    assert read_split(spec, "train").category_ids is None


def test_a_folders_gif_and_jfif_are_read_as_predict_reads_them_and_the_rest_named(tmp_path: Path) -> None:
    """A YOLO image folder listed IMAGE_SUFFIXES only: its .gif and .jfif pictures (which this
    OpenCV decodes, and predict DIR reads) were left out of training, data check and eval unsaid.
    Now they are samples; what OpenCV cannot decode is one line; a .gif beside a.png is a.png's
    duplicate; the label file of a left-out image is not called an orphan."""
    import cv2

    from yolox_edge.data.check import DUPLICATE, UNREADABLE, check_dataset

    spec = make_yolo(tmp_path, {"a": (40, 30, "0 0.5 0.5 0.5 0.5\n"), "b": (20, 20, None)})
    images, labels = tmp_path / "images", tmp_path / "labels"
    picture = cv2.imread(str(images / "a.png"))
    (images / "anim.gif").write_bytes(cv2.imencode(".gif", picture)[1].tobytes())
    (images / "download.jfif").write_bytes(cv2.imencode(".jpg", picture)[1].tobytes())  # a browser's JPEG
    (images / "a.gif").write_bytes(cv2.imencode(".gif", picture)[1].tobytes())
    (images / "scan.jxl").write_bytes(b"\xff\x0a" + bytes(40))  # no decoder here for JPEG XL
    (images / "IMG_1.HEIC").write_bytes(bytes(4) + b"ftypheic" + bytes(40))
    (labels / "anim.txt").write_text("1 0.5 0.5 0.5 0.5\n")
    (labels / "scan.txt").write_text("0 0.5 0.5 0.5 0.5\n")
    split = read_split(spec, "val")
    assert [s.image.name for s in split.samples] == ["a.png", "anim.gif", "b.png", "download.jfif"]
    assert split.samples[1].labels.tolist() == [1] and (split.samples[1].width, split.samples[1].height) == (40, 30)
    assert sorted(problem_kind(p) for p in split.problems) == [DUPLICATE, UNREADABLE], split.problems
    assert f"{images}: unreadable image: 2 images this OpenCV cannot decode left out (IMG_1.HEIC, scan.jxl; .heic, " \
           ".jxl): convert to JPEG or PNG (HEIC: 'heif-convert IMG.HEIC IMG.jpg')" in split.problems
    assert f"{images / 'a.gif'}: duplicate id: same stem as a.png (both would use a.txt); skipped" in split.problems
    report = check_dataset(spec, splits=["val"], progress=False)  # data check says the same line, reads the same images
    assert report["splits"]["val"]["images"] == 4 and report["problem_kinds"] == {UNREADABLE: 1, DUPLICATE: 1}


def test_the_index_of_a_folder_split_is_rebuilt_for_another_opencv(tmp_path: Path, monkeypatch) -> None:
    """Which .avif, .gif, ... a folder's split reads depends on the OpenCV build: an upgrade with
    more decoders (AVIF) must not keep the index that left them out."""
    import cv2

    spec = make_yolo(tmp_path, {"a": (40, 30, "0 0.5 0.5 0.5 0.5\n")})
    assert not getattr(read_split(spec, "val"), "from_cache", False)
    assert read_split(spec, "val").from_cache
    monkeypatch.setattr(cv2, "__version__", "99.0.0")
    assert not getattr(read_split(spec, "val"), "from_cache", False)


def test_images_in_subfolders_of_a_split_are_read_with_labels_at_the_same_path(tmp_path: Path) -> None:
    """Ultralytics reads every image below images/train, its label at the same path below
    labels/train; only the top level was read (3 of 4 labelled images lost, 'data check' clean).
    Hidden folders are not read; an orphan label in a subfolder is named by its path; an image
    added in a subfolder is seen through the index cache."""
    from data_synth import write_image

    root = tmp_path / "ds"
    items = {"a": "0 0.5 0.5 0.2 0.4\n", "seq1/b": "1 0.5 0.5 0.5 0.5\n", "seq1/c": "", "seq2/deep/d": "0 0.25 0.25 0.5 0.5\n"}
    for key, text in items.items():
        write_image(root / "images" / "train" / f"{key}.png", 40, 20)
        (root / "labels" / "train" / key).parent.mkdir(parents=True, exist_ok=True)
        (root / "labels" / "train" / f"{key}.txt").write_text(text)
    write_image(root / "images" / "train" / ".thumbs" / "e.png", 40, 20)  # not an image of the set
    (root / "labels" / "train" / "seq3").mkdir()
    (root / "labels" / "train" / "seq3" / "x.txt").write_text("0 0.5 0.5 0.1 0.1\n")
    spec = root / "data.yaml"
    spec.write_text("path: .\ntrain: images/train\nnames: [cat, dog]\n")
    split = read_split(spec, "train")
    got = {s.image.relative_to(root / "images" / "train").as_posix(): s for s in split.samples}
    assert sorted(got) == ["a.png", "seq1/b.png", "seq1/c.png", "seq2/deep/d.png"]
    assert list(got["seq1/b.png"].labels) == [1] and len(got["seq1/c.png"].labels) == 0
    np.testing.assert_allclose(got["seq2/deep/d.png"].boxes, [[0, 0, 20, 10]])
    orphans = [p for p in split.problems if problem_kind(p) == MISSING]
    assert len(orphans) == 1 and "seq3/x.txt has no image in" in orphans[0], split.problems
    assert read_split(spec, "train").from_cache
    write_image(root / "images" / "train" / "seq1" / "f.png", 40, 20)
    again = read_split(spec, "train")
    assert not getattr(again, "from_cache", False) and len(again.samples) == 5


def test_a_list_files_absolute_image_outside_images_is_watched_by_the_cache(tmp_path: Path) -> None:
    """A list's absolute path outside the images folder: the image replaced by one of another size
    was read from the cache with its old size, so its YOLO fractions became the old pixels."""
    from data_synth import write_image

    root = tmp_path / "ds"
    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir()
    (root / "labels" / "a.txt").write_text("0 0.5 0.5 0.5 0.5\n")
    outside = tmp_path / "elsewhere" / "a.png"
    write_image(outside, 200, 100)
    (root / "train.txt").write_text(f"{outside}\n")
    spec = root / "data.yaml"
    spec.write_text("format: yolo\nnames: [cat]\ntrain: {images: images, labels: labels, list: train.txt}\n")
    first = read_split(spec, "train")
    np.testing.assert_allclose(first.samples[0].boxes, [[50, 25, 150, 75]])
    assert read_split(spec, "train").from_cache
    write_image(outside, 400, 400)
    second = read_split(spec, "train")
    assert not getattr(second, "from_cache", False)
    np.testing.assert_allclose(second.samples[0].boxes, [[100, 100, 300, 300]])


def test_labelimgs_classes_txt_beside_the_labels_is_no_orphan_label(tmp_path: Path) -> None:
    """LabelImg's YOLO mode writes classes.txt into the labels folder (often the images folder
    itself): it was named as a label file without an image, which fails `data check --strict`."""
    spec = make_yolo(tmp_path / "ds", {"a": (100, 50, "0 0.5 0.5 0.2 0.4\n")})
    (tmp_path / "ds" / "labels" / "classes.txt").write_text("cat\ndog\n")
    (tmp_path / "ds" / "labels" / "stray.txt").write_text("0 0.5 0.5 0.2 0.4\n")
    problems = read_split(spec, "val").problems
    assert len(problems) == 1 and "stray.txt has no image" in problems[0], problems


def test_a_list_file_not_in_utf8_is_named(tmp_path: Path) -> None:
    """A list saved in a Windows code page, or as UTF-16 by PowerShell's '>', was a UnicodeDecodeError
    traceback in data check, train and eval."""
    import pytest

    from yolox_edge.errors import UserError

    make_yolo(tmp_path, {"a": (40, 40, "0 0.5 0.5 0.2 0.2\n")})
    (tmp_path / "list.txt").write_bytes("a.png\n".encode("utf-16"))
    (tmp_path / "data.yaml").write_text("format: yolo\nnames: [cat, dog]\n"
                                        "train: {images: images, list: list.txt}\n")
    with pytest.raises(UserError, match=r"list\.txt: not UTF-8 text \(byte 0xff at offset 0\); save it as UTF-8"):
        read_split(tmp_path / "data.yaml", "train")


def test_nc_that_is_no_number_is_said_so(tmp_path: Path) -> None:
    """nc: "1" with one name said 'nc is 1 but names has 1 entries'."""
    import pytest

    from yolox_edge.errors import UserError

    make_yolo(tmp_path / "ds", {"a": (40, 40, "0 0.5 0.5 0.2 0.2\n")})
    (tmp_path / "ul.yaml").write_text("path: ds\ntrain: images\nnc: '1'\nnames: [cat]\n")
    with pytest.raises(UserError, match=r"nc is '1'; it must be a whole number"):
        load_spec(tmp_path / "ul.yaml")


def test_linked_subfolders_are_read_once_and_a_loop_ends(tmp_path: Path) -> None:
    """images/train/batch2 and labels/train/batch2 as links to folders elsewhere (a dataset put
    together from batches): their images were left out without a word (Ultralytics reads them).
    A link back up the tree is walked once, not forever."""
    import os

    ds = make_yolo(tmp_path / "ds", {"a": (40, 40, "0 0.5 0.5 0.2 0.2\n")})
    make_yolo(tmp_path / "batch2", {"b": (40, 40, "1 0.5 0.5 0.2 0.2\n")})
    os.symlink(tmp_path / "batch2" / "images", tmp_path / "ds" / "images" / "batch2")
    os.symlink(tmp_path / "batch2" / "labels", tmp_path / "ds" / "labels" / "batch2")
    os.symlink(tmp_path / "ds" / "images", tmp_path / "ds" / "images" / "loop")
    os.symlink(tmp_path / "ds", tmp_path / "ds" / "images" / "up")  # a folder above: its images again, unlabelled
    split = read_split(ds, "train")
    assert [s.image.relative_to(tmp_path / "ds" / "images").as_posix() for s in split.samples] == \
        ["a.png", "batch2/b.png"], split.problems
    assert [s.labels.tolist() for s in split.samples] == [[0], [1]] and split.problems == []
    # the cached index sees a file added behind the link
    make_yolo(tmp_path / "batch2", {"c": (40, 40, "0 0.5 0.5 0.2 0.2\n")})
    assert len(read_split(ds, "train").samples) == 3
    # a link to a folder inside the tree is not read twice (under a name the labels folder lacks)
    os.makedirs(tmp_path / "ds" / "images" / "z")
    os.replace(tmp_path / "ds" / "images" / "a.png", tmp_path / "ds" / "images" / "z" / "a.png")
    os.makedirs(tmp_path / "ds" / "labels" / "z")
    os.replace(tmp_path / "ds" / "labels" / "a.txt", tmp_path / "ds" / "labels" / "z" / "a.txt")
    os.symlink(tmp_path / "ds" / "images" / "z", tmp_path / "ds" / "images" / "a_link")
    split = read_split(ds, "train")
    assert sorted(s.image.relative_to(tmp_path / "ds" / "images").as_posix() for s in split.samples) == \
        ["batch2/b.png", "batch2/c.png", "z/a.png"] and split.problems == [], split.problems
