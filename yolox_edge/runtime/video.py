"""Detections for every frame of a video file, and an annotated copy written atomically.

Frames are decoded with OpenCV's FFmpeg (in the opencv-python-headless wheel, also on aarch64),
so whatever it reads works: MP4/MOV (H.264, HEVC where the wheel's FFmpeg has it), AVI, MKV,
WebM. Phone clips' rotation flag is applied by OpenCV, so boxes are in the upright frame.
"""
from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from ..errors import UserError, require_file
from ..postprocess import Detections

VIDEO_SUFFIXES = {".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".mpg", ".mpeg", ".wmv", ".3gp"}
# When a file does not state its frame rate (some AVI/MKV muxers), times are counted at this rate.
FALLBACK_FPS = 30.0


def is_video(path: str | Path) -> bool:
    """Whether ``path`` names a video file by its suffix."""
    return Path(path).suffix.lower() in VIDEO_SUFFIXES


@dataclass
class VideoFrame:
    """One decoded frame (BGR uint8), where it is in the clip, and its detections."""

    index: int
    time_s: float
    image: np.ndarray
    detections: Detections


@dataclass(frozen=True)
class VideoInfo:
    """What the container says: frame rate (FALLBACK_FPS when it says none), frame count
    (an estimate for some containers; 0 when unknown), and frame size."""

    fps: float
    frames: int
    width: int
    height: int
    fps_stated: bool = True


def open_video(path: str | Path):
    """(cv2.VideoCapture, VideoInfo) for a video file, or a UserError naming it."""
    import cv2

    p = require_file(path, "video")
    cap = cv2.VideoCapture(str(p))
    if not cap.isOpened():
        raise UserError(f"{p}: cannot be read as a video (OpenCV's FFmpeg could not open it); "
                        f"convert it to MP4 (H.264), e.g. 'ffmpeg -i {p.name} {p.stem}.mp4'")
    fps = cap.get(cv2.CAP_PROP_FPS)
    stated = bool(np.isfinite(fps) and 0 < fps < 1000)
    count = cap.get(cv2.CAP_PROP_FRAME_COUNT)
    info = VideoInfo(fps=float(fps) if stated else FALLBACK_FPS,
                     frames=int(count) if np.isfinite(count) and count > 0 else 0,
                     width=int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), height=int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)),
                     fps_stated=stated)
    return cap, info


class _AtomicVideoWriter:
    """An MP4 (MPEG-4 part 2, 'mp4v': OpenCV's wheels write it without extra codecs) written
    to a hidden temp file beside ``path`` and renamed over it on ``commit``; ``discard`` (or a
    failure) removes the temp, so an interrupted run never leaves half a video under the name."""

    def __init__(self, path: Path, fps: float, size_wh: tuple[int, int]) -> None:
        import cv2

        from ..fileio import new_file_mode, require_writable

        self.path = require_writable(path, "annotated video")
        # The temp keeps the .mp4 suffix: OpenCV picks the container by it.
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp.mp4", dir=path.parent)
        os.fchmod(fd, new_file_mode(path))  # mkstemp makes 0600; the result is an ordinary file
        os.close(fd)
        self.tmp = Path(tmp)
        self.writer = cv2.VideoWriter(str(self.tmp), cv2.VideoWriter_fourcc(*"mp4v"), fps, size_wh)
        if not self.writer.isOpened():
            self.discard()
            raise UserError(f"{path}: OpenCV cannot write an MP4 video here (no 'mp4v' encoder in this "
                            f"OpenCV build); install opencv-python-headless from PyPI, or drop --save-dir")

    def write(self, frame: np.ndarray) -> None:
        self.writer.write(frame)

    def commit(self) -> Path:
        self.writer.release()
        os.replace(self.tmp, self.path)
        return self.path

    def discard(self) -> None:
        self.writer.release()
        self.tmp.unlink(missing_ok=True)


def predict_video(predictor, source: str | Path, *, save_to: str | Path | None = None,
                  progress: bool = True) -> Iterator[VideoFrame]:
    """Run ``predictor`` on every frame of ``source``, yielding a VideoFrame each.

    With ``save_to`` (a .mp4 path) the frames are drawn with their boxes and written there at
    the clip's frame rate; the file appears only once the last frame is read (stopping the
    loop early, or an error, leaves no file). A file that decodes to no frame is a UserError.
    """
    from ..progress import progress_bar
    from ..visualize import draw_detections

    cap, info = open_video(source)
    writer = None
    bar = progress_bar(total=info.frames or None, desc=Path(source).name, unit="frame", disable=not progress)
    done = False
    try:
        index = 0
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            det = predictor.predict(frame)
            if save_to is not None:
                if writer is None:  # sized by the decoded frame: the container's size can be pre-rotation
                    writer = _AtomicVideoWriter(Path(save_to), info.fps, (frame.shape[1], frame.shape[0]))
                writer.write(draw_detections(frame, det, predictor.class_names))
            bar.update()
            yield VideoFrame(index, index / info.fps, frame, det)
            index += 1
        if index == 0:
            raise UserError(f"{source}: no frame could be decoded; check that the file plays, or convert it "
                            f"to MP4 (H.264)")
        done = True
    finally:
        bar.close()
        cap.release()
        if writer is not None:
            if done:
                writer.commit()
            else:
                writer.discard()
