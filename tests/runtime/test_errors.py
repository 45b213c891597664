"""Bad input: one clear line and exit code 2 (no traceback)."""
from __future__ import annotations

import json
import re
import shutil

import cv2
import numpy as np
import pytest


def _one_line_error(code: int, err: str, *needles: str) -> None:
    assert code == 2, err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    for n in needles:
        assert n in err, err


@pytest.fixture
def image(tmp_path):
    p = tmp_path / "img.png"
    cv2.imwrite(str(p), np.full((40, 50, 3), 90, np.uint8))
    return p


def test_artifact_without_metadata(tiny_exports, tmp_path, image, run_cli) -> None:
    lone = tmp_path / "lone.onnx"
    shutil.copy(tiny_exports["onnx"] / "yolox_test.onnx", lone)
    _one_line_error(*run_cli("predict", lone, image)[::2], "metadata.json")


def test_truncated_model_file(tiny_exports, tmp_path, image, run_cli) -> None:
    for fmt, name in (("onnx", "yolox_test.onnx"), ("ncnn", "yolox_test.ncnn.bin")):
        d = shutil.copytree(tiny_exports[fmt], tmp_path / fmt)
        f = d / name
        f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])
        _one_line_error(*run_cli("predict", d, image)[::2], name, "sha256")


def test_truncated_model_with_matching_metadata(tiny_exports, tmp_path, image, run_cli) -> None:
    # Even when someone re-hashes a broken file, the backend's own load error is one line.
    from yolox_edge.export.metadata import write_metadata

    for fmt, name in (("onnx", "yolox_test.onnx"), ("ncnn", "yolox_test.ncnn.bin")):
        d = shutil.copytree(tiny_exports[fmt], tmp_path / fmt)
        f = d / name
        f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])
        meta = json.loads((d / "metadata.json").read_text())
        write_metadata(d, meta, list(meta["files"]))
        _one_line_error(*run_cli("predict", d, image)[::2], name)


def test_metadata_sha_mismatch_and_bad_json(tiny_exports, tmp_path, image, run_cli) -> None:
    d = shutil.copytree(tiny_exports["openvino"], tmp_path / "ov")
    meta = json.loads((d / "metadata.json").read_text())
    meta["files"]["yolox_test.bin"] = "0" * 64
    (d / "metadata.json").write_text(json.dumps(meta))
    _one_line_error(*run_cli("predict", d / "yolox_test.xml", image)[::2], "yolox_test.bin", "sha256")
    (d / "metadata.json").write_text(json.dumps(meta)[:50])
    _one_line_error(*run_cli("eval", d, "--data", tmp_path / "none.yaml")[::2])
    _one_line_error(*run_cli("predict", d, image)[::2], "metadata.json", "JSON")


def test_image_of_wrong_type(tiny_exports, tmp_path, run_cli) -> None:
    bad = tmp_path / "notes.jpg"
    bad.write_text("not an image")
    _one_line_error(*run_cli("predict", tiny_exports["onnx"], bad)[::2], "notes.jpg")


@pytest.mark.parametrize("args, needle", [
    (("--format", "ncnn", "--topk", "10"), "TopK"),
    (("--format", "onnx", "--precision", "fp16"), "fp16"),
    (("--format", "ncnn", "--dynamic-batch"), "dynamic-batch"),
    (("--format", "onnx", "--raw", "--topk", "5"), "--raw"),
    (("--format", "onnx", "--img-size", "50"), "--img-size"),
])
def test_export_refusals(tiny_ckpt, tmp_path, run_cli, args, needle) -> None:
    _one_line_error(*run_cli("export", tiny_ckpt, *args, "--out", tmp_path / "x")[::2], needle)


def test_precision_hint_on_the_command_line(tiny_exports, image, run_cli) -> None:
    """--precision-hint reaches the backend; a hint the runtime does not have is one clear error."""
    code, out, _ = run_cli("predict", tiny_exports["openvino"], image, "--precision-hint", "f16", "--json")
    assert code == 0 and json.loads(out)
    _one_line_error(*run_cli("predict", tiny_exports["ncnn"], image, "--precision-hint", "bf16")[::2],
                    "ncnn precision hint 'bf16'")


@pytest.mark.parametrize("key, value, said", [("value_range", [0.0, 1.0], "is not [0, 255]"),
                                              ("layout", "NHWC", "is not NCHW"),
                                              ("pad_value", 300, "is not a pixel value")])
def test_a_preprocessing_no_runtime_honours_is_refused_by_every_loader(tiny_exports, tmp_path, image, run_cli, key,
                                                                       value, said) -> None:
    """package/verify refused a metadata.json stating [0, 1] or NHWC (the app feeds 0..255 NCHW);
    predict, eval and bench fed 0..255 NCHW too and ran it, wrong without a word. Every format's
    loader and a bundle now refuse it, in the words verify's app check uses."""
    from yolox_edge.bundle import package_bundle
    from yolox_edge.bundle.app_contract import check_app_reads
    from yolox_edge.errors import UserError
    from yolox_edge.runtime import load_predictor

    for fmt in ("onnx", "openvino", "ncnn"):
        exp = shutil.copytree(tiny_exports[fmt], tmp_path / fmt)
        if fmt == "onnx":
            package_bundle(exp, target="onnx", out=tmp_path / "b.zip")
        meta = json.loads((exp / "metadata.json").read_text())
        meta["preprocess"][key] = value
        (exp / "metadata.json").write_text(json.dumps(meta))  # metadata.json carries no hash of its own
        with pytest.raises(UserError) as e:
            load_predictor(exp)
        assert str(e.value).startswith(f"{exp / 'metadata.json'} preprocess.{key} {value!r} {said}"), e.value
        _one_line_error(*run_cli("predict", exp, image)[::2], f"preprocess.{key} {value!r} {said}")
    with pytest.raises(UserError) as app:  # the app's check says the same after its own prefix
        check_app_reads(tmp_path / "b.zip", meta)
    assert str(app.value).split("metadata.json", 1)[1] == str(e.value).split("metadata.json", 1)[1]

    # a bundle edited with SHA256SUMS summed again: refused as it opens, naming the file in it
    import hashlib
    import zipfile

    with zipfile.ZipFile(tmp_path / "b.zip") as zf:
        contents = {n: zf.read(n) for n in zf.namelist()}
    meta = json.loads(contents["metadata.json"])
    meta["preprocess"][key] = value
    contents["metadata.json"] = json.dumps(meta).encode()
    contents["SHA256SUMS"] = "".join(f"{hashlib.sha256(d).hexdigest()}  {n}\n" for n, d in contents.items()
                                     if n != "SHA256SUMS").encode()
    with zipfile.ZipFile(tmp_path / "edited.zip", "w") as zf:
        for n, d in contents.items():
            zf.writestr(n, d)
    with pytest.raises(UserError, match=re.escape(f"{tmp_path / 'edited.zip'}!/metadata.json preprocess.{key}")):
        load_predictor(tmp_path / "edited.zip")


def test_paths_that_are_not_utf8_are_one_line_where_a_native_library_opens_them(tiny_ckpt, tiny_exports, tmp_path,
                                                                                run_cli) -> None:
    """An --out or export folder named in another encoding (b'\\xff'): onnx/OpenVINO/ncnn take UTF-8
    strings, and export was a TypeError traceback dumping every weight, predict on ncnn the same,
    and on ONNX 'the file is damaged, re-export it'."""
    import os

    odd = os.fsdecode(b"e_\xff")
    for fmt in ("onnx", "openvino"):
        _one_line_error(*run_cli("export", tiny_ckpt, "--format", fmt, "--out", tmp_path / odd)[::2],
                        "path has bytes that are not UTF-8", "e_\\xff")
        assert not (tmp_path / odd).exists()
    img = tmp_path / "img.png"
    cv2.imwrite(str(img), np.full((40, 50, 3), 90, np.uint8))
    for fmt in ("onnx", "ncnn"):
        moved = shutil.copytree(tiny_exports[fmt], tmp_path / os.fsdecode(b"m_\xff") / fmt)
        _one_line_error(*run_cli("predict", moved, img)[::2], "path has bytes that are not UTF-8")


def test_an_image_named_in_another_encoding_prints_under_a_strict_utf8_stdout(tiny_ckpt, tmp_path) -> None:
    """predict on 'bad\\xffname.jpg' with stdout in strict UTF-8 (PYTHONIOENCODING=utf-8): a
    UnicodeEncodeError traceback after the prediction; the name is now printed as the bytes it is."""
    import os
    import subprocess
    import sys

    img = tmp_path / os.fsdecode(b"bad\xffname.png")
    img.write_bytes(cv2.imencode(".png", np.full((40, 50, 3), 90, np.uint8))[1].tobytes())  # cv2.imwrite crashes on it
    res = subprocess.run([sys.executable, "-m", "yolox_edge", "predict", str(tiny_ckpt), str(img)],
                         capture_output=True, env={**os.environ, "PYTHONIOENCODING": "utf-8"})
    assert res.returncode == 0 and b"Traceback" not in res.stderr, res.stderr.decode(errors="replace")
    assert b"bad\xffname.png" in res.stdout
