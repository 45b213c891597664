"""Detections on a live source, a camera or a network stream, frame by frame as it comes.

Unlike a video file, a live source has no length and no trustworthy clock: a camera's frame
count and position are 0, its stated frame rate is often wrong, and it cannot be replayed. So
frames are read one at a time as the model is ready for the next, ``time_s`` is the wall clock
since the first frame, the annotated recording is written at the rate the run achieved, and
whatever ends the run (``max_frames``, ``duration_s``, the end of the stream, Ctrl-C, an error)
the recording so far is kept. Opening and naming the source: ``live_source.py``.
"""
from __future__ import annotations

import functools
import time
from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator

import numpy as np

from ..errors import BadArgument
from .frame_reader import InOrderFrames, NewestFrames
from . import live_source
from .live_source import Capture, LiveSource, as_live_source, no_first_frame
from .video import VideoFrame, AtomicVideoWriter, record_then_write

if TYPE_CHECKING:
    from .predictor import Predictor

# The recording's frame rate is measured over the frames of this first stretch, held until then
# (or until they fill RATE_PROBE_BYTES: 10 frames at 1080p, 70 at 640x480).
RATE_PROBE_S = 2.0
RATE_PROBE_BYTES = 64 << 20
STOP_REASONS = ("frames", "duration", "ended", "interrupted", "closed", "error")


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
        self.writer: AtomicVideoWriter | None = None
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
        # A live recording cannot be made again: never written over an existing file (another
        # run's, even one that picked the same free name at its start), given the next free name.
        self.writer = AtomicVideoWriter(self.path, self.fps, (w, h), replace=False)
        for _, image in held:
            self.writer.write(image)

    def finish(self) -> Path | None:
        """Write what is held, rename the file into place; None when no frame came."""
        if self.writer is None and self.held:
            self._open()
        return self.writer.commit() if self.writer is not None else None


def _status_text(source: LiveSource, index: int, fps: float | None, det, names: list[str], skipped: int = 0) -> str:
    """``camera 0  frame 120  14.8 fps  2 dets: person 0.91, dog 0.77`` (``, 310 skipped`` after
    the frame when the model could not keep up with the source)."""
    shown = [f"{names[int(c)] if int(c) < len(names) else int(c)} {s:.2f}"
             for c, s in zip(det.labels[:4], det.scores[:4])]
    more = f", +{len(det) - 4}" if len(det) > 4 else ""
    rate = f"{fps:5.1f} fps" if fps else "   -- fps"
    dets = f"{len(det)} det{'s' if len(det) != 1 else ''}" + (f": {', '.join(shown)}{more}" if shown else "")
    behind = f" ({skipped} skipped)" if skipped > 0 else ""
    return f"{source.label}  frame {index + 1}{behind}  {rate}  {dets}"


class LiveRun:
    """Iterate for a VideoFrame per frame of a live source; afterwards ``stopped`` says why it
    ended (one of STOP_REASONS), ``frames`` and ``elapsed_s`` how much ran, ``fps`` the rate
    achieved (None under two frames), ``read`` how many frames the source gave up to the last
    predicted one (``frames`` of them were predicted: with ``newest_only`` the rest were skipped)
    and ``saved`` where the recording is (None if none).

    Use it in a ``with`` block, or call ``close()``, when the loop may stop early: that ends the
    read and renames the recording into place. Made by ``predict_stream``.
    """

    def __init__(self, predictor: Predictor, source: LiveSource, *, max_frames: int | None,
                 duration_s: float | None, save_to: Path | None, progress: bool, newest_only: bool,
                 opener: Callable[[LiveSource], Capture], clock: Callable[[], float],
                 on_frame: Callable[[VideoFrame], object] | None = None) -> None:
        self.predictor, self.source, self.on_frame = predictor, source, on_frame
        self.max_frames, self.duration_s, self.save_to = max_frames, duration_s, save_to
        self.progress, self.opener, self.clock = progress, opener, clock
        self.newest_only = newest_only
        self.stopped: str | None = None
        self.frames = 0
        self.read = 0
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
        reader = (NewestFrames if self.newest_only else InOrderFrames)(self.opener(self.source), self.clock)
        recorder = _Recorder(self.save_to) if self.save_to is not None else None
        status = StatusLine(enabled=self.progress)
        recent: deque[float] = deque()  # frame times of about the last second, for the status rate
        first = last = last_index = None
        try:
            while self.max_frames is None or self.frames < self.max_frames:
                got = reader.next()
                if got is None:
                    if self.frames == 0:
                        raise no_first_frame(self.source)
                    self.stopped = "ended"  # a stream's end and a dropped one look the same here
                    break
                index, now, frame = got
                first = now if first is None else first
                t = now - first
                if self.duration_s is not None and t >= self.duration_s:
                    self.stopped = "duration"
                    break
                det = self.predictor.predict(frame)
                last, last_index = t, index
                done = VideoFrame(index, t, frame, det)
                drawn = draw_detections(frame, det, names=names) if recorder is not None else None
                record_then_write(self.on_frame, done,
                                  functools.partial(recorder.add, drawn, t) if recorder is not None else None)
                recent.append(t)
                while len(recent) > 2 and t - recent[0] > 1.0:
                    recent.popleft()
                if status.due():
                    status.show(_status_text(self.source, index, measured_rate(list(recent)), det, names,
                                             index - self.frames))
                self.frames += 1
                yield done
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
            self.read = 0 if last_index is None else last_index + 1
            if last is not None:
                self.elapsed_s = last
                self.fps = (self.frames - 1) / last if self.frames > 1 and last > 0 else None
            try:
                if recorder is not None:  # a live source cannot be replayed: keep what was recorded
                    # first: closing the reader may wait seconds on a stalled stream, and a second
                    # Ctrl-C there must not cost the recording
                    self.saved = recorder.finish()
                    self.record_fps = recorder.fps
            finally:
                reader.close()


def predict_stream(predictor: Predictor, source: LiveSource | int | str, *, max_frames: int | None = None,
                   duration_s: float | None = None, save_to: str | Path | None = None, progress: bool = True,
                   newest_only: bool = True, opener: Callable[[LiveSource], Capture] | None = None,
                   clock: Callable[[], float] = time.monotonic,
                   on_frame: Callable[[VideoFrame], object] | None = None) -> LiveRun:
    """Run ``predictor`` on a live source (a camera index or device, or a stream URL) frame by frame.

    Iterate the returned LiveRun for VideoFrames; ``time_s`` is wall-clock seconds since the
    first frame, and ``index`` the frame's place in the source. ``newest_only`` (default): the
    source is read on a thread and each prediction takes the newest frame, skipping those the
    model had no time for, so the detections stay current; False predicts every frame in order
    (a slow model then falls behind a camera, and without bound behind a network stream).

    It stops after ``max_frames`` frames, once a frame comes ``duration_s`` after the first, at
    the end of the stream, or when the caller stops (a KeyboardInterrupt inside the loop passes
    through). With ``save_to`` (a .mp4 path) the frames are drawn with their boxes
    and recorded at the measured rate, renamed into place however the run ends; a file
    already there is kept and the recording takes the next free name (``<stem>_2.mp4``, ...):
    ``saved`` on the returned LiveRun says where it went. ``progress``:
    a status line on stderr (frame, rate, the frame's detections). ``opener`` opens the source
    (default ``open_live``, OpenCV; any function returning something with ``read()`` and
    ``release()`` will do, e.g. a wrapper of another camera library).

    ``on_frame``: called with each frame before it is yielded and just before it goes into the
    recording, with Ctrl-C and SIGTERM held off from the call to the recording: the recording
    kept by a stop holds exactly the frames ``on_frame`` returned for (as ``predict_video``'s).
    """
    from ..fileio import require_writable

    if max_frames is not None and max_frames < 1:
        raise BadArgument(f"max_frames must be at least 1, not {max_frames}")
    if duration_s is not None and not 0 < duration_s < float("inf"):
        raise BadArgument(f"duration_s must be a finite number of seconds above 0, not {duration_s}")
    if save_to is not None:
        save_to = require_writable(save_to, "annotated video")  # a bad path fails before the camera opens
    return LiveRun(predictor, as_live_source(source), max_frames=max_frames, duration_s=duration_s,
                   save_to=save_to, progress=progress, newest_only=newest_only,
                   opener=opener or live_source.open_live, clock=clock, on_frame=on_frame)

