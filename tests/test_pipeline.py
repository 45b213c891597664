"""``yolox-edge pipeline`` (the README's main job) end to end at a tiny size: every stage runs
and leaves what the summary promises (at a rectangular --img-size, which every stage follows)."""
from __future__ import annotations

import json
import re
import zipfile
from pathlib import Path

import jsonschema
import pytest

import yolox_edge.bench as bench_pkg
from yolox_edge.config import recipe_from_dict
from yolox_edge.pipeline import default_recipe, default_recipe_note

pytest.importorskip("nncf")
pytest.importorskip("onnxruntime")


def test_pipeline_cli_on_the_embedded_default(run_cli, tmp_path) -> None:
    out = tmp_path / "run"
    code, stdout, err = run_cli("pipeline", "--out", out, "--epochs", "1", "--img-size", "96x64", "--target", "onnx",
                                "--calib-count", "4", "--bench-runs", "2", "--threads", "1",
                                "--set", "data.repeat=1")
    assert code == 0, err
    # the generated data, the trained checkpoint and each stage's output
    assert (out / "data" / "data.yaml").is_file()
    from yolox_edge.engine.checkpoint import load_checkpoint
    from yolox_edge.export import read_metadata

    # trained at 96x64 (width x height), and every later stage at the checkpoint's size
    assert "sizes: trained at 96x64; evaluated and exported at 96x64" in stdout
    assert load_checkpoint(out / "train" / "last.pt")["preprocess"]["input_size"] == [64, 96]
    assert "calibration set: 4 images at 96x64" in stdout
    for folder in ("onnx_fp32", "onnx_raw", "onnx_int8"):
        assert read_metadata(out / folder)["input"]["shape"] == [1, 3, 64, 96], folder
    rows = json.loads((out / "eval.json").read_text())
    assert [r["artifact"] for r in rows] == ["torch fp32", "onnx fp32", "onnx int8"]
    assert all(0.0 <= r["AP"] <= 1.0 and 0.0 <= r["AP50"] <= 1.0 for r in rows)
    # the bundled model's classes, worst first (the generated data has three)
    assert "    per class, onnx int8 (worst AP first):" in stdout
    assert sum(line.split()[:1] in (["circle"], ["square"], ["triangle"]) for line in stdout.splitlines()) == 3
    bench = json.loads((out / "bench.json").read_text())
    jsonschema.validate(bench, json.loads((Path(bench_pkg.__file__).parent / "schema.json").read_text()))
    assert sum(r["baseline"] for r in bench["rows"]) == 1 and len(bench["rows"]) == 3
    # the summary names every artifact and the baseline with a latency, then the bundle
    table = [line for line in stdout.splitlines() if line.startswith("| ")][1:]  # after the header
    assert [line.split("|")[1].strip() for line in table] == [
        "torch fp32", "onnx fp32", "onnx int8", "official-style baseline"]
    assert all(float(line.split("|")[4]) > 0 for line in table[1:])
    bundle = out / "yolox_nano_onnx_int8.zip"
    assert f"bundle: {bundle}" in stdout
    with zipfile.ZipFile(bundle) as z:
        meta = json.loads(z.read(next(n for n in z.namelist() if n.endswith("metadata.json"))))
    assert meta["input_size"] == [64, 96]
    assert meta["bundle"]["evaluation"]["AP"] == rows[2]["AP"]  # the card quotes the INT8 model's own AP (was null)
    assert run_cli("verify", bundle)[0] == 0

    # the same --out again: the trained run is never overwritten; --resume continues it
    code, _, err = run_cli("pipeline", "--out", out, "--epochs", "1", "--img-size", "96x64", "--threads", "1")
    assert code == 2 and "last.pt" in err and "--resume" in err, err
    code, stdout, err = run_cli("pipeline", "--out", out, "--resume", "--no-int8", "--target", "onnx",
                                "--bench-runs", "2", "--threads", "1", "--img-size", "96x64")
    assert code == 0, err
    assert f"resume: {out / 'train' / 'last.pt'} at epoch 1/1" in stdout
    # no recipe given: only the flag is named, not every default that differs from the run's recipe
    assert "not used: --img-size 96x64" in stdout and "aug." not in stdout
    assert (out / "yolox_nano_onnx_fp32.zip").is_file()


def test_default_recipe_repeats_only_the_generated_set() -> None:
    # 96 generated images are seen 4x an epoch; a user's own data set is not multiplied.
    assert recipe_from_dict(default_recipe(generated_data=True), source="t").data.repeat == 4
    assert recipe_from_dict(default_recipe(generated_data=False), source="t").data.repeat == 1
    default_recipe(generated_data=True)["data"]["repeat"] = 9  # a copy: the module's default is untouched
    assert recipe_from_dict(default_recipe(generated_data=False), source="t").data.repeat == 1


def test_weights_without_a_recipe_are_told_the_default_is_from_scratch() -> None:
    # pipeline --weights nano_coco.pt with no --recipe fine-tuned with the 160-px from-scratch schedule
    # (raccoon_voc, 2 epochs: AP 0.23 against 0.41 with finetune_nano_cpu) and said nothing
    note = default_recipe_note(weights="nano_coco.pt", recipe=None)
    assert note and "from-scratch" in note and "--recipe finetune_nano_cpu" in note
    assert default_recipe_note(weights="nano_coco.pt", recipe="finetune_nano_cpu") is None
    assert default_recipe_note(weights=None, recipe=None) is None
    assert default_recipe_note(weights="nano_coco.pt", recipe=None, resume=True) is None  # the stored recipe


class _Stop(Exception):
    pass


@pytest.fixture
def at_the_trainer(tmp_path, monkeypatch):
    """Data for run_pipeline, and a Trainer that records its keywords and stops the run there."""
    import yolox_edge.engine.trainer as trainer_mod
    from yolox_edge.data.synthetic import make_shapes_dataset

    seen: dict = {}

    def fake_trainer(*a, **kw):
        seen.update(kw)
        raise _Stop

    monkeypatch.setattr(trainer_mod, "Trainer", fake_trainer)
    return make_shapes_dataset(tmp_path / "data", n_train=2, n_val=1, size=(64, 64)), seen


def test_run_pipeline_sends_the_trainers_lines_to_log(tmp_path, at_the_trainer) -> None:
    """``run_pipeline(say=...)`` (now ``log=``) quieted its own lines but the trainer's still went to print."""
    from yolox_edge.pipeline import run_pipeline

    spec, seen = at_the_trainer
    lines: list[str] = []
    with pytest.raises(_Stop):
        run_pipeline(out=tmp_path / "run", data=spec, progress=False, log=lines.append)
    assert seen["log"] == lines.append and lines
    # step 1 counts both splits: '1 val images' alone read as the whole dataset
    assert f"    {spec}: 2 train and 1 val images, classes: circle, square, triangle" in lines, lines


def test_run_pipeline_log_none_is_silent(tmp_path, at_the_trainer, capsys) -> None:
    from yolox_edge.pipeline import run_pipeline

    spec, seen = at_the_trainer
    with pytest.raises(_Stop):
        run_pipeline(out=tmp_path / "run", data=spec, progress=False, log=None)
    assert seen["log"] is None and capsys.readouterr() == ("", "")  # the trainer is silent too


def test_run_pipeline_say_is_a_deprecated_spelling_of_log(tmp_path, at_the_trainer) -> None:
    from yolox_edge.pipeline import run_pipeline

    spec, seen = at_the_trainer
    lines: list[str] = []
    with pytest.warns(DeprecationWarning, match=r"run_pipeline\(say=\) is deprecated; pass log=\.\.\. instead"):
        with pytest.raises(_Stop):
            run_pipeline(out=tmp_path / "run", data=spec, progress=False, say=lines.append)
    assert seen["log"] == lines.append and "[1/7] data" in "\n".join(lines)
    with pytest.raises(TypeError, match="say= and log="):
        run_pipeline(out=tmp_path / "both", data=spec, say=lines.append, log=lines.append)
    assert not (tmp_path / "both").exists()


def test_the_pipeline_reads_the_recipes_splits(tmp_path, at_the_trainer) -> None:
    """--set data.val_split=test (a spec with train and test): the trainer takes it, the pipeline read
    'val' by name and stopped ('has no split val'); its evaluation and calibration now take the recipe's."""
    from yolox_edge.pipeline import run_pipeline

    spec, seen = at_the_trainer
    spec.write_text(spec.read_text().replace("val:   {annotations: val.json, images: val}",
                                             "test: {annotations: val.json, images: val}"))
    lines: list[str] = []
    with pytest.raises(_Stop):
        run_pipeline(out=tmp_path / "run", data=spec, progress=False, log=lines.append,
                     overrides=["data.val_split=test"])
    assert any("2 train and 1 test images" in line for line in lines), lines


def test_resume_passes_the_machine_settings_of_set_to_the_trainer(tmp_path, at_the_trainer) -> None:
    """pipeline --resume --set data.workers=N: a setting of the machine, which the resumed run takes;
    a value of what is trained is named as not used."""
    from yolox_edge.pipeline import run_pipeline

    spec, seen = at_the_trainer
    (tmp_path / "run" / "train").mkdir(parents=True)
    (tmp_path / "run" / "train" / "last.pt").write_bytes(b"an earlier run")  # the fake Trainer reads nothing
    lines: list[str] = []
    with pytest.raises(_Stop):
        run_pipeline(out=tmp_path / "run", data=spec, progress=False, log=lines.append, resume=True,
                     overrides=["data.workers=1", "train.batch=2"])
    assert seen["resume"] is True and seen["machine"] == ["data.workers=1"]
    note = [line for line in lines if "not used" in line]
    assert len(note) == 1 and "not used: --set train.batch=2." in note[0], lines


def test_a_used_out_is_refused_before_any_step(tmp_path) -> None:
    from yolox_edge.errors import UserError
    from yolox_edge.pipeline import run_pipeline

    (tmp_path / "run" / "train").mkdir(parents=True)
    (tmp_path / "run" / "train" / "last.pt").write_bytes(b"x")
    lines: list[str] = []
    with pytest.raises(UserError, match=r"already holds last.pt; pass --resume \(resume=True in Python\) to continue"):
        run_pipeline(out=tmp_path / "run", progress=False, log=lines.append)
    assert not lines and not (tmp_path / "run" / "data").exists()  # no data generated first


def test_a_users_calib_and_eval_json_in_out_are_refused_untouched(tmp_path) -> None:
    """`pipeline --out .` in a project holding its own calib/ (from `calibrate --out calib`) and eval.json:
    the run replaced both without a word. With no earlier pipeline run there, they are someone's."""
    from yolox_edge.errors import UserError
    from yolox_edge.pipeline import run_pipeline

    project = tmp_path / "project"
    (project / "calib").mkdir(parents=True)
    (project / "calib" / "manifest.json").write_text("{}")
    (project / "eval.json").write_text("[]")
    lines: list[str] = []
    with pytest.raises(UserError, match=re.escape(f"{project}: already holds calib, eval.json, not from a pipeline "
                                                  "run (no train/ run beside them), and this run would write over them")):
        run_pipeline(out=project, progress=False, log=lines.append)
    assert not lines and sorted(p.name for p in project.iterdir()) == ["calib", "eval.json"]


def test_an_out_that_is_a_file_is_refused_naming_out(tmp_path) -> None:
    """A file at --out (or above it) was mkdir's bare 'File exists' from the CLI's OSError line."""
    from yolox_edge.errors import UserError
    from yolox_edge.pipeline import run_pipeline

    plain = tmp_path / "notes.txt"
    plain.write_text("user's file")
    with pytest.raises(UserError, match=re.escape(f"{plain}: exists and is not a folder; choose another --out")):
        run_pipeline(out=plain, progress=False, log=None)
    with pytest.raises(UserError, match=re.escape(f"{plain} is a file, not a folder; choose another --out")):
        run_pipeline(out=plain / "run", resume=True, progress=False, log=None)
    assert plain.read_text() == "user's file"


def test_epochs_of_the_wrong_type_is_refused_before_any_step(tmp_path) -> None:
    """run_pipeline(epochs='x') named '--set (overrides= in Python)', after step 1 made the data."""
    from yolox_edge.errors import UserError
    from yolox_edge.pipeline import run_pipeline

    lines: list[str] = []
    with pytest.raises(UserError, match=re.escape("--epochs x (epochs='x' in Python): expected an integer")):
        run_pipeline(out=tmp_path / "run", epochs="x", progress=False, log=lines.append)
    assert not lines and not (tmp_path / "run" / "data").exists()


def test_values_out_of_range_and_missing_weights_are_refused_before_any_step(tmp_path, run_cli) -> None:
    """--set train.batch=0 and --weights nothere.pt were refused by the trainer, after step 1 had
    written 3 MB of generated data (the README: 'one line naming the key, before any work')."""
    for args, said in ((["--set", "train.batch=0"], "train.batch"), (["--weights", tmp_path / "nothere.pt"],
                                                                      "nothere.pt")):
        code, out, err = run_cli("pipeline", "--out", tmp_path / "run", *args)
        assert code == 2 and len(err.strip().splitlines()) == 1 and said in err, err
        assert "[1/" not in out and not (tmp_path / "run").exists(), out


def test_a_data_folder_the_pipeline_did_not_make_is_refused_untouched(tmp_path) -> None:
    """`pipeline --out .` in a project whose data/ holds the user's own data.yaml: step 1 wrote the
    generated set over it. A data/ the pipeline generated (a resumed or repeated run) is its own."""
    from yolox_edge.data.synthetic import make_shapes_dataset
    from yolox_edge.errors import UserError
    from yolox_edge.pipeline import refuse_foreign_data, run_pipeline

    mine = tmp_path / "project" / "data"
    mine.mkdir(parents=True)
    (mine / "data.yaml").write_text("format: yolo  # my own spec\n")
    lines: list[str] = []
    with pytest.raises(UserError, match=re.escape(f"{mine}: holds files the pipeline did not make")) as e:
        run_pipeline(out=tmp_path / "project", progress=False, log=lines.append)
    assert f"--data {mine / 'data.yaml'}" in str(e.value) and not lines
    assert (mine / "data.yaml").read_text() == "format: yolo  # my own spec\n" and len(list(mine.iterdir())) == 1
    ours = tmp_path / "run" / "data"
    make_shapes_dataset(ours, n_train=2, n_val=1, size=(32, 32))
    refuse_foreign_data(ours)  # no error
    refuse_foreign_data(tmp_path / "empty")  # nor for a folder not there
    # a generation stopped before its data.yaml (the mark): 'run the same command again' was refused
    (ours / "data.yaml").unlink()
    (ours / "val.json").unlink()
    refuse_foreign_data(ours)
    (ours / "train" / "mine.jpg").write_bytes(b"x")  # a file it does not write: not its folder
    with pytest.raises(UserError, match="holds files the pipeline did not make"):
        refuse_foreign_data(ours)


@pytest.fixture
def at_the_quantize_step(tmp_path, monkeypatch):
    """run_pipeline with every step before INT8 faked; quantize_checkpoint records its options and
    torch's thread count while it runs, then stops the run."""
    import types

    import torch

    import yolox_edge.engine.trainer as trainer_mod
    import yolox_edge.export as export_mod
    import yolox_edge.quantize.calib as calib_mod
    import yolox_edge.quantize.ptq as ptq_mod
    from yolox_edge.data.synthetic import make_shapes_dataset

    seen: dict = {}

    class FakeTrainer:
        def __init__(self, recipe, **kw) -> None:
            self.recipe = recipe

        def train(self) -> dict:
            return {"best": str(tmp_path / "best.pt"), "last": str(tmp_path / "last.pt")}

    def quantize(*a, **kw):
        seen.update(opts=kw["opts"], torch_threads=torch.get_num_threads())
        raise _Stop

    folder = types.SimpleNamespace(directory=tmp_path, model_file=tmp_path / "m.onnx")
    monkeypatch.setattr(trainer_mod, "Trainer", FakeTrainer)
    monkeypatch.setattr(export_mod, "export_model", lambda *a, **kw: folder)
    monkeypatch.setattr(export_mod, "read_metadata", lambda *a, **kw: {"input_size": [64, 64]})
    monkeypatch.setattr(calib_mod, "build_calibration_set", lambda *a, **kw: types.SimpleNamespace(images=[], skipped=[]))
    monkeypatch.setattr(ptq_mod, "quantize_checkpoint", quantize)
    before = torch.get_num_threads()
    torch.set_num_threads(2)  # so that 1 below is a change on any machine
    yield make_shapes_dataset(tmp_path / "data", n_train=2, n_val=1, size=(64, 64)), seen
    torch.set_num_threads(before)


@pytest.mark.parametrize("overrides, threads", [(["train.threads=1"], 1), ([], None)])
def test_the_int8_step_runs_at_the_threads_training_did(tmp_path, at_the_quantize_step, overrides, threads) -> None:
    """pipeline --set train.threads=1 trained on one thread, then quantized on every core (its
    quantize step took no thread count, as `quantize --threads` does)."""
    import torch

    from yolox_edge.pipeline import run_pipeline

    spec, seen = at_the_quantize_step
    with pytest.raises(_Stop):
        run_pipeline(out=tmp_path / "run", data=spec, progress=False, log=None, overrides=overrides)
    assert seen["opts"].threads == threads
    assert seen["torch_threads"] == (threads or 2)
    assert torch.get_num_threads() == 2  # given back


@pytest.mark.parametrize("overrides, threads", [(["train.threads=1"], 1), ([], None)])
def test_the_exports_and_the_evaluation_run_at_the_threads_training_did(tmp_path, at_the_quantize_step, monkeypatch,
                                                                         overrides, threads) -> None:
    """Only training and the INT8 step took train.threads: the FP32 exports ran at torch's count
    and the evaluation at each runtime's default, so a user limiting threads still got every core."""
    import types

    import torch

    import yolox_edge.export as export_mod
    import yolox_edge.runtime as runtime_mod
    from yolox_edge.pipeline import run_pipeline

    spec, _ = at_the_quantize_step
    exported, loaded = [], []

    def export(*a, **kw):
        exported.append(torch.get_num_threads())
        return types.SimpleNamespace(directory=tmp_path, model_file=tmp_path / "m.onnx")

    def load(path, **kw):
        loaded.append(kw.get("threads"))
        raise _Stop

    monkeypatch.setattr(export_mod, "export_model", export)
    monkeypatch.setattr(runtime_mod, "load_predictor", load)
    with pytest.raises(_Stop):
        run_pipeline(out=tmp_path / "run", data=spec, progress=False, log=None, overrides=overrides, int8=False,
                     target="onnx")
    assert exported == [threads or 2] * 2  # the onnx export and the raw baseline
    assert loaded == [threads]  # None: each runtime's own count, as before
    assert torch.get_num_threads() == 2  # given back


def test_the_summary_table_gives_sizes_in_mib_as_bench_does(tmp_path) -> None:
    """The header said 'size MB' above values already in MiB (bench's unit); size_mb keeps its name."""
    from yolox_edge.pipeline import PipelineResult, summary_table

    row = {"artifact": "onnx", "AP": 0.5, "AP50": 0.7, "e2e_p50_ms": 9.1, "size_mb": 3.5, "out_bytes": 4800}
    table = summary_table(PipelineResult(tmp_path, tmp_path / "best.pt", tmp_path / "b.zip", [row]))
    assert "| size MiB |" in table.splitlines()[0] and "size MB" not in table
    assert "| onnx | 0.5000 | 0.7000 | 9.1 | 3.5 | 4800 |" in table


def test_a_cut_jpeg_in_the_training_split_is_skipped_by_training_and_calibration_alike(tmp_path) -> None:
    """Training skipped a JPEG cut short with a line; calibration, drawing the same file, stopped the
    run at its INT8 step with 'unreadable image(s)' and no reason."""
    from yolox_edge.data.spec import read_split
    from yolox_edge.data.synthetic import make_shapes_dataset
    from yolox_edge.pipeline import run_pipeline

    spec = make_shapes_dataset(tmp_path / "data", n_train=4, n_val=2, size=(64, 64))
    cut = Path(read_split(spec, "train").samples[0].image)
    whole = cut.read_bytes()
    cut.write_bytes(whole[:len(whole) // 2])
    lines: list[str] = []
    # --calib-count 4: every training image is drawn, the cut one too
    res = run_pipeline(out=tmp_path / "run", data=spec, epochs=1, img_size=64, target="onnx", calib_count=4,
                       bench_runs=1, threads=(1,), overrides=["train.threads=1", "data.workers=0"], progress=False,
                       log=lines.append)
    said = "\n".join(lines)
    assert "    calibration set: 3 images at 64 " in said, said
    assert f"    calibration skipped {cut}: " in said and "truncated" in said.split("calibration skipped")[1]
    assert (tmp_path / "run" / "onnx_int8").is_dir() and res is not None


@pytest.mark.parametrize("overrides, threads", [(["train.threads=1"], 1), ([], None)])
def test_the_calibration_set_is_built_at_the_threads_training_did(tmp_path, at_the_quantize_step, monkeypatch,
                                                                 overrides, threads) -> None:
    """The calibration set (OpenCV decoding and resizing every image) was built outside the
    pipeline's thread limit: with train.threads=1 OpenCV's pool still took every core."""
    import types

    import cv2
    import torch

    import yolox_edge.quantize.calib as calib_mod
    from yolox_edge.pipeline import run_pipeline

    spec, _ = at_the_quantize_step
    seen: dict = {}

    def build(*a, **kw):
        seen.update(cv2=cv2.getNumThreads(), torch=torch.get_num_threads())
        return types.SimpleNamespace(images=[], skipped=[])

    monkeypatch.setattr(calib_mod, "build_calibration_set", build)
    cv_before = cv2.getNumThreads()
    cv2.setNumThreads(2)  # so that 1 below is a change on any machine
    try:
        with pytest.raises(_Stop):
            run_pipeline(out=tmp_path / "run", data=spec, progress=False, log=None, overrides=overrides)
        assert seen == {"cv2": threads or 2, "torch": threads or 2}
        assert cv2.getNumThreads() == 2 and torch.get_num_threads() == 2  # given back
    finally:
        cv2.setNumThreads(cv_before)


@pytest.mark.parametrize("overrides, threads", [(["train.threads=1"], 1), ([], None)])
def test_the_evaluation_decodes_at_the_threads_training_did(tmp_path, at_the_quantize_step, monkeypatch,
                                                            overrides, threads) -> None:
    """The evaluation step gave each runtime train.threads, but decoded and resized every val
    image with OpenCV outside any limit: with train.threads=1 its pool still took every core."""
    import types

    import cv2
    import torch

    import yolox_edge.engine.evaluator as evaluator_mod
    import yolox_edge.runtime as runtime_mod
    from yolox_edge.pipeline import run_pipeline

    spec, _ = at_the_quantize_step
    seen: dict = {}

    def evaluate(*a, **kw):
        seen.update(cv2=cv2.getNumThreads(), torch=torch.get_num_threads())
        raise _Stop

    monkeypatch.setattr(runtime_mod, "load_predictor", lambda *a, **kw: types.SimpleNamespace())
    monkeypatch.setattr(evaluator_mod, "evaluate", evaluate)
    cv_before = cv2.getNumThreads()
    cv2.setNumThreads(2)  # so that 1 below is a change on any machine
    try:
        with pytest.raises(_Stop):
            run_pipeline(out=tmp_path / "run", data=spec, progress=False, log=None, overrides=overrides,
                         int8=False, target="onnx")
        assert seen == {"cv2": threads or 2, "torch": threads or 2}
        assert cv2.getNumThreads() == 2 and torch.get_num_threads() == 2  # given back
    finally:
        cv2.setNumThreads(cv_before)


def test_a_resume_without_the_data_it_trained_on_is_refused_before_step_1(tmp_path) -> None:
    """pipeline --resume without the --data the run began with generated the shapes set into
    OUT/data (120 images) before the trainer refused its classes at step 2."""
    from yolox_edge.engine.checkpoint import save_checkpoint
    from yolox_edge.errors import UserError
    from yolox_edge.models import create_model
    from yolox_edge.pipeline import run_pipeline

    (tmp_path / "p" / "train").mkdir(parents=True)
    save_checkpoint(tmp_path / "p" / "train" / "last.pt", create_model("test", num_classes=2),
                    class_names=["person", "dog"])
    with pytest.raises(UserError, match=r"last\.pt: trained on other data \(classes person, dog\); resume with the "
                                        r"same --data"):
        run_pipeline(out=tmp_path / "p", resume=True, progress=False, log=None)
    assert not (tmp_path / "p" / "data").exists()
