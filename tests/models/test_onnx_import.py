"""The official-ONNX importer without the reference data: an ONNX laid out like the official
export (BN folded into convs, strided-slice Focus, sigmoid-ed obj/cls, head conv names kept)
is built from one of our models, imported back, and must reproduce the model's outputs."""
from __future__ import annotations

import copy
import warnings

import pytest
import torch
from torch import nn

from yolox_edge.decode import flatten_maps
from yolox_edge.errors import UserError
from yolox_edge.models import create_model
from yolox_edge.models.blocks import BaseConv
from yolox_edge.models.official import import_onnx, onnx_variant


def fold_bn(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> nn.Conv2d:
    """Conv with BN folded into its weight and bias (what the official export's graph holds)."""
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    fused = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding,
                      groups=conv.groups, bias=True)
    fused.weight.data = conv.weight.data * scale[:, None, None, None]
    fused.bias.data = bn.bias.data - bn.running_mean * scale
    return fused


class OfficialLike(nn.Module):
    """Our model rewritten the way the official ONNX computes: folded BN, sliced Focus, and
    the official raw output [B, N, 5+C] with sigmoid on obj/cls."""

    def __init__(self, model: nn.Module, to_official_state) -> None:
        super().__init__()
        ours = copy.deepcopy(model).eval()
        # Top-level names as in the official model, so the head convs keep 'head.cls_preds.*'.
        self.backbone, self.neck, self.head = ours.backbone, ours.neck, ours.head
        official_stem = to_official_state(model)["backbone.backbone.stem.conv.conv.weight"]
        with torch.no_grad():
            self.backbone.stem.conv.conv.weight.copy_(official_stem)
            for m in self.modules():
                if isinstance(m, BaseConv):
                    m.conv, m.bn = fold_bn(m.conv, m.bn), nn.Identity()
        stem = self.backbone.stem

        def sliced_focus(x: torch.Tensor) -> torch.Tensor:  # the official Focus
            x = torch.cat((x[..., ::2, ::2], x[..., 1::2, ::2], x[..., ::2, 1::2], x[..., 1::2, 1::2]), 1)
            return stem.conv(x)

        stem.forward = sliced_focus

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        raw = flatten_maps(self.head(self.neck(self.backbone(x))))
        return torch.cat((raw[..., :4], raw[..., 4:].sigmoid()), -1)


@pytest.fixture(scope="module")
def exported(tmp_path_factory, to_official_state, randomize_model):
    model = randomize_model(create_model("test_dw", num_classes=4))
    path = tmp_path_factory.mktemp("onnx_import") / "official_like.onnx"
    x = torch.rand(1, 3, 64, 64) * 255
    with warnings.catch_warnings():  # the TorchScript exporter's deprecation notice
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(OfficialLike(model, to_official_state).eval(), (x,), str(path), input_names=["images"],
                          output_names=["output"], opset_version=11, do_constant_folding=False, dynamo=False)
    return model, path


def test_onnx_import_reproduces_outputs(exported) -> None:
    import onnx

    model, path = exported
    graph = onnx.load(str(path)).graph
    assert any(n.op_type == "Slice" for n in graph.node)  # the official strided-slice Focus
    assert not any(n.op_type == "BatchNormalization" for n in graph.node)
    imported = import_onnx(path, "test_dw")
    assert imported.num_classes == 4
    x = torch.rand(2, 3, 64, 96) * 255
    with torch.no_grad():
        got, want = imported(x), model(x)
    # Input-sensitive outputs, so a wrong stem channel order or BN fold cannot pass unnoticed.
    assert max((w[0] - w[1]).abs().max() for w in want) > 0.1
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-3)


def test_onnx_import_rejects_other_variant(exported) -> None:
    _, path = exported
    # test has the same convs as test_dw but dense 3x3s: the count differs; the message names
    # the variant that fits (a Tiny ONNX imported with the README's --variant nano says tiny)
    with pytest.raises(UserError, match=r"official_like.onnx.*its weights fit YOLOX-test_dw: pass --variant test_dw "
                                        r"\(variant='test_dw' in Python\)"):
        import_onnx(path, "test")


def test_onnx_variant_names_the_variant_by_its_convolutions(exported, tmp_path) -> None:
    import onnx
    from onnx import TensorProto, helper

    _, path = exported
    assert onnx_variant(path) == "test_dw"
    # Same layout with one conv's weight dropped from the graph's shapes: no variant fits.
    model = onnx.load(str(path))
    conv = next(n for n in model.graph.node if n.op_type == "Conv" and not n.input[1].startswith("head."))
    w = next(t for t in model.graph.initializer if t.name == conv.input[1])
    w.CopyFrom(helper.make_tensor(w.name, TensorProto.FLOAT, [w.dims[0], w.dims[1], 1, 1],
                                  [0.0] * (w.dims[0] * w.dims[1])))
    other = tmp_path / "other.onnx"
    onnx.save(model, str(other))
    assert onnx_variant(other) is None


def test_onnx_variant_of_the_official_nano(refdata) -> None:
    assert onnx_variant(refdata / "models" / "yolox_nano.onnx") == "nano"
