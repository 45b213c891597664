"""``yolox-edge info`` / ``describe_artifact``: what a checkpoint, export or bundle is."""
from __future__ import annotations

import json

import pytest

from yolox_edge.describe import describe_artifact, describe_lines
from yolox_edge.errors import UserError
from yolox_edge.fileio import sha256_file


def test_checkpoint(tiny_ckpt, run_cli, tmp_path) -> None:
    info = describe_artifact(tiny_ckpt)
    assert (info["kind"], info["variant"], info["class_names"]) == ("checkpoint", "test", ["cat", "dog", "car"])
    assert info["input_size"] == [64, 64] and info["sha256"] == sha256_file(tiny_ckpt)
    assert info["counts"]["params_m"] > 0
    code, out, err = run_cli("info", tiny_ckpt, "--json", tmp_path / "i.json")
    assert code == 0, err
    assert out.splitlines()[0] == f"{tiny_ckpt}: checkpoint, 64 input"
    assert "test, 3 classes (cat, dog, car)" in out and info["sha256"] in out
    assert json.loads((tmp_path / "i.json").read_text())["sha256"] == info["sha256"]
    # best.pt of a 5-epoch run saved at epoch 2: the schedule's length is read from its recipe
    import torch

    ckpt = torch.load(tiny_ckpt, weights_only=True)
    torch.save(dict(ckpt, epoch=2, recipe={"train": {"epochs": 5}}), tmp_path / "best.pt")
    info = describe_artifact(tmp_path / "best.pt")
    assert (info["epoch"], info["epochs"]) == (2, 5)
    assert "  training  weights of epoch 2 of 5" in describe_lines(info)


def test_exports(tiny_exports) -> None:
    onnx = describe_artifact(tiny_exports["onnx"])
    assert (onnx["kind"], onnx["format"], onnx["precision"]) == ("export", "onnx", "fp32")
    assert [o["name"] for o in onnx["outputs"]] == ["boxes", "scores", "labels"]
    # at 64 input the graph has 8*8 + 4*4 + 2*2 = 84 anchors, so its top-K keeps all 84:
    # float boxes and scores, int64 labels
    assert onnx["bytes_out_per_image"] == 84 * (4 * 4 + 4 + 8)
    text = "\n".join(describe_lines(onnx))
    assert "decode in the graph, top-84, NMS IoU 0.65" in text and "2,352 bytes per image" in text
    ncnn = describe_artifact(next(tiny_exports["ncnn"].glob("*.param")))  # a model file names its export
    assert ncnn["format"] == "ncnn" and "top-" not in "\n".join(describe_lines(ncnn))


def test_a_changed_file_and_a_stranger_are_refused(tiny_exports, tmp_path, run_cli) -> None:
    import shutil

    copy = shutil.copytree(tiny_exports["onnx"], tmp_path / "onnx")
    model = next(copy.glob("*.onnx"))
    model.write_bytes(model.read_bytes()[:-1] + b"\0")
    with pytest.raises(UserError, match="sha256"):
        describe_artifact(copy)
    stranger = tmp_path / "notes.txt"
    stranger.write_text("hello")
    code, _out, err = run_cli("info", stranger)
    assert code == 2 and err.count("\n") == 1 and "notes.txt" in err, err
    # an image given by mistake is named as no model, not told to 'export it' as a model
    photo = tmp_path / "dog.jpg"
    photo.write_bytes(b"\xff\xd8\xff\xe0 not really")
    code, _out, err = run_cli("info", photo)
    assert code == 2 and "dog.jpg: not a model file (.jpg); give a checkpoint (.pt)" in err, err
    assert "export it" not in err, err


def test_bundle(tiny_exports, tmp_path) -> None:
    from yolox_edge.bundle import package_bundle

    zip_path = package_bundle(tiny_exports["ncnn"], target="ncnn", out=tmp_path / "m.zip", conf=0.4)["bundle"]
    info = describe_artifact(zip_path)
    assert (info["kind"], info["target"], info["postprocess"]["conf"]) == ("bundle", "ncnn", 0.4)
    text = "\n".join(describe_lines(info))
    assert text.startswith(f"{zip_path}: ncnn bundle, fp32") and "conf 0.4" in text
    assert "every file of the bundle sha256-checked" in text


def test_lines_for_a_trained_checkpoint_and_an_int8_export() -> None:
    ckpt = {"kind": "checkpoint", "path": "run/best.pt", "variant": "nano", "class_names": ["raccoon"],
            "input_size": [320, 320], "counts": {"params_m": 0.897, "gflops": 0.61},
            "source": {"kind": "trained", "weights": "nano_coco.pt"}, "bn_folded": False, "epoch": 30,
            "best_ap": 0.6512, "best_epoch": 28, "has_ema": True, "sha256": "ab" * 32}
    text = "\n".join(describe_lines(ckpt))
    assert "nano, 1 class (raccoon), 0.897 M params, 0.61 GFLOPs at 320" in text
    assert "trained, starting from nano_coco.pt; EMA weights inside" in text
    assert "weights of epoch 30, best val AP 0.6512 at epoch 28" in text
    # best.pt of a longer run is the best epoch's weights, not where the run stopped
    text = "\n".join(describe_lines(dict(ckpt, epoch=28, epochs=40)))
    assert "training  weights of epoch 28 of 40, best val AP 0.6512 at epoch 28" in text
    conv = dict(ckpt, source={"kind": "converted", "from": "nano.pt", "from_variant": "nano"}, epoch=None,
                input_size=None, counts=None)
    text = "\n".join(describe_lines(conv))
    assert "converted from nano.pt (nano)" in text and "input size not recorded" in text and "epoch" not in text
    export = {"kind": "export", "path": "int8/openvino", "format": "openvino", "precision": "int8",
              "variant": "nano", "class_names": ["a", "b"], "input_size": [320, 416], "counts": None,
              "graph": {"decode": True, "topk": 100, "nms": {"iou": 0.65, "conf": 0.001, "class_aware": False}},
              "outputs": [{"name": "boxes", "shape": [1, 100, 4], "dtype": "float32"}], "bytes_out_per_image": 1600,
              "quantization": {"method": "qat", "engine": "nncf 3.4.0", "float_convs": ["x"],
                               "calibration": {"count": 100, "sampling": "random", "source": "d.yaml:train"}},
              "files": {"m.xml": "", "m.bin": ""}}
    text = "\n".join(describe_lines(export))
    assert text.startswith("int8/openvino: openvino export, int8, 416x320 input")
    assert "NMS IoU 0.65 / score 0.001, class-agnostic" in text
    assert "QAT with nncf 3.4.0; 1 conv kept float; calibrated on 100 images (random) of d.yaml:train" in text
    export["quantization"]["calibration"]["used"] = 16  # quantize --subset-size 16
    assert "calibrated on 16 of 100 images (random)" in "\n".join(describe_lines(export))


def test_a_checkpoint_without_its_classes_is_refused(tiny_ckpt, tmp_path) -> None:
    import torch

    ckpt = torch.load(tiny_ckpt, weights_only=True)
    del ckpt["class_names"]
    torch.save(ckpt, tmp_path / "edited.pt")
    with pytest.raises(UserError, match=r"edited.pt: checkpoint lacks class_names; the file is damaged"):
        describe_artifact(tmp_path / "edited.pt")


def test_category_ids_are_shown_when_present(tmp_path, run_cli) -> None:
    """info names each class's dataset id beside its name for a checkpoint and its export; an
    artifact without ids (older, or voc/yolo data) gets no line."""
    from yolox_edge.engine.checkpoint import save_checkpoint
    from yolox_edge.export import export_model
    from yolox_edge.models import create_model

    ckpt = save_checkpoint(tmp_path / "ids.pt", create_model("test", num_classes=3), class_names=["a", "b", "c"],
                           category_ids=[7, 12, 40])
    for path in (ckpt, export_model(ckpt, format="onnx", out=tmp_path / "onnx").directory):
        info = describe_artifact(path)
        assert info["category_ids"] == [7, 12, 40]
        assert "  ids       category ids 7 a, 12 b, 40 c" in describe_lines(info)
    plain = save_checkpoint(tmp_path / "plain.pt", create_model("test", num_classes=3), class_names=["a", "b", "c"])
    info = describe_artifact(plain)
    assert info["category_ids"] is None and not any("category ids" in line for line in describe_lines(info))
