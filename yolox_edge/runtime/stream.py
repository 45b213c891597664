"""Detections on a live source, a camera or a network stream, frame by frame as it comes.

Unlike a video file, a live source has no length and no trustworthy clock: a camera's frame
count and position are 0, its stated frame rate is often wrong, and it cannot be replayed. So
frames are read one at a time as the model is ready for the next, ``time_s`` is the wall clock
since the first frame, the annotated recording is written at the rate the run achieved, and
whatever ends the run (``max_frames``, ``duration_s``, the end of the stream, Ctrl-C, an error)
the recording so far is kept.
"""
from __future__ import annotations

import contextlib
import os
import re
import sys
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator, Protocol
from urllib.parse import urlsplit

import numpy as np

from ..errors import BadArgument, UserError
from .video import VideoFrame, _AtomicVideoWriter

if TYPE_CHECKING:
    from .predictor import Predictor

# What OpenCV's FFmpeg reads over a network; any other ``scheme://`` is refused by name.
STREAM_SCHEMES = ("rtsp", "rtsps", "rtmp", "http", "https", "tcp", "udp")
# The recording's frame rate is measured over the frames of this first stretch, held until then
# (or until they fill RATE_PROBE_BYTES: 10 frames at 1080p, 70 at 640x480).
RATE_PROBE_S = 2.0
RATE_PROBE_BYTES = 64 << 20
STOP_REASONS = ("frames", "duration", "ended", "interrupted", "closed", "error")


class Capture(Protocol):
    """What a live source is read through: cv2.VideoCapture, or anything with the same two calls."""

    def read(self) -> tuple[bool, np.ndarray | None]: ...

    def release(self) -> None: ...


def is_stream_url(s: str | Path) -> bool:
    """Whether ``s`` is a network stream address (rtsp://, http(s)://, ...), not a file path."""
    return isinstance(s, str) and re.match(r"(?i)[a-z][a-z0-9+.-]*://", s) is not None


def redact(url: str) -> str:
    """``url`` without its password (rtsp://user:pass@host is common): for messages and JSON."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    return parts._replace(netloc=f"{parts.username}:***@{host}").geturl()


@dataclass(frozen=True)
class LiveSource:
    """A camera (an index, or a device path such as /dev/video0) or a stream URL; ``size_wh``
    is the frame size to ask a camera for (it may choose the nearest it has)."""

    target: int | str
    size_wh: tuple[int, int] | None = None

    @property
    def is_camera(self) -> bool:
        return isinstance(self.target, int) or str(self.target).startswith("/dev/")

    @property
    def device(self) -> str | None:
        """The Linux device file of a camera (index N is /dev/videoN there), else None."""
        if not self.is_camera or not sys.platform.startswith("linux"):
            return None
        return f"/dev/video{self.target}" if isinstance(self.target, int) else str(self.target)

    @property
    def label(self) -> str:
        """How messages name it: ``camera 0``, ``/dev/video2``, or the URL without its password."""
        if isinstance(self.target, int):
            return f"camera {self.target}"
        return redact(self.target) if is_stream_url(self.target) else self.target

    @property
    def name(self) -> str:
        """A file stem for its outputs: ``camera0`` for index 0 and /dev/video0, else the URL's
        last path part (``rtsp://host/cam1`` -> ``cam1``) or its host, or the device's name."""
        t = self.target
        m = re.fullmatch(r"/dev/video(\d+)", str(t))
        if isinstance(t, int) or m:
            return f"camera{t if isinstance(t, int) else m.group(1)}"
        if is_stream_url(t):
            parts = urlsplit(t)
            last = Path(parts.path.rstrip("/")).stem  # stream.m3u8 -> stream, video.mjpg -> video
            t = last or f"{parts.hostname or 'stream'}{f'_{parts.port}' if parts.port else ''}"
        else:  # a device's name (/dev/v4l/by-id/...), or a file's stem
            t = Path(t).name if self.is_camera else Path(t).stem
        return re.sub(r"[^A-Za-z0-9._-]+", "_", t).strip("._") or "stream"


def as_live_source(source: LiveSource | int | str, size_wh: tuple[int, int] | None = None) -> LiveSource:
    """A LiveSource from a camera index (``0``, ``"0"``), a device path, a stream URL, or any other
    path OpenCV opens (a video file, read as if it were live: for replays and tests)."""
    if isinstance(source, LiveSource):
        return source
    if isinstance(source, int) or str(source).strip().isdigit():
        return LiveSource(int(source), size_wh)
    s = str(source)
    if is_stream_url(s) and urlsplit(s).scheme.lower() not in STREAM_SCHEMES:
        raise UserError(f"{redact(s)}: not a stream address this reads (it reads {', '.join(STREAM_SCHEMES)}); "
                        f"for a file, give its path")
    if size_wh is not None and not LiveSource(s).is_camera:
        raise BadArgument(f"{redact(s)}: a frame size can only be asked of a camera; resize at the source")
    return LiveSource(s, size_wh)


def _on_termux() -> bool:
    return "TERMUX_VERSION" in os.environ or "com.termux" in os.environ.get("PREFIX", "")


# Android lets no app open the camera as a device file, Termux included (termux-api takes stills only).
TERMUX_HINT = ("in Termux, apps cannot open the phone's camera: stream it from an IP-camera app and pass its "
               "http:// or rtsp:// address instead")
PI_MODULE_HINT = ("a Raspberry Pi camera module (ribbon cable) is driven by libcamera: run through 'libcamerify' "
                  "or stream it with rpicam-vid (see the README's camera notes)")


def _cannot_open(source: LiveSource) -> str:
    """Why a source did not open, as far as can be told from outside, and what to check."""
    if not source.is_camera:
        return (f"{source.label}: cannot be opened as a stream (OpenCV's FFmpeg could not connect or read it); "
                f"check the address, the network and any user/password, e.g. by playing it in VLC or ffplay")
    if _on_termux():
        return f"{source.label}: cannot be opened; {TERMUX_HINT}"
    dev = source.device
    if dev is None:  # macOS, Windows: no device file to look at
        return (f"{source.label}: cannot be opened; check that it is connected, that this terminal may use the "
                f"camera (the system's privacy settings), and that no other app is using it")
    if not os.path.exists(dev):
        return (f"{source.label}: no such camera ({dev} does not exist); 'v4l2-ctl --list-devices' (package "
                f"v4l-utils) lists the cameras: pass one with --camera /dev/videoN")
    if not os.access(dev, os.R_OK | os.W_OK):
        return (f"{source.label}: permission denied on {dev}; add yourself to the 'video' group "
                f"('sudo usermod -aG video $USER', then log out and in again)")
    return (f"{source.label}: {dev} cannot be opened; close any other app using the camera; a webcam also makes "
            f"nodes that give no video (try the next /dev/videoN: 'v4l2-ctl --list-devices'); {PI_MODULE_HINT}")


def _no_first_frame(source: LiveSource) -> UserError:
    if not source.is_camera:
        return UserError(f"{source.label}: opened, but no frame could be decoded; check that it plays in VLC or ffplay")
    size = f" or it cannot give {source.size_wh[0]}x{source.size_wh[1]} (try another --camera-size)" \
        if source.size_wh else ""
    return UserError(f"{source.label}: opened, but gave no frame; another app may be using it{size}; "
                     f"{TERMUX_HINT if _on_termux() else PI_MODULE_HINT}")


@contextlib.contextmanager
def _opencv_quiet() -> Iterator[None]:
    """OpenCV's own warnings off for a while: a camera that fails to open prints three lines
    naming its backends, above the one that says what to do."""
    import cv2

    log = getattr(getattr(cv2, "utils", None), "logging", None)
    if log is None:
        yield
        return
    old = log.getLogLevel()
    log.setLogLevel(log.LOG_LEVEL_ERROR)
    try:
        yield
    finally:
        log.setLogLevel(old)


def open_live(source: LiveSource | int | str) -> "Capture":
    """An opened cv2.VideoCapture for ``source`` (a LiveSource, index, device or URL), with the
    frame size asked of a camera; a UserError naming it and what to check when it will not open."""
    import cv2

    source = as_live_source(source)
    with _opencv_quiet():
        if source.is_camera and isinstance(source.target, str):
            cap = cv2.VideoCapture(source.target, cv2.CAP_V4L2)  # the default backends take no device paths
        else:
            cap = cv2.VideoCapture(source.target)
        if not cap.isOpened():
            cap.release()
            raise UserError(_cannot_open(source))
        if source.size_wh is not None:
            cap.set(cv2.CAP_PROP_FRAME_WIDTH, source.size_wh[0])
            cap.set(cv2.CAP_PROP_FRAME_HEIGHT, source.size_wh[1])
    return cap


def check_live(source: LiveSource | int | str,
               opener: Callable[[LiveSource], Capture] | None = None) -> tuple[int, int]:
    """Open ``source`` and read one frame, or raise the UserError a run would: for callers that
    check the source before loading a model. Returns the frame size (width, height)."""
    source = as_live_source(source)
    cap = (opener or open_live)(source)
    try:
        ok, frame = cap.read()
        if not ok or frame is None:
            raise _no_first_frame(source)
    finally:
        cap.release()
    return frame.shape[1], frame.shape[0]


def measured_rate(times: list[float]) -> float | None:
    """Frames per second over frame times (seconds); None for fewer than two."""
    if len(times) < 2 or times[-1] <= times[0]:
        return None
    return (len(times) - 1) / (times[-1] - times[0])


def steady_rate(times: list[float]) -> float | None:
    """Frames per second from the median interval between frame times, the first interval left
    out when there are others (it holds the model's first, slower run): one hiccup (another
    process, a network stall) does not set the pace of a whole recording. None under two frames."""
    gaps = np.diff(times)[1:] if len(times) > 2 else np.diff(times)
    gap = float(np.median(gaps)) if len(gaps) else 0.0
    return 1.0 / gap if gap > 0 else None


class _Recorder:
    """The annotated recording of a live source. An MP4 needs its frame rate up front and a
    camera's stated one is often 0 or wrong (and the model, not the camera, sets the pace), so
    the first frames are held for ``RATE_PROBE_S`` (or ``RATE_PROBE_BYTES``) and the file is
    written at their steady rate: it plays at about real time while that pace holds."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.held: list[tuple[float, np.ndarray]] = []
        self.writer: _AtomicVideoWriter | None = None
        self.fps: float | None = None

    def add(self, image: np.ndarray, t: float) -> None:
        if self.writer is not None:
            self.writer.write(image)
            return
        self.held.append((t, image))
        if t - self.held[0][0] >= RATE_PROBE_S or len(self.held) * image.nbytes >= RATE_PROBE_BYTES:
            self._open()

    def _open(self) -> None:
        held, self.held = self.held, []  # taken first: a writer that fails to open is not tried again by finish()
        rate = steady_rate([t for t, _ in held])
        # One frame, or frames in the same instant: nothing to measure; a still then shows a second.
        self.fps = round(min(max(rate, 0.1), 240.0), 2) if rate else 1.0
        h, w = held[0][1].shape[:2]
        self.writer = _AtomicVideoWriter(self.path, self.fps, (w, h))
        for _, image in held:
            self.writer.write(image)

    def finish(self) -> Path | None:
        """Write what is held, rename the file into place; None when no frame came."""
        if self.writer is None and self.held:
            self._open()
        return self.writer.commit() if self.writer is not None else None


def _status_text(source: LiveSource, index: int, fps: float | None, det, names: list[str]) -> str:
    shown = [f"{names[int(c)] if int(c) < len(names) else int(c)} {s:.2f}"
             for c, s in zip(det.labels[:4], det.scores[:4])]
    more = f", +{len(det) - 4}" if len(det) > 4 else ""
    rate = f"{fps:5.1f} fps" if fps else "   -- fps"
    dets = f"{len(det)} det{'s' if len(det) != 1 else ''}" + (f": {', '.join(shown)}{more}" if shown else "")
    return f"{source.label}  frame {index + 1}  {rate}  {dets}"


class LiveRun:
    """Iterate for a VideoFrame per frame of a live source; afterwards ``stopped`` says why it
    ended (one of STOP_REASONS), ``frames`` and ``elapsed_s`` how much ran, ``fps`` the rate
    achieved (None under two frames) and ``saved`` where the recording is (None if none).

    Use it in a ``with`` block, or call ``close()``, when the loop may stop early: that ends the
    read and renames the recording into place. Made by ``predict_stream``.
    """

    def __init__(self, predictor: Predictor, source: LiveSource, *, max_frames: int | None,
                 duration_s: float | None, save_to: Path | None, progress: bool,
                 opener: Callable[[LiveSource], Capture], clock: Callable[[], float]) -> None:
        self.predictor, self.source = predictor, source
        self.max_frames, self.duration_s, self.save_to = max_frames, duration_s, save_to
        self.progress, self.opener, self.clock = progress, opener, clock
        self.stopped: str | None = None
        self.frames = 0
        self.elapsed_s = 0.0
        self.fps: float | None = None
        self.record_fps: float | None = None
        self.saved: Path | None = None
        self._iter = self._run()

    def __iter__(self) -> Iterator[VideoFrame]:
        return self._iter

    def __enter__(self) -> LiveRun:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop reading (if still reading) and keep the recording so far."""
        self._iter.close()

    def _run(self) -> Iterator[VideoFrame]:
        from ..progress import StatusLine
        from ..visualize import draw_detections

        names = self.predictor.class_names
        cap = self.opener(self.source)
        recorder = _Recorder(self.save_to) if self.save_to is not None else None
        status = StatusLine(enabled=self.progress)
        recent: deque[float] = deque()  # frame times of about the last second, for the status rate
        first = last = None
        try:
            while self.max_frames is None or self.frames < self.max_frames:
                ok, frame = cap.read()
                now = self.clock()
                if not ok or frame is None:
                    if self.frames == 0:
                        raise _no_first_frame(self.source)
                    self.stopped = "ended"  # a stream's end and a dropped one look the same here
                    break
                first = now if first is None else first
                t = now - first
                if self.duration_s is not None and t >= self.duration_s:
                    self.stopped = "duration"
                    break
                det = self.predictor.predict(frame)
                last = t
                if recorder is not None:
                    recorder.add(draw_detections(frame, det, names), t)
                recent.append(t)
                while len(recent) > 2 and t - recent[0] > 1.0:
                    recent.popleft()
                if status.due():
                    status.show(_status_text(self.source, self.frames, measured_rate(list(recent)), det, names))
                self.frames += 1
                yield VideoFrame(self.frames - 1, t, frame, det)
            else:
                self.stopped = "frames"
        except GeneratorExit:
            self.stopped = self.stopped or "closed"
            raise
        except KeyboardInterrupt:
            self.stopped = "interrupted"
            raise
        except BaseException:
            self.stopped = "error"
            raise
        finally:
            status.close()
            cap.release()
            if last is not None:
                self.elapsed_s = last
                self.fps = (self.frames - 1) / last if self.frames > 1 and last > 0 else None
            if recorder is not None:  # a live source cannot be replayed: keep what was recorded
                self.saved = recorder.finish()
                self.record_fps = recorder.fps


def predict_stream(predictor: Predictor, source: LiveSource | int | str, *, max_frames: int | None = None,
                   duration_s: float | None = None, save_to: str | Path | None = None, progress: bool = True,
                   opener: Callable[[LiveSource], Capture] | None = None,
                   clock: Callable[[], float] = time.monotonic) -> LiveRun:
    """Run ``predictor`` on a live source (a camera index or device, or a stream URL) frame by frame.

    Iterate the returned LiveRun for VideoFrames; ``time_s`` is wall-clock seconds since the
    first frame. It stops after ``max_frames`` frames, once a frame comes ``duration_s`` after
    the first, at the end of the stream, or when the caller stops (a KeyboardInterrupt inside the
    loop passes through). With ``save_to`` (a .mp4 path) the frames are drawn with their boxes
    and recorded at the measured rate, renamed into place however the run ends. ``progress``:
    a status line on stderr (frame, rate, the frame's detections). ``opener`` opens the source
    (default ``open_live``, OpenCV; any function returning something with ``read()`` and
    ``release()`` will do, e.g. a wrapper of another camera library).
    """
    from ..fileio import require_writable

    if max_frames is not None and max_frames < 1:
        raise BadArgument(f"max_frames must be at least 1, not {max_frames}")
    if duration_s is not None and not 0 < duration_s < float("inf"):
        raise BadArgument(f"duration_s must be a finite number of seconds above 0, not {duration_s}")
    if save_to is not None:
        save_to = require_writable(save_to, "annotated video")  # a bad path fails before the camera opens
    return LiveRun(predictor, as_live_source(source), max_frames=max_frames, duration_s=duration_s,
                   save_to=save_to, progress=progress, opener=opener or open_live, clock=clock)

