"""`--json` means the same on every command: alone it prints JSON (report on stderr), with a
.json name it writes the file; a value that is not a .json name is refused before any work."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    from yolox_edge.engine.checkpoint import save_checkpoint
    from yolox_edge.models import create_model

    d = tmp_path_factory.mktemp("json_cli")
    save_checkpoint(d / "m.pt", create_model("test", num_classes=2), class_names=["a", "b"])
    cv2.imwrite(str(d / "img.jpg"), np.full((40, 60, 3), 90, np.uint8))
    return d


def test_json_alone_prints_only_json_and_the_report_moves_to_stderr(run_cli, small) -> None:
    code, out, err = run_cli("models", "--variant", "nano", "--json")
    assert code == 0, err
    assert [r["name"] for r in json.loads(out)] == ["nano"]
    assert "params(M)" in err  # the table, for the person watching
    code, out, err = run_cli("predict", small / "m.pt", small / "img.jpg", "--json", "--conf", "0")
    assert code == 0, err
    assert json.loads(out)[0]["image"] == str(small / "img.jpg")
    assert "detections" in err


def test_json_with_a_file_writes_it_and_keeps_the_report(run_cli, small, tmp_path) -> None:
    code, out, err = run_cli("predict", small / "m.pt", small / "img.jpg", "--json", tmp_path / "d.json")
    assert code == 0, err
    assert "detections" in out
    assert json.loads((tmp_path / "d.json").read_text())[0]["image"] == str(small / "img.jpg")
    code, out, _ = run_cli("models", "--variant", "tiny", "--json", tmp_path / "m.json")
    assert code == 0 and "params(M)" in out
    assert json.loads((tmp_path / "m.json").read_text())[0]["name"] == "tiny"


def test_a_positional_taken_as_the_json_value_is_refused_and_left_alone(run_cli, small) -> None:
    before = (small / "m.pt").read_bytes()
    code, out, err = run_cli("predict", "--json", small / "m.pt", small / "img.jpg", small / "img.jpg")
    assert code == 2 and "Traceback" not in err
    assert ".json" in err and "m.pt" in err
    assert (small / "m.pt").read_bytes() == before  # was about to become the JSON output


def test_predict_into_its_own_folder_twice_skips_its_annotated_copies(run_cli, small, tmp_path) -> None:
    import shutil

    d = tmp_path / "photos"
    d.mkdir()
    shutil.copy(small / "img.jpg", d / "a.jpg")
    for _ in range(2):
        code, out, err = run_cli("predict", small / "m.pt", d, "--save-dir", d, "--conf", "0.9")
        assert code == 0, err
        assert out.count("detections") == 1 and "a_pred.jpg" not in out  # the second run read a_pred.jpg too
    assert sorted(p.name for p in d.iterdir()) == ["a.jpg", "a_pred.jpg"]
    # the same through a shell glob (photos/*.jpg names every file): a_pred.jpg was read back, and each
    # run added a generation (a_jpg_pred.jpg, a_pred_pred.jpg, ...)
    for _ in range(2):
        code, out, err = run_cli("predict", small / "m.pt", *sorted(d.glob("*.jpg")), "--save-dir", d, "--conf", "0.9")
        assert code == 0 and out.count("detections") == 1 and "skipped 1 annotated copy" in err, (out, err)
    assert sorted(p.name for p in d.iterdir()) == ["a.jpg", "a_pred.jpg"]
    # a photo of the user's that happens to be called *_pred.jpg (no source beside it) is an input,
    # and no annotated copy is ever written over an input
    e = tmp_path / "mine"
    e.mkdir()
    shutil.copy(small / "img.jpg", e / "cat_pred.jpg")
    shutil.copy(small / "img.jpg", e / "cat.jpg")
    shutil.copy(small / "img.jpg", e / "dog_pred.jpg")
    before = (e / "dog_pred.jpg").read_bytes()
    code, out, err = run_cli("predict", small / "m.pt", e, "--save-dir", e, "--conf", "0.9")
    assert code == 0, err
    assert "dog_pred.jpg: 0 detections" in out and "cat.jpg: 0 detections" in out
    assert "skipped 1 annotated copy of an earlier run (cat_pred.jpg" in err
    assert (e / "dog_pred.jpg").read_bytes() == before and (e / "dog_pred_pred.jpg").is_file()


def test_predict_json_gives_each_detection_the_models_category_id(run_cli, small, tmp_path) -> None:
    """A model trained on COCO-format data keeps the json's ids; each detection names its own, on
    images and on a video's frames. A model without ids (voc/yolo data) writes no category_id."""
    from yolox_edge.engine.checkpoint import save_checkpoint
    from yolox_edge.models import create_model

    ckpt = save_checkpoint(tmp_path / "ids.pt", create_model("test", num_classes=3), class_names=["a", "b", "c"],
                           category_ids=[7, 12, 40])
    code, out, err = run_cli("predict", ckpt, small / "img.jpg", "--json", "--conf", "0")
    assert code == 0, err
    dets = json.loads(out)[0]["detections"]
    assert dets and all(d["category_id"] == [7, 12, 40][d["label"]] for d in dets)
    clip = tmp_path / "clip.mp4"
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"mp4v"), 25.0, (60, 40))
    for i in range(2):
        writer.write(np.full((40, 60, 3), 90 + 20 * i, np.uint8))
    writer.release()
    code, out, err = run_cli("predict", ckpt, clip, "--json", "--conf", "0")
    assert code == 0, err
    frames = json.loads(out)[0]["frames"]
    assert all(d["category_id"] == [7, 12, 40][d["label"]] for f in frames for d in f["detections"])
    assert sum(len(f["detections"]) for f in frames)
    code, out, err = run_cli("predict", small / "m.pt", small / "img.jpg", "--json", "--conf", "0")
    assert code == 0 and not any("category_id" in d for d in json.loads(out)[0]["detections"])


def test_a_json_file_is_on_disk_when_written(tmp_path, fsync_log) -> None:
    """--json FILE: the file is flushed before its rename and its folder after; the folder was
    not flushed, so a power loss could lose the rename (and leave an earlier run's file)."""
    from yolox_edge.cli.jsonout import write_json

    path = tmp_path / "out" / "eval.json"
    write_json({"AP": 0.5}, str(path))
    fsync_log.assert_durable(path)
    assert json.loads(path.read_text()) == {"AP": 0.5}


def _folder_flushes(fsync_log, folder) -> int:
    st = folder.stat()
    return sum(1 for e in fsync_log.events if e[0] == "sync" and e[1] == (st.st_dev, st.st_ino))


@pytest.mark.parametrize("stop_at", [None, 3])
def test_predict_save_dir_flushes_each_image_and_the_folder_once(run_cli, small, tmp_path, fsync_log, monkeypatch,
                                                                 stop_at) -> None:
    """predict FOLDER --save-dir: each annotated copy is flushed before its rename, the folder once
    after the last (a flush per image doubled the flushes), and once when Ctrl-C stops the run, so
    the copies written are on disk when the command returns."""
    import shutil

    from yolox_edge.runtime.predictor import Predictor

    src, vis = tmp_path / "in", tmp_path / "vis"
    src.mkdir()
    for name in "abcd":
        shutil.copy(small / "img.jpg", src / f"{name}.jpg")
    if stop_at:
        real, calls = Predictor.predict, []

        def stops(self, img, *a, **k):
            calls.append(1)
            if len(calls) == stop_at:
                raise KeyboardInterrupt
            return real(self, img, *a, **k)

        monkeypatch.setattr(Predictor, "predict", stops)
    fsync_log.events.clear()
    code, _out, err = run_cli("predict", small / "m.pt", src, "--save-dir", vis, "--conf", "0.9")
    images = sorted(vis.iterdir())
    assert [p.name for p in images] == [f"{n}_pred.jpg" for n in ("abcd" if not stop_at else "ab")], err
    assert code == (0 if not stop_at else 130), err
    last = max(fsync_log.assert_durable(p) for p in images)
    assert _folder_flushes(fsync_log, vis) == 1 and fsync_log.synced(vis, last + 1), fsync_log.events


def test_json_naming_a_file_the_command_uses_is_refused_and_left_alone(run_cli, small, tmp_path) -> None:
    """--json over an input replaced it and exited 0: the run being compared, an export's
    metadata, a calibration set's manifest, the data spec's labels. Refused first, file untouched."""
    export, calib, data = tmp_path / "export", tmp_path / "calib", tmp_path / "data"
    for d in (export, calib, data / "imgs"):
        d.mkdir(parents=True)
    (export / "metadata.json").write_text('{"meta": 1}')
    (export / "yolox_test.onnx").write_bytes(b"onnx")
    (calib / "manifest.json").write_text('{"manifest": 1}')
    (data / "gt.json").write_text('{"images": [], "annotations": [], "categories": [{"id": 1, "name": "a"}]}')
    (data / "data.yaml").write_text("format: coco\nval: {annotations: gt.json, images: imgs}\n")
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text('{"run": "a"}')
    b.write_text('{"run": "b"}')
    before = {p: p.read_bytes() for p in (a, b, export / "metadata.json", calib / "manifest.json", data / "gt.json")}
    cases = [
        (["bench-compare", a, b], b, ""),
        (["bench-compare", a, b], tmp_path / "." / "a.json", ""),
        (["info", export], export / "metadata.json", f"(that of {export})"),
        (["info", export / "yolox_test.onnx"], export / "metadata.json", "(that of"),
        (["predict", export, small / "img.jpg"], export / "metadata.json", "(that of"),
        (["bench", export, "--runs", "1"], export / "metadata.json", "(that of"),
        (["eval", export, "--data", data / "data.yaml"], export / "metadata.json", "(that of"),
        (["calibrate", "--show", calib], calib / "manifest.json", f"(that of {calib})"),
        (["calibrate", "--data", small, "--out", tmp_path / "new_calib", "--img-size", "32"],
         tmp_path / "new_calib" / "manifest.json", "uses;"),  # the manifest this run writes
    ]
    for args, target, named in cases:
        code, _out, err = run_cli(*args, "--json", target)
        assert code == 2 and "Traceback" not in err, (args, err)
        assert f"{target}: --json names a file this command uses" in err and named in err, (args, err)
    for args in (["eval", small / "m.pt", "--data", data / "data.yaml"], ["data", "check", data / "data.yaml"],
                 ["calibrate", "--data", data / "data.yaml", "--out", tmp_path / "c2", "--img-size", "32"]):
        code, _out, err = run_cli(*args, "--json", data / "gt.json")
        assert code == 2 and "--json names a file of the data spec" in err, (args, err)
    assert {p: p.read_bytes() for p in before} == before
    assert not (tmp_path / "new_calib").exists() and not (tmp_path / "c2").exists()


def test_report_log_and_picture_files_naming_an_input_are_refused_and_left_alone(run_cli, small, tmp_path) -> None:
    """bench --plot over the --image photo, convert --log over the calibration manifest or the new
    checkpoint, demo --save over the input photo: each replaced the file and exited 0."""
    import shutil

    photo = tmp_path / "photo.png"
    cv2.imwrite(str(photo), np.full((40, 60, 3), 90, np.uint8))
    calib = tmp_path / "calib"
    calib.mkdir()
    (calib / "manifest.json").write_text('{"manifest": 1}')
    ckpt = shutil.copy(small / "m.pt", tmp_path / "m.pt")
    before = {p: p.read_bytes() for p in (photo, calib / "manifest.json", Path(ckpt))}
    cases = [
        (["bench", ckpt, "--image", photo, "--runs", "1", "--plot", photo], "--plot", ""),
        (["convert", ckpt, "--to", "nano_hswish", "--calib", calib, "--out", tmp_path / "c.pt",
          "--log", calib / "manifest.json"], "--log", f"(that of {calib})"),
        (["convert", ckpt, "--to", "nano_hswish", "--calib", calib, "--out", tmp_path / "same.json",
          "--log", tmp_path / "same.json"], "--log", ""),
        (["demo", "--image", photo, "--save", photo], "--save", ""),
    ]
    for args, flag, named in cases:
        code, _out, err = run_cli(*args)
        assert code == 2 and len(err.strip().splitlines()) == 1, (args, err)
        assert f"{flag} names a file this command uses" in err and named in err, (args, err)
    code, _out, err = run_cli("demo", "--image", photo, "--save", tmp_path / "x.txt")
    assert code == 2 and "--save takes an image file name OpenCV can write" in err and "Traceback" not in err, err
    assert {p: p.read_bytes() for p in before} == before and not (tmp_path / "same.json").exists()
