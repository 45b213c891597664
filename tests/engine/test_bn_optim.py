import torch
from torch import nn

from yolox_edge.engine.optim import build_optimizer
from yolox_edge.models import create_model
from yolox_edge.models.bn import reestimate_folded_bn


def _fold_to_identity(model: nn.Module) -> None:
    """What the ONNX importer leaves: BN with identity stats carrying the folded affine."""
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            scale = m.weight / torch.sqrt(m.running_var + m.eps)
            shift = m.bias - scale * m.running_mean
            m.running_mean.zero_()
            m.running_var.fill_(1.0)
            m.weight.data = scale * (1 + m.eps) ** 0.5
            m.bias.data = shift


def test_bn_reestimation_keeps_eval_output_and_fixes_train_mode():
    torch.manual_seed(0)
    model = create_model("test", num_classes=3)
    with torch.no_grad():  # give BN non-trivial stats so the folded model is not the identity
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-2, 2)
                m.running_var.uniform_(0.5, 3)
                m.weight.uniform_(0.5, 1.5)
    _fold_to_identity(model)
    x = torch.rand(6, 3, 64, 64) * 255
    model.eval()
    with torch.no_grad():
        ref = [m.clone() for m in model(x)]
    w_before = model.backbone.stem.conv.conv.weight.clone()
    n = reestimate_folded_bn(model, [x[:3], x[3:]])
    assert n == 6
    assert model.backbone.stem.conv.conv.weight.abs().mean() < w_before.abs().mean() / 5
    with torch.no_grad():
        after = model(x)
        assert all(torch.allclose(a, b, atol=1e-3, rtol=1e-4) for a, b in zip(ref, after))
        # convs were rescaled so every BN input has unit variance (raw 0..255 input: the stem's
        # conv output variance was in the thousands before)
        stem = model.backbone.stem.conv
        assert torch.allclose(stem.bn.running_var, torch.ones_like(stem.bn.running_var), atol=0.01)
        z = stem.conv(torch.nn.functional.pixel_unshuffle(x, 2))
        assert torch.allclose(z.var((0, 2, 3)), torch.ones(z.shape[1]), rtol=0.05)
        # train mode now normalises with batch stats close to the measured ones -> output close to eval
        model.train()
        tr = model(x)
    rel = [((a - b).abs().mean() / b.abs().mean()).item() for a, b in zip(tr, ref)]
    assert max(rel) < 0.05, rel


def test_optimizer_groups_decay_only_conv_weights():
    model = create_model("test_dw", num_classes=2)
    opt = build_optimizer(model, 0.01)
    bn_w, weights, biases = (g["params"] for g in opt.param_groups)
    assert [g["weight_decay"] for g in opt.param_groups] == [0.0, 5e-4, 0.0]
    assert all(p.dim() == 1 for p in bn_w + biases)
    assert all(p.dim() == 4 for p in weights)
    assert opt.param_groups[0]["nesterov"] and opt.param_groups[0]["momentum"] == 0.9
    assert len(bn_w) + len(weights) + len(biases) == len(list(model.parameters()))
