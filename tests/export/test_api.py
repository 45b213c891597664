"""``export_model`` into a folder that already holds an export: refused as the CLI refuses it,
replaced cleanly with ``force=True``."""
from __future__ import annotations

import pytest

from yolox_edge.engine import save_checkpoint
from yolox_edge.errors import UserError
from yolox_edge.export import export_model, read_metadata
from yolox_edge.models import create_model


@pytest.fixture
def tiny_ckpt(tmp_path):
    return save_checkpoint(tmp_path / "tiny.pt", create_model("test", num_classes=2), class_names=["a", "b"])


def test_export_model_refuses_an_earlier_export_unless_forced(tiny_ckpt, tmp_path) -> None:
    """The library wrote over it: an ONNX export then an ncnn one into the same folder left the
    .onnx beside a metadata.json describing ncnn."""
    out = tmp_path / "exp"
    export_model(str(tiny_ckpt), format="onnx", out=out)
    with pytest.raises(UserError, match="exp: already holds an export.*force"):
        export_model(tiny_ckpt, format="ncnn", out=out)
    assert read_metadata(out)["format"] == "onnx"  # untouched
    res = export_model(tiny_ckpt, format="ncnn", out=out, force=True)
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in res.files)
    assert read_metadata(out)["format"] == "ncnn"


@pytest.mark.parametrize("fmt, name", [("onnx", "yolox_test.onnx"), ("openvino", "yolox_test.bin")])
def test_export_refuses_to_write_over_a_file_no_export_lists_unless_forced(tiny_ckpt, tmp_path, run_cli, fmt,
                                                                          name) -> None:
    """The official yolox_nano.onnx in the folder given as --out was replaced by the export of the
    checkpoint imported from it (no metadata.json there, so nothing was refused)."""
    out = tmp_path / "models"
    out.mkdir()
    (out / name).write_bytes(b"the user's own file")
    code, _, err = run_cli("export", tiny_ckpt, "--format", fmt, "--out", out)
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert f"{out / name}: already there, and no export in {out} lists it" in err and "--force" in err
    assert (out / name).read_bytes() == b"the user's own file" and not (out / "metadata.json").exists()
    res = export_model(tiny_ckpt, format=fmt, out=out, force=True)
    assert (out / name).read_bytes() != b"the user's own file" and read_metadata(out)["format"] == fmt
    assert res.directory == out


def test_openvino_fp16_export_stores_half_the_weight_bytes(tiny_ckpt, tmp_path) -> None:
    """At 416 the decode's grid table (0..408, multiples of 8) was narrowed to u8 + Convert +
    Multiply, which OpenVINO takes for weights already compressed: it then left every weight
    fp32, and --precision fp16 wrote the fp32 IR byte for byte."""
    import numpy as np
    import openvino as ov

    fp32 = export_model(tiny_ckpt, format="openvino", out=tmp_path / "fp32", img_size=416, topk=0)
    fp16 = export_model(tiny_ckpt, format="openvino", out=tmp_path / "fp16", img_size=416, topk=0, precision="fp16")
    size = {r.metadata["precision"]: r.model_file.with_suffix(".bin").stat().st_size for r in (fp32, fp16)}
    assert size["fp16"] < 0.6 * size["fp32"], size
    core = ov.Core()
    x = np.random.default_rng(0).uniform(0, 255, (1, 3, 416, 416)).astype(np.float32)
    a, b = (core.compile_model(str(r.model_file), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})(x) for r in (fp32, fp16))
    assert np.abs(a["scores"] - b["scores"]).max() < 1e-2
    assert np.abs(a["boxes"] - b["boxes"]).max() < 0.5  # pixels of a 416 input


def test_forced_export_that_fails_keeps_the_earlier_one(tiny_ckpt, tmp_path, monkeypatch) -> None:
    """force=True removed the earlier export before anything else: a mistyped checkpoint path, or
    a stop while the new graph was written, left the folder empty."""
    from yolox_edge.export import to_onnx

    out = tmp_path / "exp"
    export_model(tiny_ckpt, format="onnx", out=out)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    with pytest.raises(UserError, match="missing.pt"):
        export_model(tmp_path / "missing.pt", format="onnx", out=out, force=True)

    def stop(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(to_onnx, "export_onnx", stop)
    with pytest.raises(KeyboardInterrupt):
        export_model(tiny_ckpt, format="onnx", out=out, force=True, topk=0)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert read_metadata(out)["graph"]["output_kind"] == "topk"


def test_the_folder_is_out_and_out_dir_still_works(tiny_ckpt, tmp_path) -> None:
    """The README writes export_model(ckpt, fmt, out), as Trainer and run_quantize name it; the
    keyword was out_dir (a TypeError for out=). out_dir= still works, with a DeprecationWarning."""
    assert export_model(tiny_ckpt, format="onnx", out=tmp_path / "a").directory == tmp_path / "a"
    with pytest.warns(DeprecationWarning, match=r"export_model\(out_dir=\) is deprecated; pass out="):
        res = export_model(tiny_ckpt, format="onnx", out_dir=tmp_path / "b")
    assert res.directory == tmp_path / "b" and read_metadata(tmp_path / "b")["format"] == "onnx"


def test_a_stopped_export_takes_away_the_folders_it_made(tiny_ckpt, tmp_path, monkeypatch) -> None:
    """Ctrl-C during export left an empty --out (and the folders made above it); quantize cleans up.
    A folder that was there before stays, even empty."""
    from yolox_edge.export import to_onnx

    def stop(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(to_onnx, "export_onnx", stop)
    with pytest.raises(KeyboardInterrupt):
        export_model(tiny_ckpt, format="onnx", out=tmp_path / "new" / "deeper" / "exp")
    assert not (tmp_path / "new").exists()
    (tmp_path / "mine").mkdir()
    with pytest.raises(KeyboardInterrupt):
        export_model(tiny_ckpt, format="onnx", out=tmp_path / "mine")
    assert (tmp_path / "mine").is_dir() and not any((tmp_path / "mine").iterdir())


def test_cli_says_when_topk_is_more_than_the_anchors(tiny_ckpt, tmp_path, run_cli) -> None:
    """--topk 5000 at a small size became the anchor count with only 'top-84' in the summary to show it."""
    code, out, err = run_cli("export", tiny_ckpt, "--format", "onnx", "--topk", "5000", "--out", tmp_path / "k")
    assert code == 0, err
    assert "note: --topk 5000 is more than the 84 anchors at 64x64: the graph keeps every anchor" in err
    assert read_metadata(tmp_path / "k")["graph"]["topk"] == 84
    code, out, err = run_cli("export", tiny_ckpt, "--format", "onnx", "--topk", "50", "--out", tmp_path / "k50")
    assert code == 0 and "note:" not in err


@pytest.mark.parametrize("fmt", ["onnx", "ncnn"])
def test_the_checkpoints_category_ids_go_into_metadata_and_back_to_the_predictor(tmp_path, fmt) -> None:
    from yolox_edge.runtime import load_predictor

    ckpt = save_checkpoint(tmp_path / "ids.pt", create_model("test", num_classes=3), class_names=["a", "b", "c"],
                           category_ids=[7, 12, 40])
    res = export_model(ckpt, format=fmt, out=tmp_path / fmt)
    assert res.metadata["category_ids"] == [7, 12, 40] and read_metadata(res.directory)["category_ids"] == [7, 12, 40]
    assert load_predictor(res.directory).category_ids == [7, 12, 40]


def test_a_checkpoint_without_category_ids_exports_without_the_field(tiny_ckpt, tmp_path) -> None:
    from yolox_edge.runtime import load_predictor

    res = export_model(tiny_ckpt, format="onnx", out=tmp_path / "onnx")
    assert "category_ids" not in read_metadata(res.directory)
    assert load_predictor(res.directory).category_ids is None and load_predictor(tiny_ckpt).category_ids is None


def test_export_detector_refuses_category_ids_that_do_not_fit_its_classes(tmp_path) -> None:
    """A wrong-length or repeated id list wrote an export that every reader then refused."""
    from yolox_edge.data.preprocess import PreprocessConfig
    from yolox_edge.export import export_detector

    model = create_model("test", num_classes=3)
    kw = dict(class_names=["a", "b", "c"], variant="test", preprocess=PreprocessConfig(input_size=(64, 64)),
              source_sha256=None, source_name="m.pt")
    for ids, why in (([7, 12], "2 ids for 3 classes"), ([7, 7, 40], "listed twice")):
        with pytest.raises(UserError, match=why):
            export_detector(model, format="onnx", out=tmp_path / "bad", category_ids=ids, **kw)
        assert not (tmp_path / "bad").exists()  # refused before any folder was made
    ok = export_detector(model, format="onnx", out=tmp_path / "ok", category_ids=[7, 12, 40], **kw)
    assert ok.metadata["category_ids"] == [7, 12, 40]
    # two names for three classes: class 2 had no name (a top-K export), or every reader called the
    # export edited (--topk 0)
    with pytest.raises(UserError, match="class_names gives 2 names for a model of 3 classes"):
        export_detector(model, format="onnx", out=tmp_path / "bad", **dict(kw, class_names=["a", "b"]))
    assert not (tmp_path / "bad").exists()


@pytest.mark.parametrize("fmt", ["onnx", "openvino"])
def test_an_export_is_on_disk_its_model_files_before_its_metadata(tiny_ckpt, tmp_path, fsync_log, fmt) -> None:
    """Each file made in the staging folder is flushed before its rename into --out, --out after
    the renames, and only then is metadata.json written (flushed the same way): a power loss
    never leaves an empty model file, nor a metadata.json naming files whose renames were lost.
    The model files were renamed unflushed."""
    res = export_model(tiny_ckpt, format=fmt, out=tmp_path / "exp")
    models = [f for f in res.files if f.name != "metadata.json"]
    meta = fsync_log.assert_durable(res.directory / "metadata.json")
    for f in models:
        fsync_log.assert_durable(f)
    last_model = max(fsync_log.named(f) for f in models)
    assert last_model < meta and fsync_log.synced(res.directory, last_model + 1, meta), fsync_log.events


def test_graph_nms_takes_iou_and_conf() -> None:
    """export.api.graph_nms, the check of the in-graph NMS, took nms_iou=/nms_conf= (internal: renamed)."""
    from yolox_edge.export.api import graph_nms

    assert graph_nms("topk", "onnx", iou=0.5, conf=0.2) == {"iou": 0.5, "conf": 0.2, "class_aware": True}
    assert graph_nms("topk", "ncnn", iou=0.5) is None and graph_nms("topk", "onnx", iou=None) is None
    with pytest.raises(UserError, match=r"--conf 2 \(conf=2 in Python\)"):
        graph_nms("topk", "onnx", conf=2)


def test_a_ctrl_c_while_onnxruntime_imports_for_onnxslim_stops_the_export(tiny_ckpt, tmp_path, monkeypatch) -> None:
    """onnxslim imports onnxruntime inside a bare 'except:' on its first slim(): a Ctrl-C that came
    in that import (seen with a real SIGINT a moment after the traced file appeared) was swallowed,
    and the export went on to exit 0 with the new files in place."""
    import importlib.abc
    import importlib.util
    import sys

    class StoppedImport(importlib.abc.MetaPathFinder, importlib.abc.Loader):
        """onnxruntime is found (onnxslim asks first), and a Ctrl-C comes in its first import; later
        imports (onnxslim's constant folding) find the real one."""

        def find_spec(self, name, path=None, target=None):
            return importlib.util.spec_from_loader(name, self) if name == "onnxruntime" else None

        def exec_module(self, module):
            sys.meta_path.remove(self)
            raise KeyboardInterrupt

    for name in [n for n in sys.modules if n == "onnxruntime" or n.startswith("onnxruntime.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setattr(sys, "meta_path", [StoppedImport(), *sys.meta_path])
    with pytest.raises(KeyboardInterrupt):
        export_model(tiny_ckpt, format="onnx", out=tmp_path / "exp")
    assert not (tmp_path / "exp").exists()


def test_a_killed_exports_staging_folder_is_removed_by_the_next_export(tiny_ckpt, tmp_path, monkeypatch) -> None:
    """A kill -9 leaves the hidden folder an export is written in; it was named .export_XXXXXXXX,
    which nothing swept. Now named for its process, the next export removes it once that is gone."""
    from yolox_edge import owners

    out = tmp_path / "exp"
    tag = owners.owner_tag()
    ns = f".{owners.pid_namespace()}" if owners.pid_namespace() is not None else ""
    dead = out / f".export_{owners.host_tag()}.999999{ns}.abcd1234"
    live = out / f".export_{tag}.efgh5678"  # this process: alive
    other = out / f".export_another-host.999999{ns}.ijkl9012"  # its PID means nothing here
    for d in (dead, live, other):
        (d / "sub").mkdir(parents=True)
        (d / "sub" / "yolox_test.onnx").write_bytes(b"x" * 10)
    monkeypatch.setattr(owners, "process_alive", lambda pid: pid == __import__("os").getpid())
    import yolox_edge.export.to_onnx as to_onnx

    seen = []
    real_export = to_onnx.export_onnx

    def export_onnx(deploy, example, path, **kw):
        seen.append(path.parent.name)
        return real_export(deploy, example, path, **kw)

    monkeypatch.setattr(to_onnx, "export_onnx", export_onnx)
    export_model(tiny_ckpt, format="onnx", out=out)
    assert not dead.exists() and live.exists() and other.exists()
    assert len(seen) == 1 and seen[0].startswith(f".export_{tag}.")  # this export's folder: named for its process
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == ["metadata.json", "yolox_test.onnx"]


def test_replacing_an_export_removes_its_metadata_before_its_model_files(tiny_ckpt, tmp_path, monkeypatch) -> None:
    """A kill between the removals left a metadata.json naming model files already gone."""
    from pathlib import Path

    from yolox_edge.export.api import clear_earlier_export

    out = tmp_path / "exp"
    export_model(tiny_ckpt, format="onnx", out=out)
    gone = []
    real_unlink = Path.unlink

    def unlink(self, *a, **k):
        gone.append(self.name)
        return real_unlink(self, *a, **k)

    monkeypatch.setattr(Path, "unlink", unlink)
    clear_earlier_export(out, True)
    assert gone == ["metadata.json", "yolox_test.onnx"]


def test_ncnn_export_runs_pnnx_in_a_temp_folder_named_for_its_process(tmp_path, monkeypatch) -> None:
    """pnnx ran in 'yolox_edge_pnnx_XXXXXXXX' in the system temp folder, which a kill -9 of an ncnn
    export or quantize left for good (the traced model and pnnx's five side files). Named for its
    process now; the next run on this host removes one whose process is gone."""
    import subprocess
    import sys
    import tempfile

    import torch

    from yolox_edge import owners
    from yolox_edge.export import to_ncnn

    temp = tmp_path / "system_tmp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    monkeypatch.setattr(owners, "_TEMPS_SWEPT", set())  # a new process
    ended = subprocess.Popen([sys.executable, "-c", "pass"])
    ended.wait()
    dead = temp / f"yolox_edge_pnnx_{owners.host_tag()}.{ended.pid}.a1b2c3d4"
    dead.mkdir()
    (dead / "model.pt").write_bytes(b"a traced model")
    work = []

    def run_pnnx(pt_path, *a):  # the converter itself is not what is tested: a crash, quickly
        work.append(pt_path.parent)
        assert not dead.exists()  # swept before this run's folder was made
        raise RuntimeError("pnnx conversion failed (exit 1): stub")

    monkeypatch.setattr(to_ncnn, "_run_pnnx", run_pnnx)
    with pytest.raises(RuntimeError, match="stub"):  # any traceable module: pnnx never runs
        to_ncnn.export_ncnn(torch.nn.ReLU(), torch.zeros(1, 3, 8, 8), tmp_path / "m.param", tmp_path / "m.bin")
    assert work[0].parent == temp and work[0].name.startswith(f"yolox_edge_pnnx_{owners.owner_tag()}.")
    assert not any(temp.iterdir())  # its own folder goes when the export ends, a failure too


def test_force_never_takes_a_foreign_metadata_json_for_an_export(tiny_ckpt, tmp_path) -> None:
    """--force deleted the files a dataset's metadata.json listed (annotations.csv, photo.jpg): it was
    taken for an earlier export's. Such a folder is refused, with or without force, and nothing goes."""
    import json

    out = tmp_path / "data"
    out.mkdir()
    (out / "annotations.csv").write_text("id,label\n")
    (out / "photo.jpg").write_bytes(b"jpeg")
    (out / "metadata.json").write_text(json.dumps({"dataset": "mine", "files": {"annotations.csv": "x", "photo.jpg": "y"}}))
    for force in (False, True):
        with pytest.raises(UserError, match=r"metadata.json: not a yolox_edge export's metadata.json, and this export "
                                            r"would write over it; choose another --out"):
            export_model(tiny_ckpt, format="onnx", out=out, force=force)
    assert sorted(p.name for p in out.iterdir()) == ["annotations.csv", "metadata.json", "photo.jpg"]


def test_force_removes_only_the_files_the_earlier_export_wrote(tiny_ckpt, tmp_path) -> None:
    """A listed file replaced since (another file under its name) is not the export's to remove."""
    out = tmp_path / "exp"
    export_model(tiny_ckpt, format="openvino", out=out)
    (out / "yolox_test.bin").write_bytes(b"the user's own file")
    from yolox_edge.export.api import clear_earlier_export

    clear_earlier_export(out, True)
    assert sorted(p.name for p in out.iterdir()) == ["yolox_test.bin"]


def test_export_detector_refuses_an_earlier_export_as_export_model_does(tiny_ckpt, tmp_path) -> None:
    """export_detector (the library call for a model in memory) wrote an OpenVINO IR beside an earlier
    ONNX export, under a metadata.json that listed only the IR."""
    from yolox_edge.data.preprocess import PreprocessConfig
    from yolox_edge.engine.checkpoint import load_model
    from yolox_edge.export.api import export_detector

    out = tmp_path / "exp"
    export_model(tiny_ckpt, format="onnx", out=out)
    detector, ckpt = load_model(tiny_ckpt)
    with pytest.raises(UserError, match="already holds an export"):
        export_detector(detector, format="openvino", out=out, class_names=ckpt["class_names"], variant=ckpt["variant"],
                        preprocess=PreprocessConfig.from_dict(ckpt["preprocess"]))
    assert sorted(p.name for p in out.iterdir()) == ["metadata.json", "yolox_test.onnx"]


def test_a_stop_while_force_replaces_an_export_leaves_one_whole(tiny_ckpt, tmp_path, monkeypatch) -> None:
    """Ctrl-C while --force moved the new export in (the earlier one already removed) left neither:
    the stop now waits for the new export's metadata.json."""
    import os
    import signal

    import yolox_edge.export.api as api
    from yolox_edge.export.metadata import read_metadata

    out = tmp_path / "ex"
    export_model(tiny_ckpt, format="onnx", out=out)
    real = api.replace_durably

    def stop_then_move(pairs):
        os.kill(os.getpid(), signal.SIGINT)  # the stop lands as the first file moves in
        return real(pairs)

    monkeypatch.setattr(api, "replace_durably", stop_then_move)
    with pytest.raises(KeyboardInterrupt):
        export_model(tiny_ckpt, format="openvino", out=out, force=True)
    meta = read_metadata(out)  # whole: every listed file there, sha256s checked
    assert meta["format"] == "openvino" and sorted(p.name for p in out.iterdir()) == sorted([*meta["files"],
                                                                                              "metadata.json"])


def test_a_stopped_export_says_what_its_folder_holds(tiny_ckpt, tmp_path, monkeypatch, run_cli) -> None:
    """export --force stopped by Ctrl-C said 'interrupted' alone: not whether the earlier export stayed."""
    import os
    import signal

    import yolox_edge.export.api as api

    out = tmp_path / "ex"
    export_model(tiny_ckpt, format="onnx", out=out)

    def stop(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(api, "output_plan", stop)  # before anything is written
    code, _, err = run_cli("export", tiny_ckpt, "--format", "onnx", "--out", out, "--force")
    assert code == 130 and f"export: interrupted: {out} keeps its earlier export, untouched" in err, err
    monkeypatch.undo()
    real = api.replace_durably

    def stop_then_move(pairs):  # held off until the new export is in
        os.kill(os.getpid(), signal.SIGINT)
        return real(pairs)

    monkeypatch.setattr(api, "replace_durably", stop_then_move)
    code, _, err = run_cli("export", tiny_ckpt, "--format", "openvino", "--out", out, "--force")
    assert code == 130 and f"export: interrupted after the new export was written: {out} holds it, whole" in err, err
