"""The deploy wrapper in torch: each output kind against the host pipeline it replaces."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from yolox_edge.decode import decode_numpy, flatten_maps
from yolox_edge.export import DeployModel
from yolox_edge.export.graph_nms import nms_topk
from yolox_edge.models import create_model
from yolox_edge.postprocess import postprocess, select_topk


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(3)
    m = create_model("test_dw", num_classes=4).eval()
    with torch.no_grad():
        for conv in [*m.head.cls_preds, *m.head.obj_preds, *m.head.reg_preds]:
            conv.weight.normal_(0.0, 0.2)
            conv.bias.normal_(0.0, 0.5)
    return m


@pytest.fixture(scope="module")
def x():
    return torch.rand(2, 3, 64, 96, generator=torch.Generator().manual_seed(0)) * 255


@torch.no_grad()
def test_kinds_and_shapes(model, x) -> None:
    n = 8 * 12 + 4 * 6 + 2 * 3
    raw = DeployModel(model, kind="raw")(x)
    assert raw.shape == (2, n, 9)
    boxes, scores = DeployModel(model, kind="decoded")(x)
    assert boxes.shape == (2, n, 4) and scores.shape == (2, n, 4)
    b, s, lab = DeployModel(model, kind="topk", topk=10)(x)
    assert b.shape == (2, 10, 4) and s.shape == (2, 10) and lab.dtype == torch.int64
    _, _, lab = DeployModel(model, kind="topk", topk=10, float_labels=True)(x)
    assert lab.dtype == torch.float32
    with pytest.raises(ValueError):
        DeployModel(model, kind="topk", topk=0)


@torch.no_grad()
def test_raw_is_official_layout(model, x) -> None:
    """--raw: reg raw, obj/cls sigmoid-ed; decode_numpy(activated=True) gives the decoded outputs."""
    raw = DeployModel(model, kind="raw")(x).numpy()
    boxes, scores = DeployModel(model, kind="decoded")(x)
    b2, s2 = decode_numpy(raw, (64, 96), model.strides, activated=True)
    np.testing.assert_allclose(b2, boxes.numpy(), atol=1e-3)
    np.testing.assert_allclose(s2, scores.numpy(), atol=1e-6)
    np.testing.assert_allclose(raw[..., :4], flatten_maps(model(x))[..., :4].numpy())


@torch.no_grad()
def test_topk_without_nms_is_select_topk(model, x) -> None:
    boxes, scores = DeployModel(model, kind="decoded")(x)
    for a, b in zip(DeployModel(model, kind="topk", topk=7)(x), select_topk(boxes, scores, 7)):
        assert torch.equal(a, b)


@torch.no_grad()
@pytest.mark.parametrize("iou, conf", [(0.65, 0.001), (0.45, 0.3)])
def test_nms_topk_equals_host_postprocess(model, x, iou, conf) -> None:
    """In-graph NMS + top-K keeps exactly the host pipeline's K best detections."""
    boxes, scores = DeployModel(model, kind="decoded")(x)
    k = 15
    tb, ts, tl = nms_topk(boxes, *scores.max(-1), k, iou=iou, conf=conf, num_classes=scores.shape[-1])
    host = postprocess(boxes, scores, conf=conf, iou=iou, max_det=k)
    for i, det in enumerate(host):
        m = len(det)
        assert m > 0
        np.testing.assert_allclose(ts[i, :m].numpy(), det.scores, atol=1e-6)
        assert (ts[i, m:] == 0).all()  # padding rows
        # A random tiny model gives many equal scores, so compare as sets: every kept row is
        # one of the host's detections (box, score, label), each used once.
        unused = np.ones(m, bool)
        for b, s, lab in zip(tb[i, :m].numpy(), ts[i, :m].numpy(), tl[i, :m].numpy()):
            hit = unused & (det.labels == lab) & (np.abs(det.scores - s) < 1e-6) & (np.abs(det.boxes - b).max(-1) < 1e-4)
            assert hit.any(), (b, s, lab)
            unused[np.flatnonzero(hit)[0]] = False


@torch.no_grad()
def test_training_mode_not_restored_by_export(model, x, tmp_path) -> None:
    """Exporters restore the wrapper's mode recursively; it must stay eval (BN running stats)."""
    from yolox_edge.export.to_onnx import export_onnx

    deploy = DeployModel(model, kind="decoded")
    export_onnx(deploy, x[:1], tmp_path / "m.onnx")
    assert not deploy.training and not model.training


@torch.no_grad()
def test_in_graph_nms_keywords_are_iou_and_conf(model, x) -> None:
    """DeployModel took nms_iou=/nms_conf= (and kept self.nms_iou) where every call and flag says
    iou/conf (--nms/--conf); the earlier keywords still work, with a warning."""
    deploy = DeployModel(model, kind="topk", topk=15, iou=0.45, conf=0.3)
    assert (deploy.iou, deploy.conf) == (0.45, 0.3)
    boxes, scores = DeployModel(model, kind="decoded")(x)
    for a, b in zip(deploy(x), nms_topk(boxes, *scores.max(-1), 15, iou=0.45, conf=0.3,
                                            num_classes=scores.shape[-1])):
        assert torch.equal(a, b)
    with pytest.warns(DeprecationWarning) as caught:
        old = DeployModel(model, kind="topk", topk=15, nms_iou=0.45, nms_conf=0.3)
    assert sorted(str(w.message) for w in caught) == ["DeployModel(nms_conf=) is deprecated; pass conf=... instead",
                                                      "DeployModel(nms_iou=) is deprecated; pass iou=... instead"]
    assert (old.iou, old.conf) == (0.45, 0.3)
    with pytest.raises(TypeError, match=r"DeployModel\(\) got nms_iou= and iou="):
        DeployModel(model, kind="topk", iou=0.45, nms_iou=0.5)



class _CandidatesNms(torch.nn.Module):
    """The tail of a top-K graph alone: candidates [B, N, 6] (box, best score, label) -> nms_topk."""

    output_names = ("boxes", "scores", "labels")

    def forward(self, t):
        return nms_topk(t[..., :4], t[..., 4], t[..., 5].long(), 4, iou=0.45, conf=0.3, num_classes=2)


def test_one_inf_or_nan_box_does_not_turn_off_the_graphs_nms(tmp_path) -> None:
    """An inf box (exp(wh) overflowing) made the class offset inf and every IoU NaN: the graph
    suppressed nothing for the whole image, filling its K rows with near-duplicates, where the
    host drops such boxes. In torch, onnxruntime and OpenVINO, the NaN/inf boxes are no
    candidates and the rest is NMSed as without them."""
    import onnxruntime as ort
    import openvino as ov

    from yolox_edge.export.to_onnx import export_onnx
    from yolox_edge.export.to_openvino import export_openvino

    inf, nan = float("inf"), float("nan")
    t = torch.tensor([[[0, 0, 100, 100, 0.9, 0], [2, 2, 100, 100, 0.8, 0], [0, 0, 100, 98, 0.7, 0],
                       [300, 300, 350, 350, 0.6, 1], [0, 0, inf, 50, 0.95, 0], [nan, 10, 20, 20, 0.5, 1]]])
    want_scores, want_labels = [0.9, 0.6, 0.0, 0.0], [0, 1]
    mod = _CandidatesNms().eval()
    with torch.no_grad():
        boxes, scores, labels = mod(t)
    assert scores[0].tolist() == pytest.approx(want_scores) and labels[0, :2].tolist() == want_labels
    assert torch.isfinite(boxes).all()
    clean = t[:, :4]
    with torch.no_grad():  # the same without the two bad rows
        assert torch.equal(mod(clean)[1], scores)
    export_onnx(mod, t, tmp_path / "nms.onnx")
    got = ort.InferenceSession(str(tmp_path / "nms.onnx"), providers=["CPUExecutionProvider"]).run(
        None, {"images": t.numpy()})
    assert got[1][0].tolist() == pytest.approx(want_scores) and got[2][0, :2].tolist() == want_labels
    export_openvino(mod, t, tmp_path / "nms.xml")
    out = ov.Core().compile_model(str(tmp_path / "nms.xml"), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})(
        {0: t.numpy()})
    assert list(out.values())[1][0].tolist() == pytest.approx(want_scores)


def test_graph_nms_is_class_aware_without_coordinate_offsets() -> None:
    """Class-aware NMS shifted each class into its own coordinate range (up to C x the input
    size): in float16, as a runtime running the graph's tail in f16 would (OpenVINO's default on
    ARM CPUs), class 79's coordinates near 51k had a 32 px step and two side-by-side boxes of
    IoU 0.33 suppressed each other. The class axis of the NMS op keeps every coordinate as is."""
    boxes = torch.tensor([[[600., 600., 640., 640.], [620., 600., 660., 640.], [0., 0., 10., 10.]]])
    best = torch.tensor([[0.9, 0.8, 0.7]])
    labels = torch.tensor([[79, 79, 0]])
    for dtype in (torch.float32, torch.float16):
        _, scores, got = nms_topk(boxes.to(dtype), best.to(dtype), labels, 3, iou=0.45, conf=0.3, num_classes=80)
        assert got[0].tolist() == [79, 79, 0], dtype
        assert scores[0].float().tolist() == pytest.approx([0.9, 0.8, 0.7], abs=1e-3), dtype


def test_graph_nms_at_conf_0_keeps_each_anchor_once_in_its_own_class(tmp_path) -> None:
    """At conf 0 an anchor's 0 in another class's row may pass a runtime's threshold: such rows
    must neither keep a suppressed anchor nor drop a kept one."""
    import onnxruntime as ort
    import openvino as ov

    from yolox_edge.export.to_onnx import export_onnx
    from yolox_edge.export.to_openvino import export_openvino

    class Tail(torch.nn.Module):
        output_names = ("boxes", "scores", "labels")

        def forward(self, t):
            return nms_topk(t[..., :4], t[..., 4], t[..., 5].long(), 4, iou=0.45, conf=0.0, num_classes=3)

    # Boxes 0 and 1 overlap in class 1 (1 suppressed); box 2 is alone in class 2.
    t = torch.tensor([[[0, 0, 100, 100, 0.9, 1], [2, 2, 100, 100, 0.8, 1], [200, 200, 250, 250, 0.5, 2]]])
    want_scores, want_labels = [0.9, 0.5, 0.0], [1, 2]
    mod = Tail().eval()
    with torch.no_grad():
        _, scores, labels = mod(t)
    assert scores[0].tolist() == pytest.approx(want_scores) and labels[0, :2].tolist() == want_labels
    export_onnx(mod, t, tmp_path / "nms.onnx")
    got = ort.InferenceSession(str(tmp_path / "nms.onnx"), providers=["CPUExecutionProvider"]).run(
        None, {"images": t.numpy()})
    assert got[1][0].tolist() == pytest.approx(want_scores) and got[2][0, :2].tolist() == want_labels
    export_openvino(mod, t, tmp_path / "nms.xml")
    out = list(ov.Core().compile_model(str(tmp_path / "nms.xml"), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})(
        {0: t.numpy()}).values())
    assert out[1][0].tolist() == pytest.approx(want_scores) and out[2][0, :2].tolist() == want_labels
