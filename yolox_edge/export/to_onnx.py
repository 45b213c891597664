"""ONNX export: TorchScript exporter (opset 17), onnxslim, onnx.checker."""
from __future__ import annotations

import contextlib
import importlib
import warnings
from pathlib import Path

import torch

from .wrapper import DeployModel

OPSET = 17
INPUT_NAME = "images"


def export_onnx(deploy: DeployModel, example: torch.Tensor, path: Path, *, dynamic_batch: bool = False) -> str:
    """Trace ``deploy`` to ``path`` as float32 ONNX (simplified and checked); returns the input name.

    No fp16 ONNX: onnxslim's fp16 pass needs onnxconverter-common (not a dependency) and
    onnxruntime's CPU provider lacks fp16 kernels for most ops; the API refuses it.
    """
    import onnx
    import onnxslim

    deploy.eval()
    names = list(deploy.output_names)
    axes = {n: {0: "batch"} for n in [INPUT_NAME, *names]} if dynamic_batch else None
    with warnings.catch_warnings(), torch.no_grad():
        # The TorchScript exporter warns about tracing constants (the grid): expected, the
        # grid is fixed by the static input size recorded in metadata.json.
        warnings.simplefilter("ignore")
        # dynamo=True needs onnxscript (not a dependency); the TorchScript path covers opset 17.
        torch.onnx.export(deploy, (example,), str(path), input_names=[INPUT_NAME], output_names=names,
                          opset_version=OPSET, dynamic_axes=axes, dynamo=False)
    # onnxslim imports onnxruntime on its first slim() inside a bare 'except:', so a Ctrl-C or
    # SIGTERM in that import (a few tenths of a second) was swallowed and the export finished with
    # exit 0. Imported here first, a stop in it stops the export; a broken or absent onnxruntime
    # is still onnxslim's to work without.
    with contextlib.suppress(Exception):
        importlib.import_module("onnxruntime")
    model = onnxslim.slim(onnx.load(str(path)))
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, str(path))
    return INPUT_NAME


def graph_ops(path: str | Path) -> dict[str, int]:
    """Op type -> count in an ONNX file (used to report what the graph contains)."""
    import onnx

    counts: dict[str, int] = {}
    for n in onnx.load(str(path)).graph.node:
        counts[n.op_type] = counts.get(n.op_type, 0) + 1
    return counts
