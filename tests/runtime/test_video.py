"""Video input: predict_video per frame, the annotated copy, bad files, and ``predict clip.mp4``."""
from __future__ import annotations

import json
import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from yolox_edge.errors import UserError
from yolox_edge.runtime import load_predictor, predict_video
from yolox_edge.runtime.video import is_video, open_video

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def write_clip(path: Path, frames: list[np.ndarray], fps: float = 25.0) -> Path:
    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    assert writer.isOpened()
    for f in frames:
        writer.write(f)
    writer.release()
    return path


def count_frames(path: Path) -> tuple[int, tuple[int, int]]:
    cap = cv2.VideoCapture(str(path))
    n, shape = 0, None
    while True:
        ok, f = cap.read()
        if not ok:
            break
        n, shape = n + 1, f.shape[:2]
    cap.release()
    return n, shape


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, (72, 120, 3), dtype=np.uint8)
    return write_clip(tmp_path_factory.mktemp("clip") / "clip.mp4", [np.roll(base, 3 * i, axis=1) for i in range(7)])


def test_each_frame_is_predicted_as_an_image_is(tiny_ckpt, clip, tmp_path) -> None:
    pred = load_predictor(tiny_ckpt, conf=0.05)
    out = tmp_path / "sub" / "clip_pred.mp4"
    frames = list(predict_video(pred, clip, save_to=out, progress=False))
    assert [f.index for f in frames] == list(range(7))
    assert [f.time_s for f in frames] == pytest.approx([i / 25 for i in range(7)])
    assert sum(len(f.detections) for f in frames) > 0
    for f in frames:  # the same numbers as predicting the decoded frame as an image
        ref = pred.predict(f.image)
        np.testing.assert_array_equal(ref.boxes, f.detections.boxes)
        np.testing.assert_array_equal(ref.scores, f.detections.scores)
        assert f.image.shape == (72, 120, 3)
    assert count_frames(out) == (7, (72, 120))
    umask = os.umask(0)
    os.umask(umask)
    assert out.stat().st_mode & 0o777 == 0o666 & ~umask  # an ordinary file, not mkstemp's private 0600
    assert [p.name for p in out.parent.iterdir()] == ["clip_pred.mp4"]  # no temp left beside it


def test_stopping_early_leaves_no_video(tiny_ckpt, clip, tmp_path) -> None:
    pred = load_predictor(tiny_ckpt)
    out = tmp_path / "clip_pred.mp4"
    frames = predict_video(pred, clip, save_to=out, progress=False)
    next(frames)
    next(frames)
    frames.close()  # the caller breaks out of its loop
    assert list(tmp_path.iterdir()) == []


def test_keep_stopped_keeps_a_playable_video_of_the_frames_done(tiny_ckpt, clip, tmp_path) -> None:
    """predict's Ctrl-C or SIGTERM in a long video lost its whole annotated copy: with keep_stopped
    the frames done are kept, the MP4 closed (its index written) and renamed into place."""
    pred = load_predictor(tiny_ckpt)
    out = tmp_path / "clip_pred.mp4"
    frames = predict_video(pred, clip, save_to=out, progress=False, keep_stopped=True)
    next(frames)
    next(frames)
    frames.close()  # the caller stops its loop
    assert count_frames(out) == (2, (72, 120))
    assert [p.name for p in tmp_path.iterdir()] == ["clip_pred.mp4"]  # no temp left beside it
    real, calls = pred.predict, []

    def predict(img):
        calls.append(1)
        if len(calls) == 4:  # Ctrl-C in the model's call of the fourth frame
            raise KeyboardInterrupt
        return real(img)

    pred.predict = predict
    with pytest.raises(KeyboardInterrupt):
        list(predict_video(pred, clip, save_to=out, progress=False, keep_stopped=True))
    assert count_frames(out) == (3, (72, 120)) and len(list(tmp_path.iterdir())) == 1


def test_on_frame_records_exactly_the_frames_the_kept_video_holds(tiny_ckpt, clip, tmp_path, monkeypatch) -> None:
    """on_frame is called before each frame's write, with no stop between the two: a stop in it
    (here in the fourth frame's record) leaves that frame out of the video too, and a stop the
    moment a frame is written (a signal, held off) comes after its record."""
    import signal

    from yolox_edge.runtime.video import AtomicVideoWriter

    pred = load_predictor(tiny_ckpt)
    out = tmp_path / "clip_pred.mp4"
    recorded: list[int] = []

    def record(f) -> None:
        if f.index == 3:
            raise KeyboardInterrupt
        recorded.append(f.index)

    with pytest.raises(KeyboardInterrupt):
        list(predict_video(pred, clip, save_to=out, progress=False, keep_stopped=True, on_frame=record))
    assert recorded == [0, 1, 2] and count_frames(out)[0] == 3
    recorded.clear()
    real = AtomicVideoWriter.write

    def write(self, frame) -> None:
        real(self, frame)
        if len(recorded) == 2:
            signal.raise_signal(signal.SIGINT)

    monkeypatch.setattr(AtomicVideoWriter, "write", write)
    with pytest.raises(KeyboardInterrupt):
        list(predict_video(pred, clip, save_to=out, progress=False, keep_stopped=True,
                           on_frame=lambda f: recorded.append(f.index)))
    assert recorded == [0, 1] and count_frames(out)[0] == 2


def test_bad_videos_name_the_file(tiny_ckpt, tmp_path) -> None:
    pred = load_predictor(tiny_ckpt)
    with pytest.raises(UserError, match=r"nope\.mp4: no such video"):
        list(predict_video(pred, tmp_path / "nope.mp4", progress=False))
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"not a video " * 50)
    with pytest.raises(UserError, match=r"junk\.mp4: cannot be read as a video .*convert it to MP4"):
        open_video(junk)
    # the suggested command must not name the input as its output (ffmpeg cannot write the
    # file it reads): it was 'ffmpeg -i junk.mp4 junk.mp4'
    with pytest.raises(UserError, match=r"'ffmpeg -i junk\.mp4 junk_h264\.mp4'"):
        open_video(junk)
    assert is_video("a/B.MOV") and is_video("x.mkv") and not is_video("x.jpg")


def test_a_video_named_in_another_encoding_is_one_line_not_a_crash(tmp_path) -> None:
    """OpenCV's VideoCapture and VideoWriter crash the process (SIGSEGV) on a path whose bytes
    are not UTF-8; such a name is refused first, reading and writing."""
    import os

    from yolox_edge.runtime.video import AtomicVideoWriter

    odd = tmp_path / os.fsdecode(b"v\xff.mp4")
    odd.write_bytes(b"not a video " * 50)
    with pytest.raises(UserError, match="video's path has bytes that are not UTF-8"):
        open_video(odd)
    with pytest.raises(UserError, match="annotated video's path has bytes that are not UTF-8"):
        AtomicVideoWriter(tmp_path / os.fsdecode(b"out\xff.mp4"), 25.0, (64, 48))


def test_a_damaged_video_is_one_line_without_ffmpegs_own(tiny_ckpt, tmp_path) -> None:
    """OpenCV's FFmpeg printed '[mov,mp4,...] moov atom not found' above our line; the CLI
    silences it (a fresh process: FFmpeg reads its log level once per process)."""
    import os
    import subprocess
    import sys

    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 8)  # an MP4 header, no moov atom
    env = {k: v for k, v in os.environ.items() if k != "OPENCV_FFMPEG_LOGLEVEL"}
    proc = subprocess.run([sys.executable, "-m", "yolox_edge", "predict", str(tiny_ckpt), str(bad)], env=env,
                          capture_output=True, text=True, timeout=120)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2 and len(lines) == 1 and "broken.mp4: cannot be read as a video" in lines[0], proc.stderr


def test_predict_cli_on_a_video(tiny_ckpt, clip, tmp_path, run_cli) -> None:
    code, out, err = run_cli("predict", tiny_ckpt, clip, "--conf", "0.05", "--json", str(tmp_path / "r.json"),
                             "--save-dir", str(tmp_path / "vis"))
    assert code == 0, err
    (record,) = json.loads((tmp_path / "r.json").read_text())
    assert record["video"] == str(clip) and record["fps"] == pytest.approx(25.0)
    assert [f["frame"] for f in record["frames"]] == list(range(7))
    total = sum(len(f["detections"]) for f in record["frames"])
    assert f"{clip}: 7 frames, {total} detections" in out
    assert count_frames(tmp_path / "vis" / "clip_pred.mp4")[0] == 7
    assert "replaced" not in err and "cut short" not in err
    code, _out, err = run_cli("predict", tiny_ckpt, clip, "--save-dir", str(tmp_path / "vis"))
    assert code == 0 and "replaced 1 annotated copy of an earlier run" in err, err


def test_a_video_cut_short_is_said(tiny_ckpt, tmp_path, run_cli) -> None:
    """A cut file (a partial download) decodes up to the cut without an error: 14 of its 150 stated
    frames ended with exit 0 and no word."""
    rng = np.random.default_rng(0)
    whole = tmp_path / "whole.avi"
    writer = cv2.VideoWriter(str(whole), cv2.VideoWriter_fourcc(*"MJPG"), 25, (64, 48))
    assert writer.isOpened()
    for _ in range(60):
        writer.write(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8))
    writer.release()
    cut = tmp_path / "cut.avi"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 3])
    n = count_frames(cut)[0]
    assert 0 < n < 50
    code, out, err = run_cli("predict", tiny_ckpt, cut)
    assert code == 0 and f"{cut}: {n} frames" in out, err
    assert f"note: {cut}: read {n} of the 60 frames the file states; it may be cut short" in err, err


def test_readme_says_a_videos_json_is_a_list_holding_its_record() -> None:
    """The README said 'in the JSON one record, {"video", ...}'; the file holds a list with that
    record in it (one per input, as for images), which test_predict_cli_on_a_video reads."""
    readme = " ".join((Path(__file__).parents[2] / "README.md").read_text().split())
    assert ('`--json` writes a JSON list with one record per input, in order (an image\'s is `{"image", '
            '"detections"}`), so one clip gives a list holding one record, `[{"video", "fps", "fps_stated", '
            '"frames": [{"frame", "time_s", "detections"}]}]`') in readme
    assert "in the JSON one record" not in readme


def empty_avi(path: Path) -> Path:
    """An AVI that opens (a valid header) but holds no frame."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25, (64, 48))
    writer.release()
    return path


def test_predict_cli_refuses_a_bad_video_before_loading_the_model(tmp_path, run_cli) -> None:
    junk = tmp_path / "junk.mov"
    junk.write_bytes(b"\0" * 100)
    code, _out, err = run_cli("predict", str(tmp_path / "missing.pt"), str(junk))
    assert code == 2 and "junk.mov: cannot be read as a video" in err and "missing.pt" not in err, err
    empty = empty_avi(tmp_path / "empty.avi")
    code, _out, err = run_cli("predict", str(tmp_path / "missing.pt"), str(empty))
    assert code == 2 and "empty.avi: no frame could be decoded" in err and "missing.pt" not in err, err


def test_a_video_without_frames_writes_nothing(tiny_ckpt, tmp_path) -> None:
    pred = load_predictor(tiny_ckpt)
    with pytest.raises(UserError, match="empty.avi: no frame could be decoded"):
        list(predict_video(pred, empty_avi(tmp_path / "empty.avi"), save_to=tmp_path / "out" / "e.mp4",
                           progress=False))
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []


@pytest.mark.refdata
def test_official_nano_on_a_clip(refdata, nano_coco_ckpt, tmp_path) -> None:
    """dog.jpg as a two-frame clip, the second moved right 48 px: the official objects in the
    first frame's pixels, and the car's box moved with the second (mp4v's compression moves
    an edge by a few pixels; the Nano's own boxes wobble more than that under a shift)."""
    img = cv2.imread(str(refdata / "images" / "dog.jpg"))
    clip = write_clip(tmp_path / "dog.mp4", [img, np.roll(img, 48, axis=1)])
    pred = load_predictor(nano_coco_ckpt, conf=0.5)
    first, second = ({pred.class_names[int(c)]: b for c, b in zip(f.detections.labels, f.detections.boxes)}
                     for f in predict_video(pred, clip, progress=False))
    assert set(first) == set(second) == {"dog", "bicycle", "car"}, (sorted(first), sorted(second))
    # refdata/README.md's boxes on the image itself (the bicycle's left edge is the unsteady one)
    for name, want in (("dog", [133, 207, 326, 543]), ("car", [466, 78, 692, 171])):
        assert np.abs(first[name] - want).max() <= 8, (name, first[name])
    assert np.abs(second["car"] - first["car"] - [48, 0, 48, 0]).max() <= 8, second["car"] - first["car"]


@pytest.mark.parametrize("replace", [True, False])
def test_the_annotated_video_is_on_disk_when_committed(tmp_path, fsync_log, replace) -> None:
    """OpenCV writes the temp file unflushed; commit flushes it before the rename (or, with
    replace=False, the link to a free name) and the folder after. It was a bare rename."""
    from yolox_edge.runtime.video import AtomicVideoWriter

    out = tmp_path / "clip_pred.mp4"
    out.write_bytes(b"an earlier run's")
    writer = AtomicVideoWriter(out, 25.0, (64, 48), replace=replace)
    for i in range(3):
        writer.write(np.full((48, 64, 3), 40 * i, np.uint8))
    path = writer.commit()
    assert (path == out) == replace and count_frames(path) == (3, (48, 64))
    fsync_log.assert_durable(path)


def test_frames_too_large_for_the_mp4_encoder_are_named_as_such(tmp_path, monkeypatch) -> None:
    """8192 px or more a side: the message blamed a missing 'mp4v' encoder and said to reinstall OpenCV."""
    from yolox_edge.errors import UserError
    from yolox_edge.runtime.video import AtomicVideoWriter

    monkeypatch.setenv("OPENCV_FFMPEG_LOGLEVEL", "-8")
    with pytest.raises(UserError, match="OpenCV's MP4 encoder takes frames under 8192 pixels a side, and these are "
                                        "8200x16; drop --save-dir"):
        AtomicVideoWriter(tmp_path / "wide.mp4", 25.0, (8200, 16))
    assert not list(tmp_path.iterdir())  # its temp removed


def test_a_video_missing_frames_is_refused_not_named(tmp_path) -> None:
    """OpenCV's writer reports nothing when a frame fails to be written (a full disk: 'Failed to write
    frame' on stderr, then an MP4 without its index): the broken file took the video's name and the
    run ended as saved. commit now counts the frames in the file and refuses a short one."""
    from yolox_edge.errors import UserError
    from yolox_edge.runtime.video import AtomicVideoWriter

    class Dropping:  # every other frame lost, as the encoder loses them when a write fails
        def __init__(self, writer) -> None:
            self.writer, self.calls = writer, 0

        def write(self, frame) -> None:
            self.calls += 1
            if self.calls % 2:
                self.writer.write(frame)

        def release(self) -> None:
            self.writer.release()

    out = tmp_path / "clip_pred.mp4"
    out.write_bytes(b"an earlier run's")
    writer = AtomicVideoWriter(out, 25.0, (64, 48))
    writer.writer = Dropping(writer.writer)
    for i in range(6):
        writer.write(np.full((48, 64, 3), 40 * i, np.uint8))
    with pytest.raises(UserError, match=r"clip_pred\.mp4: the annotated video could not be written whole \(6 frames "
                                        r"given, the file holds 3\); check the free space in "):
        writer.commit()
    assert out.read_bytes() == b"an earlier run's" and [f.name for f in tmp_path.iterdir()] == ["clip_pred.mp4"]
