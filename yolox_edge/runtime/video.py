"""Detections for every frame of a video file, and an annotated copy written atomically.

Frames are decoded with OpenCV's FFmpeg (in the opencv-python-headless wheel, also on aarch64),
so whatever it reads works: MP4/MOV (H.264, HEVC where the wheel's FFmpeg has it), AVI, MKV,
WebM. Phone clips' rotation flag is applied by OpenCV, so boxes are in the upright frame.
"""
from __future__ import annotations

import contextlib
import functools
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator

import numpy as np

from ..errors import UserError, in_python, require_file, require_utf8_path
from ..postprocess import Detections

SAVE_DIR = in_python("--save-dir", "save_to=None")  # what writes the annotated video, in both spellings

if TYPE_CHECKING:
    import cv2

    from .predictor import Predictor

VIDEO_SUFFIXES = {".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".mpg", ".mpeg", ".wmv", ".3gp"}
# When a file does not state its frame rate (some AVI/MKV muxers), times are counted at this rate.
FALLBACK_FPS = 30.0


def is_video(path: str | Path) -> bool:
    """Whether ``path`` names a video file by its suffix."""
    return Path(path).suffix.lower() in VIDEO_SUFFIXES


@dataclass
class VideoFrame:
    """One decoded frame and its detections: ``index`` (its place in the clip or source, from 0),
    ``time_s`` (seconds from the start), ``image`` (BGR uint8) and ``detections`` (in its pixels)."""

    index: int
    time_s: float
    image: np.ndarray
    detections: Detections


@dataclass(frozen=True)
class VideoInfo:
    """What the container says: frame rate (FALLBACK_FPS when it says none) and frame count (an
    estimate for some containers; 0 when unknown). Not the frame size: a phone clip's is stated
    before rotation, so the writer takes it from the first decoded frame."""

    fps: float
    frames: int
    fps_stated: bool = True


def unreadable_video(label: object, path: str | Path) -> str:
    """The line for a video file OpenCV cannot open (``label``: how the caller names it)."""
    p = Path(path)
    return (f"{label}: cannot be read as a video (OpenCV's FFmpeg could not open it); convert it to MP4 (H.264), "
            f"e.g. 'ffmpeg -i {p.name} {p.stem}_h264.mp4'")


def open_video(path: str | Path) -> tuple["cv2.VideoCapture", VideoInfo]:
    """(cv2.VideoCapture, VideoInfo) for a video file, or a UserError naming it."""
    import cv2

    p = require_file(path, "video")
    require_utf8_path(p, "video")  # OpenCV's VideoCapture crashed the process (SIGSEGV) on such a name
    cap = cv2.VideoCapture(str(p))
    if not cap.isOpened():
        raise UserError(unreadable_video(p, p))
    fps = cap.get(cv2.CAP_PROP_FPS)
    stated = bool(np.isfinite(fps) and 0 < fps < 1000)
    count = cap.get(cv2.CAP_PROP_FRAME_COUNT)
    info = VideoInfo(fps=float(fps) if stated else FALLBACK_FPS,
                     frames=int(count) if np.isfinite(count) and count > 0 else 0, fps_stated=stated)
    return cap, info


def no_frame(path: str | Path) -> UserError:
    """The error for a video that opens but decodes to no frame (truncated, or a codec the wheel lacks)."""
    return UserError(f"{path}: no frame could be decoded; check that the file plays, or convert it to MP4 (H.264)")


def check_video(path: str | Path) -> VideoInfo:
    """Open ``path`` and decode its first frame, or raise the UserError a full run would: for
    callers that check named files before loading a model."""
    cap, info = open_video(path)
    try:
        if not cap.read()[0]:
            raise no_frame(path)
    finally:
        cap.release()
    return info


class AtomicVideoWriter:
    """An MP4 (MPEG-4 part 2, 'mp4v': OpenCV's wheels write it without extra codecs) written
    to a hidden temp file beside ``path`` and renamed over it on ``commit``; ``discard`` (or a
    failure) removes the temp, so an interrupted run never leaves half a video under the name.
    ``replace=False``: a file already at ``path`` is kept, and ``commit`` takes the next free
    name (``<stem>_2.mp4``, ...) instead."""

    def __init__(self, path: Path, fps: float, size_wh: tuple[int, int], *, replace: bool = True) -> None:
        import cv2

        from ..fileio import new_file_mode, temp_beside

        self.path, self.size_wh, self.replace = path, size_wh, replace
        require_utf8_path(path, "annotated video")  # OpenCV's VideoWriter takes UTF-8 names only
        # The temp keeps the .mp4 suffix: OpenCV picks the container by it.
        fd, tmp = temp_beside(path, "annotated video", suffix=".tmp.mp4")
        os.fchmod(fd, new_file_mode(path))  # mkstemp makes 0600; the result is an ordinary file
        os.close(fd)
        self.tmp = Path(tmp)
        self.frames = 0
        self.writer = cv2.VideoWriter(str(self.tmp), cv2.VideoWriter_fourcc(*"mp4v"), fps, size_wh)
        if not self.writer.isOpened():
            self.discard()
            if max(size_wh) >= 8192:  # the encoder's limit, not a missing codec: reinstalling would not help
                raise UserError(f"{path}: OpenCV's MP4 encoder takes frames under 8192 pixels a side, and these are "
                                f"{size_wh[0]}x{size_wh[1]}; drop {SAVE_DIR} (the detections need no copy)")
            raise UserError(f"{path}: OpenCV cannot write an MP4 video here (no 'mp4v' encoder in this "
                            f"OpenCV build); install opencv-python-headless from PyPI, or drop {SAVE_DIR}")

    def write(self, frame: np.ndarray) -> None:
        import cv2

        if (frame.shape[1], frame.shape[0]) != self.size_wh:
            # A stream that changes resolution mid-way: the writer would drop such frames silently.
            frame = cv2.resize(frame, self.size_wh, interpolation=cv2.INTER_AREA)
        self.writer.write(frame)
        self.frames += 1

    def _check_whole(self) -> None:
        """Refuse a temp file that does not hold every frame written. OpenCV's writer reports no
        error on a full disk or a failed write: the encoder drops the frames, or the file lacks the
        index MP4 writes last, and the video looked saved."""
        import cv2

        cap = cv2.VideoCapture(str(self.tmp))
        try:
            held = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) if cap.isOpened() else 0
        finally:
            cap.release()
        if held < self.frames:  # (one more: a stop between a write and its count)
            self.discard()
            raise UserError(f"{self.path}: the annotated video could not be written whole ({self.frames} frames "
                            f"given, the file holds {held}); check the free space in {self.path.parent}, or drop "
                            f"{SAVE_DIR}")

    def commit(self) -> Path:
        """Close the file, check it holds every frame, and give it its name; returns that name."""
        from ..fileio import move_no_clobber, replace_durably

        self.writer.release()
        self._check_whole()
        if not self.replace:
            self.path = move_no_clobber(self.tmp, self.path)
            return self.path
        replace_durably([(self.tmp, self.path)])
        return self.path

    def discard(self) -> None:
        self.writer.release()
        self.tmp.unlink(missing_ok=True)


def record_then_write(on_frame: Callable[[VideoFrame], object] | None, frame: VideoFrame,
                      write: Callable[[], object] | None) -> None:
    """``on_frame(frame)``, then ``write()`` (the frame into an annotated video or recording), with
    Ctrl-C and SIGTERM held off from the one to the other, so that a stop leaves a video holding
    exactly the frames recorded; an error in ``on_frame`` leaves the frame in neither. Either may
    be None (nothing to record, or nothing to write)."""
    from ..fileio import stops_held

    with stops_held() if on_frame is not None and write is not None else contextlib.nullcontext():
        if on_frame is not None:
            on_frame(frame)
        if write is not None:
            write()


def predict_video(predictor: Predictor, source: str | Path, *, save_to: str | Path | None = None,
                  progress: bool = True, keep_stopped: bool = False,
                  on_frame: Callable[[VideoFrame], object] | None = None) -> Iterator[VideoFrame]:
    """Run ``predictor`` on every frame of ``source``, yielding a VideoFrame each.

    ``time_s`` is the frame's timestamp in the file (phone clips often have a variable frame
    rate), else its index over the frame rate. With ``save_to`` (a .mp4 path) the frames are
    drawn with their boxes and written there at the clip's frame rate; the file appears only once
    the last frame is read (stopping the loop early, or an error, leaves no file). With
    ``keep_stopped`` a stop (Ctrl-C or SIGTERM in the loop, the caller closing it, an error) keeps
    the frames written so far instead, a whole MP4 renamed into place once closed (none when no
    frame was); close the generator when your loop stops (``contextlib.closing``) so it is there
    at once. The file is written under a temp name first: a killed run never leaves half a video
    under ``save_to``. A file that decodes to no frame is a UserError. ``progress=False`` turns
    off the frame bar.

    ``on_frame``: called with each frame before it is yielded, just before it is written to
    ``save_to``, with Ctrl-C and SIGTERM held off from the call to the write: the video kept by a
    stop holds exactly the frames ``on_frame`` returned for (one that raises is not written). For
    a record of the frames that must agree with the kept video (``predict --json``): recorded in
    the loop, a stop between the frame's write and the loop's record gave the video one frame more.
    """
    import cv2

    from ..fileio import require_writable, stops_held
    from ..progress import progress_bar
    from ..visualize import draw_detections

    if save_to is not None:
        require_writable(save_to, "annotated video")  # a bad path fails before any decoding
    cap, info = open_video(source)
    writer = None
    bar = progress_bar(total=info.frames or None, desc=Path(source).name, unit="frame", disable=not progress)
    done = False
    try:
        index, last_t = 0, -1.0
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            t = cap.get(cv2.CAP_PROP_POS_MSEC) / 1000
            if not (np.isfinite(t) and t > last_t) or (index and t == 0):  # no timestamps: count frames
                t = index / info.fps
            last_t = t
            det = predictor.predict(frame)
            got = VideoFrame(index, t, frame, det)
            drawn = None
            if save_to is not None:
                drawn = draw_detections(frame, det, names=predictor.class_names)
                if writer is None:  # sized by the decoded frame: the container's size can be pre-rotation
                    writer = AtomicVideoWriter(Path(save_to), info.fps, (frame.shape[1], frame.shape[0]))
            # the drawing and the writer's opening are done before: only the write follows the record
            record_then_write(on_frame, got, functools.partial(writer.write, drawn) if writer is not None else None)
            bar.update()
            yield got
            index += 1
        if index == 0:
            raise no_frame(source)
        done = True
    finally:
        bar.close()
        cap.release()
        if writer is not None:
            if done or keep_stopped:
                # a second Ctrl-C while the MP4's index is written would leave no file at all
                with stops_held():
                    writer.commit()
            else:
                writer.discard()
