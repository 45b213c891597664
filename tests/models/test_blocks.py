"""Blocks and variants: every variant builds and runs; Focus is pixel_unshuffle in the
official slice order once the stem weights are permuted."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from yolox_edge.models import OFFICIAL, count_params, create_model, deploy_form, list_models
from yolox_edge.models.blocks import (BaseConv, Bottleneck, CSPLayer, DWConv, Focus, SPPBottleneck,
                                      focus_official_to_ours, make_act)


def official_focus_slices(x: torch.Tensor) -> torch.Tensor:
    """The official YOLOX Focus space-to-depth, written as in the official code."""
    top_left = x[..., ::2, ::2]
    top_right = x[..., ::2, 1::2]
    bot_left = x[..., 1::2, ::2]
    bot_right = x[..., 1::2, 1::2]
    return torch.cat((top_left, bot_left, top_right, bot_right), dim=1)


class OfficialFocus(nn.Module):
    """Official Focus: the four strided slices, then BaseConv."""

    def __init__(self, c_in: int, c_out: int, ksize: int) -> None:
        super().__init__()
        self.conv = BaseConv(c_in * 4, c_out, ksize, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(official_focus_slices(x))


@pytest.mark.parametrize("name", list_models(include_test=True))
def test_every_variant_builds_and_runs(name: str) -> None:
    torch.manual_seed(0)
    model = create_model(name, num_classes=80).eval()
    assert model.variant == name
    if name in OFFICIAL:  # YOLOX README parameter count (M), within 1%
        assert count_params(model) / 1e6 == pytest.approx(OFFICIAL[name][0], rel=0.01)
    with torch.no_grad():
        maps = model(torch.rand(1, 3, 64, 96) * 255)
    assert len(maps) == len(model.strides) == 3
    for m, s in zip(maps, model.strides):
        assert tuple(m.shape) == (1, 4 + 1 + 80, 64 // s, 96 // s), (name, s)
        assert torch.isfinite(m).all()


def test_train_mode_forward_backward() -> None:
    model = create_model("test_dw", num_classes=2).train()
    maps = model(torch.rand(2, 3, 64, 64) * 255)
    sum(m.float().pow(2).mean() for m in maps).backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None for g in grads)


def test_focus_is_pixel_unshuffle_with_permuted_channels() -> None:
    x = torch.arange(2 * 3 * 4 * 6, dtype=torch.float32).reshape(2, 3, 4, 6)
    ours = F.pixel_unshuffle(x, 2)
    official = official_focus_slices(x)
    assert ours.shape == official.shape == (2, 12, 2, 3)
    # pixel_unshuffle puts (c, dy, dx) at channel c*4 + dy*2 + dx; the official slices put
    # (dy, dx, c) at (dx*2 + dy)*3 + c (order TL, BL, TR, BR).
    for c in range(3):
        for dy in range(2):
            for dx in range(2):
                assert torch.equal(ours[:, c * 4 + dy * 2 + dx], x[:, c, dy::2, dx::2])
                assert torch.equal(official[:, (dx * 2 + dy) * 3 + c], x[:, c, dy::2, dx::2])


def test_focus_official_weights_give_official_output() -> None:
    torch.manual_seed(0)
    official = OfficialFocus(3, 8, 3).eval()
    ours = Focus(3, 8, ksize=3).eval()
    state = official.state_dict()
    state["conv.conv.weight"] = focus_official_to_ours(state["conv.conv.weight"])
    ours.load_state_dict(state)
    x = torch.rand(2, 3, 32, 48) * 255
    with torch.no_grad():
        torch.testing.assert_close(ours(x), official(x), rtol=1e-5, atol=1e-4)
    # Without the permutation the outputs differ: the test can tell a wrong channel order.
    ours.conv.conv.weight.data.copy_(official.conv.conv.weight.data)
    with torch.no_grad():
        assert (ours(x) - official(x)).abs().max() > 1e-2


@pytest.mark.parametrize("ksize, stride", [(3, 1), (1, 1), (3, 2)])
def test_focus_fused_into_one_strided_conv(ksize: int, stride: int) -> None:
    """Deploy form: the space-to-depth folded into a 2k x 2k stride-2s conv gives the same output."""
    torch.manual_seed(1)
    focus = Focus(3, 8, ksize=ksize, stride=stride).eval()
    with torch.no_grad():
        focus.conv.bn.running_mean.normal_()
        focus.conv.bn.running_var.uniform_(0.5, 2.0)
    x = torch.rand(2, 3, 32, 48) * 255
    with torch.no_grad():
        ref = focus(x)
        focus.fuse_space_to_depth()
        conv = focus.conv.conv
        assert conv.kernel_size == (2 * ksize, 2 * ksize) and conv.stride == (2 * stride, 2 * stride)
        assert conv.in_channels == 3 and not focus.space_to_depth
        torch.testing.assert_close(focus(x), ref, rtol=1e-5, atol=1e-3)
        focus.fuse_space_to_depth()  # idempotent
        assert focus.conv.conv is conv


def test_deploy_form_is_a_fused_copy() -> None:
    model = create_model("test_dw", num_classes=3).train()
    fused = deploy_form(model)
    assert model.training and not fused.training
    assert model.backbone.stem.space_to_depth and not fused.backbone.stem.space_to_depth
    x = torch.rand(1, 3, 64, 64) * 255
    with torch.no_grad():
        for a, b in zip(model.eval()(x), fused(x)):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)


def test_focus_permutation_is_a_permutation() -> None:
    w = torch.arange(12, dtype=torch.float32).reshape(1, 12, 1, 1)
    p = focus_official_to_ours(w).flatten().tolist()
    assert sorted(p) == list(range(12))
    # ours channel 1 = (c=0, dy=0, dx=1) = official top-right slice of c 0 = official channel 6
    assert p[:4] == [0, 6, 3, 9]


def test_block_shapes() -> None:
    x = torch.rand(1, 8, 16, 16)
    assert BaseConv(8, 4, 3, 2)(x).shape == (1, 4, 8, 8)
    assert DWConv(8, 12, 3, 2)(x).shape == (1, 12, 8, 8)
    assert Bottleneck(8, 8)(x).shape == (1, 8, 16, 16)
    assert Bottleneck(8, 8).use_add and not Bottleneck(8, 8, shortcut=False).use_add
    assert SPPBottleneck(8, 6)(x).shape == (1, 6, 16, 16)
    assert CSPLayer(8, 10, 2, depthwise=True)(x).shape == (1, 10, 16, 16)
    dw = DWConv(8, 12, 3)
    assert dw.dconv.conv.groups == 8 and dw.pconv.conv.kernel_size == (1, 1)


def test_make_act() -> None:
    assert isinstance(make_act("silu"), nn.SiLU)
    assert isinstance(make_act("lrelu"), nn.LeakyReLU) and make_act("lrelu").negative_slope == 0.1
    with pytest.raises(ValueError):
        make_act("gelu")


def test_spp_chained_pools_equal_the_5_9_13_pools_exactly() -> None:
    torch.manual_seed(0)
    spp = SPPBottleneck(8, 6).eval()
    assert spp.chained and not SPPBottleneck(8, 6, kernel_sizes=(3, 7)).chained
    # Quantised values so ties happen; odd, non-square maps smaller than the 13x13 window.
    x = torch.randint(-3, 4, (2, 8, 11, 7)).float()
    with torch.no_grad():
        h = spp.conv1(x)
        want = torch.cat([h] + [nn.functional.max_pool2d(h, k, 1, k // 2) for k in (5, 9, 13)], 1)
        assert torch.equal(spp(x), spp.conv2(want))
