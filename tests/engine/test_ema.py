import math

import pytest
import torch
from torch import nn

from yolox_edge.engine.ema import ModelEMA


def test_decay_ramp_is_official():
    ema = ModelEMA(nn.Linear(2, 2), decay=0.9998)
    for n in (1, 100, 2000, 20000):
        assert ema.decay(n) == pytest.approx(0.9998 * (1 - math.exp(-n / 2000)))


def test_update_averages_weights_and_copies_int_buffers():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 1), nn.BatchNorm2d(4))
    ema = ModelEMA(model, decay=0.9998)
    before = ema.ema[0].weight.clone()
    with torch.no_grad():
        model[0].weight.add_(1.0)
    model[1].num_batches_tracked += 5
    ema.update(model)
    d = ema.decay(1)
    assert torch.allclose(ema.ema[0].weight, d * before + (1 - d) * model[0].weight)
    assert int(ema.ema[1].num_batches_tracked) == 5
    assert not any(p.requires_grad for p in ema.ema.parameters())
    st = ema.state_dict()
    other = ModelEMA(model)
    other.load_state_dict(st)
    assert other.updates == 1 and torch.equal(other.ema[0].weight, ema.ema[0].weight)
