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


def test_a_plain_import_reaches_every_subpackage_and_the_version() -> None:
    """`yolox_edge.runtime.load_predictor` after `import yolox_edge` (as the README writes it) was an
    AttributeError; the subpackage loads when first named, and the import itself stays torch-free."""
    code = ("import sys, yolox_edge; t = 'torch' in sys.modules; f = yolox_edge.runtime.load_predictor; "
            "print(t, callable(f), yolox_edge.__version__ != '')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.split() == ["False", "True", "True"], out.stderr


def test_a_plain_import_reaches_the_modules_the_readme_names() -> None:
    """README: "Bad input raises `yolox_edge.errors.UserError`" and `describe.describe_artifact`;
    after a plain `import yolox_edge` both were an AttributeError (only subpackages loaded)."""
    code = ("import sys, yolox_edge; e = yolox_edge.errors.UserError; d = yolox_edge.describe.describe_artifact; "
            "print(issubclass(e, Exception), callable(d), 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.split() == ["True", "True", "False"], out.stderr


def test_the_folder_or_file_a_call_writes_is_out_everywhere() -> None:
    """export_model, build_calibration_set and quantize_checkpoint named it out_dir while Trainer,
    run_quantize, run_pipeline and the README say out; the size of a network input is img_size."""
    import inspect

    from yolox_edge.bundle import package_bundle
    from yolox_edge.engine import Trainer, convert_checkpoint
    from yolox_edge.export import export_detector, export_model
    from yolox_edge.models import import_official_checkpoint
    from yolox_edge.pipeline import run_pipeline
    from yolox_edge.quantize import build_calibration_set, quantize_checkpoint, run_quantize

    writers = (Trainer, run_quantize, run_pipeline, export_model, export_detector, build_calibration_set,
               quantize_checkpoint, import_official_checkpoint, convert_checkpoint, package_bundle)
    assert [f.__name__ for f in writers if "out" not in inspect.signature(f).parameters] == []
    sized = (export_model, build_calibration_set, run_quantize, run_pipeline)
    assert [f.__name__ for f in sized if "img_size" not in inspect.signature(f).parameters] == []


def test_the_library_never_imports_the_cli() -> None:
    """The CLI is a layer over the library, not the other way round: bench took its generated test
    image from ``cli.demo``, so a notebook running ``run_bench`` loaded the command-line modules."""
    import ast
    from pathlib import Path

    import yolox_edge

    root = Path(yolox_edge.__file__).parent
    offenders = []
    for path in root.rglob("*.py"):
        rel = path.relative_to(root)
        if rel.parts[0] == "cli" or rel.name == "__main__.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                target = "." * node.level + (node.module or "")
                if target.lstrip(".").split(".")[0] == "cli" or (node.module or "").startswith("yolox_edge.cli"):
                    offenders.append(f"{rel}:{node.lineno}")
    assert not offenders, offenders
