"""ncnn export through pnnx (TorchScript trace), no custom layers; fp32 or fp16 weights.

pnnx writes many side files (*.pnnx.param, *_pnnx.py, *.pnnx.onnx, ...): it runs in a
temporary folder and only the ncnn param/bin are kept.

fp16 weights are not pnnx's own (its fp16 storage flushes |w| < 6.1e-5 to zero; measured
on Nano: scores moved by 0.40). pnnx writes fp32 and ``bin_to_fp16`` rewrites the
convolution weights as round-to-nearest fp16 (subnormals kept), leaving the first
convolution (the stem, fed 0..255 pixels) in fp32: Nano AP 0.3078 against 0.3083.

The Focus stem is ``pixel_unshuffle`` (ncnn ``Reorg``), the grid decode becomes MemoryData + BinaryOp +
UnaryOp(exp) + Sigmoid + Concat. ncnn has no TopK/ArgMax/Gather layer in its standard
build, so an ncnn graph ends in decoded boxes + scores and the host keeps the top-K.
"""
from __future__ import annotations

import shutil
import struct
from pathlib import Path

import numpy as np
import torch

from ..errors import UserError
from ..owners import owned_temp_dir
from ..subprocesses import default_sigchld
from .wrapper import DeployModel

INPUT_BLOB = "in0"


def _run_pnnx(pt_path: Path, shape: tuple[int, ...], param: Path, binf: Path, log: Path) -> None:
    """Run the pnnx converter in its own process on a traced TorchScript file.

    pnnx.export would also import the Python model pnnx generates back into this process;
    we only need the ncnn files, and a converter crash must not take the caller down.
    """
    import subprocess

    import pnnx

    work = pt_path.parent
    cmd = [pnnx.EXEC_PATH, str(pt_path), f"inputshape=[{','.join(map(str, shape))}]f32", "device=cpu",
           f"ncnnparam={param}", f"ncnnbin={binf}", "fp16=0",
           f"pnnxparam={work / 'model.pnnx.param'}", f"pnnxbin={work / 'model.pnnx.bin'}",
           f"pnnxpy={work / 'model_pnnx.py'}", f"pnnxonnx={work / 'model.pnnx.onnx'}", f"ncnnpy={work / 'model_ncnn.py'}"]
    with open(log, "wb") as f, default_sigchld():
        res = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, cwd=work)
    if res.returncode != 0:
        tail = log.read_text(errors="replace").strip().splitlines()[-3:]
        raise RuntimeError(f"pnnx conversion failed (exit {res.returncode}): {' | '.join(tail)}")


def export_ncnn(deploy: DeployModel, example: torch.Tensor, param_path: Path, bin_path: Path, *,
                fp16: bool = False) -> tuple[str, list[str]]:
    """Write the ncnn param/bin; returns (input blob, output blobs in ``deploy.output_names`` order).

    ``fp16``: convolution weights stored as fp16 (see ``bin_to_fp16``), the stem kept fp32.
    """
    deploy.eval()
    # Named for this process (owners.owned_temp_dir): the next run on this host removes one a kill -9 left.
    with owned_temp_dir("yolox_edge_pnnx_") as tmp_p:
        log = tmp_p / "pnnx.log"
        with torch.no_grad():
            torch.jit.trace(deploy, (example,)).save(str(tmp_p / "model.pt"))
        _run_pnnx(tmp_p / "model.pt", tuple(example.shape), tmp_p / "model.ncnn.param", tmp_p / "model.ncnn.bin", log)
        param, binf = tmp_p / "model.ncnn.param", tmp_p / "model.ncnn.bin"
        if not param.is_file() or not binf.is_file():
            tail = log.read_text(errors="replace").strip().splitlines()[-3:]
            raise RuntimeError(f"pnnx wrote no ncnn model: {' | '.join(tail)}")
        bad = nonstandard_layers(param)
        if bad:
            raise UserError(f"ncnn export would need non-standard layers {', '.join(sorted(bad))}; "
                            "export without them (e.g. no --topk for ncnn)")
        shutil.copyfile(param, param_path)
        if fp16:
            bin_to_fp16(param, binf, bin_path)
        else:
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


FP16_TAG = 0x01306B47  # ncnn ModelBin: a 4-byte tag announcing fp16 weight data


def _layer_params(line: str) -> tuple[str, str, dict[int, str]]:
    parts = line.split()
    n_in, n_out = int(parts[2]), int(parts[3])
    kv = dict(p.split("=", 1) for p in parts[4 + n_in + n_out:])
    return parts[0], parts[1], {int(k): v for k, v in kv.items() if k.lstrip("-").isdigit()}


def bin_to_fp16(param_path: str | Path, bin_in: str | Path, bin_out: str | Path, *, keep_fp32: int = 1) -> int:
    """Rewrite an fp32 ncnn .bin with fp16 convolution weights; returns how many were converted.

    Layout (ncnn ModelBin): per layer in param order, Convolution/ConvolutionDepthWise store
    their weights with a 4-byte tag (0 = fp32, FP16_TAG = fp16, padded to 4 bytes) and
    then the bias as raw fp32; MemoryData stores raw fp32. The first ``keep_fp32``
    convolutions stay fp32. Any other layer with weights makes the byte count disagree
    and raises, so an unexpected graph is refused rather than written wrong.
    """
    data = Path(bin_in).read_bytes()
    out, pos, convs, converted = bytearray(), 0, 0, 0
    for line in Path(param_path).read_text().splitlines()[2:]:
        if not line.strip():
            continue
        typ, name, kv = _layer_params(line)
        if typ in ("Convolution", "ConvolutionDepthWise"):
            n, n_bias = int(kv[6]), (int(kv[0]) if int(kv.get(5, 0)) else 0)
            if data[pos:pos + 4] != b"\0\0\0\0":
                raise ValueError(f"{bin_in}: layer {name} weights are not plain fp32")
            w = np.frombuffer(data, np.float32, n, pos + 4)
            pos += 4 + 4 * n
            if convs < keep_fp32:
                out += b"\0\0\0\0" + w.tobytes()
            else:
                half = w.astype(np.float16).tobytes()  # round to nearest, subnormals kept
                out += struct.pack("<I", FP16_TAG) + half + b"\0" * (-len(half) % 4)
                converted += 1
            convs += 1
            out += data[pos:pos + 4 * n_bias]
            pos += 4 * n_bias
        elif typ == "MemoryData":
            n = 1
            for key in (0, 1, 2, 11):
                n *= int(kv.get(key, 0)) or 1
            out += data[pos:pos + 4 * n]
            pos += 4 * n
    if pos != len(data):
        raise ValueError(f"{bin_in}: {len(data) - pos} bytes of weights belong to layers this writer does not know")
    Path(bin_out).write_bytes(bytes(out))
    return converted
