"""What a notebook user imports from the subpackages resolves, and importing them stays torch-free."""
from __future__ import annotations

import importlib
import subprocess
import sys

import pytest


@pytest.mark.parametrize("pkg", ["yolox_edge.data", "yolox_edge.engine", "yolox_edge.quantize", "yolox_edge.export",
                                 "yolox_edge.runtime", "yolox_edge.models", "yolox_edge.bench", "yolox_edge.bundle"])
def test_every_listed_name_resolves(pkg: str) -> None:
    mod = importlib.import_module(pkg)
    for name in mod.__all__:
        assert getattr(mod, name) is not None, f"{pkg}.{name}"


def test_importing_the_lazy_packages_does_not_import_torch() -> None:
    code = ("import sys, yolox_edge.data, yolox_edge.engine, yolox_edge.quantize; "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "False", out.stderr
