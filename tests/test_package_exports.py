"""What a notebook user imports from the subpackages resolves, and importing them stays torch-free."""
from __future__ import annotations

import importlib
import subprocess
import sys

import pytest


@pytest.mark.parametrize("pkg", ["yolox_edge.data", "yolox_edge.engine", "yolox_edge.quantize", "yolox_edge.export",
                                 "yolox_edge.runtime", "yolox_edge.models", "yolox_edge.bench", "yolox_edge.bundle",
                                 "yolox_edge.config", "yolox_edge.pipeline"])
def test_every_listed_name_resolves(pkg: str) -> None:
    mod = importlib.import_module(pkg)
    for name in mod.__all__:
        assert getattr(mod, name) is not None, f"{pkg}.{name}"


@pytest.mark.parametrize("mod, public", [
    ("yolox_edge.config", ("Recipe", "build_recipe", "load_recipe", "recipe_from_dict", "AugConfig")),
    ("yolox_edge.pipeline", ("run_pipeline", "PipelineResult", "summary_table")),
])
def test_a_star_import_of_the_readme_modules_gives_their_api_only(mod: str, public: tuple[str, ...]) -> None:
    """config and pipeline had no __all__: `import *` (and help()) offered UserError, format_size,
    deprecated_keywords, line_sink and `annotations` beside their own calls."""
    ns: dict = {}
    exec(f"from {mod} import *", ns)
    names = {k for k in ns if not k.startswith("__")}
    assert set(public) <= names
    assert not names & {"UserError", "format_size", "deprecated_keywords", "line_sink", "annotations", "flag_value",
                        "AugCfg"}, names


def test_both_names_of_the_aug_section_still_import() -> None:
    from yolox_edge.config import AugCfg, AugConfig, __all__

    assert AugCfg is AugConfig and ("AugConfig" in __all__) != ("AugCfg" in __all__)


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


def test_detections_is_where_predict_returns_it_and_visualize_after_a_plain_import() -> None:
    """Type hints beside `runtime.load_predictor` looked for `runtime.Detections` (only
    `postprocess` had it); `yolox_edge.visualize.draw_detections` was an AttributeError after
    `import yolox_edge`."""
    import yolox_edge.runtime as runtime
    from yolox_edge.postprocess import Detections

    assert runtime.Detections is Detections and "Detections" in runtime.__all__
    code = ("import sys, yolox_edge; t = 'torch' in sys.modules; f = yolox_edge.visualize.draw_detections; "
            "print(t, callable(f))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.split() == ["False", "True"], out.stderr


def test_the_folder_or_file_a_call_writes_is_out_everywhere() -> None:
    """export_model, build_calibration_set and quantize_checkpoint named it out_dir while Trainer,
    run_quantize, run_pipeline and the README say out; the size of a network input is img_size."""
    import inspect

    from yolox_edge.bundle import package_bundle
    from yolox_edge.engine import Trainer, convert_checkpoint
    from yolox_edge.export import export_detector, export_model
    from yolox_edge.models import import_official_checkpoint
    from yolox_edge.pipeline import run_pipeline
    from yolox_edge.quantize import build_calibration_set, load_calibration_set, quantize_checkpoint, run_quantize

    writers = (Trainer, run_quantize, run_pipeline, export_model, export_detector, build_calibration_set,
               quantize_checkpoint, import_official_checkpoint, convert_checkpoint, package_bundle)
    assert [f.__name__ for f in writers if "out" not in inspect.signature(f).parameters] == []
    sized = (export_model, build_calibration_set, load_calibration_set, run_quantize, run_pipeline)
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


PUBLIC = ("yolox_edge.data", "yolox_edge.engine", "yolox_edge.quantize", "yolox_edge.export", "yolox_edge.runtime",
          "yolox_edge.models", "yolox_edge.bench", "yolox_edge.bundle", "yolox_edge.assign", "yolox_edge.config",
          "yolox_edge.pipeline")


def _public_callables():
    """(qualified name, function) of each function and public method a subpackage's __all__ lists."""
    import inspect

    for pkg in PUBLIC:
        mod = importlib.import_module(pkg)
        for name in mod.__all__:
            obj = getattr(mod, name)
            if inspect.isfunction(obj):
                yield f"{pkg}.{name}", obj
            elif inspect.isclass(obj) and obj.__module__.startswith("yolox_edge"):
                for attr, member in vars(obj).items():
                    member = member.fget if isinstance(member, property) else member
                    if inspect.isfunction(member) and not attr.startswith("_"):
                        yield f"{pkg}.{name}.{attr}", member


def test_every_public_function_has_a_docstring_and_type_hints() -> None:
    """A notebook's help() and an editor's hints: write_csv, Detections.to_list and
    Predictor.class_names had no docstring, open_bundle_model and evaluate(predictor) no hints."""
    import inspect

    missing = []
    for qual, fn in _public_callables():
        if not inspect.getdoc(fn):
            missing.append(f"{qual}: docstring")
        sig = inspect.signature(fn)
        for name, p in sig.parameters.items():
            if name not in ("self", "cls") and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD) \
                    and p.annotation is p.empty:
                missing.append(f"{qual}: hint of {name}")
        if sig.return_annotation is sig.empty:
            missing.append(f"{qual}: return hint")
    assert not missing, missing


def test_each_result_the_readme_lists_names_its_fields() -> None:
    """The README's Python API table returns these; QuantizeResult and PipelineResult had only the
    generated docstring, and the others did not say what each field holds."""
    import dataclasses

    from yolox_edge.engine import ConvertResult
    from yolox_edge.export import ExportResult
    from yolox_edge.models import ImportedCheckpoint
    from yolox_edge.pipeline import PipelineResult
    from yolox_edge.quantize.calib import CalibrationSet
    from yolox_edge.quantize.ptq import QuantizeResult
    from yolox_edge.runtime import VideoFrame

    unnamed = [f"{cls.__name__}.{f.name}" for cls in (ConvertResult, ExportResult, ImportedCheckpoint, PipelineResult,
                                                       CalibrationSet, QuantizeResult, VideoFrame)
               for f in dataclasses.fields(cls) if f"``{f.name}``" not in (cls.__doc__ or "")]
    assert not unnamed, unnamed


def test_trainer_train_names_every_key_it_returns() -> None:
    """README: Trainer(...).train() returns 'dict: best/last paths, best AP, per-epoch rows'; the
    docstring said only 'a summary (best AP, paths)'. The keys are read from the return statement."""
    import ast
    import inspect
    import textwrap

    from yolox_edge.engine import Trainer

    tree = ast.parse(textwrap.dedent(inspect.getsource(Trainer.train)))
    keys = [k.value for node in ast.walk(tree) if isinstance(node, ast.Return) and isinstance(node.value, ast.Dict)
            for k in node.value.keys]
    assert keys and [k for k in keys if f"``{k}``" not in Trainer.train.__doc__] == []
