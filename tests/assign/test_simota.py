"""SimOTA: hand-built cases and the batched path against a per-image reference."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from yolox_edge.assign import center_prior, simota_assign
from yolox_edge.decode import cxcywh_to_xyxy, decode_boxes, level_shapes, make_grid

FAR = [200.0, 200.0, 201.0, 201.0]  # a predicted box overlapping nothing


def anchors(size: int):
    """Grid, strides, anchor cell centers [N, 2] and strides [N] for a square input."""
    grid, stride = make_grid(level_shapes((size, size)))
    return grid, stride, (grid + 0.5) * stride, stride.squeeze(-1)


def index_of(size: int, stride: int, gx: int, gy: int) -> int:
    """Flat anchor index of cell (gx, gy) at ``stride`` (stride 8 first, row-major)."""
    off = 0
    for s in (8, 16, 32):
        w = size // s
        if s == stride:
            return off + gy * w + gx
        off += w * w
    raise ValueError(stride)


def run_one(pred: torch.Tensor, cls: torch.Tensor, gts: list[list[float]], classes: list[int], size: int = 64):
    """Assign one image: pred [N, 4] xyxy, cls logits [N, C]; obj logits all 0."""
    _, _, centers, strides = anchors(size)
    n = pred.shape[0]
    return simota_assign(pred[None], cls[None], torch.zeros(1, n), torch.tensor([gts]),
                         torch.tensor([classes]), torch.ones(1, len(gts), dtype=torch.bool), centers, strides)


def far_preds(n: int) -> torch.Tensor:
    return torch.tensor(FAR).repeat(n, 1)


GT = [16.0, 16.0, 48.0, 48.0]  # center (32, 32) in a 64x64 input


@pytest.mark.parametrize("box, n_cand, n_both", [
    # stride 8 (centers 4, 12, .., 60): in box (16, 48) 4x4, strictly within 20 px of 32 also 4x4;
    # stride 16 (8, 24, 40, 56): in box 2x2, within 40 px all 4x4; stride 32 (16, 48): none in box, 2x2.
    (GT, 16 + 16 + 4, 16 + 4 + 0),
    # A box larger than the center region: stride 8 in box 6x6 but only 4x4 near the center.
    ([8.0, 8.0, 56.0, 56.0], 36 + 16 + 4, 16 + 4 + 4),
])
def test_center_prior_counts(box, n_cand, n_both):
    _, _, centers, strides = anchors(64)
    cand, both = center_prior(torch.tensor([[box]]), torch.ones(1, 1, dtype=torch.bool), centers, strides)
    assert int(cand.sum()) == n_cand
    assert int(both.sum()) == n_both


def test_dynamic_k_counts_iou_sum():
    n = 84
    pred, cls = far_preds(n), torch.zeros(n, 2)
    exact = [index_of(64, 8, x, y) for x, y in [(2, 2), (3, 3), (4, 4)]]
    pred[exact] = torch.tensor(GT)
    a = run_one(pred, cls, [GT], [0])
    assert a.num_fg == 3  # three IoUs of 1 -> k = 3
    assert sorted(a.fg_mask[0].nonzero().squeeze(1).tolist()) == sorted(exact)
    assert torch.allclose(a.matched_iou[0, exact], torch.ones(3))

    # Five IoUs of 0.5 -> k = int(2.5) = 2; the two with the best class score win.
    pred, cls = far_preds(n), torch.zeros(n, 2)
    half = [index_of(64, 8, x, y) for x, y in [(2, 2), (3, 3), (4, 4), (2, 4), (4, 2)]]
    pred[half] = torch.tensor([16.0, 16.0, 32.0, 48.0])
    cls[half[3], 0] = cls[half[1], 0] = 4.0
    a = run_one(pred, cls, [GT], [0])
    assert sorted(a.fg_mask[0].nonzero().squeeze(1).tolist()) == sorted([half[1], half[3]])
    assert torch.allclose(a.matched_iou[0, [half[1], half[3]]], torch.full((2,), 0.5))


def test_dynamic_k_at_least_one():
    n = 84
    a = run_one(far_preds(n), torch.zeros(n, 2), [GT], [1])
    assert a.num_fg == 1  # no overlap at all still yields one positive
    (idx,) = a.fg_mask[0].nonzero().squeeze(1).tolist()
    _, _, centers, _ = anchors(64)
    cx, cy = centers[idx].tolist()
    assert 16 < cx < 48 and 16 < cy < 48  # ...inside both box and center region


def test_center_prior_beats_iou():
    n = 84
    pred, cls = far_preds(n), torch.zeros(n, 2)
    outside = index_of(64, 8, 0, 0)      # center (4, 4): neither in box nor near center
    center_only = index_of(64, 16, 0, 0)  # center (8, 8): within 2.5 strides (40 px), not in box
    both = index_of(64, 8, 3, 3)        # center (28, 28): in box and center region
    pred[[outside, center_only]] = torch.tensor(GT)  # perfect boxes at the wrong places
    cls[[outside, center_only], 0] = 8.0
    pred[both] = torch.tensor([16.0, 16.0, 32.0, 48.0])  # IoU 0.5
    a = run_one(pred, cls, [GT], [0])
    # The non-candidate's IoU does not count: k = int(1 + 0.5) = 1, and the in-both anchor
    # (IoU 0.5) beats the center-only one (IoU 1, but penalised).
    assert a.fg_mask[0].nonzero().squeeze(1).tolist() == [both]

    # A second perfect center-only anchor: k = int(2.5) = 2. Any in-both anchor, even one with
    # IoU 0, costs less than a penalised one, so the second pick is another in-both anchor.
    center_only2 = index_of(64, 16, 3, 0)  # center (56, 8): also near the center, not in box
    pred[center_only2] = torch.tensor(GT)
    cls[index_of(64, 8, 2, 5), 0] = 1.0  # the cheapest of the IoU-0 in-both anchors
    a = run_one(pred, cls, [GT], [0])
    assert sorted(a.fg_mask[0].nonzero().squeeze(1).tolist()) == sorted([both, index_of(64, 8, 2, 5)])


def test_penalised_candidates_keep_cost_order():
    """A tiny gt with no anchor in both box and center region: every candidate carries the
    penalty, and the choice must still follow the cost (a 1e5 offset in float32 would round
    these costs to steps of 1/128 and tie them)."""
    n = 84
    tiny = [30.0, 30.0, 34.0, 34.0]
    _, _, centers, strides = anchors(64)
    cand, both = center_prior(torch.tensor([[tiny]]), torch.ones(1, 1, dtype=torch.bool), centers, strides)
    assert int(both.sum()) == 0 and int(cand.sum()) > 0
    pick = int(cand[0].nonzero()[3])
    cls = torch.zeros(n, 2)
    cls[pick, 1] = 0.005  # a cost difference of about 1e-3
    a = run_one(far_preds(n), cls, [tiny], [1])
    assert a.fg_mask[0].nonzero().squeeze(1).tolist() == [pick]


def test_conflict_goes_to_lowest_cost():
    n = 84
    pred, cls = far_preds(n), torch.zeros(n, 2)
    p, q = index_of(64, 8, 3, 3), index_of(64, 8, 4, 4)
    pred[[p, q]] = torch.tensor(GT)
    cls[p] = torch.tensor([5.0, -5.0])
    cls[q] = torch.tensor([-5.0, 5.0])
    # Two gts on the same box, classes 0 and 1: both pick p and q (k = 2 each).
    a = run_one(pred, cls, [GT, GT], [0, 1])
    assert a.num_fg == 2
    assert a.matched_gt[0, p] == 0 and a.matched_gt[0, q] == 1


def test_no_ground_truth_is_all_background():
    _, _, centers, strides = anchors(64)
    n = centers.shape[0]
    pred = torch.rand(2, n, 4) * 32
    pred[..., 2:] += pred[..., :2]
    for gts, mask in [(torch.zeros(2, 0, 4), torch.zeros(2, 0, dtype=torch.bool)),
                      (torch.tensor([GT, GT]).reshape(2, 1, 4), torch.zeros(2, 1, dtype=torch.bool))]:
        a = simota_assign(pred, torch.randn(2, n, 3), torch.randn(2, n), gts,
                          torch.zeros(mask.shape, dtype=torch.long), mask, centers, strides)
        assert a.num_fg == 0 and not a.fg_mask.any() and a.fg_mask.shape == (2, n)


def test_gt_outside_the_grid_gets_nothing():
    """A box far outside the input has no candidate anchor: no positive, no crash; the
    other image of the batch is unaffected."""
    _, _, centers, strides = anchors(64)
    n = centers.shape[0]
    pred = far_preds(n).expand(2, n, 4)
    gts = torch.tensor([[[500.0, 500.0, 520.0, 520.0]], [GT]])
    a = simota_assign(pred, torch.zeros(2, n, 2), torch.zeros(2, n), gts, torch.zeros(2, 1, dtype=torch.long),
                      torch.ones(2, 1, dtype=torch.bool), centers, strides)
    assert not a.fg_mask[0].any() and a.fg_mask[1].sum() == 1
    a = simota_assign(pred[:1], torch.zeros(1, n, 2), torch.zeros(1, n), gts[:1], torch.zeros(1, 1, dtype=torch.long),
                      torch.ones(1, 1, dtype=torch.bool), centers, strides)
    assert a.num_fg == 0


# ------------------------------------------------------------ batched vs reference
def reference_assign(pred, cls, obj, gts, gcls, centers, strides):
    """Straightforward per-image SimOTA written after the official YOLOX code: candidates
    first, then a [M, n, C] BCE, a loop over gts for top-k, a loop over conflicting anchors.
    Runs in float64. Returns fg [N] bool, matched gt [N], matched IoU [N]."""
    n_all, m = pred.shape[0], gts.shape[0]
    fg = torch.zeros(n_all, dtype=torch.bool)
    mg = torch.zeros(n_all, dtype=torch.long)
    miou = torch.zeros(n_all, dtype=torch.float64)
    if m == 0:
        return fg, mg, miou
    pred, cls, obj, gts = pred.double(), cls.double(), obj.double(), gts.double()
    in_box = torch.zeros(m, n_all, dtype=torch.bool)
    in_ctr = torch.zeros(m, n_all, dtype=torch.bool)
    for g in range(m):
        x1, y1, x2, y2 = gts[g].tolist()
        cx, cy = centers[:, 0].double(), centers[:, 1].double()
        in_box[g] = (cx > x1) & (cx < x2) & (cy > y1) & (cy < y2)
        r = 2.5 * strides.double()
        in_ctr[g] = ((cx - (x1 + x2) / 2).abs() < r) & ((cy - (y1 + y2) / 2).abs() < r)
    cand = (in_box | in_ctr).any(0)
    idx = cand.nonzero().squeeze(1)
    k = idx.numel()
    if k == 0:
        return fg, mg, miou
    p = pred[idx]
    lt = torch.max(gts[:, None, :2], p[None, :, :2])
    rb = torch.min(gts[:, None, 2:], p[None, :, 2:])
    inter = (rb - lt).clamp(min=0).prod(-1)
    area = lambda b: (b[..., 2:] - b[..., :2]).clamp(min=0).prod(-1)  # noqa: E731
    ious = inter / (area(gts)[:, None] + area(p)[None] - inter)
    prob = (cls[idx].sigmoid() * obj[idx, None].sigmoid()).sqrt()
    onehot = F.one_hot(gcls, cls.shape[1]).double()
    cls_cost = F.binary_cross_entropy(prob[None].expand(m, -1, -1), onehot[:, None].expand(-1, k, -1),
                                      reduction="none").sum(-1)
    both = in_box[:, idx] & in_ctr[:, idx]
    cost = cls_cost + 3.0 * -torch.log(ious + 1e-8) + 1e5 * (~both).double()
    matching = torch.zeros(m, k, dtype=torch.long)
    for g in range(m):
        dk = max(1, int(ious[g].topk(min(10, k)).values.sum()))
        matching[g, cost[g].argsort()[:dk]] = 1
    for a in (matching.sum(0) > 1).nonzero().squeeze(1).tolist():
        matching[:, a] = 0
        matching[cost[:, a].argmin(), a] = 1
    sel = matching.sum(0) > 0
    fg[idx[sel]] = True
    mg[idx[sel]] = matching[:, sel].argmax(0)
    miou[idx[sel]] = (matching * ious).sum(0)[sel]
    return fg, mg, miou


def random_case(seed: int, b: int = 4, m: int = 7, size: int = 128, c: int = 5):
    g = torch.Generator().manual_seed(seed)
    grid, stride, centers, strides = anchors(size)
    n = centers.shape[0]
    raw = torch.cat((torch.rand(b, n, 2, generator=g), torch.randn(b, n, 2, generator=g) * 0.7 + 1.0), -1)
    pred = cxcywh_to_xyxy(decode_boxes(raw, grid, stride))
    cls, obj = torch.randn(b, n, c, generator=g) * 2, torch.randn(b, n, generator=g) * 2
    wh = torch.rand(b, m, 2, generator=g) * 60 + 6
    xy = torch.rand(b, m, 2, generator=g) * (size - wh)
    gts = torch.cat((xy, xy + wh), -1)
    gts[:, 1] = gts[:, 0] + torch.rand(b, 4, generator=g) * 6  # near-duplicates -> conflicts
    gcls = torch.randint(0, c, (b, m), generator=g)
    counts = torch.randint(0, m + 1, (b,), generator=g)
    counts[0], counts[1] = m, 0  # always a full image and an empty one
    mask = torch.arange(m)[None] < counts[:, None]
    return pred, cls, obj, gts, gcls, mask, centers, strides


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_batched_equals_per_image_reference(seed):
    pred, cls, obj, gts, gcls, mask, centers, strides = random_case(seed)
    a = simota_assign(pred, cls, obj, gts, gcls, mask, centers, strides)
    small = simota_assign(pred, cls, obj, gts, gcls, mask, centers, strides, budget=1)  # per-image guard
    total = 0
    for i in range(pred.shape[0]):
        keep = mask[i]
        fg, mg, miou = reference_assign(pred[i], cls[i], obj[i], gts[i, keep], gcls[i, keep], centers, strides)
        total += int(fg.sum())
        for got in (a, small):
            assert torch.equal(got.fg_mask[i], fg)
            assert torch.equal(got.matched_gt[i][fg], mg[fg])
            assert torch.allclose(got.matched_iou[i].double(), miou, atol=1e-5)
    assert a.num_fg == small.num_fg == total > 0


def test_reference_sees_conflicts():
    """The random cases above must exercise conflict resolution, else the comparison is weak."""
    pred, cls, obj, gts, gcls, mask, centers, strides = random_case(0)
    a = simota_assign(pred, cls, obj, gts, gcls, mask, centers, strides)
    # Re-run gt by gt without conflict handling: some anchor must be claimed twice.
    claims = torch.zeros(pred.shape[1], dtype=torch.long)
    for g in range(int(mask[0].sum())):
        one = simota_assign(pred[:1], cls[:1], obj[:1], gts[:1, g:g + 1], gcls[:1, g:g + 1],
                            torch.ones(1, 1, dtype=torch.bool), centers, strides)
        claims += one.fg_mask[0].long()
    assert int((claims > 1).sum()) > 0
    assert a.fg_mask[0].sum() > 0
