"""Live sources, a camera (an index or a device) or a network stream: naming, opening, and
the messages that say what to check when one will not open or gives no frame."""
from __future__ import annotations

import contextlib
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Protocol
from urllib.parse import urlsplit

import numpy as np

from ..errors import BadArgument, UserError, in_python

# What OpenCV's FFmpeg reads over a network; any other ``scheme://`` is refused by name.
STREAM_SCHEMES = ("rtsp", "rtsps", "rtmp", "http", "https", "tcp", "udp")


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
        """A local camera (an index or a /dev node), not a network stream."""
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
CAMERA = in_python("--camera /dev/videoN", "source='/dev/videoN'")  # predict_stream's source


def _cannot_open(source: LiveSource) -> str:
    """Why a source did not open, as far as can be told from outside, and what to check."""
    if not source.is_camera and not is_stream_url(source.target):  # a video file, read as if live
        if not os.path.isfile(source.target):
            return f"{source.label}: no such file; check the path (or give a camera index or a stream address)"
        from .video import unreadable_video

        return unreadable_video(source.label, source.target)
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
                f"v4l-utils) lists the cameras: pass one with {CAMERA}")
    if not os.access(dev, os.R_OK | os.W_OK):
        return (f"{source.label}: permission denied on {dev}; add yourself to the 'video' group "
                f"('sudo usermod -aG video $USER', then log out and in again)")
    return (f"{source.label}: {dev} cannot be opened; close any other app using the camera; a webcam also makes "
            f"nodes that give no video (try the next /dev/videoN: 'v4l2-ctl --list-devices'); {PI_MODULE_HINT}")


def no_first_frame(source: LiveSource) -> UserError:
    if not source.is_camera:
        return UserError(f"{source.label}: opened, but no frame could be decoded; check that it plays in VLC or ffplay")
    other = in_python("--camera-size", "size_wh=")
    size = f" or it cannot give {source.size_wh[0]}x{source.size_wh[1]} (try another {other})" \
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
            raise no_first_frame(source)
    finally:
        cap.release()
    return frame.shape[1], frame.shape[0]
