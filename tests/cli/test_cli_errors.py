"""Bad input to predict, eval and import-official: ONE error line naming the file, exit 2,
no traceback. In-process through ``run_cli``, plus one real subprocess of the entry point."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from yolox_edge.engine.checkpoint import save_checkpoint
from yolox_edge.models import create_model


def assert_one_line_error(result: tuple[int, str, str], *names: str) -> str:
    code, _out, err = result
    assert code == 2, (code, err)
    assert "Traceback" not in err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    for name in names:
        assert name in lines[0], (name, lines[0])
    return lines[0]


@pytest.fixture(scope="module")
def bad(tmp_path_factory, to_official_state) -> Path:
    """A folder of good and bad inputs shared by the tests below."""
    d = tmp_path_factory.mktemp("bad_inputs")
    import onnx
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 8, 8])
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "relu", [x], [y])
    onnx.save(helper.make_model(graph), str(d / "relu.onnx"))
    (d / "garbage.onnx").write_bytes(b"\x01\x02 not protobuf")
    (d / "bad.jpg").write_text("this is not an image")
    cv2.imwrite(str(d / "ok.jpg"), np.full((40, 60, 3), 100, np.uint8))
    save_checkpoint(d / "good.pt", create_model("test", num_classes=2), class_names=["a", "b"])
    ckpt = torch.load(d / "good.pt", weights_only=True)
    ckpt["variant"] = "test_dw"  # state of 'test', labelled as another variant
    torch.save(ckpt, d / "mismatch.pt")
    torch.save({"model": to_official_state(create_model("test", num_classes=2))}, d / "official_test.pth")
    torch.save({"model": to_official_state(create_model("tiny"))}, d / "official_tiny.pth")
    # A COCO spec with one image, so eval errors about the model are reached.
    (d / "imgs").mkdir()
    cv2.imwrite(str(d / "imgs" / "1.jpg"), np.full((40, 60, 3), 100, np.uint8))
    (d / "gt.json").write_text('{"images": [{"id": 1, "file_name": "1.jpg", "width": 60, "height": 40}], '
                               '"annotations": [], "categories": [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}]}')
    (d / "data.yaml").write_text("format: coco\nval: {annotations: gt.json, images: imgs}\n")
    return d


def test_good_inputs_work(bad: Path, run_cli) -> None:
    """The same fixtures succeed when nothing is wrong: the failures below are about the input."""
    code, out, err = run_cli("predict", bad / "good.pt", bad / "ok.jpg", "--json")
    assert code == 0, err
    code, out, err = run_cli("eval", bad / "good.pt", "--data", bad / "data.yaml")
    assert code == 0, err
    code, out, err = run_cli("import-official", bad / "official_test.pth", "--variant", "test", "--out", bad / "o.pt")
    assert code == 0, err


@pytest.mark.parametrize("args,names", [
    (["{d}/missing.pt", "{d}/ok.jpg"], ["missing.pt"]),
    (["{d}/good.pt", "{d}/missing.jpg"], ["missing.jpg"]),
    (["{d}/good.pt", "{d}/bad.jpg"], ["bad.jpg"]),
    (["{d}/relu.onnx", "{d}/ok.jpg"], ["relu.onnx"]),
    (["{d}/garbage.onnx", "{d}/ok.jpg"], ["garbage.onnx"]),
    (["{d}/mismatch.pt", "{d}/ok.jpg"], ["mismatch.pt", "test_dw"]),
    (["{d}/official_test.pth", "{d}/ok.jpg"], ["official_test.pth", "import-official"]),
    (["{d}/bad.jpg", "{d}/ok.jpg"], ["bad.jpg"]),  # an image where a model is expected
])
def test_predict_bad_input(bad: Path, run_cli, args: list[str], names: list[str]) -> None:
    assert_one_line_error(run_cli("predict", *(a.format(d=bad) for a in args)), *names)


@pytest.mark.parametrize("model,data,names", [
    ("{d}/missing.pt", "{d}/data.yaml", ["missing.pt"]),
    ("{d}/good.pt", "{d}/missing.yaml", ["missing.yaml"]),
    ("{d}/good.pt", "{d}/bad.jpg", ["bad.jpg"]),  # not a data spec
    ("{d}/mismatch.pt", "{d}/data.yaml", ["mismatch.pt"]),
    ("{d}/relu.onnx", "{d}/data.yaml", ["relu.onnx"]),
])
def test_eval_bad_input(bad: Path, run_cli, model: str, data: str, names: list[str]) -> None:
    assert_one_line_error(run_cli("eval", model.format(d=bad), "--data", data.format(d=bad)), *names)


@pytest.mark.parametrize("file,variant,names", [
    ("{d}/missing.onnx", "nano", ["missing.onnx"]),
    ("{d}/relu.onnx", "nano", ["relu.onnx", "not a YOLOX ONNX"]),
    ("{d}/garbage.onnx", "nano", ["garbage.onnx"]),
    ("{d}/official_tiny.pth", "nano", ["official_tiny.pth", "--variant"]),
    ("{d}/official_test.pth", "test_dw", ["official_test.pth", "--variant"]),
    ("{d}/good.pt", "test", ["good.pt", "already a yolox_edge checkpoint"]),
    ("{d}/bad.jpg", "nano", ["bad.jpg"]),
    ("{d}/official_test.pth", "nope", ["nope"]),
])
def test_import_official_bad_input(bad: Path, run_cli, file: str, variant: str, names: list[str]) -> None:
    out = bad / "never.pt"
    assert_one_line_error(run_cli("import-official", file.format(d=bad), "--variant", variant, "--out", out), *names)
    assert not out.exists()


@pytest.mark.refdata
def test_import_official_onnx_as_other_variant(refdata: Path, run_cli, tmp_path: Path) -> None:
    out = tmp_path / "tiny.pt"
    line = assert_one_line_error(run_cli("import-official", refdata / "models" / "yolox_nano.onnx",
                                         "--variant", "tiny", "--out", out), "yolox_nano.onnx", "--variant")
    assert "tiny" in line and not out.exists()


def test_entry_point_subprocess_has_no_traceback(bad: Path) -> None:
    """The real process: exit code 2 and one stderr line (catches errors outside main's try)."""
    proc = subprocess.run([sys.executable, "-m", "yolox_edge", "predict", str(bad / "mismatch.pt"),
                           str(bad / "ok.jpg")], capture_output=True, text=True, timeout=120)
    assert_one_line_error((proc.returncode, proc.stdout, proc.stderr), "mismatch.pt")


def test_cli_precision_hints_are_what_the_runtimes_take(run_cli, tmp_path: Path) -> None:
    from yolox_edge.cli import PRECISION_HINTS
    from yolox_edge.runtime.ncnn_backend import PRECISION_HINTS as ncnn_hints
    from yolox_edge.runtime.openvino_backend import PRECISION_HINTS as ov_hints

    assert set(PRECISION_HINTS) == set(ov_hints) | set(ncnn_hints)
    code, _, err = run_cli("bench", tmp_path / "m.pt", "--precision-hint", "f32,int4")
    assert code == 2 and "precision hints are f32, bf16, f16 (comma list), not 'f32,int4'" in err, err


def test_a_path_the_system_refuses_is_one_line(bad: Path, tmp_path: Path, run_cli, monkeypatch) -> None:
    """An OSError naming a file (here: an output folder under a plain file) is the user's to fix."""
    blocker = tmp_path / "plain_file"
    blocker.write_text("")
    line = assert_one_line_error(run_cli("export", bad / "good.pt", "--format", "onnx", "--out", blocker / "out"),
                                 str(blocker))
    assert "is a file, not a folder" in line  # --out folders are checked before the work

    def disk_full(args):  # an OSError no check foresaw (disk full mid-write) still names its file
        import errno

        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "out" / "model.onnx"))

    import yolox_edge.cli.verify as verify_cli

    monkeypatch.setattr(verify_cli, "run", disk_full)
    line = assert_one_line_error(run_cli("verify", "b.zip"), str(tmp_path / "out" / "model.onnx"))
    assert "No space left on device; check the path" in line


@pytest.mark.parametrize("exc", [MemoryError(), RuntimeError("[enforce fail at alloc_cpu.cpp:121] data. "
                                                                  "DefaultCPUAllocator: can't allocate memory")],
                         ids=["python", "torch"])
def test_out_of_memory_is_one_line(exc, run_cli, monkeypatch) -> None:
    """predict --img-size 8192 on a small machine: a MemoryError (or torch's allocator's
    RuntimeError) was a traceback; one line says what takes memory, exit 1 (not bad input)."""
    import yolox_edge.cli.verify as verify_cli

    def oom(args):
        raise exc

    monkeypatch.setattr(verify_cli, "run", oom)
    code, out, err = run_cli("verify", "b.zip")
    assert code == 1 and err.strip().splitlines() == [
        "yolox-edge verify: error: out of memory; a smaller --img-size or --batch, fewer --workers, or closing other "
        "programs frees some"], err

    def bug(args):
        raise RuntimeError("shape mismatch")

    monkeypatch.setattr(verify_cli, "run", bug)
    with pytest.raises(RuntimeError, match="shape mismatch"):
        run_cli("verify", "b.zip")


def test_outputs_written_last_are_checked_first(bad: Path, tmp_path: Path, run_cli, monkeypatch) -> None:
    """eval --json, convert --out/--log: a folder or an unwritable place fails before the work, and
    names the path the user gave (not our temp file)."""
    import yolox_edge.engine.evaluator as evaluator
    import yolox_edge.engine.reconstruct as reconstruct

    def never(*a, **k):
        raise AssertionError("the work ran before the output path was checked")

    monkeypatch.setattr(evaluator, "evaluate", never)
    monkeypatch.setattr(reconstruct, "convert_activation", never)
    blocker = tmp_path / "plain_file"
    blocker.write_text("")
    folder = tmp_path / "a_folder.json"
    folder.mkdir()
    assert_one_line_error(run_cli("eval", bad / "good.pt", "--data", bad / "data.yaml", "--json", folder),
                          str(folder), "is a folder")
    assert_one_line_error(run_cli("eval", bad / "good.pt", "--data", bad / "data.yaml", "--json",
                                  blocker / "r.json"), str(blocker / "r.json"), "is a file, not a folder")
    for extra in (("--out", folder), ("--out", tmp_path / "s.pt", "--log", blocker / "x" / "log.json")):
        code, _out, err = run_cli("convert", bad / "good.pt", "--to", "test_dw", "--calib", tmp_path, *extra)
        assert code == 2 and "AssertionError" not in err and "Traceback" not in err, err
        assert str(extra[-1]) in err, err


def test_atomic_write_names_the_target(tmp_path: Path) -> None:
    from yolox_edge.errors import UserError
    from yolox_edge.fileio import atomic_write_bytes

    with pytest.raises(UserError, match="is a folder"):
        atomic_write_bytes(tmp_path, lambda f: f.write(b"x"))
    blocker = tmp_path / "plain_file"
    blocker.write_text("keep me")
    with pytest.raises(UserError, match=f"{blocker / 'sub' / 'out.json'}: {blocker} is a file, not a folder"):
        atomic_write_bytes(blocker / "sub" / "out.json", lambda f: f.write(b"x"))
    assert blocker.read_text() == "keep me" and [p.name for p in tmp_path.iterdir()] == ["plain_file"]


def test_atomic_write_leaves_an_ordinary_file_mode(tmp_path: Path) -> None:
    """mkstemp makes 0600 files: results (bundles, checkpoints, reports) must not depend on that."""
    import os

    from yolox_edge.fileio import atomic_write_bytes

    old = os.umask(0o027)
    try:
        atomic_write_bytes(tmp_path / "new.json", lambda f: f.write(b"{}"))
        assert (tmp_path / "new.json").stat().st_mode & 0o777 == 0o640  # 0666 less the umask
        (tmp_path / "mine.json").write_bytes(b"")
        (tmp_path / "mine.json").chmod(0o604)
        atomic_write_bytes(tmp_path / "mine.json", lambda f: f.write(b"{}"))
        assert (tmp_path / "mine.json").stat().st_mode & 0o777 == 0o604  # an existing file keeps its mode
    finally:
        os.umask(old)


def test_train_out_that_is_a_file_fails_first(bad: Path, tmp_path: Path, run_cli) -> None:
    target = tmp_path / "not_a_folder.pt"
    target.write_text("user's file")
    recipe = Path(__file__).parents[2] / "yolox_edge" / "recipes" / "yolox_nano.yaml"
    assert_one_line_error(run_cli("train", "--recipe", recipe, "--data", bad / "data.yaml", "--out", target),
                          str(target), "not a folder")
    assert target.read_text() == "user's file"


def test_predict_a_folder(bad: Path, tmp_path: Path, run_cli) -> None:
    """A folder's images in name order; an unreadable one is skipped and said; two images with
    one stem keep two annotated copies; an empty folder is one line and exit 2."""
    import json

    folder = tmp_path / "imgs"
    folder.mkdir()
    cv2.imwrite(str(folder / "a.jpg"), np.full((40, 60, 3), 90, np.uint8))
    cv2.imwrite(str(folder / "a.png"), np.full((30, 50, 3), 150, np.uint8))
    (folder / "b.jpg").write_text("not an image")
    (folder / "notes.txt").write_text("not an image either, and not looked at")
    code, out, err = run_cli("predict", bad / "good.pt", folder, bad / "ok.jpg", "--json",
                             "--save-dir", tmp_path / "vis")
    assert code == 0, err
    assert [r["image"] for r in json.loads(out)] == [str(folder / "a.jpg"), str(folder / "a.png"),
                                                     str(bad / "ok.jpg")]
    assert "b.jpg" in err and "1 unreadable image skipped" in err and "replaced" not in err
    assert sorted(p.name for p in (tmp_path / "vis").iterdir()) == ["a_png_pred.jpg", "a_pred.jpg", "ok_pred.jpg"]
    # The same run again refreshes the three copies, and says so.
    code, out, err = run_cli("predict", bad / "good.pt", folder, bad / "ok.jpg", "--save-dir", tmp_path / "vis")
    assert code == 0 and f"replaced 3 annotated copies of an earlier run in {tmp_path / 'vis'}" in err, err
    assert sorted(p.name for p in (tmp_path / "vis").iterdir()) == ["a_png_pred.jpg", "a_pred.jpg", "ok_pred.jpg"]
    (tmp_path / "empty").mkdir()
    assert_one_line_error(run_cli("predict", bad / "good.pt", tmp_path / "empty"), "no images in this folder")


def test_an_image_too_wide_for_a_jpeg_copy_keeps_its_detections_and_the_folder_goes_on(bad: Path, tmp_path: Path,
                                                                                       run_cli) -> None:
    """A 70000 x 16 panorama with --save-dir: cv2 could not encode its JPEG copy, a ValueError traceback
    that abandoned the rest of the folder."""
    import json

    folder = tmp_path / "pano"
    folder.mkdir()
    cv2.imwrite(str(folder / "a_wide.png"), np.full((16, 70000, 3), 90, np.uint8))
    cv2.imwrite(str(folder / "b.jpg"), np.full((40, 60, 3), 90, np.uint8))
    code, out, err = run_cli("predict", bad / "good.pt", folder, "--json", "--save-dir", tmp_path / "vis")
    assert code == 0, err
    assert [r["image"] for r in json.loads(out)] == [str(folder / "a_wide.png"), str(folder / "b.jpg")]
    assert (f"note: no annotated copy of {folder / 'a_wide.png'}: {tmp_path / 'vis' / 'a_wide_pred.jpg'}: OpenCV "
            "cannot encode a 70000x16 image as .jpg (JPEG takes at most 65500 pixels a side)") in err, err
    assert sorted(p.name for p in (tmp_path / "vis").iterdir()) == ["b_pred.jpg"]


def test_predict_save_dir_that_cannot_be_written_fails_before_the_model_loads(bad: Path, tmp_path: Path, run_cli,
                                                                             monkeypatch) -> None:
    """--save-dir a file, under a file or read-only: one line before the model loads (it was found at
    the first annotated copy, after the image was predicted, under a 'stopped by' line)."""
    import os

    import yolox_edge.cli.predict as predict_cli

    def never(args):
        raise AssertionError("the model loaded before --save-dir was checked")

    monkeypatch.setattr(predict_cli, "predictor_from_args", never)
    plain = tmp_path / "plain_file.jpg"
    plain.write_text("user's file")
    assert_one_line_error(run_cli("predict", bad / "good.pt", bad / "ok.jpg", "--save-dir", plain),
                          str(plain), "exists and is not a folder", "--save-dir")
    assert_one_line_error(run_cli("predict", bad / "good.pt", bad / "ok.jpg", "--save-dir", plain / "vis"),
                          str(plain / "vis"), "is a file, not a folder", "--save-dir")
    assert plain.read_text() == "user's file"
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode, **k: False if Path(p) == tmp_path else real_access(p, mode))
    assert_one_line_error(run_cli("predict", bad / "good.pt", bad / "ok.jpg", "--save-dir", tmp_path / "vis"),
                          str(tmp_path / "vis"), "cannot be written", "--save-dir")


def test_demo_variant_mistakes_are_one_line(bad: Path, run_cli) -> None:
    line = assert_one_line_error(run_cli("demo", "--variant", "foo"), "--variant", "'foo'")
    assert "nano" in line  # the known names
    line = assert_one_line_error(run_cli("demo", "--weights", bad / "good.pt", "--variant", "tiny"), "good.pt")
    assert "not --variant tiny" in line  # the checkpoint decides; a silent Nano run misled


def test_a_closed_pipe_stops_quietly() -> None:
    """`yolox-edge ... | head`: the reader leaves early; no BrokenPipeError traceback, exit 141."""
    code = ("import sys, yolox_edge.cli.models as m\n"
            "def flood(args):\n"
            "    for _ in range(200000): print('x' * 60)\n"
            "m.run = flood\n"
            "from yolox_edge.cli import main\n"
            "sys.exit(main(['models']))\n")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout.readline().startswith(b"x")
    proc.stdout.close()  # what head does after its lines
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 141 and "Traceback" not in err and "Broken pipe" not in err, err


def test_nms_flags_where_no_graph_runs_nms_are_refused(bad: Path, tmp_path: Path, run_cli) -> None:
    """ncnn, --raw, --topk 0 and --no-nms graphs have no NMS: --nms/--conf were dropped without a word."""
    for args, why in ((["export", "--format", "ncnn", "--nms", "0.5"], "ncnn graphs"),
                      (["export", "--format", "onnx", "--raw", "--conf", "0.3"], "--raw"),
                      (["export", "--format", "onnx", "--topk", "0", "--nms", "0.6"], "--topk 0"),
                      (["export", "--format", "openvino", "--no-nms", "--conf", "0.3"], "--no-nms"),
                      (["quantize", "--calib", str(tmp_path), "--format", "ncnn", "--conf", "0.3"], "ncnn graphs")):
        out = tmp_path / "out"
        cmd, rest = args[0], args[1:]
        line = assert_one_line_error(run_cli(cmd, bad / "good.pt", *rest, "--out", out), "no in-graph NMS", why)
        flag = "--nms" if "--nms" in rest else "--conf"
        assert f"error: {flag}: no in-graph NMS" in line and not out.exists()


def test_a_precision_hint_on_an_fp32_only_runtime_is_refused(bad: Path, tmp_path: Path, run_cli) -> None:
    """torch and onnxruntime run fp32 here: a bf16/f16 hint used to be accepted and ignored."""
    from yolox_edge.export import export_model

    onnx_dir = export_model(bad / "good.pt", format="onnx", out=tmp_path / "onnx").directory
    for model, runtime in ((bad / "good.pt", "torch"), (onnx_dir, "onnxruntime")):
        line = assert_one_line_error(run_cli("predict", model, bad / "ok.jpg", "--precision-hint", "bf16"),
                                     "--precision-hint bf16", runtime)
        assert "OpenVINO and ncnn" in line
        code, _out, err = run_cli("predict", model, bad / "ok.jpg", "--precision-hint", "f32",
                                  "--save-dir", tmp_path / "pred")
        assert code == 0, err  # f32 is what they run: harmless


def test_a_checkpoint_is_not_replaced_without_force(bad: Path, tmp_path: Path, run_cli, monkeypatch) -> None:
    import yolox_edge.engine.reconstruct as reconstruct

    mine = tmp_path / "mine.pt"
    mine.write_bytes(b"weeks of training")
    line = assert_one_line_error(run_cli("import-official", bad / "official_test.pth", "--variant", "test",
                                         "--out", mine), str(mine), "--force")
    assert mine.read_bytes() == b"weeks of training" and "already there" in line

    def never(*a, **k):
        raise AssertionError("convert fitted before refusing its --out")

    monkeypatch.setattr(reconstruct, "convert_activation", never)
    assert_one_line_error(run_cli("convert", bad / "good.pt", "--to", "test_dw", "--calib", tmp_path,
                                  "--out", mine), str(mine), "--force")
    code, _out, err = run_cli("import-official", bad / "official_test.pth", "--variant", "test", "--out", mine,
                              "--force")
    assert code == 0 and mine.read_bytes()[:2] == b"PK", err  # a torch zip now


def test_import_official_of_our_own_export_names_its_checkpoint(bad: Path, tmp_path: Path, run_cli) -> None:
    from yolox_edge.export import export_model

    onnx_file = export_model(bad / "good.pt", format="onnx", out=tmp_path / "onnx").model_file
    line = assert_one_line_error(run_cli("import-official", onnx_file, "--variant", "test", "--out",
                                         tmp_path / "x.pt"), str(onnx_file), "good.pt")
    assert "not official YOLOX weights" in line and not (tmp_path / "x.pt").exists()


def test_a_run_folder_or_an_onnx_given_as_a_checkpoint_points_to_the_right_command(run_cli, bad, tmp_path) -> None:
    import shutil

    run = tmp_path / "run"
    run.mkdir()
    shutil.copy(bad / "good.pt", run / "best.pt")
    code, _, err = run_cli("predict", run, bad / "ok.jpg")
    assert code == 2 and f"a training run, not an export; give its checkpoint ({run / 'best.pt'})" in err
    code, _, err = run_cli("export", bad / "relu.onnx", "--format", "onnx", "--out", tmp_path / "x")
    assert code == 2 and f"import-official {bad / 'relu.onnx'} --variant NAME" in err, err
    code, _, err = run_cli("quantize", run, "--calib", tmp_path, "--format", "onnx", "--out", tmp_path / "q")
    assert code == 2 and f"a folder, not a checkpoint; give {run / 'best.pt'}" in err  # where a .pt belongs
    code, _, err = run_cli("export", tmp_path, "--format", "onnx", "--out", tmp_path / "y")  # no run inside
    assert code == 2 and "a folder, not a checkpoint; give the .pt checkpoint" in err


def test_a_calibration_set_given_as_a_model_is_named_as_one(run_cli, bad, tmp_path) -> None:
    """info/predict/package calib/ said 'no metadata.json beside this model; export it with
    yolox-edge export': a set the user had just built, sent to a command that cannot take it."""
    from yolox_edge.quantize.calib import build_calibration_set

    calib = tmp_path / "calib"
    build_calibration_set(bad / "imgs", calib, img_size=32, count=1)
    for args in (("info", calib), ("predict", calib, bad / "ok.jpg"),
                 ("package", calib, "--target", "ncnn", "--out", tmp_path / "b.zip")):
        line = assert_one_line_error(run_cli(*args), f"{calib}: a calibration set (from 'yolox-edge calibrate'), "
                                     "not a model", f"calibrate --show {calib}", f"--calib {calib}")
        assert "export it" not in line

def test_heic_photos_are_named_not_skipped_unsaid(run_cli, bad, tmp_path) -> None:
    """An iPhone's .HEIC photos in a folder were left out without a word (fewer results, or 'no
    images in this folder'), and one named was 'not a decodable image (JPEG, PNG, ...)'."""
    import shutil

    heic = b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + bytes(64)  # an ISO-BMFF HEIC header
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "IMG_0001.HEIC").write_bytes(heic)
    line = assert_one_line_error(run_cli("predict", bad / "good.pt", photos), "no images in this folder",
                                 "1 HEIC photo left out (IMG_0001.HEIC)", "convert to JPEG")
    line = assert_one_line_error(run_cli("predict", bad / "good.pt", photos / "IMG_0001.HEIC"),
                                 "IMG_0001.HEIC: unreadable image: a HEIC/HEIF photo", "convert to JPEG")
    assert "not an image this OpenCV decodes" not in line
    shutil.copy(bad / "ok.jpg", photos / "ok.jpg")
    code, out, err = run_cli("predict", bad / "good.pt", photos)
    assert code == 0 and "ok.jpg" in out, err
    assert f"note: {photos}: 1 HEIC photo left out (IMG_0001.HEIC): OpenCV cannot decode HEIC" in err

def test_export_into_a_folder_holding_an_export_needs_force(bad: Path, tmp_path: Path, run_cli) -> None:
    """A second export into the same --out replaced metadata.json and orphaned the first model."""
    out = tmp_path / "ex"
    assert run_cli("export", bad / "good.pt", "--format", "onnx", "--out", out)[0] == 0
    first = sorted(p.name for p in out.iterdir())
    code, _, err = run_cli("export", bad / "good.pt", "--format", "openvino", "--out", out)
    assert code == 2 and err.startswith(f"yolox-edge export: error: {out}: already holds an export (its "
                                        "metadata.json); choose another --out (out= in Python), or pass --force (force=True in "
                                        "Python) to replace it")
    assert sorted(p.name for p in out.iterdir()) == first
    code, _, err = run_cli("export", bad / "good.pt", "--format", "openvino", "--out", out, "--force")
    assert code == 0, err
    code, _, err = run_cli("predict", out, bad / "ok.jpg", "--conf", "0.0001")
    assert code == 0 and "keeps only scores above 0.001 in its graph; --conf 0.0001 shows no more" in err, err
    # its graph NMS is per class: --agnostic over it is not one agnostic NMS, and is said to be
    code, _, err = run_cli("predict", out, bad / "ok.jpg", "--agnostic")
    assert code == 0 and "ran NMS per class in its graph; --agnostic over its output can keep fewer boxes" in err, err
    names = sorted(p.name for p in out.iterdir())
    assert not any(n.endswith(".onnx") for n in names) and "metadata.json" in names  # nothing of the first left


def test_stdout_is_line_buffered_in_a_log_file(tmp_path: Path) -> None:
    """Redirected to a file, printed step lines must reach it before the next stderr bar does."""
    import subprocess
    import sys

    code = ("import sys; from yolox_edge.cli import main; main(['models']); "
            "print(sys.stdout.line_buffering, file=sys.stderr)")
    with open(tmp_path / "log", "w") as log:
        done = subprocess.run([sys.executable, "-c", code], stdout=log, stderr=subprocess.PIPE, text=True, check=True)
    assert done.stderr.strip() == "True"


@pytest.mark.parametrize("sig", ["SIGINT", "SIGTERM"])
def test_a_stop_after_the_command_finished_ends_quietly_with_its_code(sig, tmp_path: Path) -> None:
    """Python's teardown after the last line took 0.5-1 s (torch's finalizers); a Ctrl-C in it
    printed 'Exception ignored in atexit callback ... KeyboardInterrupt' after a run that had
    written everything (quantize, convert), or ended it by SIGINT without a word, and a SIGTERM
    ended it with 143. An atexit callback stands in for the user: it runs in that teardown."""
    import os

    code = ("import atexit, os, signal, sys, time\n"
            f"atexit.register(lambda: (os.kill(os.getpid(), signal.{sig}), time.sleep(0.2)))\n"
            "sys.argv = ['yolox-edge', 'models']\n"
            "from yolox_edge.cli import main\n"
            "sys.exit(main())\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(Path(__file__).parents[2]),
                                                                    os.environ.get("PYTHONPATH")]))}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0 and done.stderr == "" and "nano" in done.stdout, (done.returncode, done.stderr)
    if sig == "SIGTERM":
        return
    # called with arguments (in-process, as the tests and a script's own main do), main leaves the handlers alone
    # compared with the handler it started with: a job started in the background with & inherits SIGINT ignored
    code = ("import signal; before = signal.getsignal(signal.SIGINT); from yolox_edge.cli import main; "
            "main(['models']); assert signal.getsignal(signal.SIGINT) is before")
    subprocess.run([sys.executable, "-c", code], capture_output=True, env=env, check=True, timeout=120)


def test_ctrl_c_while_the_commands_import_is_one_line_and_130(run_cli, monkeypatch) -> None:
    """A Ctrl-C in the first few tenths of a second (the subcommand modules importing, before
    main's own handler) printed a KeyboardInterrupt traceback from building the parser."""
    import importlib

    import yolox_edge.cli as cli

    real = importlib.import_module

    def slow_import(name, *a, **k):
        if name.endswith(".package"):  # the Ctrl-C lands while this module imports
            raise KeyboardInterrupt
        return real(name, *a, **k)

    monkeypatch.setattr(cli.importlib, "import_module", slow_import)
    code, out, err = run_cli("package", "exp", "--target", "ncnn", "--out", "b.zip")
    assert (code, out, err) == (130, "", "yolox-edge package: interrupted\n")
    code, _, err = run_cli("--no-such-flag")  # no command named yet
    assert (code, err) == (130, "yolox-edge: interrupted\n")


def test_a_folders_subfolders_are_counted_not_skipped_unsaid(run_cli, bad, tmp_path) -> None:
    """predict DIR left photos/sub/nested.jpg out without a word ('every image in a folder'); only
    an empty folder's error said 'not in subfolders'."""
    import shutil

    photos = tmp_path / "photos"
    for sub in ("2024", "trip", ".thumbnails"):  # hidden ones are no one's photos to predict
        (photos / sub).mkdir(parents=True)
        shutil.copy(bad / "ok.jpg", photos / sub / "nested.jpg")
    line = assert_one_line_error(run_cli("predict", bad / "good.pt", photos), "no images in this folder",
                                 "2 subfolders not searched (2024, trip): name a subfolder to predict its images")
    assert ".thumbnails" not in line
    shutil.copy(bad / "ok.jpg", photos / "ok.jpg")
    code, out, err = run_cli("predict", bad / "good.pt", photos, "--save-dir", photos / "pred")
    assert code == 0 and "ok.jpg" in out and "nested.jpg" not in out, err
    assert f"note: {photos}: 2 subfolders not searched (2024, trip): name a subfolder" in err
    code, out, err = run_cli("predict", bad / "good.pt", photos, "--save-dir", photos / "pred")  # not its own copies
    assert code == 0 and "2 subfolders not searched (2024, trip):" in err, err
    code, out, err = run_cli("predict", bad / "good.pt", photos / "trip")
    assert code == 0 and "nested.jpg" in out and "note" not in err, err


def test_avif_and_other_images_this_opencv_decodes_are_read_else_named(run_cli, bad, tmp_path, monkeypatch) -> None:
    """A folder's .avif photos were left out unsaid (IMAGE_SUFFIXES lacks them) although this
    OpenCV decodes them; on a build that cannot, they are named in a note instead."""
    import shutil

    import yolox_edge.data.preprocess as preprocess

    photos = tmp_path / "photos"
    photos.mkdir()
    shutil.copy(bad / "ok.jpg", photos / "download.jfif")  # a browser's name for a JPEG
    (photos / "scan.jxl").write_bytes(b"\xff\x0a" + bytes(40))  # no decoder here for JPEG XL
    ok, avif = cv2.imencode(".avif", cv2.imread(str(bad / "ok.jpg")))
    if ok:  # an OpenCV built with libavif
        (photos / "IMG_1.avif").write_bytes(avif.tobytes())
    code, out, err = run_cli("predict", bad / "good.pt", photos)
    assert code == 0 and "download.jfif: " in out, err
    assert ("IMG_1.avif: " in out) == ok, (out, err)
    assert f"note: {photos}: 1 image this OpenCV cannot decode left out (scan.jxl; .jxl): convert to JPEG or PNG" in err
    monkeypatch.setattr(preprocess.cv2, "haveImageReader", lambda path: False)  # a build with no such decoder
    line = assert_one_line_error(run_cli("predict", bad / "good.pt", photos), "no images in this folder",
                                 "this OpenCV cannot decode left out (")
    assert "download.jfif" in line and (".avif" in line) == ok


def test_a_cut_jpeg_is_skipped_with_its_line_not_predicted_on_grey_rows(run_cli, bad, tmp_path, monkeypatch) -> None:
    """Where OpenCV fills a cut JPEG with grey rows, predict ran on them without a word."""
    import shutil

    real = cv2.imdecode

    def lenient(data, flags):  # an OpenCV build whose imdecode decodes a cut JPEG, as imread does
        img = real(data, flags)
        return np.full((60, 80, 3), 128, np.uint8) if img is None and bytes(data[:2]) == b"\xff\xd8" else img

    monkeypatch.setattr(cv2, "imdecode", lenient)
    photos = tmp_path / "photos"
    photos.mkdir()
    shutil.copy(bad / "ok.jpg", photos / "ok.jpg")
    whole = (bad / "ok.jpg").read_bytes()
    (photos / "cut.jpg").write_bytes(whole[: len(whole) // 2])
    code, out, err = run_cli("predict", bad / "good.pt", photos)
    assert code == 0 and "ok.jpg" in out and "cut.jpg" not in out, err
    assert f"skipped {photos / 'cut.jpg'}: truncated image: file ends before the image data does" in err
    assert_one_line_error(run_cli("predict", bad / "good.pt", photos / "cut.jpg"), "cut.jpg: truncated image")


def stops_at_call(monkeypatch, n: int, stop) -> None:
    """predict's model calls ``stop()`` (a raise, a signal) at its ``n``-th image or frame."""
    import yolox_edge.cli.predict as cli_predict

    load = cli_predict.predictor_from_args

    def loader(args):
        pred = load(args)
        calls = []

        def predict(img):
            calls.append(1)
            if len(calls) == n:
                stop()
            return type(pred).predict(pred, img)
        pred.predict = predict
        return pred

    monkeypatch.setattr(cli_predict, "predictor_from_args", loader)


def interrupt() -> None:
    raise KeyboardInterrupt


@pytest.fixture
def photos(bad, tmp_path) -> Path:
    """A folder of three images, a.jpg, b.jpg and c.jpg."""
    import shutil

    folder = tmp_path / "photos"
    folder.mkdir()
    for name in ("a.jpg", "b.jpg", "c.jpg"):
        shutil.copy(bad / "ok.jpg", folder / name)
    return folder


def test_ctrl_c_in_a_folder_writes_json_with_what_was_done(run_cli, bad, photos, tmp_path, monkeypatch) -> None:
    """A Ctrl-C part way through a folder left --json unwritten (an earlier run's file there read as
    this run's results) and lost the detections done; as the live path does, --json now holds them,
    the image it stopped in marked "stopped": "interrupted" (no detections: it was not done)."""
    import json

    earlier = tmp_path / "preds.json"
    earlier.write_text("[]")
    stops_at_call(monkeypatch, 2, interrupt)
    code, _, err = run_cli("predict", bad / "good.pt", photos, "--json", earlier, "--save-dir", tmp_path / "pred")
    assert code == 130, err
    assert json.loads(earlier.read_text()) == [{"image": str(photos / "a.jpg"), "detections": []},
                                               {"image": str(photos / "b.jpg"), "stopped": "interrupted"}]
    assert (f"predict: interrupted after 1 of 3 inputs, in {photos / 'b.jpg'}; {earlier} holds what was done "
            f'({photos / "b.jpg"}\'s record marked "stopped": "interrupted"); 1 annotated copy written to '
            f"{tmp_path / 'pred'}") in err.splitlines(), err
    assert err.splitlines()[-1] == "yolox-edge predict: interrupted"
    code, out, err = run_cli("predict", bad / "good.pt", photos, "--json")
    assert code == 130 and [r["image"] for r in json.loads(out)] == [str(photos / n) for n in ("a.jpg", "b.jpg")]
    assert "; the JSON printed holds what was done (" in err
    # stopped in the first image: nothing done, so an earlier file is not replaced by an empty one
    stops_at_call(monkeypatch, 1, interrupt)
    code, out, err = run_cli("predict", bad / "good.pt", photos, "--json", earlier)
    assert code == 130 and len(json.loads(earlier.read_text())) == 2, err
    assert (f"predict: interrupted after 0 of 3 inputs, in {photos / 'a.jpg'}; {earlier} was not written (an "
            "earlier file there is untouched): nothing was done") in err.splitlines(), err
    code, out, err = run_cli("predict", bad / "good.pt", photos, "--json")
    assert code == 130 and out == "" and "; no JSON was printed (nothing was done)" in err


def test_sigterm_in_a_folder_writes_json_as_ctrl_c_does(run_cli, bad, photos, tmp_path, monkeypatch) -> None:
    """systemd, docker stop and timeout send SIGTERM: it ended predict without a word, --json not
    written and the detections done lost, where the live path keeps them."""
    import json
    import os
    import signal

    def unhandled(signum, frame):
        raise AssertionError("SIGTERM reached the test's own handler")

    out_json = tmp_path / "preds.json"
    stops_at_call(monkeypatch, 3, lambda: os.kill(os.getpid(), signal.SIGTERM))
    old = signal.signal(signal.SIGTERM, unhandled)
    try:
        code, _, err = run_cli("predict", bad / "good.pt", photos, "--json", out_json)
        assert signal.getsignal(signal.SIGTERM) is unhandled  # put back after the run
    finally:
        signal.signal(signal.SIGTERM, old)
    assert code == 143, err
    assert [r.get("stopped") for r in json.loads(out_json.read_text())] == [None, None, "interrupted"]
    assert (f"predict: stopped by SIGTERM after 2 of 3 inputs, in {photos / 'c.jpg'}; {out_json} holds what was "
            f'done ({photos / "c.jpg"}\'s record marked "stopped": "interrupted")') in err.splitlines(), err
    assert err.splitlines()[-1] == "yolox-edge predict: stopped by SIGTERM"


def test_an_error_part_way_writes_json_with_what_was_done(bad, photos, tmp_path, monkeypatch, capsys) -> None:
    """A model that fails part way (out of memory, a runtime's error) lost the detections done; the
    error still ends the run with its own message, after a line saying what --json holds."""
    import json

    from yolox_edge.cli import main
    from yolox_edge.errors import UserError

    def fail():
        raise RuntimeError("the runtime failed")

    out_json = tmp_path / "preds.json"
    stops_at_call(monkeypatch, 2, fail)
    with pytest.raises(RuntimeError, match="the runtime failed"):
        main(["predict", str(bad / "good.pt"), str(photos), "--json", str(out_json)])
    err = capsys.readouterr().err
    assert json.loads(out_json.read_text()) == [{"image": str(photos / "a.jpg"), "detections": []},
                                                {"image": str(photos / "b.jpg"), "stopped": "error"}]
    assert (f"predict: stopped by the error below after 1 of 3 inputs, in {photos / 'b.jpg'}; {out_json} holds "
            f'what was done ({photos / "b.jpg"}\'s record marked "stopped": "error")') in err.splitlines(), err

    def refuse():
        raise UserError("b.jpg: the model cannot take this image")

    stops_at_call(monkeypatch, 2, refuse)
    assert main(["predict", str(bad / "good.pt"), str(photos), "--json"]) == 2
    out, err = capsys.readouterr()
    assert [r.get("stopped") for r in json.loads(out)] == [None, "error"]
    assert err.splitlines()[-1] == "yolox-edge predict: error: b.jpg: the model cannot take this image", err


def write_clip(path: Path, frames: int) -> Path:
    """A tiny MP4 of ``frames`` grey frames, as OpenCV writes it."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 25.0, (60, 40))
    for i in range(frames):
        writer.write(np.full((40, 60, 3), 20 * i, np.uint8))
    writer.release()
    return path


def frames_in(video: Path) -> int:
    """How many frames OpenCV decodes from ``video`` (0 when it does not open)."""
    cap = cv2.VideoCapture(str(video))
    n = 0
    while cap.isOpened() and cap.read()[0]:
        n += 1
    cap.release()
    return n


def test_ctrl_c_in_a_video_keeps_the_frames_done_in_json(run_cli, bad, tmp_path, monkeypatch) -> None:
    """A Ctrl-C in a long video lost every frame done (the live path keeps them): --json now holds
    the inputs before it and the video's frames so far, its record marked "stopped": "interrupted"."""
    import json
    import shutil

    clip = write_clip(tmp_path / "clip.mp4", 6)
    shutil.copy(bad / "ok.jpg", tmp_path / "first.jpg")
    out_json, vis = tmp_path / "preds.json", tmp_path / "vis"
    stops_at_call(monkeypatch, 5, interrupt)  # the image, then 3 frames
    code, _, err = run_cli("predict", bad / "good.pt", tmp_path / "first.jpg", clip, "--json", out_json,
                           "--save-dir", vis)
    assert code == 130, err
    first, video = json.loads(out_json.read_text())
    assert first["image"] == str(tmp_path / "first.jpg")
    assert video["video"] == str(clip) and video["stopped"] == "interrupted"
    assert [f["frame"] for f in video["frames"]] == [0, 1, 2]
    assert (f'predict: interrupted after 1 of 2 inputs and 3 frames of {clip}; {out_json} holds what was done '
            f'({clip}\'s record marked "stopped": "interrupted"); 1 annotated copy written to {vis} and '
            "clip_pred.mp4 kept with its 3 frames done (a playable video)") in err.splitlines(), err
    assert err.splitlines()[-1] == "yolox-edge predict: interrupted"
    # stopped in an image after a whole video: the video's record as usual, no mark
    stops_at_call(monkeypatch, 7, interrupt)
    code, out, err = run_cli("predict", bad / "good.pt", clip, tmp_path / "first.jpg", "--json")
    whole, image = json.loads(out)
    assert code == 130 and "stopped" not in whole and len(whole["frames"]) == 6, err
    assert image == {"image": str(tmp_path / "first.jpg"), "stopped": "interrupted"}
    assert f"predict: interrupted after 1 of 2 inputs, in {tmp_path / 'first.jpg'}; the JSON printed holds" in err


@pytest.mark.parametrize("how", ["ctrl-c", "sigterm"])
def test_a_stop_right_after_a_frames_write_keeps_the_video_and_json_in_step(run_cli, bad, tmp_path, monkeypatch,
                                                                           request, how) -> None:
    """A Ctrl-C between writing a frame to the annotated video and recording it in --json kept a
    video one frame longer than the JSON's record: the record now comes first, with no stop
    between it and the write, so the kept video and --json count the same frames."""
    import json
    import os
    import signal

    from yolox_edge.runtime.video import AtomicVideoWriter

    clip = write_clip(tmp_path / "clip.mp4", 8)
    vis, out_json = tmp_path / "vis", tmp_path / "preds.json"
    real, writes = AtomicVideoWriter.write, []

    def write(self, frame):
        real(self, frame)
        writes.append(1)
        if len(writes) == 3:  # the stop arrives the moment the third frame is in the file
            os.kill(os.getpid(), signal.SIGINT if how == "ctrl-c" else signal.SIGTERM)

    def unhandled(signum, frame):  # a regression must fail the test, not end pytest
        raise AssertionError("SIGTERM reached the test's own handler")

    old = signal.signal(signal.SIGTERM, unhandled)
    request.addfinalizer(lambda: signal.signal(signal.SIGTERM, old))
    monkeypatch.setattr(AtomicVideoWriter, "write", write)
    code, _, err = run_cli("predict", bad / "good.pt", clip, "--json", out_json, "--save-dir", vis)
    assert code == (130 if how == "ctrl-c" else 143), err
    (video,) = json.loads(out_json.read_text())
    assert video["stopped"] == "interrupted" and [f["frame"] for f in video["frames"]] == [0, 1, 2]
    assert frames_in(vis / "clip_pred.mp4") == len(video["frames"]) == 3
    assert "clip_pred.mp4 kept with its 3 frames done (a playable video)" in err, err


@pytest.mark.parametrize("stop", ["ctrl-c", "sigterm", "ctrl-c in the record"])
def test_a_stopped_video_keeps_its_annotated_frames_so_far(run_cli, bad, tmp_path, monkeypatch, request,
                                                           stop) -> None:
    """The annotated copy of a video was written only at its last frame: a stop part way lost
    minutes of it. It now keeps a playable MP4 of the frames done, moved into place whole (its temp
    gone), and the stop line says so; a stop before the first frame keeps the earlier copy."""
    import os
    import signal

    import yolox_edge.cli.predict as cli_predict

    clip = write_clip(tmp_path / "clip.mp4", 8)
    vis = tmp_path / "vis"
    k = 3
    record = cli_predict.frame_record
    if stop == "ctrl-c in the record":  # in predict's record of frame k: it is not written either

        def stops_at_frame_k(f, *a):
            if f.index == k:
                raise KeyboardInterrupt
            return record(f, *a)
        monkeypatch.setattr(cli_predict, "frame_record", stops_at_frame_k)
    else:  # in the model's call of frame k (from 0): frames 0 to k - 1 are done
        stops_at_call(monkeypatch, k + 1, interrupt if stop == "ctrl-c" else
                      lambda: os.kill(os.getpid(), signal.SIGTERM))
    def unhandled(signum, frame):  # a regression must fail the test, not end pytest
        raise AssertionError("SIGTERM reached the test's own handler")

    old = signal.signal(signal.SIGTERM, unhandled)
    request.addfinalizer(lambda: signal.signal(signal.SIGTERM, old))
    code, _, err = run_cli("predict", bad / "good.pt", clip, "--save-dir", vis)
    assert code == (143 if stop == "sigterm" else 130), err
    assert frames_in(vis / "clip_pred.mp4") == k  # as many as the stop line counts (the loop's stop kept one more)
    assert sorted(p.name for p in vis.iterdir()) == ["clip_pred.mp4"]  # no temp left beside it
    assert (f"predict: {'stopped by SIGTERM' if stop == 'sigterm' else 'interrupted'} after 0 of 1 input and {k} "
            f"frames of {clip}; 0 annotated copies written to {vis} and clip_pred.mp4 kept with its {k} frames "
            "done (a playable video)") in err.splitlines(), err
    # a stop before any frame leaves that copy as it was, and says none was kept
    before = (vis / "clip_pred.mp4").read_bytes()
    monkeypatch.setattr(cli_predict, "frame_record", record)
    stops_at_call(monkeypatch, 1, interrupt)
    code, _, err = run_cli("predict", bad / "good.pt", clip, "--save-dir", vis)
    assert code == 130 and (vis / "clip_pred.mp4").read_bytes() == before, err
    assert f"0 annotated copies written to {vis} (none of {clip}: no frame was done)" in err
    assert sorted(p.name for p in vis.iterdir()) == ["clip_pred.mp4"]
    # a stop after a frame replaces it, and says so
    stops_at_call(monkeypatch, 3, interrupt)
    code, _, err = run_cli("predict", bad / "good.pt", clip, "--save-dir", vis)
    assert code == 130 and frames_in(vis / "clip_pred.mp4") == 2, err
    assert "clip_pred.mp4 kept with its 2 frames done (a playable video, over an earlier run's)" in err


@pytest.mark.parametrize("argv", [
    ["export", "m.pt", "--format", "onnx", "--out", "o"],
    ["quantize", "m.pt", "--calib", "c", "--out", "o"],
    ["calibrate", "--data", "d", "--out", "o"],
    ["convert", "m.pt", "--to", "test", "--calib", "c", "--out", "o"],
    ["package", "a", "--target", "ncnn", "--out", "o.zip"],
    ["bench", "a", "--json", "b.json"],
], ids=lambda a: a[0])
def test_sigterm_stops_every_command_as_ctrl_c_does(run_cli, monkeypatch, argv) -> None:
    """SIGTERM (systemd, docker stop, timeout) was a stop only for train, pipeline, eval and
    predict: it ended these without a word and without their cleanup, an export's temp folder and
    the empty --out it made left behind. It is now Ctrl-C's stop with exit 143, the handler put back."""
    import importlib
    import os
    import signal
    import time

    def terminated(args):
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(2)  # the handler raises in here
        return 0

    monkeypatch.setattr(importlib.import_module(f"yolox_edge.cli.{argv[0]}"), "run", terminated)
    got: list[int] = []

    def mine(signum, frame):  # without a handler of the CLI's this one takes the signal, not pytest's end
        got.append(signum)

    before = signal.signal(signal.SIGTERM, mine)
    try:
        code, _, err = run_cli(*argv)
        assert code == 143 and err.strip() == f"yolox-edge {argv[0]}: stopped by SIGTERM", (code, err, got)
        assert not got and signal.getsignal(signal.SIGTERM) is mine
    finally:
        signal.signal(signal.SIGTERM, before)


def test_a_checkpoint_is_not_written_under_another_formats_name(bad: Path, tmp_path: Path, run_cli) -> None:
    """import-official --out nano.onnx wrote a torch checkpoint named .onnx: every loader then took it
    for an ONNX and sent the user back to import-official, which could not read it either."""
    for out in ("nano.onnx", "nano"):
        line = assert_one_line_error(run_cli("import-official", bad / "official_test.pth", "--variant", "test",
                                             "--out", tmp_path / out), str(tmp_path / out))
        assert "a checkpoint is a torch file; name it .pt (e.g. nano.pt)" in line
        assert not (tmp_path / out).exists()


@pytest.mark.parametrize("key, value, said", [
    ("class_names", "ab", "class_names must be a list of names (strings), not ab"),
    ("class_names", [1, 2], "class_names must be a list of names (strings), not [1, 2]"),
    ("class_names", None, "checkpoint lacks class_names"),
    ("source", "x", "source must be a mapping, not str"),
    ("train_state", "x", "train_state must be a mapping, not str"),
    ("preprocess.pad_value", 999, "preprocess.pad_value 999 is not a pixel value"),
    ("preprocess.channel_order", "XYZ", "preprocess.channel_order 'XYZ' is neither BGR nor RGB"),
    # info was a TypeError traceback ('unhashable type'); a version string or one from a later release loaded
    ("variant", ["nano"], "variant must be a model name (a string), not ['nano']"),
    ("version", "x", "version 'x' is not a number"),
    ("preprocess.letterbox", "center", "preprocess.letterbox 'center' is not top-left"),
])
def test_an_edited_checkpoint_field_is_one_line(bad: Path, tmp_path: Path, run_cli, key, value, said) -> None:
    """Hand-edited fields were TypeError/AttributeError tracebacks in info and predict ('ab' was read as the
    class names a and b; channel XYZ was fed as BGR and written into every export)."""
    ckpt = torch.load(bad / "good.pt", weights_only=True)
    if key.startswith("preprocess."):
        ckpt["preprocess"][key.split(".")[1]] = value
    else:
        ckpt[key] = value
    edited = tmp_path / "edited.pt"
    torch.save(ckpt, edited)
    for cmd in (["info", edited], ["predict", edited, bad / "ok.jpg"]):
        line = assert_one_line_error(run_cli(*cmd), str(edited))
        assert said in line and "the file is damaged or was edited" in line, line


def test_a_checkpoint_of_a_later_version_asks_for_an_upgrade(bad: Path, tmp_path: Path, run_cli) -> None:
    ckpt = torch.load(bad / "good.pt", weights_only=True)
    ckpt["version"] = 99
    torch.save(ckpt, tmp_path / "later.pt")
    line = assert_one_line_error(run_cli("info", tmp_path / "later.pt"), str(tmp_path / "later.pt"))
    assert "checkpoint version 99 is newer than this yolox_edge reads (1); upgrade yolox-edge" in line


def test_a_checkpoint_giving_its_size_as_one_side_is_described(bad: Path, tmp_path: Path, run_cli) -> None:
    """preprocess.input_size S (the size check takes it) was a TypeError traceback in info."""
    ckpt = torch.load(bad / "good.pt", weights_only=True)
    ckpt["preprocess"]["input_size"] = ckpt["preprocess"]["input_size"][0]
    torch.save(ckpt, tmp_path / "s.pt")
    code, out, err = run_cli("info", tmp_path / "s.pt", "--json")
    assert code == 0, err
    assert json.loads(out)["input_size"] == [ckpt["preprocess"]["input_size"]] * 2


def test_qat_settings_without_qat_are_refused(bad: Path, tmp_path: Path, run_cli) -> None:
    """quantize --epochs 5 --lr 0.5 --batch 3 without --qat ran a plain PTQ, the flags dropped without a word."""
    line = assert_one_line_error(run_cli("quantize", bad / "good.pt", "--calib", tmp_path, "--out", tmp_path / "q",
                                         "--epochs", "5", "--lr", "0.5"), "--epochs/--lr")
    assert "QAT settings, and this run does no QAT; add --qat" in line and not (tmp_path / "q").exists()


def test_demo_and_pipeline_check_their_inputs_before_working(tmp_path: Path, run_cli) -> None:
    """demo --image nope.jpg built Nano and printed its counts first; pipeline --weights on a broken
    file generated the whole dataset (120 images, left behind) before the trainer refused it."""
    code, out, err = run_cli("demo", "--image", tmp_path / "nope.jpg")
    assert code == 2 and out == "" and "nope.jpg: image not found" in err, (out, err)
    code, out, err = run_cli("demo", "--save", tmp_path)
    assert code == 2 and out == "" and "--save names a folder" in err, (out, err)
    code, out, err = run_cli("demo", "--image", tmp_path / "nope.jpg", "--save", tmp_path / "new" / "sub" / "x.jpg")
    assert code == 2 and not (tmp_path / "new").exists()  # refused without folders made on the way
    (tmp_path / "broken.pt").write_bytes(b"not a checkpoint")
    code, out, err = run_cli("pipeline", "--weights", tmp_path / "broken.pt", "--out", tmp_path / "pp")
    assert code == 2 and "broken.pt: not a readable yolox_edge checkpoint" in err, err
    assert not (tmp_path / "pp").exists()
