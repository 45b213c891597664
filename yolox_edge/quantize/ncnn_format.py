"""Read and write ncnn .param/.bin files (the subset of layers a YOLOX export contains).

The .bin is a plain concatenation, layer by layer in .param order, of what each layer's
``load_model`` reads: ``mb.load(n, 0)`` is a *tagged* array (4-byte tag: 0 fp32,
0x01306B47 fp16, 0x000D4B38 int8; fp16/int8 payloads padded to 4 bytes) and
``mb.load(n, 1)`` is raw float32. Only the layer types listed in ``_WEIGHTS`` carry
weights here; any other type that is not known to be weightless is refused, because
misreading one layer would shift every later weight.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..fileio import atomic_write_bytes

MAGIC = "7767517"
TAG_FP32, TAG_FP16, TAG_INT8 = 0x00000000, 0x01306B47, 0x000D4B38

# Layers of a pnnx YOLOX export (and common neighbours) that read nothing from the .bin.
WEIGHTLESS = {
    "Input", "Split", "Concat", "Swish", "Sigmoid", "ReLU", "Clip", "HardSwish", "HardSigmoid", "Mish",
    "Pooling", "Interp", "BinaryOp", "UnaryOp", "Reshape", "Permute", "Slice", "Crop", "Reorg", "Flatten",
    "Eltwise", "Noop", "Softmax", "Padding", "Squeeze", "ExpandDims", "Tile", "PixelShuffle", "Dropout",
    "TanH", "ELU", "GELU", "Quantize", "Dequantize",
}


@dataclass
class Layer:
    """One .param line: type, name, bottoms, tops, params as ``key -> raw value text``."""

    type: str
    name: str
    bottoms: list[str]
    tops: list[str]
    params: dict[str, str] = field(default_factory=dict)
    # (kind, array): kind "tagged" (mb.load(n, 0)) or "raw" (mb.load(n, 1)); arrays float32 or int8.
    weights: list[tuple[str, np.ndarray]] = field(default_factory=list)

    def geti(self, key: int, default: int = 0) -> int:
        return int(self.params.get(str(key), default))

    def line(self) -> str:
        parts = [f"{self.type:<24}", f"{self.name:<24}", str(len(self.bottoms)), str(len(self.tops)),
                 *self.bottoms, *self.tops, *(f"{k}={v}" for k, v in self.params.items())]
        return " ".join(parts)


@dataclass
class NcnnModel:
    layers: list[Layer]

    def blob_count(self) -> int:
        return len({b for lay in self.layers for b in lay.tops})

    def find(self, name: str) -> Layer:
        return next(lay for lay in self.layers if lay.name == name)


def parse_param(text: str, where: str = "param") -> list[Layer]:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    if not lines or lines[0] != MAGIC:
        raise ValueError(f"{where}: not an ncnn param file (bad magic)")
    n_layers = int(lines[1].split()[0])
    layers = []
    for ln in lines[2:2 + n_layers]:
        tok = ln.split()
        nb, nt = int(tok[2]), int(tok[3])
        bottoms, tops = tok[4:4 + nb], tok[4 + nb:4 + nb + nt]
        params = dict(kv.split("=", 1) for kv in tok[4 + nb + nt:])
        layers.append(Layer(tok[0], tok[1], bottoms, tops, params))
    if len(layers) != n_layers:
        raise ValueError(f"{where}: header says {n_layers} layers, found {len(layers)}")
    return layers


def _mem_size(lay: Layer) -> int:
    dims = [lay.geti(0), lay.geti(1), lay.geti(11), lay.geti(2)]
    n = 1
    for d in dims:
        n *= d if d else 1
    return n


def _weight_plan(lay: Layer) -> list[tuple[str, int]]:
    """What ``load_model`` of this float layer reads: [(kind, count)]."""
    t = lay.type
    if t in ("Convolution", "ConvolutionDepthWise"):
        if lay.geti(8):
            raise ValueError(f"layer {lay.name} is already INT8 (8={lay.geti(8)}); quantize a float model")
        plan = [("tagged", lay.geti(6))]
        if lay.geti(5):
            plan.append(("raw", lay.geti(0)))
        return plan
    if t == "MemoryData":
        return [("raw", _mem_size(lay))]
    if t == "Scale":
        n = lay.geti(0)
        return [("raw", n)] + ([("raw", n)] if lay.geti(1) else [])
    if t == "InnerProduct":
        if lay.geti(8):
            raise ValueError(f"layer {lay.name} is already INT8; quantize a float model")
        return [("tagged", lay.geti(2))] + ([("raw", lay.geti(0))] if lay.geti(1) else [])
    if t in WEIGHTLESS:
        return []
    raise ValueError(f"layer {lay.name}: type {t} is not supported by the INT8 writer")


def _read_tagged(buf: memoryview, off: int, n: int, where: str) -> tuple[np.ndarray, int]:
    (tag,) = struct.unpack_from("<I", buf, off)
    off += 4
    if tag == TAG_FP32:
        arr = np.frombuffer(buf, np.float32, n, off).copy()
        return arr, off + 4 * n
    if tag == TAG_FP16:
        arr = np.frombuffer(buf, np.float16, n, off).astype(np.float32)
        return arr, off + ((2 * n + 3) // 4) * 4
    raise ValueError(f"{where}: unsupported weight storage tag 0x{tag:08X} (expected fp32 or fp16)")


def read_ncnn(param_path: str | Path, bin_path: str | Path) -> NcnnModel:
    """Parse a float ncnn model into layers with their weight arrays."""
    layers = parse_param(Path(param_path).read_text(), str(param_path))
    buf = memoryview(Path(bin_path).read_bytes())
    off = 0
    for lay in layers:
        for kind, n in _weight_plan(lay):
            if kind == "tagged":
                arr, off = _read_tagged(buf, off, n, f"{bin_path} (layer {lay.name})")
            else:
                arr = np.frombuffer(buf, np.float32, n, off).copy()
                off += 4 * n
            lay.weights.append((kind, arr))
    if off != len(buf):
        raise ValueError(f"{bin_path}: {len(buf) - off} bytes left after the last layer; param and bin do not match")
    return NcnnModel(layers)


def _chunk_bytes(kind: str, arr: np.ndarray) -> bytes:
    if kind == "raw":
        return np.ascontiguousarray(arr, np.float32).tobytes()
    if arr.dtype == np.int8:
        data = arr.tobytes()
        return struct.pack("<I", TAG_INT8) + data + b"\0" * ((-len(data)) % 4)
    return struct.pack("<I", TAG_FP32) + np.ascontiguousarray(arr, np.float32).tobytes()


def serialize(model: NcnnModel) -> tuple[bytes, bytes]:
    """(param text, bin bytes) of a model."""
    lines = [MAGIC, f"{len(model.layers)} {model.blob_count()}", *(lay.line() for lay in model.layers)]
    blob = b"".join(_chunk_bytes(k, a) for lay in model.layers for k, a in lay.weights)
    return ("\n".join(lines) + "\n").encode(), blob


def write_ncnn(model: NcnnModel, param_path: str | Path, bin_path: str | Path) -> None:
    """Write param and bin atomically (bin first: a param never points at a missing bin)."""
    ptext, blob = serialize(model)
    atomic_write_bytes(bin_path, lambda f: f.write(blob))
    atomic_write_bytes(param_path, lambda f: f.write(ptext))
