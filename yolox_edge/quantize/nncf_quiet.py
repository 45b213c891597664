"""NNCF's console output, kept to what a user needs during a quantization."""
from __future__ import annotations

from contextlib import contextmanager


@contextmanager
def quiet_nncf(bars: bool = True):
    """NNCF logs each quantizer it leaves out at INFO on stdout (~64 lines per format for Nano);
    keep its warnings, drop the rest, and give the level back afterwards. ``bars=False`` also
    drops its progress bars (rich, drawn on whatever ``sys.stdout`` is when they start: NNCF has
    no switch for them); its warnings still show, their handler holds the real stream."""
    import contextlib
    import logging
    import os

    logger = logging.getLogger("nncf")
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        with contextlib.ExitStack() as stack:
            if not bars:
                stack.enter_context(contextlib.redirect_stdout(stack.enter_context(open(os.devnull, "w"))))
            yield
    finally:
        logger.setLevel(level)
