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
    export_model(str(tiny_ckpt), "onnx", out)
    with pytest.raises(UserError, match="exp: already holds an export.*force"):
        export_model(tiny_ckpt, "ncnn", out)
    assert read_metadata(out)["format"] == "onnx"  # untouched
    res = export_model(tiny_ckpt, "ncnn", out, force=True)
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in res.files)
    assert read_metadata(out)["format"] == "ncnn"
