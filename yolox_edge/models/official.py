"""Import official YOLOX weights: the official ``.pth`` checkpoint or the official ONNX.

``.pth``: ``{"model": state_dict}`` with official key names; ``backbone.backbone.*`` is our
``backbone.*``, the rest of ``backbone.*`` is our ``neck.*``.
ONNX: BatchNorm is folded into the convs and most initializers have numeric names, so
weights are matched to our convs in execution order (the official forward order, which
our blocks keep) and every shape is checked. Folded convs get an identity BatchNorm
(weight sqrt(1+eps), bias = folded bias, mean 0, var 1) so eval output is exact.
In both cases the stem conv's input channels are permuted for the pixel_unshuffle Focus.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ..data.coco_names import COCO_CATEGORY_IDS, COCO_CLASSES
from ..errors import UserError, flag_value, in_python, require_file
from ..progress import deprecated_keywords, renamed
from .blocks import BaseConv, focus_official_to_ours
from .detector import Detector
from .zoo import VARIANTS, create_model, get_variant

STEM_KEY = "backbone.stem.conv.conv.weight"


def default_names(num_classes: int) -> list[str]:
    return list(COCO_CLASSES) if num_classes == 80 else [f"class_{i}" for i in range(num_classes)]


def default_category_ids(num_classes: int) -> list[int] | None:
    """COCO's own category ids for the 80 COCO classes ``default_names`` gives (the official
    weights' class i is the i-th id in sorted order); None for any other count (no ids known)."""
    return list(COCO_CATEGORY_IDS) if num_classes == 80 else None


def _conv_order(model: Detector, size: int) -> list[str]:
    """Names of the model's Conv2d modules in the order the forward pass runs them."""
    names = {m: n for n, m in model.named_modules()}
    order: list[str] = []
    hooks = [m.register_forward_hook(lambda m, i, o: order.append(names[m]))
             for m in model.modules() if isinstance(m, nn.Conv2d)]
    try:
        with torch.no_grad():
            model.eval()(torch.zeros(1, 3, size, size))
    finally:
        for h in hooks:
            h.remove()
    return order


def _onnx_tensors(graph) -> dict[str, torch.Tensor]:
    from onnx import numpy_helper
    tensors = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    for node in graph.node:  # some exporters keep weights as Constant nodes
        if node.op_type == "Constant":
            for a in node.attribute:
                if a.name == "value":
                    tensors[node.output[0]] = numpy_helper.to_array(a.t)
    return {k: torch.from_numpy(v.copy()) for k, v in tensors.items()}


def _num_classes_from_onnx(graph, tensors, path: Path) -> int:
    for node in graph.node:
        if node.op_type == "Conv" and node.input[1].startswith("head.cls_preds.0."):
            return int(tensors[node.input[1]].shape[0])
    raise UserError(f"{path}: not a YOLOX ONNX (no 'head.cls_preds.0' convolution found); "
                    "export it with the official tools/export_onnx.py")


def import_onnx(path: str | Path, variant: str) -> Detector:
    """Build ``variant`` and fill it from an official YOLOX ONNX (BN folded)."""
    import onnx

    p = require_file(path, "ONNX file")
    try:
        graph = onnx.load(str(p)).graph
    except Exception as e:
        raise UserError(f"{p}: not a readable ONNX model ({type(e).__name__}); check the file") from None
    tensors = _onnx_tensors(graph)
    num_classes = _num_classes_from_onnx(graph, tensors, p)
    model = create_model(variant, num_classes=num_classes)
    order = _conv_order(model, 64)
    convs = [n for n in graph.node if n.op_type == "Conv"]
    if len(convs) != len(order):
        raise UserError(f"{p}: has {len(convs)} convolutions, YOLOX-{variant} has {len(order)}; "
                        f"is this ONNX of another variant? {_variant_hint(onnx_variant(p), variant)}")
    modules = dict(model.named_modules())
    with torch.no_grad():
        for name, node in zip(order, convs):
            conv = modules[name]
            w = tensors.get(node.input[1])
            b = tensors.get(node.input[2]) if len(node.input) > 2 else None
            if w is None:
                raise UserError(f"{p}: convolution {node.name or node.output[0]} has no constant weight; "
                                "not an exported YOLOX inference model")
            if name == STEM_KEY.removesuffix(".weight"):
                w = focus_official_to_ours(w)
            if tuple(w.shape) != tuple(conv.weight.shape):
                raise UserError(f"{p}: weight shape {tuple(w.shape)} where YOLOX-{variant} has "
                                f"{tuple(conv.weight.shape)} ({name}); {_variant_hint(onnx_variant(p), variant)}")
            conv.weight.copy_(w)
            parent = modules[name.rsplit(".", 1)[0]] if "." in name else None
            if isinstance(parent, BaseConv):
                bn = parent.bn
                bn.weight.fill_((1.0 + bn.eps) ** 0.5)
                bn.bias.copy_(b if b is not None else torch.zeros_like(bn.bias))
                bn.running_mean.zero_()
                bn.running_var.fill_(1.0)
            elif b is not None:
                conv.bias.copy_(b)
    return model.eval()


def _map_official_key(key: str) -> str:
    if key.startswith("backbone.backbone."):
        return "backbone." + key[len("backbone.backbone."):]
    if key.startswith("backbone."):
        return "neck." + key[len("backbone."):]
    return key


def _variant_hint(found: str | None, given: str) -> str:
    """The end of a wrong --variant message: the variant the weights fit, where one does.
    The README's examples name ``--variant nano``; a Tiny (or S...) file imported with them
    should say which variant to pass, not leave the user to guess."""
    if found and found != given:
        return f"its weights fit YOLOX-{found}: pass {flag_value('--variant', 'variant', found)}"
    return f"pass the matching {in_python('--variant', 'variant=')}"


def _pth_variant(mapped: dict, num_classes: int) -> str | None:
    """The zoo variant whose state dict (names and shapes) ``mapped`` (our key names) holds, or None."""
    stem = mapped.get(STEM_KEY)
    for name, v in VARIANTS.items():
        if v.arch != "cspdarknet" or not v.official_weights or stem is None or stem.shape[0] != round(64 * v.width):
            continue
        with torch.random.fork_rng():  # a throwaway model: keep the caller's random stream where it was
            own = create_model(name, num_classes=num_classes).state_dict()
        if all(k in mapped and tuple(mapped[k].shape) == tuple(t.shape) for k, t in own.items()):
            return name
    return None


def _numpy_scalar_globals() -> list:
    """What a numpy scalar pickles as (the scalar constructor, its dtype and dtype class): the official
    trainer's checkpoints hold ``best_ap``/``curr_ap`` as numpy.float64 (from COCOeval's stats),
    which ``weights_only`` refuses unless allowed. Plain data: no code runs to rebuild them."""
    import numpy as np

    core = getattr(np, "_core", None) or np.core
    kinds = ("Float64DType", "Float32DType", "Float16DType", "Int64DType", "Int32DType", "BoolDType")
    dtypes = [getattr(np.dtypes, n) for n in kinds if hasattr(getattr(np, "dtypes", None), n)]
    return [core.multiarray.scalar, np.dtype, *dtypes]


def import_pth(path: str | Path, variant: str) -> Detector:
    """Build ``variant`` and load an official ``{"model": state_dict}`` checkpoint (as released, or as
    the official trainer writes it, with its epoch, optimizer and AP beside the model)."""
    p = require_file(path, "checkpoint")
    try:
        with torch.serialization.safe_globals(_numpy_scalar_globals()):
            raw = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as e:
        raise UserError(f"{p}: not a readable PyTorch checkpoint ({type(e).__name__}); "
                        "official weights are .pth files or the official .onnx") from None
    if isinstance(raw, dict) and raw.get("format") == "yolox_edge.checkpoint":
        raise UserError(f"{p}: already a yolox_edge checkpoint; pass it to predict/eval/export directly")
    state = raw.get("model", raw) if isinstance(raw, dict) else None
    if not isinstance(state, dict) or "head.cls_preds.0.weight" not in state:
        raise UserError(f"{p}: not an official YOLOX checkpoint (no 'model' dict with head.cls_preds); "
                        "check the file")
    num_classes = int(state["head.cls_preds.0.weight"].shape[0])
    model = create_model(variant, num_classes=num_classes)
    mapped = {_map_official_key(k): v for k, v in state.items()}
    if get_variant(variant).arch == "cspdarknet" and STEM_KEY in mapped:
        mapped[STEM_KEY] = focus_official_to_ours(mapped[STEM_KEY])
    own = model.state_dict()
    missing = [k for k in own if k not in mapped]
    bad = [k for k in own if k in mapped and tuple(mapped[k].shape) != tuple(own[k].shape)]
    if missing or bad:
        what = f"shape of {bad[0]}" if bad else f"missing {missing[0]}"
        raise UserError(f"{p}: does not fit YOLOX-{variant} ({what}); is it a checkpoint of another "
                        f"variant? {_variant_hint(_pth_variant(mapped, num_classes), variant)}")
    model.load_state_dict({k: mapped[k] for k in own})
    return model.eval()


@deprecated_keywords("variant")  # import_official(path, "nano"), the earlier form
def import_official(path: str | Path, *, variant: str) -> tuple[Detector, list[str], bool]:
    """Official weights (.onnx or .pth) -> (model, class names, bn_folded)."""
    try:
        v = get_variant(variant)
    except KeyError as e:
        raise UserError(str(e.args[0])) from None
    if not v.official_weights:
        twin = next((o.name for o in VARIANTS.values() if o.official_weights and o.shares_weights_with(v)), None)
        if twin is None:
            raise UserError(f"{path}: official YOLOX has no yolox_{v.name} weights; train it with 'yolox-edge train'")
        raise UserError(f"{path}: official YOLOX has no yolox_{v.name} weights ({v.act} activation); import "
                        f"{flag_value('--variant', 'variant', twin)}, then 'yolox-edge convert THAT.pt --to {v.name} --calib DIR --out OUT.pt' "
                        f"(no labels needed) or fine-tune it with 'yolox-edge train ... --set model.variant={v.name} "
                        "--weights THAT.pt'")
    p = Path(path)
    _refuse_own_export(p)
    if p.suffix.lower() == ".onnx":
        model, folded = import_onnx(p, variant), True
    else:
        model, folded = import_pth(p, variant), False
    return model, default_names(model.num_classes), folded


@dataclass
class ImportedCheckpoint:
    """What ``import_official_checkpoint`` wrote: ``path`` (the checkpoint), ``variant``,
    ``class_names``, ``bn_folded`` (True for an official ONNX: BatchNorm folded into the convs) and
    ``category_ids`` (COCO's ids 1..90 of the 80 classes; None for another class count)."""

    path: Path
    variant: str
    class_names: list[str]
    bn_folded: bool  # True for an official ONNX (BatchNorm folded into the convs)
    category_ids: list[int] | None = None


# The earlier forms: import_official_checkpoint(path, variant, out) and path= (the model file, named
# as every other call names it).
@deprecated_keywords("variant", "out", path=renamed("model"))
def import_official_checkpoint(model: str | Path, *, variant: str, out: str | Path,
                               force: bool = False) -> ImportedCheckpoint:
    """``yolox-edge import-official``: the official weights ``model`` (.onnx or .pth) -> a checkpoint
    of this project at ``out`` (class names, COCO's category ids for the 80 COCO classes, the
    preprocessing contract, the source file's sha256). An existing ``out`` is refused unless
    ``force``. ``variant`` and ``out`` were positional, ``path=`` the name of ``model``: those forms
    still work, with a DeprecationWarning."""
    path = model
    from ..engine.checkpoint import save_checkpoint
    from ..errors import refuse_overwrite
    from ..fileio import sha256_file

    out = refuse_overwrite(out, force)
    detector, names, folded = import_official(path, variant=variant)
    source = {"kind": "official-onnx" if folded else "official-pth", "file": str(path), "sha256": sha256_file(path)}
    ids = default_category_ids(detector.num_classes)
    written = save_checkpoint(out, detector, class_names=names, source=source, bn_folded=folded, category_ids=ids)
    return ImportedCheckpoint(written, get_variant(variant).name, names, folded, ids)


def onnx_variant(path: str | Path) -> str | None:
    """The zoo variant whose convolutions (their number and weight shapes) a raw YOLOX ONNX
    holds (the official export, or ours), or None. The bench uses it to count the baseline
    row's params/GFLOPs as it counts ours (the official graph has BatchNorm folded away)."""
    import onnx

    graph = onnx.load(str(path)).graph
    dims = {k: tuple(t.shape) for k, t in _onnx_tensors(graph).items()}
    convs = [n for n in graph.node if n.op_type == "Conv"]
    # Our exports fold Focus into a 6x6 stride-2 stem conv: count it as the official 12-channel 3x3.
    shapes = [(s[0], 12, 3, 3) if s and s[1:] == (3, 6, 6) else s for s in (dims.get(n.input[1]) for n in convs)]
    cls = [dims.get(n.input[1]) for n in convs if "head.cls_preds.0." in n.input[1]]  # ours: "detector.head..."
    if not convs or None in shapes or not cls:
        return None
    ops = {n.op_type for n in graph.node}
    act = "hswish" if "HardSwish" in ops else "lrelu" if "LeakyRelu" in ops else "silu"
    widest = max(s[0] for s in shapes)  # dark5's output: 1024 x width
    for name, v in VARIANTS.items():
        if v.act != act or round(1024 * v.width) != widest:
            continue
        with torch.random.fork_rng():  # a throwaway model: keep the caller's random stream where it was
            model = create_model(name, num_classes=cls[0][0])
        # As a multiset: exporters may schedule independent convs (neck, head levels) in any order.
        if sorted(tuple(m.weight.shape) for m in model.modules() if isinstance(m, nn.Conv2d)) == sorted(shapes):
            return name
    return None


def _refuse_own_export(p: Path) -> None:
    """A yolox_edge export (its metadata.json beside it lists the file) is not official weights:
    the checkpoint it came from is what the user wants."""
    from ..export.metadata import METADATA_FILE, peek_metadata

    meta = peek_metadata(p.parent)
    if meta is not None and p.name in (meta.get("files") or {}):
        src = meta.get("source_checkpoint") or "the checkpoint it was exported from"
        raise UserError(f"{p}: a yolox_edge export (see {p.parent / METADATA_FILE}), not official YOLOX weights; "
                        f"use {src} directly: every command takes a checkpoint")
