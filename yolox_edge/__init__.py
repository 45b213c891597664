"""yolox_edge: YOLOX-Nano/Tiny from your data to a phone (train, INT8, export, bench, bundle).

Subpackages are imported on use (``yolox_edge.runtime``, ``yolox_edge.engine``, ...), so
``import yolox_edge`` stays cheap on a device without torch.
"""
from __future__ import annotations

import importlib.metadata

from .telemetry import nncf_telemetry_off

nncf_telemetry_off()  # before anything imports NNCF (see telemetry.py)

try:
    __version__ = importlib.metadata.version("yolox_edge")
except importlib.metadata.PackageNotFoundError:  # a source tree that was never installed
    __version__ = "0+unknown"

# `yolox_edge.runtime.load_predictor(...)` after a plain `import yolox_edge`, as the README
# writes it: each subpackage is imported when first named (it was an AttributeError). The
# modules the README's Python API names (`errors.UserError`, `describe.describe_artifact`) too,
# and `visualize.draw_detections` for drawing what a predictor returns.
_SUBPACKAGES = ("assign", "bench", "bundle", "config", "data", "describe", "engine", "errors", "export", "models",
                "pipeline", "quantize", "runtime", "visualize")


def __getattr__(name: str) -> object:
    if name in _SUBPACKAGES:
        from importlib import import_module
        return import_module(f".{name}", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
