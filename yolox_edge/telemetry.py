"""The toolchains' usage telemetry, off for what yolox_edge runs.

OpenVINO's model converter and NNCF send usage events to Google Analytics unless a CI
environment says otherwise (their own switches: ``CI=true`` for the converter, ``NNCF_CI``
for NNCF; both leave a client id under ~/intel). A detector SDK for devices runs offline as
often as not, and there the converter's sender, a forked process, could hang the command at
exit; nothing of a user's model should leave the machine unasked either. Both are turned off for
the calls this package makes; a program that uses NNCF or OpenVINO itself keeps their settings
(``NNCF_CI`` is only set where it is unset).
"""
from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Iterator


def nncf_telemetry_off() -> None:
    """NNCF reads ``NNCF_CI`` once, when it is first imported: set before that, it sends nothing."""
    os.environ.setdefault("NNCF_CI", "1")


@contextmanager
def converter_telemetry_off() -> Iterator[None]:
    """``CI=true`` while OpenVINO's converter runs (it asks at each conversion), restored after."""
    before = os.environ.get("CI")
    os.environ["CI"] = "true"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("CI", None)
        else:
            os.environ["CI"] = before
