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


def _folded_model_and_pixels() -> tuple[nn.Module, torch.Tensor]:
    """A 'test' model as imported (non-trivial BN folded into identity BNs) and 6 raw 0..255 images."""
    torch.manual_seed(0)
    model = create_model("test", num_classes=3)
    with torch.no_grad():  # give BN non-trivial stats so the folded model is not the identity
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-2, 2)
                m.running_var.uniform_(0.5, 3)
                m.weight.uniform_(0.5, 1.5)
    _fold_to_identity(model)
    return model, torch.rand(6, 3, 64, 64) * 255


def test_bn_reestimation_keeps_eval_output_and_fixes_train_mode():
    model, x = _folded_model_and_pixels()
    model.eval()
    with torch.no_grad():
        ref = [m.clone() for m in model(x)]
    w_before = model.backbone.stem.conv.conv.weight.clone()
    n = reestimate_folded_bn(model, [x[:3], x[3:]])
    assert n == 6
    with torch.no_grad():
        after = model(x)
        assert all(torch.allclose(a, b, atol=1e-3, rtol=1e-4) for a, b in zip(ref, after))
        # inner convs were rescaled so their BN inputs have unit variance ...
        inner = model.backbone.dark3[0]
        assert torch.allclose(inner.bn.running_var, torch.ones_like(inner.bn.running_var), atol=0.05)  # v/(v+eps)
        # ... and the stem, fed raw 0..255 pixels, to the pixels' RMS: unit-gain weights (scaled
        # to unit output its weights were ~100x smaller and it trained ~10^4x too fast)
        stem = model.backbone.stem.conv
        rms = float(x.pow(2).mean().sqrt())
        z = stem.conv(torch.nn.functional.pixel_unshuffle(x, 2))
        assert torch.allclose(z.std((0, 2, 3)), torch.full((z.shape[1],), rms), rtol=0.05)
        assert torch.allclose(stem.bn.running_var, torch.full_like(stem.bn.running_var, rms * rms), rtol=0.05)
        w = stem.conv.weight
        assert w.abs().mean() > w_before.abs().mean() / 20
        assert 0.2 < float(w.pow(2).sum((1, 2, 3)).sqrt().mean()) < 5  # the size of a conv on unit inputs
        # train mode now normalises with batch stats close to the measured ones -> output close to eval
        model.train()
        tr = model(x)
    rel = [((a - b).abs().mean() / b.abs().mean()).item() for a, b in zip(tr, ref)]
    assert max(rel) < 0.05, rel


def test_reestimated_stem_takes_steps_the_size_of_the_inner_convs():
    """Relative gradient |grad w| / |w| (an SGD step's relative size) of the stem after BN
    re-estimation, against the inner convs: with the stem scaled to unit output (raw pixels
    in) it was ~10^5x the median (the imported COCO Nano collapsed in one epoch); unit-gain
    weights bring it to ~10x."""
    from yolox_edge.loss import YOLOXLoss

    model, x = _folded_model_and_pixels()
    reestimate_folded_bn(model, [x])
    model.train()
    targets = torch.tensor([[[0, 4, 6, 30, 40], [2, 20, 20, 60, 50]]] * 6, dtype=torch.float32)
    YOLOXLoss(3)(model(x), targets)["total"].backward()
    rel = {n: float(p.grad.norm() / p.detach().norm()) for n, p in model.named_parameters()
           if p.dim() == 4 and "preds" not in n}
    stem = rel.pop("backbone.stem.conv.conv.weight")
    inner = sorted(rel.values())
    assert stem < 100 * inner[len(inner) // 2], (stem, inner[len(inner) // 2])


def test_optimizer_groups_decay_only_conv_weights():
    model = create_model("test_dw", num_classes=2)
    opt = build_optimizer(model, 0.01)
    bn_w, weights, biases = (g["params"] for g in opt.param_groups)
    assert [g["weight_decay"] for g in opt.param_groups] == [0.0, 5e-4, 0.0]
    assert all(p.dim() == 1 for p in bn_w + biases)
    assert all(p.dim() == 4 for p in weights)
    assert opt.param_groups[0]["nesterov"] and opt.param_groups[0]["momentum"] == 0.9
    assert len(bn_w) + len(weights) + len(biases) == len(list(model.parameters()))
