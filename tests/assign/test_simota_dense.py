"""Regression: when more than 90% of the anchors are candidates (no compaction) but not all,
the batched path must still work on all anchors (it once sized its matching tensor by the
candidate count and failed with an index error)."""
import torch

from yolox_edge.assign.simota import center_prior, simota_assign
from yolox_edge.decode import make_grid


def test_dense_candidates_without_compaction():
    torch.manual_seed(0)
    grid, stride = make_grid([(8, 8), (4, 4), (2, 2)])  # a 64x64 input: 84 anchors
    centers, strides = (grid + 0.5) * stride, stride.squeeze(-1)
    n = centers.shape[0]
    gt = torch.tensor([[[0.0, 0.0, 64.0, 56.0]]])  # excludes only the last stride-8 row
    mask = torch.tensor([[True]])
    cand, _ = center_prior(gt, mask, centers, strides)
    assert 0.9 * n < int(cand.sum()) < n  # the case under test
    pred = torch.cat([centers - 12, centers + 12], -1)[None]
    a = simota_assign(pred, torch.randn(1, n, 2), torch.randn(1, n), gt, torch.zeros(1, 1, dtype=torch.long),
                      mask, centers, strides)
    assert a.fg_mask.shape == (1, n) and a.num_fg >= 1
    assert not a.fg_mask[0, 56:64].any()  # the excluded row never matches
