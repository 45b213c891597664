"""Which part of the deploy graph is quantized: the detector only; decode stays float.

The deploy wrapper (export/wrapper.py) holds the detector as one child module and adds
the grid decode, sigmoid, score product, concat and top-K around it. Quantizing any of
those destroys the boxes (pixel coordinates and [0, 1] scores share no useful scale), so
the NNCF ignored scope is derived from the module tree, not from hand-written node
lists: every node whose scope is not inside the detector's child module is ignored.

The TorchScript ONNX exporter names nodes by module path (``/detector/backbone/.../Conv``,
``/decode/Exp``, ``/TopK`` for the wrapper's own ops) and OpenVINO keeps those names
when it converts the ONNX, so one pattern serves both NNCF backends.
"""
from __future__ import annotations

import re

import nncf
from torch import nn

from ..models import Detector


def detector_child(deploy: nn.Module) -> str:
    """Name of the deploy wrapper's child module that is the detector."""
    names = [n for n, m in deploy.named_children() if isinstance(m, Detector)]
    if len(names) != 1:
        raise ValueError(f"expected exactly one Detector child in {type(deploy).__name__}, found {names}")
    return names[0]


def float_modules(deploy: nn.Module) -> list[str]:
    """Children of the deploy wrapper that stay float (everything but the detector)."""
    det = detector_child(deploy)
    return [n for n, _ in deploy.named_children() if n != det]


def ignored_pattern(deploy: nn.Module) -> str:
    """Regex matching every graph node outside the detector's scope (ONNX / OpenVINO names)."""
    return rf"^(?!/{re.escape(detector_child(deploy))}/)"


def conv_node_names(onnx_model, deploy: nn.Module, float_convs: list[str]) -> list[str]:
    """ONNX node names of the detector convs named by module (``backbone.stem.conv.conv``).

    Found through the weight each Conv reads (the exporter keeps parameter names, e.g.
    ``detector.backbone.stem.conv.conv.weight``), not by guessing how node paths are spelled.
    """
    det = detector_child(deploy)
    want = {f"{det}.{n}.weight": n for n in float_convs}
    found = {want[i]: node.name for node in onnx_model.graph.node if node.op_type == "Conv"
             for i in node.input[1:2] if i in want}
    missing = [n for n in float_convs if n not in found]
    if missing:
        raise ValueError(f"no Conv node reads the weights of {', '.join(missing)}")
    return [found[n] for n in float_convs]


def conv_modules(onnx_model, deploy: nn.Module) -> dict[str, str]:
    """ONNX Conv node name -> detector module name (``backbone.stem.conv.conv``), through the
    weight each Conv reads, as ``conv_node_names``; for naming convs in messages."""
    prefix = f"{detector_child(deploy)}."
    return {node.name: node.input[1][len(prefix):].removesuffix(".weight") for node in onnx_model.graph.node
            if node.op_type == "Conv" and len(node.input) > 1 and node.input[1].startswith(prefix)}


def openvino_conv_names(ov_model, onnx_names: list[str]) -> list[str]:
    """OpenVINO names of the convs converted from ONNX nodes ``onnx_names``.

    OpenVINO splits Conv+bias and the convolution itself becomes ``<onnx name>/WithoutBiases``.
    """
    want = set(onnx_names) | {f"{n}/WithoutBiases" for n in onnx_names}
    found = [op.get_friendly_name() for op in ov_model.get_ordered_ops()
             if op.get_type_name() in ("Convolution", "GroupConvolution") and op.get_friendly_name() in want]
    if len(found) != len(onnx_names):
        raise ValueError(f"found {len(found)} OpenVINO convolutions for {len(onnx_names)} float convs")
    return found


def torch_conv_node_names(model: nn.Module, example, float_convs: list[str]) -> list[str]:
    """NNCF's node names, in its graph of the torch ``model`` (QAT), of the convs named by module.

    Found as ``conv_node_names`` finds them in ONNX: through the weight each conv reads (NNCF
    names a parameter input by the parameter, e.g. ``backbone.dark2.0.dconv.conv.weight``);
    its op names follow call order, not the module tree (the head's convs are ``head/conv2d/7``).
    """
    if not float_convs:
        return []
    from nncf.torch.function_hook.nncf_graph.nncf_graph_builder import build_nncf_graph

    graph = build_nncf_graph(model, example)
    want = {f"{n}.weight": n for n in float_convs}
    found = {want[e.from_node.node_name]: node.node_name for node in graph.get_all_nodes()
             if "conv" in node.metatype.name.lower() for e in graph.get_input_edges(node)
             if e.from_node.node_name in want}
    missing = [n for n in float_convs if n not in found]
    if missing:
        raise ValueError(f"no conv in NNCF's torch graph reads the weights of {', '.join(missing)}")
    return [found[n] for n in float_convs]


def ignored_scope(deploy: nn.Module, float_nodes: list[str] = ()) -> nncf.IgnoredScope:
    """The NNCF ignored scope that keeps decode, sigmoid, concat and top-K in float, plus the
    graph nodes in ``float_nodes`` (convs a sensitivity analysis chose, see ``conv_node_names``)."""
    # validate=False: the pattern must not fail on a graph where some wrapper op is absent.
    return nncf.IgnoredScope(patterns=[ignored_pattern(deploy)], names=list(float_nodes), validate=False)


def describe(deploy: nn.Module) -> dict:
    """What goes into metadata.json about the float part of an INT8 graph."""
    return {"quantized_module": detector_child(deploy), "float_modules": float_modules(deploy),
            "ignored_pattern": ignored_pattern(deploy),
            "float_ops": "decode (grid add, exp, stride mul), sigmoid, obj*cls, concat"
                         + (", top-K" if getattr(deploy, "kind", None) == "topk" else "")}
