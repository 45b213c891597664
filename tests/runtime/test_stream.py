"""Live input: predict_stream on a clip read as if live and on a fake camera, and ``predict --camera``.

No camera here: the source opener is swapped for one returning a FakeCamera (frames from a list,
then the end, or the user's Ctrl-C), and a clock that steps a fixed interval per frame makes the
wall-clock times exact.
"""
from __future__ import annotations

import itertools
import json
import os
import re
import signal
from pathlib import Path
from typing import Callable

import numpy as np
import pytest

from yolox_edge.errors import BadArgument, UserError
from yolox_edge.runtime import load_predictor, predict_stream
from yolox_edge.runtime import live_source as source_mod
from yolox_edge.runtime import stream as stream_mod
from yolox_edge.runtime.live_source import LiveSource, as_live_source, is_stream_url
from yolox_edge.runtime.stream import measured_rate, steady_rate

from test_video import count_frames, write_clip

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def frames_of(n: int) -> list[np.ndarray]:
    rng = np.random.default_rng(1)
    base = rng.integers(0, 256, (48, 80, 3), dtype=np.uint8)
    return [np.roll(base, 5 * i, axis=1) for i in range(n)]


class FakeCamera:
    """The given frames, then ``then`` raised (KeyboardInterrupt: the user's Ctrl-C) or the end."""

    def __init__(self, frames: list[np.ndarray], then: BaseException | Callable[[], None] | None = None) -> None:
        self.frames, self.then, self.released = list(frames), then, False

    def read(self) -> tuple[bool, np.ndarray | None]:
        if self.frames:
            return True, self.frames.pop(0)
        if isinstance(self.then, BaseException):
            raise self.then
        if self.then is not None:
            self.then()
        return False, None

    def release(self) -> None:
        self.released = True


def stepping_clock(step: float):
    """A clock that moves ``step`` seconds each time it is read (once per frame read)."""
    ticks = itertools.count()
    return lambda: 100.0 + step * next(ticks)


@pytest.fixture(scope="module")
def live_clip(tmp_path_factory) -> Path:
    return write_clip(tmp_path_factory.mktemp("live") / "live.mp4", frames_of(7))


def test_sources_urls_and_names() -> None:
    assert is_stream_url("rtsp://10.0.0.2:8554/cam1") and is_stream_url("HTTPS://x/y.m3u8")
    assert not is_stream_url("clip.mp4") and not is_stream_url("/dev/video0") and not is_stream_url(Path("a://b"))
    cam = as_live_source("0")
    assert cam == LiveSource(0) and cam.is_camera and cam.label == "camera 0" and cam.name == "camera0"
    dev = as_live_source("/dev/video2", (320, 240))
    assert dev.is_camera and dev.size_wh == (320, 240) and dev.name == "camera2" and dev.label == "/dev/video2"
    url = as_live_source("rtsp://admin:s3cret@10.0.0.2:554/Streaming/cam1")
    assert not url.is_camera and url.name == "cam1"
    assert url.label == "rtsp://admin:***@10.0.0.2:554/Streaming/cam1"  # a password never reaches a log
    assert as_live_source("http://10.0.0.2:8080/").name == "10.0.0.2_8080"
    assert as_live_source("https://example.org/live/stream.m3u8").name == "stream"
    with pytest.raises(UserError, match=r"ftp://h/x: not a stream address this reads \(it reads rtsp"):
        as_live_source("ftp://h/x")
    with pytest.raises(BadArgument, match="only be asked of a camera"):
        as_live_source("rtsp://h/x", (640, 480))
    assert measured_rate([0.0]) is None and measured_rate([0.0, 0.5, 1.0]) == pytest.approx(2.0)
    # the model's first run and a hiccup do not set the recording's pace
    assert steady_rate([0.0, 2.0, 2.25, 2.5, 4.0, 4.25]) == pytest.approx(4.0)
    assert steady_rate([0.0, 0.5]) == pytest.approx(2.0) and steady_rate([1.0]) is None


def test_a_clip_read_live_stops_at_max_frames(tiny_ckpt, live_clip, tmp_path) -> None:
    pred = load_predictor(tiny_ckpt, conf=0.05)
    out = tmp_path / "rec" / "live_pred.mp4"
    with predict_stream(pred, str(live_clip), max_frames=5, save_to=out, progress=False,
                        clock=stepping_clock(0.1), newest_only=False) as live:
        frames = list(live)
    assert [f.index for f in frames] == list(range(5))
    assert [f.time_s for f in frames] == pytest.approx([0.0, 0.1, 0.2, 0.3, 0.4])  # the clock's, not the file's
    assert sum(len(f.detections) for f in frames) > 0
    for f in frames:
        np.testing.assert_array_equal(pred.predict(f.image).boxes, f.detections.boxes)
    assert live.stopped == "frames" and live.frames == 5 and live.fps == pytest.approx(10.0)
    assert live.saved == out and live.record_fps == pytest.approx(10.0)
    assert count_frames(out) == (5, (48, 80))
    assert [p.name for p in out.parent.iterdir()] == ["live_pred.mp4"]


def test_duration_and_the_end_of_the_stream(tiny_ckpt, live_clip, tmp_path) -> None:
    pred = load_predictor(tiny_ckpt)
    live = predict_stream(pred, str(live_clip), duration_s=0.6, progress=False, clock=stepping_clock(0.25), newest_only=False)
    assert [f.time_s for f in live] == pytest.approx([0.0, 0.25, 0.5]) and live.stopped == "duration"
    cam = FakeCamera(frames_of(7))
    live = predict_stream(pred, 0, save_to=tmp_path / "c.mp4", progress=False, opener=lambda src: cam,
                          clock=stepping_clock(0.5), newest_only=False)
    assert len(list(live)) == 7 and live.stopped == "ended" and cam.released
    # the first 2 s were held to measure the rate, the rest written as they came; all are kept
    assert live.record_fps == pytest.approx(2.0) and count_frames(tmp_path / "c.mp4")[0] == 7


def test_an_interrupt_keeps_the_recording(tiny_ckpt, tmp_path) -> None:
    pred = load_predictor(tiny_ckpt)
    seen = []
    # raised inside the read (Ctrl-C while waiting for the camera)
    with pytest.raises(KeyboardInterrupt):
        for f in predict_stream(pred, 0, save_to=tmp_path / "a.mp4", progress=False,
                                opener=lambda src: FakeCamera(frames_of(3), KeyboardInterrupt()), newest_only=False):
            seen.append(f.index)
    assert seen == [0, 1, 2] and count_frames(tmp_path / "a.mp4")[0] == 3
    # raised in the caller's loop body: leaving the with block closes the run
    with pytest.raises(KeyboardInterrupt):
        with predict_stream(pred, 0, save_to=tmp_path / "b.mp4", progress=False,
                            opener=lambda src: FakeCamera(frames_of(6)), newest_only=False) as live:
            for f in live:
                if f.index == 1:
                    raise KeyboardInterrupt
    assert live.stopped == "closed" and count_frames(tmp_path / "b.mp4")[0] == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.mp4", "b.mp4"]  # no temp file left


def test_a_recording_never_overwrites_a_file_that_appeared_meanwhile(tiny_ckpt, tmp_path) -> None:
    # Two runs that picked the same free name at their start: the one ending second must not
    # write over the first one's recording (a live source cannot be recorded again).
    pred = load_predictor(tiny_ckpt)
    target = tmp_path / "same.mp4"

    def other_run_finishes() -> None:
        target.write_bytes(b"the other run's recording")

    with predict_stream(pred, 0, save_to=target, progress=False, newest_only=False,
                        opener=lambda src: FakeCamera(frames_of(3), other_run_finishes)) as live:
        assert len(list(live)) == 3
    assert target.read_bytes() == b"the other run's recording"
    assert live.saved == tmp_path / "same_2.mp4" and count_frames(live.saved)[0] == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["same.mp4", "same_2.mp4"]


def test_no_first_frame_writes_nothing(tiny_ckpt, tmp_path) -> None:
    pred = load_predictor(tiny_ckpt)
    with pytest.raises(UserError, match=r"camera 3: opened, but gave no frame; another app may be using it"):
        list(predict_stream(pred, 3, save_to=tmp_path / "out" / "x.mp4", progress=False,
                            opener=lambda src: FakeCamera([])))
    assert list((tmp_path / "out").iterdir()) == []
    with pytest.raises(BadArgument, match="max_frames"):
        predict_stream(pred, 0, max_frames=0)


def test_status_line_names_the_frame_rate_and_detections(tiny_ckpt, capsys) -> None:
    pred = load_predictor(tiny_ckpt, conf=0.05)
    list(predict_stream(pred, 0, opener=lambda src: FakeCamera(frames_of(3)), clock=stepping_clock(0.1), newest_only=False))
    err = capsys.readouterr().err  # not a terminal: one plain line (the next is 30 s away)
    line, = err.splitlines()
    assert re.fullmatch(r"camera 0  frame 1 +-- fps  (0 dets|1 det: \w+ 0\.\d\d|\d+ dets: \w+ 0\.\d\d.*)", line), line


@pytest.fixture
def fake_camera(monkeypatch):
    """``--camera`` opens FakeCameras: each open (the check before the model loads, then the run)
    gets ``frames`` anew, then ``then``."""
    made = []

    def use(frames: list[np.ndarray], then: BaseException | None = None) -> list[FakeCamera]:
        def opener(src):
            made.append(FakeCamera(frames, then))
            return made[-1]
        monkeypatch.setattr(source_mod, "open_live", opener)  # the check before the model loads, and the run
        return made
    return use


def test_predict_camera_until_ctrl_c(tiny_ckpt, tmp_path, run_cli, fake_camera) -> None:
    made = fake_camera(frames_of(4), KeyboardInterrupt())
    vis, js = tmp_path / "vis", tmp_path / "r.json"
    code, out, err = run_cli("predict", tiny_ckpt, "--camera", "--conf", "0.05", "--save-dir", vis, "--json", js,
                             "--every-frame")
    assert code == 0, err
    assert len(made) == 2 and all(c.released for c in made)
    (record,) = json.loads(js.read_text())
    assert record["source"] == "camera 0" and record["stopped"] == "interrupted" and record["fps"] > 0
    assert [f["frame"] for f in record["frames"]] == [0, 1, 2, 3]
    assert record["frames"][0]["time_s"] == 0 and record["frames"][3]["time_s"] > record["frames"][2]["time_s"]
    total = sum(len(f["detections"]) for f in record["frames"])
    assert "camera 0: 4 frames in " in out and f", {total} detections " in out and "stopped with Ctrl-C" in out
    assert "camera 0: 80x48; Ctrl-C stops" in err
    assert count_frames(vis / "camera0_pred.mp4") == (4, (48, 80))
    # a second run does not replace the first recording
    fake_camera(frames_of(2))
    code, out, _err = run_cli("predict", tiny_ckpt, "--camera", "0", "--frames", "1", "--save-dir", vis,
                              "--no-progress")
    assert code == 0 and "--frames reached" in out and "-> " + str(vis / "camera0_pred_2.mp4") in out
    assert sorted(p.name for p in vis.iterdir()) == ["camera0_pred.mp4", "camera0_pred_2.mp4"]
    assert count_frames(vis / "camera0_pred.mp4")[0] == 4


def test_sigterm_ends_a_camera_run_as_ctrl_c_does(tiny_ckpt, tmp_path, run_cli, fake_camera) -> None:
    """What systemd or `timeout` sends: without a handler the MP4 would be left without its index."""
    def unhandled(signum, frame):
        raise AssertionError("SIGTERM reached the test's own handler")

    old = signal.signal(signal.SIGTERM, unhandled)
    try:
        fake_camera(frames_of(3), lambda: os.kill(os.getpid(), signal.SIGTERM))
        code, out, err = run_cli("predict", tiny_ckpt, "--camera", "--save-dir", tmp_path, "--no-progress",
                                  "--every-frame")
        assert signal.getsignal(signal.SIGTERM) is unhandled  # put back after the run
    finally:
        signal.signal(signal.SIGTERM, old)
    assert code == 0 and "camera 0: 3 frames in " in out and "stopped with SIGTERM" in out, err
    assert count_frames(tmp_path / "camera0_pred.mp4")[0] == 3


@pytest.mark.parametrize("how", ["ctrl-c", "sigterm"])
def test_a_stop_right_after_a_frame_goes_into_the_recording_keeps_it_and_json_in_step(
        tiny_ckpt, tmp_path, run_cli, fake_camera, monkeypatch, request, how) -> None:
    """A stop between a frame's entry into the recording and predict's record of it kept a
    recording one frame longer than --json: the run now records each frame first, with no stop
    between the record and the recording."""
    real, added = stream_mod._Recorder.add, []

    def add(self, image, t):
        real(self, image, t)
        added.append(t)
        if len(added) == 3:  # the stop arrives the moment the third frame is in the recording
            os.kill(os.getpid(), signal.SIGINT if how == "ctrl-c" else signal.SIGTERM)

    def unhandled(signum, frame):
        raise AssertionError("SIGTERM reached the test's own handler")

    old = signal.signal(signal.SIGTERM, unhandled)
    request.addfinalizer(lambda: signal.signal(signal.SIGTERM, old))
    monkeypatch.setattr(stream_mod._Recorder, "add", add)
    fake_camera(frames_of(6))
    vis, js = tmp_path / "vis", tmp_path / "r.json"
    code, out, err = run_cli("predict", tiny_ckpt, "--camera", "--save-dir", vis, "--json", js, "--no-progress",
                             "--every-frame", "--conf", "0.01")
    assert code == 0 and "camera 0: 3 frames in " in out, err
    (record,) = json.loads(js.read_text())
    assert record["stopped"] == "interrupted" and [f["frame"] for f in record["frames"]] == [0, 1, 2]
    assert count_frames(vis / "camera0_pred.mp4")[0] == 3
    total = sum(len(f["detections"]) for f in record["frames"])  # the summary counts the recorded frames' too
    assert len(record["frames"][2]["detections"]) > 0  # else the count below could not tell
    assert re.search(rf"camera 0: 3 frames in [0-9.]+ s \([0-9.]+ fps\), {total} detections? ", out), out


def test_predict_stream_that_drops(tiny_ckpt, tmp_path, run_cli, fake_camera) -> None:
    fake_camera(frames_of(3))
    code, out, err = run_cli("predict", tiny_ckpt, "rtsp://u:pw@10.0.0.9/live/cam1", "--json", "--save-dir",
                             tmp_path, "--no-progress", "--every-frame")
    assert code == 0, err
    (record,) = json.loads(out)
    assert record["source"] == "rtsp://u:***@10.0.0.9/live/cam1" and len(record["frames"]) == 3
    assert "the stream ended or its connection dropped" in err and "pw@" not in err + out
    assert count_frames(tmp_path / "cam1_pred.mp4")[0] == 3


def test_predict_camera_bad_input_fails_before_the_model_loads(tmp_path, run_cli, fake_camera) -> None:
    missing = tmp_path / "missing.pt"
    for args in (["--camera", "/dev/video99"], ["--camera", "99"]):
        code, out, err = run_cli("predict", missing, *args)
        assert code == 2 and "missing.pt" not in err and len(err.strip().splitlines()) == 1, err
        assert ("/dev/video99" in err if args[1].startswith("/") else "camera 99" in err), err
    if Path("/dev").is_dir() and not Path("/dev/video99").exists():  # Linux: named, with the tool that lists them
        assert "no such camera (/dev/video99 does not exist)" in err and "v4l2-ctl --list-devices" in err, err
    code, _out, err = run_cli("predict", missing, "rtsp://127.0.0.1:9/none")  # refused at once: nothing listens
    assert code == 2 and "rtsp://127.0.0.1:9/none: cannot be opened as a stream" in err, err
    fake_camera([])
    code, _out, err = run_cli("predict", missing, "--camera", "--camera-size", "640x480")
    assert code == 2 and "camera 0: opened, but gave no frame" in err and "cannot give 640x480" in err, err


@pytest.mark.parametrize("args, says", [
    (["{d}/a.jpg", "--frames", "3"], "--frames: only for --camera or a stream address"),
    (["--camera", "{d}/a.jpg"], "argument --camera: expected a camera index"),
    (["{d}/a.jpg", "--camera"], "a camera or stream runs alone: --camera 0, {d}/a.jpg were given"),
    (["rtsp://h/a", "http://h/b"], "a camera or stream runs alone"),
    (["rtsp://h/a", "--camera-size", "640x480"], "--camera-size: only for --camera"),
    (["--camera", "--camera-size", "640"], "expected WIDTHxHEIGHT"),
    ([], "nothing to predict"),
])
def test_predict_live_flags_are_checked(tmp_path, run_cli, args, says) -> None:
    code, _out, err = run_cli("predict", tmp_path / "m.pt", *(a.format(d=tmp_path) for a in args))
    assert code == 2 and says.format(d=tmp_path) in err and len(err.strip().splitlines()) == 1, err


class TimedCamera(FakeCamera):
    """Frames at a steady pace, faster than the slowed model below: as a camera gives them."""

    def __init__(self, frames: list[np.ndarray], gap_s: float, then: BaseException | None = None) -> None:
        super().__init__(frames, then)
        self.gap_s = gap_s

    def read(self) -> tuple[bool, np.ndarray | None]:
        import time

        time.sleep(self.gap_s)
        return super().read()


class SlowPredictor:
    """A predictor that takes ``s`` seconds a frame (as a big model on a small board would)."""

    def __init__(self, pred, s: float) -> None:
        self.pred, self.s, self.class_names = pred, s, pred.class_names

    def predict(self, image):
        import time

        time.sleep(self.s)
        return self.pred.predict(image)


def test_newest_only_skips_what_the_model_had_no_time_for(tiny_ckpt, tmp_path) -> None:
    """The default: frames come every 2 ms, the model takes 40 ms; each prediction gets the newest
    frame, the rest are skipped and counted, and the last frame of the source is still predicted."""
    pred = SlowPredictor(load_predictor(tiny_ckpt), 0.04)
    cam = TimedCamera(frames_of(60), 0.002)
    with predict_stream(pred, 0, save_to=tmp_path / "n.mp4", progress=False, opener=lambda src: cam) as live:
        frames = list(live)
    idx = [f.index for f in frames]
    assert idx == sorted(set(idx)) and idx[-1] == 59, idx  # in order, none twice, the newest at the end
    assert live.read == 60 and live.frames == len(frames) < 30 and live.stopped == "ended", idx
    assert cam.released and count_frames(tmp_path / "n.mp4")[0] == len(frames)
    for f in frames:  # each detection belongs to the frame handed over with it
        np.testing.assert_array_equal(pred.pred.predict(f.image).boxes, f.detections.boxes)
    # every frame, in order, when asked
    live = predict_stream(pred, 0, progress=False, newest_only=False,
                          opener=lambda src: TimedCamera(frames_of(5), 0.002))
    assert [f.index for f in live] == [0, 1, 2, 3, 4] and live.read == 5


def test_newest_only_passes_on_errors_and_stops_its_reader(tiny_ckpt, tmp_path) -> None:
    """An error in the reading thread reaches the caller after the frames before it, the
    recording is kept; stopping early (max_frames) ends the thread and releases the camera."""
    import threading

    pred = load_predictor(tiny_ckpt)
    cam = TimedCamera(frames_of(3), 0.001, RuntimeError("USB camera unplugged"))
    with pytest.raises(RuntimeError, match="unplugged"):
        for _ in predict_stream(pred, 0, save_to=tmp_path / "e.mp4", progress=False, opener=lambda src: cam):
            pass
    assert cam.released and count_frames(tmp_path / "e.mp4")[0] >= 1
    endless = TimedCamera(frames_of(10_000), 0.001)
    live = predict_stream(pred, 0, max_frames=3, progress=False, opener=lambda src: endless)
    assert len(list(live)) == 3 and live.stopped == "frames" and endless.released
    assert not any(t.name == "yolox-edge-frame-reader" for t in threading.enumerate())


def test_predict_camera_says_how_many_frames_it_skipped(tiny_ckpt, tmp_path, run_cli, monkeypatch) -> None:
    """The CLI's default is newest-only: the summary and the JSON say how many frames were read."""
    def opener(src):
        return TimedCamera(frames_of(40), 0.002)
    monkeypatch.setattr(source_mod, "open_live", opener)
    real = stream_mod.LiveRun.__init__

    def slowed(self, predictor, *a, **kw):  # the model slower than the camera, as on a small board
        real(self, SlowPredictor(predictor, 0.04), *a, **kw)
    monkeypatch.setattr(stream_mod.LiveRun, "__init__", slowed)
    js = tmp_path / "r.json"
    code, out, err = run_cli("predict", tiny_ckpt, "--camera", "--json", js, "--no-progress")
    assert code == 0, err
    (record,) = json.loads(js.read_text())
    n = len(record["frames"])
    assert record["read"] == 40 and n < 20 and record["frames"][-1]["frame"] == 39
    assert f"camera 0: {n} frames in " in out and f" of 40 read ({40 - n} skipped: the source is faster" in out
    code, _out, err = run_cli("predict", tiny_ckpt, tmp_path / "a.jpg", "--every-frame")
    assert code == 2 and "--every-frame: only for --camera or a stream address" in err, err


def test_a_second_interrupt_while_the_reader_closes_keeps_the_recording(tiny_ckpt, tmp_path, monkeypatch) -> None:
    """Closing the reader can wait seconds on a stalled stream; a Ctrl-C there comes after the
    recording is renamed into place, not instead of it."""
    from yolox_edge.runtime import frame_reader

    def interrupted_close(self, timeout_s: float = 5.0) -> None:
        raise KeyboardInterrupt  # the user's second Ctrl-C, during the wait

    monkeypatch.setattr(frame_reader.NewestFrames, "close", interrupted_close)
    pred = load_predictor(tiny_ckpt)
    with pytest.raises(KeyboardInterrupt):
        live = predict_stream(pred, 0, max_frames=2, save_to=tmp_path / "r.mp4", progress=False,
                              opener=lambda src: TimedCamera(frames_of(5), 0.001))
        list(live)
    assert count_frames(tmp_path / "r.mp4")[0] == 2 and live.saved == tmp_path / "r.mp4"
    assert [p.name for p in tmp_path.iterdir()] == ["r.mp4"]


def test_a_reader_left_in_a_blocked_read_releases_the_camera_when_it_returns() -> None:
    import time

    from yolox_edge.runtime.frame_reader import NewestFrames

    class Stalled(FakeCamera):
        def read(self):
            time.sleep(0.5)  # a network stream that stopped sending
            return False, None

    cam = Stalled([])
    reader = NewestFrames(cam, time.monotonic)
    reader.close(timeout_s=0.05)
    assert not cam.released  # not under a running read
    deadline = time.monotonic() + 5
    while not cam.released and time.monotonic() < deadline:
        time.sleep(0.02)
    assert cam.released


def test_read_counts_the_source_up_to_the_last_predicted_frame(tiny_ckpt) -> None:
    """--frames on a source no faster than the model: nothing skipped, so read == frames (a frame
    read ahead, or the one that ended a --duration run, is not counted)."""
    pred = load_predictor(tiny_ckpt)
    live = predict_stream(pred, 0, max_frames=3, progress=False, newest_only=False,
                          opener=lambda src: FakeCamera(frames_of(10)))
    assert len(list(live)) == 3 and live.read == 3
    live = predict_stream(pred, 0, duration_s=0.25, progress=False, newest_only=False, clock=stepping_clock(0.1),
                          opener=lambda src: FakeCamera(frames_of(10)))
    assert len(list(live)) == 3 and live.read == 3 and live.stopped == "duration"
