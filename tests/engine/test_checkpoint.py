"""Checkpoint contract: save/load round trip, atomic writes, weights-only load, clear errors."""
from __future__ import annotations

import pytest
import torch

from yolox_edge.data.preprocess import PreprocessConfig
from yolox_edge.engine.checkpoint import FORMAT, build_from_checkpoint, load_checkpoint, load_model, save_checkpoint
from yolox_edge.fileio import atomic_write_bytes, sha256_file
from yolox_edge.errors import UserError
from yolox_edge.models import create_model


def temp_files(d) -> list:
    return [p.name for p in d.iterdir() if p.name.endswith(".tmp")]


def test_round_trip(tmp_path) -> None:
    torch.manual_seed(0)
    model = create_model("test_dw", num_classes=3).eval()
    pre = PreprocessConfig(input_size=(64, 96))
    path = save_checkpoint(tmp_path / "sub" / "m.pt", model, class_names=["a", "b", "c"], preprocess=pre,
                           epoch=4, recipe={"lr": 0.01})
    assert path.is_file() and temp_files(path.parent) == []
    loaded, ckpt = load_model(path)
    assert ckpt["format"] == FORMAT and ckpt["variant"] == "test_dw" and ckpt["epoch"] == 4
    assert ckpt["class_names"] == ["a", "b", "c"] and ckpt["recipe"] == {"lr": 0.01}
    assert PreprocessConfig.from_dict(ckpt["preprocess"]) == pre
    assert not loaded.training and loaded.num_classes == 3
    x = torch.rand(1, 3, 64, 64) * 255
    with torch.no_grad():
        for a, b in zip(loaded(x), model(x)):
            torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_load_keeps_the_callers_random_stream(tmp_path) -> None:
    """Building the variant draws random init weights; loading must not move torch's global stream."""
    path = save_checkpoint(tmp_path / "m.pt", create_model("test_dw", num_classes=3).eval(), class_names=["a", "b", "c"],
                           preprocess=PreprocessConfig(input_size=(64, 64)))
    torch.manual_seed(123)
    expected = torch.rand(4)
    torch.manual_seed(123)
    load_model(path)
    torch.testing.assert_close(torch.rand(4), expected, rtol=0, atol=0)


def test_default_preprocess_and_ema(tmp_path) -> None:
    model = create_model("test", num_classes=2)
    ema = create_model("test", num_classes=2)
    with torch.no_grad():
        ema.head.obj_preds[0].bias.fill_(3.0)
    save_checkpoint(tmp_path / "m.pt", model, class_names=["a", "b"], ema=ema.state_dict())
    ckpt = load_checkpoint(tmp_path / "m.pt")
    assert ckpt["preprocess"]["input_size"] == [64, 64]  # the variant's own size
    assert build_from_checkpoint(ckpt).head.obj_preds[0].bias[0].item() == 3.0  # EMA preferred
    assert build_from_checkpoint(ckpt, use_ema=False).head.obj_preds[0].bias[0].item() != 3.0


def test_save_rejects_bad_arguments(tmp_path) -> None:
    model = create_model("test", num_classes=2)
    with pytest.raises(ValueError, match="class names"):
        save_checkpoint(tmp_path / "m.pt", model, class_names=["only"])
    del model.variant
    with pytest.raises(ValueError, match="variant"):
        save_checkpoint(tmp_path / "m.pt", model, class_names=["a", "b"])


def test_atomic_write_keeps_old_file_on_failure(tmp_path) -> None:
    target = tmp_path / "out.bin"
    atomic_write_bytes(target, lambda f: f.write(b"old"))

    def failing(f) -> None:
        f.write(b"partial")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        atomic_write_bytes(target, failing)
    assert target.read_bytes() == b"old" and temp_files(tmp_path) == []
    atomic_write_bytes(target, lambda f: f.write(b"new"))
    assert target.read_bytes() == b"new" and temp_files(tmp_path) == []


def test_sha256(tmp_path) -> None:
    p = tmp_path / "x"
    p.write_bytes(b"abc")
    assert sha256_file(p) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def test_load_errors_name_the_file(tmp_path) -> None:
    with pytest.raises(UserError, match="missing.pt: no such checkpoint"):
        load_checkpoint(tmp_path / "missing.pt")
    (tmp_path / "junk.pt").write_bytes(b"\x00garbage")
    with pytest.raises(UserError, match="junk.pt: not a readable"):
        load_checkpoint(tmp_path / "junk.pt")
    torch.save({"model": {}}, tmp_path / "foreign.pt")
    with pytest.raises(UserError, match="foreign.pt: not a yolox_edge checkpoint.*import-official"):
        load_checkpoint(tmp_path / "foreign.pt")


def test_an_exports_model_file_points_at_its_checkpoint(tmp_path) -> None:
    """export OUT/yolox_test.onnx said 'official YOLOX weights are imported with import-official',
    which then refused the file as a yolox_edge export."""
    from yolox_edge.export import export_model

    ckpt = save_checkpoint(tmp_path / "tiny.pt", create_model("test", num_classes=1), class_names=["a"])
    res = export_model(ckpt, format="onnx", out=tmp_path / "exp")
    with pytest.raises(UserError, match=r"yolox_test.onnx: a yolox_edge export \(see .*metadata.json\), not a "
                                        r"checkpoint; give the checkpoint it was exported from \(tiny.pt\)"):
        load_checkpoint(res.model_file)
    (tmp_path / "other.onnx").write_bytes(b"\x00not ours")  # no metadata beside it: the official-weights hint
    with pytest.raises(UserError, match="other.onnx: not a readable.*import-official"):
        load_checkpoint(tmp_path / "other.onnx")


class NotAllowed:
    """An arbitrary pickled object: weights_only loading must refuse it."""


def test_load_is_weights_only(tmp_path) -> None:
    torch.save({"format": FORMAT, "obj": NotAllowed()}, tmp_path / "pickle.pt")
    with pytest.raises(UserError, match="pickle.pt"):
        load_checkpoint(tmp_path / "pickle.pt")


@pytest.mark.parametrize("edit", ["variant", "classes", "unknown_variant", "no_model"])
def test_state_not_matching_variant(tmp_path, edit: str) -> None:
    path = save_checkpoint(tmp_path / "m.pt", create_model("test", num_classes=2), class_names=["a", "b"])
    ckpt = torch.load(path, weights_only=True)
    if edit == "variant":
        ckpt["variant"] = "test_dw"
    elif edit == "classes":
        ckpt["class_names"] = ["a", "b", "c"]
    elif edit == "unknown_variant":
        ckpt["variant"] = "yolox_future"
    else:
        del ckpt["model"]
    torch.save(ckpt, path)
    with pytest.raises(UserError, match="m.pt"):
        load_model(path)


def test_category_ids_are_kept_when_given_and_absent_otherwise(tmp_path) -> None:
    from yolox_edge.engine.checkpoint import checkpoint_category_ids

    model = create_model("test_dw", num_classes=3).eval()
    path = save_checkpoint(tmp_path / "ids.pt", model, class_names=["a", "b", "c"], category_ids=[7, 12, 40])
    _, ckpt = load_model(path)
    assert ckpt["category_ids"] == [7, 12, 40] and checkpoint_category_ids(ckpt, path) == [7, 12, 40]
    # an older checkpoint (or one trained on voc/yolo data) has no key and loads as before
    old = save_checkpoint(tmp_path / "old.pt", model, class_names=["a", "b", "c"])
    _, ckpt = load_model(old)
    assert "category_ids" not in ckpt and checkpoint_category_ids(ckpt, old) is None
    for bad, why in (([7, 12], "2 ids for 3 classes"), ([7, 7, 40], "listed twice"), ([7, "12", 40], "whole numbers"),
                     ([True, 12, 40], "whole numbers")):
        with pytest.raises(ValueError, match=why):
            save_checkpoint(tmp_path / "bad.pt", model, class_names=["a", "b", "c"], category_ids=bad)
    assert not (tmp_path / "bad.pt").exists()


def test_an_edited_category_ids_is_refused_on_load(tmp_path) -> None:
    path = save_checkpoint(tmp_path / "m.pt", create_model("test_dw", num_classes=3).eval(), class_names=["a", "b", "c"],
                           category_ids=[7, 12, 40])
    ckpt = load_checkpoint(path)
    ckpt["category_ids"] = [7, 12]
    torch.save(ckpt, path)
    with pytest.raises(UserError, match=r"m\.pt: category_ids 2 ids for 3 classes; the file is damaged or was edited"):
        load_model(path)


@pytest.mark.parametrize("edit", [lambda c: c.pop("preprocess"), lambda c: c["preprocess"].update(input_size="abc"),
                                  lambda c: c["preprocess"].update(input_size=[0, 0]),
                                  lambda c: c["preprocess"].update(input_size=[65, 65]),
                                  lambda c: c["preprocess"].pop("input_size")],
                         ids=["no-preprocess", "text", "zero", "off-grid", "no-size"])
def test_an_edited_input_size_is_refused_in_one_line_by_each_command(tmp_path, run_cli, edit) -> None:
    """A checkpoint without preprocess, or with an input size that is none, was a KeyError,
    TypeError or ValueError traceback in predict, export and info, a torch RuntimeError at 65x65."""
    import cv2
    import numpy as np

    path = save_checkpoint(tmp_path / "m.pt", create_model("test", num_classes=2).eval(), class_names=["a", "b"],
                           preprocess=PreprocessConfig(input_size=(64, 64)))
    ckpt = load_checkpoint(path)
    edit(ckpt)
    torch.save(ckpt, path)
    with pytest.raises(UserError, match=r"m\.pt: preprocess\.input_size .* is no input size of this model"):
        load_model(path)
    cv2.imwrite(str(tmp_path / "img.png"), np.full((40, 60, 3), 90, np.uint8))
    for args in (["predict", path, tmp_path / "img.png"], ["export", path, "--format", "onnx", "--out", tmp_path / "e"],
                 ["info", path]):
        code, _, err = run_cli(*args)
        assert code == 2 and len(err.strip().splitlines()) == 1 and "the file is damaged or was edited" in err, (
            args, err)


def test_a_saved_checkpoint_and_its_name_are_on_disk(tmp_path, fsync_log) -> None:
    """The checkpoint's bytes are flushed before its rename and its folder after: a power loss
    once save_checkpoint returned keeps this last.pt. The folder was not flushed, so the rename
    could be lost and --resume start from the epoch before (or find no last.pt)."""
    model = create_model("test", num_classes=2)
    path = save_checkpoint(tmp_path / "run" / "last.pt", model, class_names=["a", "b"], epoch=1)
    fsync_log.assert_durable(path)
    fsync_log.events.clear()
    save_checkpoint(path, model, class_names=["a", "b"], epoch=2)  # over the previous epoch's
    fsync_log.assert_durable(path)
