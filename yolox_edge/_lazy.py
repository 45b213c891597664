"""Lazy package attributes: names resolved from their submodule on first use, so importing a
package stays cheap and torch-free (a device install has only the runtimes)."""
from __future__ import annotations

from importlib import import_module
from typing import Callable


def lazy_getattr(package: str, names: dict[str, str]) -> Callable[[str], object]:
    """A module ``__getattr__`` that imports ``package.<names[name]>`` and returns its ``name``."""
    def __getattr__(name: str) -> object:
        if name in names:
            return getattr(import_module(f".{names[name]}", package), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")
    return __getattr__
