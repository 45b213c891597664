"""ncnn export through pnnx (TorchScript trace), no custom layers, fp32 weights.

pnnx writes many side files (*.pnnx.param, *_pnnx.py, *.pnnx.onnx, ...): it runs in a
temporary folder and only the ncnn param/bin are kept. The Focus stem is
``pixel_unshuffle`` (ncnn ``Reorg``), the grid decode becomes MemoryData + BinaryOp +
UnaryOp(exp) + Sigmoid + Concat. ncnn has no TopK/ArgMax/Gather layer in its standard
build, so an ncnn graph ends in decoded boxes + scores and the host keeps the top-K.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path

import torch

from ..errors import UserError
from .wrapper import DeployModel

INPUT_BLOB = "in0"


@contextlib.contextmanager
def _quiet_fds(log_path: Path):
    """Send C++ stdout/stderr (pnnx prints every pass) to a log file for the duration."""
    saved = [os.dup(1), os.dup(2)]
    with open(log_path, "wb") as log:
        try:
            os.dup2(log.fileno(), 1)
            os.dup2(log.fileno(), 2)
            yield
        finally:
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)


def export_ncnn(deploy: DeployModel, example: torch.Tensor, param_path: Path, bin_path: Path, *,
                fp16: bool = False) -> tuple[str, list[str]]:
    """Write the ncnn param/bin; returns (input blob, output blobs in ``deploy.output_names`` order)."""
    import pnnx

    deploy.eval()
    with tempfile.TemporaryDirectory(prefix="yolox_edge_pnnx_") as tmp:
        tmp_p = Path(tmp)
        log = tmp_p / "pnnx.log"
        try:
            with _quiet_fds(log), torch.no_grad():
                pnnx.export(deploy, str(tmp_p / "model.pt"), (example,), fp16=fp16)
        except Exception as e:  # pnnx raises plain Exception / RuntimeError with its log on fd 2
            tail = log.read_text(errors="replace").strip().splitlines()[-3:] if log.exists() else []
            raise RuntimeError(f"pnnx conversion failed: {e}; {' | '.join(tail)}") from e
        param, binf = tmp_p / "model.ncnn.param", tmp_p / "model.ncnn.bin"
        if not param.is_file() or not binf.is_file():
            tail = log.read_text(errors="replace").strip().splitlines()[-3:]
            raise RuntimeError(f"pnnx wrote no ncnn model: {' | '.join(tail)}")
        bad = nonstandard_layers(param)
        if bad:
            raise UserError(f"ncnn export would need non-standard layers {', '.join(sorted(bad))}; "
                            "export without them (e.g. no --topk for ncnn)")
        shutil.copyfile(param, param_path)
        shutil.copyfile(binf, bin_path)
    outputs = [f"out{i}" for i in range(len(deploy.output_names))]
    return INPUT_BLOB, outputs


def param_layers(param_path: str | Path) -> list[tuple[str, str]]:
    """(layer type, layer name) of every layer in an ncnn .param file."""
    lines = Path(param_path).read_text().splitlines()
    if not lines or lines[0].strip() != "7767517":
        raise ValueError(f"{param_path}: not an ncnn param file (bad magic)")
    return [tuple(line.split()[:2]) for line in lines[2:] if line.strip()]


def nonstandard_layers(param_path: str | Path) -> set[str]:
    """Layer types in a param file that ncnn itself does not implement (would need a custom layer)."""
    import ncnn

    # layer_to_index knows every layer name ncnn defines; create_layer is None for the
    # ones this build leaves out (ArgMax is defined but off by default).
    return {t for t in {t for t, _ in param_layers(param_path)}
            if ncnn.layer_to_index(t) < 0 or ncnn.create_layer(t) is None}
