"""The toolchains' usage telemetry stays off for what yolox_edge runs (telemetry.py)."""
from __future__ import annotations

import os

import pytest


def test_an_openvino_export_sends_no_usage_event(tmp_path, monkeypatch) -> None:
    """OpenVINO's converter sent a usage event to Google Analytics at every export (a forked sender:
    offline, it could hang the command at exit); CI=true, its own switch, is held while it runs."""
    from openvino_telemetry.backend.backend_ga4 import GA4Backend

    from yolox_edge.engine.checkpoint import save_checkpoint
    from yolox_edge.export import export_model
    from yolox_edge.models import create_model

    sent: list = []
    monkeypatch.setattr(GA4Backend, "send", lambda self, message: sent.append(message))
    monkeypatch.delenv("CI", raising=False)
    ckpt = save_checkpoint(tmp_path / "tiny.pt", create_model("test", num_classes=2), class_names=["a", "b"])
    export_model(ckpt, format="openvino", out=tmp_path / "ov")
    assert sent == [] and "CI" not in os.environ  # and the variable given back as it was
    monkeypatch.setenv("CI", "false")
    export_model(ckpt, format="openvino", out=tmp_path / "ov2")
    assert sent == [] and os.environ["CI"] == "false"


def test_nncf_is_told_before_it_is_imported() -> None:
    import yolox_edge

    assert yolox_edge.__version__ and os.environ.get("NNCF_CI")  # its import sets it


@pytest.mark.parametrize("before", [None, "1"])
def test_the_converter_switch_gives_ci_back(monkeypatch, before) -> None:
    from yolox_edge.telemetry import converter_telemetry_off

    if before is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", before)
    with pytest.raises(RuntimeError), converter_telemetry_off():
        assert os.environ["CI"] == "true"
        raise RuntimeError
    assert os.environ.get("CI") == before
