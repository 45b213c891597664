"""``--silu rational``: the approximation's error bound, the IR rewrite, and the exports that use it."""
from __future__ import annotations

import numpy as np
import pytest

from yolox_edge.engine import save_checkpoint
from yolox_edge.errors import UserError
from yolox_edge.export import export_model, read_metadata
from yolox_edge.export.silu_rational import MAX_ABS_ERROR, rewrite_silu, silu_rational_np
from yolox_edge.models import create_model


def exact_silu(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.float64)
    with np.errstate(over="ignore"):
        return x / (1.0 + np.exp(-x))


def test_rational_silu_is_within_its_stated_error_for_every_float32_input() -> None:
    x = np.concatenate([np.linspace(-1000, 1000, 2_000_001, dtype=np.float32),
                        np.array([-3e38, -1e6, 1e6, 3e38, 0.0, -0.0], dtype=np.float32)])
    err = np.abs(silu_rational_np(x) - exact_silu(x))
    assert err.max() <= MAX_ABS_ERROR
    assert err.max() > MAX_ABS_ERROR / 2  # the bound is the real one, not a loose ceiling
    big = np.array([-500.0, -20.0, 20.0, 500.0], dtype=np.float32)
    assert np.array_equal(silu_rational_np(big), np.array([-0.0, 0.0, 20.0, 500.0], dtype=np.float32))


def _swish_model(beta: float | None):
    import openvino as ov

    op = ov.opset13
    x = op.parameter([4096], np.float32, name="x")
    s = op.swish(x) if beta is None else op.swish(x, op.constant(np.float32(beta)))
    return ov.Model([op.result(s)], [x])


@pytest.mark.parametrize("beta", [None, 1.0])
def test_rewrite_replaces_silu_and_the_ir_computes_the_numpy_formula(beta) -> None:
    import openvino as ov

    model = _swish_model(beta)
    assert rewrite_silu(model) == 1
    assert not [n for n in model.get_ordered_ops() if n.get_type_name() == "Swish"]
    x = np.linspace(-40, 40, 4096, dtype=np.float32)
    out = ov.Core().compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})(x)[0]
    assert np.abs(out - silu_rational_np(x)).max() < 1e-5
    assert np.abs(out - exact_silu(x)).max() <= MAX_ABS_ERROR + 1e-5


def test_rational_silu_in_an_ir_with_fp16_weights_keeps_its_fp16_bound(tmp_path) -> None:
    import openvino as ov

    from yolox_edge.export.silu_rational import MAX_ABS_ERROR_FP16_IR
    from yolox_edge.export.to_openvino import save_ir

    save_ir(_swish_model(None), tmp_path / "m.xml", compress_to_fp16=True, silu="rational")
    x = np.linspace(-40, 40, 4096, dtype=np.float32)
    core = ov.Core()
    out = core.compile_model(core.read_model(str(tmp_path / "m.xml")), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})(x)[0]
    assert np.abs(out - exact_silu(x)).max() <= MAX_ABS_ERROR_FP16_IR


def test_rewrite_leaves_a_swish_of_another_beta() -> None:
    model = _swish_model(2.0)
    assert rewrite_silu(model) == 0
    assert [n for n in model.get_ordered_ops() if n.get_type_name() == "Swish"]


@pytest.fixture
def tiny_ckpt(tmp_path):
    return save_checkpoint(tmp_path / "tiny.pt", create_model("test", num_classes=2), class_names=["a", "b"])


def test_openvino_export_with_rational_silu_matches_the_exact_one(tiny_ckpt, tmp_path) -> None:
    import openvino as ov

    from yolox_edge.runtime.loader import open_model

    exact = export_model(tiny_ckpt, format="openvino", out=tmp_path / "exact", topk=0)
    fast = export_model(tiny_ckpt, format="openvino", out=tmp_path / "fast", topk=0, silu="rational")
    assert "silu" not in exact.metadata["graph"] and fast.metadata["graph"]["silu"] == "rational"
    assert read_metadata(tmp_path / "fast")["graph"]["silu"] == "rational"
    from yolox_edge.describe import describe_artifact, describe_lines

    assert "SiLU as a rational approximation" in "\n".join(describe_lines(describe_artifact(tmp_path / "fast")))
    assert "rational" not in "\n".join(describe_lines(describe_artifact(tmp_path / "exact")))
    ops = {n.get_type_name() for n in ov.Core().read_model(str(fast.model_file)).get_ordered_ops()}
    assert "Swish" not in ops and "Divide" in ops
    x = np.random.default_rng(0).uniform(0, 255, (1, 3, 64, 64)).astype(np.float32)
    (b_exact, i_exact), (b_fast, i_fast) = (open_model(r.model_file) for r in (exact, fast))
    assert "rational SiLU" in i_fast.precision and "rational" not in i_exact.precision
    a, b = b_exact.infer(x), b_fast.infer(x)
    assert np.abs(a["scores"] - b["scores"]).max() < 1e-3
    assert np.abs(a["boxes"] - b["boxes"]).max() < 0.05  # pixels of a 64x64 input
    assert np.abs(a["scores"] - b["scores"]).max() > 0  # it did change the arithmetic


def test_rational_silu_is_refused_without_an_openvino_format(tiny_ckpt, tmp_path, run_cli) -> None:
    with pytest.raises(UserError, match="OpenVINO IR only"):
        export_model(tiny_ckpt, format="onnx", out=tmp_path / "o", silu="rational")
    assert not (tmp_path / "o").exists()
    rc, _, err = run_cli("export", str(tiny_ckpt), "--format", "ncnn", "--silu", "rational", "--out",
                         str(tmp_path / "n"))
    assert rc == 2 and "--silu rational (silu='rational' in Python) rewrites OpenVINO IR only" in err


def test_rational_silu_on_a_model_without_silu_says_so(tmp_path, run_cli) -> None:
    hs = save_checkpoint(tmp_path / "hs.pt", create_model("test_hswish", num_classes=2), class_names=["a", "b"])
    rc, out, _ = run_cli("export", str(hs), "--format", "openvino", "--silu", "rational", "--out", str(tmp_path / "o"))
    assert rc == 0 and "this model has no SiLU" in out and "rational SiLU" not in out
    assert "silu" not in read_metadata(tmp_path / "o")["graph"]


def test_the_model_card_says_rational_silu(tiny_ckpt, tmp_path) -> None:
    from yolox_edge.bundle.card import render_card

    for silu, said in (("rational", True), ("exact", False)):
        meta = export_model(tiny_ckpt, format="openvino", out=tmp_path / silu, topk=0, silu=silu).metadata
        meta["postprocess"] = {"conf": 0.3, "nms": 0.45, "max_det": 100, "agnostic": False}  # package adds it
        card = render_card(meta, target="openvino", files={}, evaluation=None, latency=None)
        assert ("SiLU by a rational approximation" in card) is said
