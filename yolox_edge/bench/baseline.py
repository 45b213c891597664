"""The official-style pipeline, benchmarked beside ours: the official demo's preprocessing,
a raw [1, N, 5+C] ONNX output on onnxruntime FP32, then grid decode and NMS in numpy/Python
on the host (as the official ONNX demo does; its NMS per class at the bench's thresholds, as
our rows', where the demo's is class-agnostic at score 0.1: the same cost). The gain of our
pipeline (decode and NMS on the device, INT8, faster preprocessing) is measured against it."""
from __future__ import annotations

import functools
from pathlib import Path

import cv2
import numpy as np

from ..data.preprocess import PreprocessConfig
from ..decode_np import level_shapes
from ..errors import UserError, in_python
from ..runtime.artifact import run_batched
from ..runtime.base import ModelInfo
from ..runtime.predictor import Predictor


def official_preprocess(img: np.ndarray, cfg: PreprocessConfig) -> tuple[np.ndarray, float]:
    """The official ONNX demo's preprocessing, step for step: a 114-filled canvas, the resized
    image at its top-left, then the uint8 HWC canvas transposed and cast to float32 in one go.

    Same array as ``data.preprocess.preprocess`` (tested), at the official cost: casting the
    strided transpose is slower than ours, which copies plane by plane (at 416x416: 1.9 vs
    0.23 ms alone with warm caches, ~0.25 ms per image inside an end-to-end loop).
    """
    h, w = cfg.input_size
    r = min(h / img.shape[0], w / img.shape[1])
    canvas = np.ones((h, w, 3), np.uint8) * cfg.pad_value
    # at least one pixel each way (as ours): a 2x4000 strip made cv2.resize fail with a traceback
    size = (max(1, int(img.shape[1] * r)), max(1, int(img.shape[0] * r)))
    resized = cv2.resize(img, size, interpolation=cv2.INTER_LINEAR)
    canvas[:resized.shape[0], :resized.shape[1]] = resized
    return np.ascontiguousarray(canvas.transpose(2, 0, 1), dtype=np.float32), r


class RawOnnxBackend:
    """onnxruntime on a raw-output YOLOX ONNX (the official export layout)."""

    name = "onnxruntime"

    def __init__(self, path: str | Path, *, threads: int | None = None) -> None:
        from ..runtime.onnx_backend import cpu_session

        advice = "pass the official YOLOX ONNX as " + in_python("--baseline", "baseline=")
        self.session = cpu_session(path, threads=threads, advice=advice)
        inp = self.session.get_inputs()[0]
        outs = self.session.get_outputs()
        out = outs[0]
        not_raw = (f"{path}: not a raw YOLOX ONNX (expects input [1,3,H,W] and one [1,N,5+C] output, N the grid "
                   "cells of strides 8/16/32); pass the official YOLOX ONNX or an `export --raw` of yours")
        if len(inp.shape) != 4 or len(outs) != 1 or len(out.shape) != 3 or not all(
                isinstance(d, int) for d in (*inp.shape[2:], *out.shape[1:])):
            raise UserError(not_raw)
        self.input_name, self.output_name = inp.name, out.name
        self.input_hw = (int(inp.shape[2]), int(inp.shape[3]))
        if out.shape[1] != sum(h * w for h, w in level_shapes(self.input_hw)):  # e.g. our top-K export
            raise UserError(not_raw)
        self.num_classes = int(out.shape[2]) - 5
        self.fixed_input = self.input_hw
        self.static = inp.shape[0] == 1  # the official export takes one image per call

    def _run(self, x: np.ndarray) -> dict[str, np.ndarray]:
        return {"raw": self.session.run([self.output_name], {self.input_name: x})[0]}

    def infer(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        # bench --data scores it in batches (the evaluator's), one image per call here.
        return run_batched(self._run, batch, self.static)


def baseline_predictor(path: str | Path, *, threads: int | None = None, class_names: list[str] | None = None,
                       count_variant: bool = True, **kw) -> Predictor:
    """Predictor over the official-style pipeline (obj/cls already sigmoid-ed in the graph).
    ``path``: the .onnx, or the folder ``yolox-edge export --raw`` wrote it to.
    ``count_variant``: identify the network (for params/GFLOPs), which loads onnx and torch;
    off where the process's memory is the measurement (bench.rss)."""
    path = _onnx_in(Path(path))
    backend = RawOnnxBackend(path, threads=threads)
    # The rows' names only where the baseline counts the same classes (an 80-class official
    # model beside a 1-class fine-tune is a fair latency pair, but its labels are not theirs).
    same = class_names is not None and len(class_names) == backend.num_classes
    names = list(class_names) if same else [f"class_{i}" for i in range(backend.num_classes)]
    p = Path(path).resolve()
    variant = _variant_of(str(p), p.stat().st_mtime_ns) if count_variant else None
    info = ModelInfo(name="official-style baseline", class_names=names,
                     preprocess=PreprocessConfig(input_size=backend.input_hw), output_kind="raw",
                     raw_activated=True, precision="fp32", extra={"variant": variant} if variant else {})
    return Predictor(backend, info, preprocess_fn=official_preprocess, **kw)


def _onnx_in(path: Path) -> Path:
    """The ONNX file a baseline folder holds (its metadata's model file, else its one .onnx)."""
    if not path.exists():
        raise UserError(f"{path}: not found; pass the official YOLOX ONNX (e.g. yolox_nano.onnx) or the folder "
                        "'yolox-edge export --raw' wrote")
    if not path.is_dir():
        return path
    from ..export.metadata import peek_metadata

    meta = peek_metadata(path)
    if meta is not None and isinstance(meta.get("model_file"), str):
        return path / Path(meta["model_file"]).name
    found = sorted(path.glob("*.onnx"))
    if len(found) != 1:
        raise UserError(f"{path}: a folder without one .onnx in it; pass the official YOLOX ONNX or the folder "
                        "'yolox-edge export --raw' wrote")
    return found[0]


@functools.lru_cache(maxsize=8)
def _variant_of(path: str, _mtime_ns: int) -> str | None:
    """The zoo variant the raw ONNX is an export of, so its row's params/GFLOPs are counted like
    ours; None on a device install (no onnx/torch to read it with) or for another network."""
    try:
        from ..models.official import onnx_variant
        return onnx_variant(path)
    except Exception:  # ImportError on a device install; counts are optional in the report either way
        return None
