"""How a live run takes frames from its source: every frame in order, or only the newest.

A camera or network stream does not wait for the model. Read in order, the frames a slower model
has not taken yet queue up in the capture's buffer (a few for a V4L2 camera, without bound for
an RTSP stream), so what the model sees falls further and further behind what is in front of
the camera. ``NewestFrames`` reads on a thread of its own and keeps only the newest frame: the
model always gets the latest one, and the frames it had no time for are skipped (counted).
"""
from __future__ import annotations

import threading
from typing import Callable, NamedTuple

import numpy as np

from .live_source import Capture


class Frame(NamedTuple):
    index: int  # in the source's order, counting skipped frames
    time: float  # the clock when it was read
    image: np.ndarray


class InOrderFrames:
    """Every frame, read when asked for (the model sets the pace; a backlog grows if it is slow)."""

    def __init__(self, cap: Capture, clock: Callable[[], float]) -> None:
        self.cap, self.clock = cap, clock
        self.read_count = 0

    def next(self) -> Frame | None:
        """The next frame, or None at the end of the stream."""
        ok, image = self.cap.read()
        now = self.clock()
        if not ok or image is None:
            return None
        self.read_count += 1
        return Frame(self.read_count - 1, now, image)

    def close(self) -> None:
        self.cap.release()


class NewestFrames:
    """Frames read on a thread as fast as the source gives them; ``next`` hands over the newest
    not yet taken (waiting for one if none is new) and the ones in between are dropped.

    An error in the reading thread (or the end of the stream) reaches the caller at its next
    ``next`` after the frame already read is handed over."""

    WAIT_S = 0.2  # the longest a wait lasts before it looks again (a Ctrl-C is taken at once anyway)

    def __init__(self, cap: Capture, clock: Callable[[], float]) -> None:
        self.cap, self.clock = cap, clock
        self.read_count = 0
        self._cond = threading.Condition()
        self._newest: Frame | None = None
        self._ended = False
        self._error: BaseException | None = None
        self._stop = False
        self._orphaned = False  # close() gave up waiting: the thread releases the capture
        self._thread = threading.Thread(target=self._read, name="yolox-edge-frame-reader", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        try:
            while not self._stop:
                ok, image = self.cap.read()
                now = self.clock()
                with self._cond:
                    if not ok or image is None:
                        break
                    self._newest = Frame(self.read_count, now, image)
                    self.read_count += 1
                    self._cond.notify()
        except BaseException as e:  # handed to the caller, whose thread can act on it
            with self._cond:
                self._error = e
        finally:
            with self._cond:
                self._ended = True
                self._cond.notify()
                release = self._orphaned
            if release:
                self.cap.release()

    def next(self) -> Frame | None:
        """The newest frame not yet taken, waiting for one; None at the end of the stream."""
        with self._cond:
            while self._newest is None and not self._ended:
                self._cond.wait(self.WAIT_S)
            if self._newest is not None:
                frame, self._newest = self._newest, None
                return frame
            if self._error is not None:
                error, self._error = self._error, None
                raise error
            return None

    def close(self, timeout_s: float = 5.0) -> None:
        """Stop the reading thread and release the capture. A read blocked on a dead network
        stream cannot be cut short: after ``timeout_s`` the capture is left to the thread, which
        releases it when that read returns (releasing it under a running read could crash OpenCV)."""
        self._stop = True
        self._thread.join(timeout_s)
        with self._cond:  # the same lock the thread's last step takes: exactly one side releases
            if not self._ended:
                self._orphaned = True
                return
        self.cap.release()
