"""yolox_edge: YOLOX-Nano/Tiny from your data to a phone (train, INT8, export, bench, bundle).

Subpackages are imported on use (``yolox_edge.runtime``, ``yolox_edge.engine``, ...), so
``import yolox_edge`` stays cheap on a device without torch.
"""
from __future__ import annotations

import importlib.metadata

try:
    __version__ = importlib.metadata.version("yolox_edge")
except importlib.metadata.PackageNotFoundError:  # a source tree that was never installed
    __version__ = "0+unknown"
