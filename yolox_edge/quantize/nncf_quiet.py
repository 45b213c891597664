"""NNCF's console output, kept to what a user needs during a quantization."""
from __future__ import annotations

import contextlib
import inspect
from contextlib import contextmanager
from typing import Iterator


@contextmanager
def quiet_nncf(bars: bool = True) -> Iterator[None]:
    """NNCF logs each quantizer it leaves out at INFO on stdout (~64 lines per format for Nano);
    keep its warnings, drop the rest, and give the level back afterwards. ``bars=False`` also
    turns off NNCF's progress bars (its rich-based ``track``: NNCF has no switch for them), and
    only them: this package's own lines, printed meanwhile, still reach stdout."""
    import logging

    logger = logging.getLogger("nncf")
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        with contextlib.ExitStack() as stack:
            if not bars:
                stack.enter_context(_nncf_bars_off())
            yield
    finally:
        logger.setLevel(level)


@contextmanager
def _nncf_bars_off() -> Iterator[None]:
    """Every NNCF ``track`` made inside is made with ``disable=True``. (Sending stdout to
    /dev/null instead, as before, also swallowed the ``log=print`` lines of the caller.)"""
    try:
        from nncf.common.logging.track_progress import track
    except ImportError:  # another NNCF layout: its bars then show
        yield
        return
    init = track.__init__
    signature = inspect.signature(init)

    def disabled(self, *args, **kwargs) -> None:
        bound = signature.bind(self, *args, **kwargs)
        bound.arguments["disable"] = True
        init(*bound.args, **bound.kwargs)

    track.__init__ = disabled
    try:
        yield
    finally:
        track.__init__ = init
