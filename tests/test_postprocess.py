"""Postprocess: NMS torch vs numpy, class-aware vs agnostic, thresholds, max_det, top-K."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from yolox_edge.postprocess import (Detections, box_iou, box_iou_numpy, filter_nms_numpy, nms, nms_numpy,
                                    postprocess, postprocess_numpy, select_topk)


def random_boxes(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    xy = rng.uniform(0, 200, (n, 2))
    wh = rng.uniform(5, 80, (n, 2))
    boxes = np.concatenate([xy, xy + wh], 1).astype(np.float32)
    scores = rng.permutation(n).astype(np.float32) / n + 0.01  # distinct: no tie order ambiguity
    return boxes, scores


def test_iou_hand_case() -> None:
    a = np.array([[0, 0, 10, 10]], np.float32)
    b = np.array([[5, 0, 15, 10], [20, 20, 30, 30], [0, 0, 10, 10]], np.float32)
    np.testing.assert_allclose(box_iou_numpy(a, b), [[50 / 150, 0, 1]], rtol=1e-6)
    np.testing.assert_allclose(box_iou(torch.from_numpy(a), torch.from_numpy(b)).numpy(), [[50 / 150, 0, 1]],
                               rtol=1e-6)


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("iou", [0.3, 0.65])
def test_nms_torch_equals_numpy(seed: int, iou: float) -> None:
    boxes, scores = random_boxes(300, seed)
    keep_np = nms_numpy(boxes, scores, iou)
    keep_t = nms(torch.from_numpy(boxes), torch.from_numpy(scores), iou).numpy()
    np.testing.assert_array_equal(keep_np, keep_t)
    assert 0 < len(keep_np) < 300  # overlaps exist, so NMS did something
    kept = boxes[keep_np]
    ious = box_iou_numpy(kept, kept)
    assert (ious[~np.eye(len(kept), dtype=bool)] <= iou).all()
    assert np.all(np.diff(scores[keep_np]) <= 0)


@pytest.mark.parametrize("seed", range(3))
def test_postprocess_torch_equals_numpy(seed: int) -> None:
    rng = np.random.default_rng(seed)
    boxes = np.stack([random_boxes(200, seed + k)[0] for k in range(2)])
    scores = rng.uniform(0, 1, (2, 200, 4)).astype(np.float32) ** 3
    kw = dict(conf=0.1, iou=0.5, max_det=50)
    for agnostic in (False, True):
        a = postprocess_numpy(boxes, scores, agnostic=agnostic, **kw)
        b = postprocess(torch.from_numpy(boxes), torch.from_numpy(scores), agnostic=agnostic, **kw)
        for da, db in zip(a, b):
            assert len(da) > 0
            np.testing.assert_array_equal(da.labels, db.labels)
            np.testing.assert_allclose(da.boxes, db.boxes)
            np.testing.assert_allclose(da.scores, db.scores)


def test_class_aware_vs_agnostic_hand_case() -> None:
    boxes = np.array([[0, 0, 100, 100], [2, 2, 100, 100], [0, 0, 100, 98], [300, 300, 350, 350]], np.float32)
    scores = np.array([0.9, 0.8, 0.7, 0.6], np.float32)
    labels = np.array([0, 1, 0, 1])
    aware = filter_nms_numpy(boxes, scores, labels, conf=0.5, iou=0.5)
    # Class 0: box 2 overlaps box 0 -> dropped; box 1 is class 1, kept beside box 0.
    assert aware.scores.tolist() == pytest.approx([0.9, 0.8, 0.6])
    assert aware.labels.tolist() == [0, 1, 1]
    agnostic = filter_nms_numpy(boxes, scores, labels, conf=0.5, iou=0.5, agnostic=True)
    assert agnostic.scores.tolist() == pytest.approx([0.9, 0.6])
    np.testing.assert_array_equal(agnostic.boxes, boxes[[0, 3]])
    # Threshold: conf 0.75 keeps only the two best before NMS.
    assert filter_nms_numpy(boxes, scores, labels, conf=0.75, iou=0.5).scores.tolist() == pytest.approx([0.9, 0.8])


def test_boxes_with_inf_or_nan_are_not_detections() -> None:
    # An untrained model's exp(wh) overflows: the inf box must not poison the NMS of the others.
    boxes = np.array([[0, 0, 100, 100], [2, 2, 100, 100], [0, 0, np.inf, 50], [300, 300, 350, np.nan]], np.float32)
    scores = np.array([0.9, 0.8, 0.95, 0.7], np.float32)
    labels = np.array([0, 0, 0, 1])
    with np.errstate(all="raise"):  # no NaN arithmetic on the way
        det = filter_nms_numpy(boxes, scores, labels, conf=0.5, iou=0.5)
    assert det.scores.tolist() == pytest.approx([0.9]) and np.isfinite(det.boxes).all()
    (twin,) = postprocess(torch.from_numpy(boxes)[None], torch.from_numpy(np.eye(2, dtype=np.float32)[labels]
                                                                         * scores[:, None])[None], conf=0.5, iou=0.5)
    np.testing.assert_array_equal(twin.boxes, det.boxes)


def test_class_aware_nms_keeps_a_box_past_the_top_left_beside_another_class() -> None:
    """The class offset began at 0: a class-1 box reaching past the top-left (x1, y1 < 0) was
    shifted onto the class-0 box at the far corner and suppressed by it; the graph's NMS (which
    starts from the smallest coordinate) kept both."""
    from yolox_edge.export.graph_nms import nms_topk

    boxes = np.array([[370, 370, 400, 400], [-30, -30, 10, 10]], np.float32)
    scores = np.array([0.9, 0.8], np.float32)
    labels = np.array([0, 1])
    det = filter_nms_numpy(boxes, scores, labels, conf=0.3, iou=0.45)
    assert det.labels.tolist() == [0, 1]
    (twin,) = postprocess(torch.from_numpy(boxes)[None], torch.from_numpy(np.eye(2, dtype=np.float32)[labels]
                                                                         * scores[:, None])[None], conf=0.3, iou=0.45)
    assert twin.labels.tolist() == [0, 1]
    _, graph_scores, graph_labels = nms_topk(torch.from_numpy(boxes)[None], torch.from_numpy(scores)[None],
                                             torch.from_numpy(labels)[None], 2, iou=0.45, conf=0.3,
                                             num_classes=2)
    assert graph_labels[0].tolist() == [0, 1] and graph_scores[0].tolist() == pytest.approx([0.9, 0.8])


def test_best_class_score_is_obj_times_cls() -> None:
    # One anchor, scores per class already obj*cls: the best class wins, its score kept.
    boxes = np.array([[[0, 0, 10, 10]]], np.float32)
    scores = np.array([[[0.2, 0.6, 0.4]]], np.float32)
    (d,) = postprocess_numpy(boxes, scores, conf=0.3)
    assert d.labels.tolist() == [1] and d.scores.tolist() == pytest.approx([0.6])
    (d,) = postprocess_numpy(boxes, scores, conf=0.7)
    assert len(d) == 0 and d.boxes.shape == (0, 4)


def test_max_det() -> None:
    boxes = np.array([[i * 20, 0, i * 20 + 10, 10] for i in range(10)], np.float32)  # disjoint
    scores = np.linspace(0.9, 0.5, 10).astype(np.float32)
    d = filter_nms_numpy(boxes, scores, np.zeros(10), conf=0.1, iou=0.5, max_det=3)
    assert d.scores.tolist() == pytest.approx(scores[:3].tolist())
    (dt,) = postprocess(torch.from_numpy(boxes)[None], torch.from_numpy(scores)[None, :, None], conf=0.1, max_det=3)
    np.testing.assert_allclose(dt.boxes, boxes[:3])


def test_empty_inputs() -> None:
    d = filter_nms_numpy(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0), conf=0.1)
    assert len(d) == 0
    (dt,) = postprocess(torch.zeros(1, 0, 4), torch.zeros(1, 0, 3))
    assert len(dt) == 0


def test_select_topk() -> None:
    boxes = torch.arange(2 * 5 * 4, dtype=torch.float32).reshape(2, 5, 4)
    scores = torch.tensor([[[0.1, 0.2], [0.9, 0.0], [0.3, 0.5], [0.0, 0.05], [0.4, 0.1]]]).repeat(2, 1, 1)
    b, s, lab = select_topk(boxes, scores, 3)
    assert s[0].tolist() == pytest.approx([0.9, 0.5, 0.4])
    assert lab[0].tolist() == [0, 1, 0]
    torch.testing.assert_close(b[1], boxes[1, [1, 2, 4]])
    assert select_topk(boxes, scores, 99)[1].shape == (2, 5)


def test_detections_to_list() -> None:
    d = Detections(np.array([[1.234, 2, 3, 4]], np.float32), np.array([0.87654], np.float32), np.array([1]))
    assert d.to_list(names=["a", "b"]) == [{"label": 1, "score": 0.8765, "box": [1.23, 2.0, 3.0, 4.0], "name": "b"}]
    assert d.to_list(names=["a"])[0]["name"] == "1"
    assert d.to_list() == [{"label": 1, "score": 0.8765, "box": [1.23, 2.0, 3.0, 4.0]}]


def test_detections_to_list_with_category_ids() -> None:
    d = Detections(np.zeros((2, 4), np.float32), np.array([0.9, 0.5], np.float32), np.array([2, 0]))
    assert [r["category_id"] for r in d.to_list(names=["a", "b", "c"], category_ids=[7, 12, 40])] == [40, 7]
    assert [r["category_id"] for r in d.to_list(category_ids=[7, 12, 40])] == [40, 7]
    assert "category_id" not in d.to_list(names=["a", "b", "c"])[0]  # a model without ids
    assert d.category_ids([7, 12, 40]).tolist() == [40, 7] and Detections().category_ids([7]).shape == (0,)


def test_detections_to_list_takes_its_earlier_positionals_with_a_warning() -> None:
    """to_list(names, category_ids) by position, as the README wrote it: each is a keyword now
    (names=, category_ids=), the earlier form the same list with a DeprecationWarning."""
    d = Detections(np.zeros((2, 4), np.float32), np.array([0.9, 0.5], np.float32), np.array([2, 0]))
    want = d.to_list(names=["a", "b", "c"], category_ids=[7, 12, 40])
    with pytest.warns(DeprecationWarning, match=r"^Detections\.to_list\(\): passing names, category_ids by position "
                                                r"is deprecated; pass names=, category_ids= by keyword$"):
        assert d.to_list(["a", "b", "c"], [7, 12, 40]) == want
    with pytest.warns(DeprecationWarning, match=r"^Detections\.to_list\(\): passing names by position"):
        assert d.to_list(["a", "b", "c"], category_ids=[7, 12, 40]) == want
    with pytest.raises(TypeError, match="multiple values for names"):
        d.to_list(["a"], names=["b"])


def test_blockwise_nms_keeps_what_the_whole_matrix_kept(monkeypatch) -> None:
    """nms_numpy computes IoU rows a block at a time (the N x N matrix took ~1 GB at eval's conf on
    a decoded export): the same boxes kept, across block edges, ties and thresholds."""
    import yolox_edge.postprocess as pp

    def reference(boxes, scores, iou):
        order = np.argsort(-scores, kind="stable")
        ious = pp.box_iou_numpy(boxes[order], boxes[order])
        gone, keep = np.zeros(len(order), bool), []
        for i in range(len(order)):
            if not gone[i]:
                keep.append(i)
                gone |= ious[i] > iou
        return order[np.asarray(keep, dtype=np.int64)]

    monkeypatch.setattr(pp, "NMS_BLOCK", 7)  # many block edges on a small set
    rng = np.random.default_rng(0)
    for n in (0, 1, 6, 7, 8, 50):
        xy = rng.uniform(0, 60, (n, 2)).astype(np.float32)
        boxes = np.concatenate([xy, xy + rng.uniform(5, 30, (n, 2)).astype(np.float32)], 1)
        scores = rng.uniform(0, 1, n).astype(np.float32)
        scores[: n // 3] = 0.5  # ties: the stable order decides
        for iou in (0.0, 0.3, 0.65, 1.0):
            np.testing.assert_array_equal(pp.nms_numpy(boxes, scores, iou), reference(boxes, scores, iou))
