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
    ("yolox_edge.describe", ("describe_artifact", "describe_lines")),
    ("yolox_edge.visualize", ("draw_detections", "draw_ground_truth", "write_image")),
    ("yolox_edge.errors", ("UserError", "BadArgument")),
])
def test_a_star_import_of_the_readme_modules_gives_their_api_only(mod: str, public: tuple[str, ...]) -> None:
    """config and pipeline had no __all__: `import *` (and help()) offered UserError, format_size,
    deprecated_keywords, line_sink and `annotations` beside their own calls."""
    ns: dict = {}
    exec(f"from {mod} import *", ns)
    names = {k for k in ns if not k.startswith("__")}
    assert set(public) <= names
    helpers = {"UserError", "format_size", "deprecated_keywords", "line_sink", "annotations", "flag_value", "AugCfg",
               "Path", "np", "cv2", "in_python", "first_few", "Detections"}
    assert not (names & helpers) - set(public), names  # errors' own UserError is its API


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
    """export_model, build_calibration_set, quantize_checkpoint and make_shapes_dataset named it out_dir
    (extract_bundle dest) while Trainer, run_quantize, run_pipeline and the README say out; the size of a network
    input is img_size."""
    import inspect

    from yolox_edge.bundle import extract_bundle, package_bundle
    from yolox_edge.data import make_shapes_dataset
    from yolox_edge.engine import Trainer, convert_checkpoint
    from yolox_edge.export import export_detector, export_model
    from yolox_edge.models import import_official_checkpoint
    from yolox_edge.pipeline import run_pipeline
    from yolox_edge.quantize import build_calibration_set, load_calibration_set, quantize_checkpoint, run_quantize

    writers = (Trainer, run_quantize, run_pipeline, export_model, export_detector, build_calibration_set,
               quantize_checkpoint, import_official_checkpoint, convert_checkpoint, package_bundle, extract_bundle,
               make_shapes_dataset)
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


def test_trainer_train_returns_a_train_result_that_reads_as_the_dict_it_was() -> None:
    """Trainer.train() returned a plain dict where every other call returns a named result; the
    result is still that dict (run["best"] the str it was, the other keys in their order, json.dumps
    and item assignment working) with each key an attribute too (best and last as Path)."""
    import json
    from pathlib import Path

    from yolox_edge.engine import Trainer, TrainResult

    assert Trainer.train.__annotations__["return"] in (TrainResult, "TrainResult")
    run = TrainResult(best=Path("r/best.pt"), last=Path("r/last.pt"), best_ap=0.4, best_epoch=2,
                      best_per_class=[{"class": "a"}], epochs=3, rows=[{"epoch": 1}], skipped_samples=1, main=True)
    assert list(run) == ["epochs", "best_ap", "best_epoch", "best_per_class", "last", "best", "skipped_samples",
                         "rows", "main"] == list(TrainResult.FIELDS)  # the dict's keys, as train() returned them
    assert run["best"] == str(Path("r/best.pt")) and run["last"] == str(Path("r/last.pt"))
    assert run.best == Path("r/best.pt") and run.last == Path("r/last.pt") and run["best_ap"] == run.best_ap == 0.4
    assert [getattr(run, k) for k in TrainResult.FIELDS if k not in ("best", "last")] == \
        [run[k] for k in TrainResult.FIELDS if k not in ("best", "last")]
    assert run.get("main") is True and run.get("nothing", 7) == 7 and "rows" in run and len(run) == 9
    assert json.loads(json.dumps(run)) == dict(run) and dict(run)["best_epoch"] == 2
    run["note"] = "mine"  # old code that added a key to the dict
    assert run["note"] == "mine"
    with pytest.raises(KeyError):
        run["AP"]
    with pytest.raises(AttributeError):
        run.best = Path("x")  # type: ignore[misc]
    assert [k for k in TrainResult.FIELDS if f"``{k}``" not in TrainResult.__doc__] == []


# The public calls the README's Python API table names, beside the positionals each keeps.
README_CALLS = {
    "yolox_edge.models.import_official_checkpoint": 1, "yolox_edge.models.model_table": 0,
    "yolox_edge.config.build_recipe": 1, "yolox_edge.engine.evaluate_model": 1, "yolox_edge.engine.evaluate": 2,
    "yolox_edge.engine.convert_checkpoint": 1, "yolox_edge.export.export_model": 1,
    "yolox_edge.export.export_detector": 1, "yolox_edge.quantize.build_calibration_set": 2,
    "yolox_edge.quantize.load_calibration_set": 1, "yolox_edge.quantize.run_quantize": 1,
    "yolox_edge.quantize.quantize_checkpoint": 1, "yolox_edge.runtime.load_predictor": 1,
    "yolox_edge.runtime.predict_video": 2, "yolox_edge.runtime.predict_stream": 2,
    "yolox_edge.bench.run_bench": 1, "yolox_edge.bench.compare_reports": 2,
    "yolox_edge.data.check_dataset": 1, "yolox_edge.bundle.package_bundle": 1, "yolox_edge.bundle.verify_bundle": 1,
    "yolox_edge.bundle.extract_bundle": 1, "yolox_edge.describe.describe_artifact": 1,
    "yolox_edge.pipeline.run_pipeline": 0, "yolox_edge.visualize.draw_detections": 2,
    "yolox_edge.visualize.draw_ground_truth": 3,
}


def _resolve(qual: str):
    mod, name = qual.rsplit(".", 1)
    return getattr(importlib.import_module(mod), name)


@pytest.mark.parametrize("qual, kept", README_CALLS.items())
def test_a_readme_call_takes_the_thing_it_acts_on_and_keywords_after(qual: str, kept: int) -> None:
    """export_model(ckpt, fmt, out), run_quantize(ckpt, calib, formats, out) and the like took three
    or four positionals; the rest are keyword-only now (timm/torchvision builders' style)."""
    import inspect

    params = inspect.signature(_resolve(qual)).parameters.values()
    assert sum(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) for p in params) == kept


# One idea, one keyword: the earlier spellings of each, none of which a README call may take.
RETIRED = {"nms_iou": "iou", "nms_conf": "conf", "nms": "iou", "artifact": "model", "artifacts": "models",
           "path": "model", "ckpt": "model", "fmt": "format", "batch_size": "batch", "spec_path": "data",
           "spec": "data", "out_dir": "out", "dest": "out", "size": "img_size", "input_size": "img_size"}


def test_one_keyword_per_idea_across_the_readme_calls() -> None:
    """The NMS IoU was nms=, iou= or nms_iou=; the model model, path, artifact or ckpt; the data spec
    data, source or spec_path; eval's --batch batch_size."""
    import inspect

    found = [f"{qual}({name}=): now {RETIRED[name]}=" for qual in README_CALLS
             for name in inspect.signature(_resolve(qual)).parameters if name in RETIRED]
    assert found == []
    # source= is a video's or camera's (predict_video, predict_stream); calibrate's is --data
    assert "data" in inspect.signature(_resolve("yolox_edge.quantize.build_calibration_set")).parameters


def _old_form(call, *matches: str):
    """Run ``call`` expecting one DeprecationWarning per pattern of ``matches`` (and no other) and
    then the UserError that proves where the value went (each is made to fail fast, before any work).

    Every warning a call gives is named: pytest.warns(match=) re-emits those it does not match,
    which the suite's filter turns into errors (a call with two old keywords warns twice)."""
    import re

    from yolox_edge.errors import UserError

    with pytest.warns(DeprecationWarning) as got, pytest.raises(UserError) as err:
        call()
    said = [str(w.message) for w in got if issubclass(w.category, DeprecationWarning)]
    assert len(said) == len(matches) and all(any(re.search(m, s) for s in said) for m in matches), (matches, said)
    return str(err.value)


def test_the_earlier_call_forms_still_work_and_warn(tmp_path) -> None:
    """No user code breaks in this release: each earlier form binds as it did, with a
    DeprecationWarning naming the keyword to use."""
    from yolox_edge.bench import run_bench
    from yolox_edge.bundle import package_bundle
    from yolox_edge.data import check_dataset
    from yolox_edge.describe import describe_artifact
    from yolox_edge.engine import convert_checkpoint, evaluate_model
    from yolox_edge.export import export_model
    from yolox_edge.models import import_official_checkpoint
    from yolox_edge.quantize import build_calibration_set, quantize_checkpoint, run_quantize
    from yolox_edge.runtime import load_predictor

    ckpt, missing = tmp_path / "m.pt", tmp_path / "missing.pt"
    ckpt.write_bytes(b"not a checkpoint")
    assert "unknown format 'tflite'" in _old_form(lambda: export_model(ckpt, "tflite", tmp_path / "e"),
                                                  r"passing format, out by position")
    _old_form(lambda: export_model(ckpt, format="onnx", out=tmp_path / "e", nms_iou=0.5),
              r"nms_iou=\) is deprecated; pass iou=")  # then the checkpoint is read, and refused
    assert "unknown format 'tflite'" in _old_form(lambda: export_model(ckpt, fmt="tflite", out_dir=tmp_path / "e"),
                                                  r"fmt=\) is deprecated; pass format=",
                                                  r"out_dir=\) is deprecated; pass out=")
    assert "'tflite'" in _old_form(lambda: run_quantize(ckpt, tmp_path / "c", "tflite", tmp_path / "q"),
                                   r"passing calib, formats, out by position")
    assert "'tflite'" in _old_form(lambda: run_quantize(ckpt, calib=tmp_path, formats="tflite", out=tmp_path / "q",
                                                        nms_conf=0.2), r"nms_conf=\) is deprecated; pass conf=")
    _old_form(lambda: quantize_checkpoint(missing, tmp_path / "c", "onnx", tmp_path / "q"),
              r"passing calib, format, out by position")
    _old_form(lambda: evaluate_model(missing, tmp_path / "data.yaml", "val", progress=False),
              r"passing data, split by position")
    _old_form(lambda: evaluate_model(missing, data=tmp_path / "data.yaml", batch_size=2, progress=False),
              r"batch_size=\) is deprecated; pass batch=")
    assert "nosuch" in _old_form(lambda: convert_checkpoint(missing, "nosuch", tmp_path, tmp_path / "n.pt"),
                                 r"passing to, calib, out by position")
    assert "--target tflite" in _old_form(lambda: package_bundle(missing, "tflite", tmp_path / "b.zip"),
                                          r"passing target, out by position")
    assert "iou 1.5" in _old_form(lambda: package_bundle(artifact=missing, target="onnx", out=tmp_path / "b.zip",
                                                         nms=1.5), r"nms=\) is deprecated; pass iou=",
                                  r"artifact=\) is deprecated; pass model=")
    _old_form(lambda: import_official_checkpoint(missing, "nano", tmp_path / "n.pt"), r"passing variant, out")
    _old_form(lambda: import_official_checkpoint(path=missing, variant="nano", out=tmp_path / "n.pt"),
              r"path=\) is deprecated; pass model=")
    _old_form(lambda: load_predictor(path=missing), r"path=\) is deprecated; pass model=")
    _old_form(lambda: describe_artifact(path=missing), r"path=\) is deprecated; pass model=")
    _old_form(lambda: check_dataset(tmp_path / "none.yaml", ["val"]), r"passing splits by position")
    _old_form(lambda: check_dataset(spec_path=tmp_path / "none.yaml"), r"spec_path=\) is deprecated; pass data=")
    assert "count=0" in _old_form(lambda: build_calibration_set(source=tmp_path, out=tmp_path / "c", count=0),
                                  r"source=\) is deprecated; pass data=")
    assert "models: give one or more" in _old_form(lambda: run_bench(artifacts=[], progress=False),
                                                   r"artifacts=\) is deprecated; pass models=")


def test_model_table_takes_its_earlier_positionals_with_a_warning() -> None:
    from yolox_edge.models import model_table

    with pytest.warns(DeprecationWarning, match=r"passing num_classes, variants by position"):
        old = model_table(3, ["test"])
    assert old == model_table(num_classes=3, variants=["test"]) and old[0]["name"] == "test"


def _readme_python_example() -> str:
    from pathlib import Path

    readme = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Python API", 1)[1].split("\n## ", 1)[0]
    return section.split("```python\n", 1)[1].split("```", 1)[0]


def test_the_readme_python_example_calls_each_function_in_its_present_form() -> None:
    """Each call of the README's example binds to the signature as it is now, with no keyword or
    positional that only the deprecated forms take (so running it says no DeprecationWarning)."""
    import ast
    import inspect

    tree = ast.parse(_readme_python_example())
    names = {a.asname or a.name: f"{node.module}.{a.name}" for node in ast.walk(tree)
             if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("yolox_edge") for a in node.names}
    checked = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in names:
            fn = _resolve(names[node.func.id])
            sig = inspect.signature(inspect.unwrap(fn))
            kw = {k.arg: None for k in node.keywords}
            assert not set(kw) & set(RETIRED), (node.func.id, sorted(set(kw) & set(RETIRED)))
            sig.bind(*[None] * len(node.args), **kw)  # TypeError: an earlier form (or no form at all)
            checked.append(node.func.id)
    assert {"export_model", "run_quantize", "evaluate_model", "package_bundle", "Trainer"} <= set(checked)


@pytest.mark.slow
@pytest.mark.refdata
def test_the_readme_python_example_runs_without_a_deprecation_warning(refdata, tmp_path, monkeypatch) -> None:
    """The README's example as written, beside refdata/ (about 2 minutes on 2 cores)."""
    import warnings

    (tmp_path / "refdata").symlink_to(refdata, target_is_directory=True)
    monkeypatch.chdir(tmp_path)
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=r".*is deprecated; pass", category=DeprecationWarning)
        exec(compile(_readme_python_example(), "README.md", "exec"), {"__name__": "readme_example"})
    assert (tmp_path / "nano_raccoon.zip").is_file()


# The top-level modules whose calls the README names, beside the subpackages (errors' __all__ is its two
# exception classes; its functions are the library's own message helpers, not a call to make).
MODULE_CALLS = ("yolox_edge.describe", "yolox_edge.visualize")
# Positional although it has a default, each for its reason; every other parameter with one is keyword-only.
POSITIONAL_OPTIONS = {
    # which split of the spec to read is the thing read (every call in the package names it by position)
    "yolox_edge.data.read_split": {"split"},
}
# Options without a default (so the rule above cannot see them) that the audit also put behind `*`.
REQUIRED_KEYWORDS = {"yolox_edge.models.variant_counts": {"num_classes", "input_hw"},
                     "yolox_edge.models.count_gflops": {"img_size"}, "yolox_edge.models.import_official": {"variant"}}


def _exported_calls():
    """(qualified name, function) of every exported function, the ``__init__`` a user calls of each
    exported class (a dataclass's generated one aside: its fields are positional by design) and each
    public method, class method and static method."""
    import dataclasses
    import inspect

    for pkg in PUBLIC + MODULE_CALLS:
        mod = importlib.import_module(pkg)
        names = getattr(mod, "__all__", None) or [n for n, v in vars(mod).items()
                                                  if inspect.isfunction(v) and v.__module__ == pkg]
        for name in names:
            obj = getattr(mod, name)
            if inspect.isfunction(obj):
                yield f"{pkg}.{name}", obj
            elif inspect.isclass(obj) and obj.__module__.startswith("yolox_edge"):
                for attr, member in vars(obj).items():
                    member = member.__func__ if isinstance(member, (classmethod, staticmethod)) else member
                    if not inspect.isfunction(member) or not member.__module__.startswith("yolox_edge"):
                        continue
                    if attr.startswith("_") and not (attr == "__init__" and not dataclasses.is_dataclass(obj)):
                        continue
                    yield f"{pkg}.{name}.{attr}", member


def test_every_option_of_an_exported_call_is_keyword_only() -> None:
    """synthetic_scene(h, w, seed), open_bundle_model(path, threads), best_ratio(result, mode),
    center_prior(..., radius), variant_counts(variant, num_classes, input_hw) and others took options by
    position, so a parameter added before one would have shifted a caller's arguments silently. What
    a call acts on stays positional; an option (any parameter with a default) is keyword-only."""
    import inspect

    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    found, seen = [], set()
    for qual, fn in _exported_calls():
        seen.add(qual)
        params = inspect.signature(fn).parameters.values()
        allowed = POSITIONAL_OPTIONS.get(qual, set())
        found += [f"{qual}({p.name}=)" for p in params if p.kind in positional
                  and (p.default is not p.empty or p.name in REQUIRED_KEYWORDS.get(qual, ())) and p.name not in allowed]
    assert found == []
    # an entry for a call that is gone, or a name not exported, would pass unseen
    assert set(POSITIONAL_OPTIONS) | set(REQUIRED_KEYWORDS) <= seen


def test_the_options_made_keywords_still_bind_by_position_with_a_warning() -> None:
    """The calls the keyword-only pass changed keep their earlier positional forms, each binding as
    it did, with a DeprecationWarning naming the keywords (synthetic_scene's is in test_synthetic)."""
    import numpy as np

    from yolox_edge.bench import best_ratio
    from yolox_edge.config import Recipe, apply_overrides, recipe_from_dict
    from yolox_edge.engine import ConfusionCounter
    from yolox_edge.models import list_models, variant_counts
    from yolox_edge.runtime import Detections

    def old(match: str, call):
        with pytest.warns(DeprecationWarning, match=rf"passing {match} by position is deprecated"):
            return call()

    assert old("include_test", lambda: list_models(True)) == list_models(include_test=True)
    assert old("num_classes, input_hw", lambda: variant_counts("test", 3, (64, 64))) == \
        variant_counts("test", num_classes=3, input_hw=(64, 64))
    assert old("source", lambda: recipe_from_dict({"train": {"epochs": 3}}, "x.yaml")).train.epochs == 3
    # the message still names the source given by position
    assert _message(lambda: old("source", lambda: recipe_from_dict([1], "x.yaml"))).startswith("x.yaml: a recipe is")
    assert "machine=" in _message(lambda: old("keyword", lambda: apply_overrides(Recipe(), ["nope"], "machine")))
    rows = {"rows": [{"label": label, "threads": 1, "baseline": label == "b",
                      "latency_ms": {"e2e": {"p50": e2e}, "model": {"p50": 2.0}}} for label, e2e in (("b", 4.0), ("a", 2.0))]}
    assert old("mode", lambda: best_ratio(rows, "model"))["ratio"] == 1.0 == best_ratio(rows, mode="model")["ratio"]
    counter = ConfusionCounter(1)
    det = Detections(np.array([[0, 0, 10, 10]], np.float32), np.array([0.9], np.float32), np.array([0]))
    old("crowd", lambda: counter.add(det, np.array([[0, 0, 10, 10]]), [0], [True]))
    assert counter.instances.tolist() == [0]  # the crowd flags still went where they did
    assert old("cls", lambda: counter.scores_at(0.3, 0)) == counter.scores_at(0.3, cls=0)


def _message(call) -> str:
    from yolox_edge.errors import UserError

    with pytest.raises(UserError) as err:
        call()
    return str(err.value)
