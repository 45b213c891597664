"""onnxruntime backend for exported ONNX graphs (CPU provider)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import UserError
from .base import ModelInfo
from .artifact import (as_host, check_graph_input, check_graph_outputs, fixed_input, output_blobs, run_batched,
                       static_batch)


def session_options(threads: int | None):
    """onnxruntime SessionOptions with ``threads`` intra-op threads and one inter-op thread, as
    batch-1 latency wants (None: onnxruntime's own counts)."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    if threads:
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
    return so


def cpu_session(path: str | Path, *, threads: int | None, advice: str):
    """An onnxruntime CPU session with ``threads`` intra-op threads (``session_options``); a file
    onnxruntime cannot load is a UserError ending in ``advice``."""
    import onnxruntime as ort

    try:
        return ort.InferenceSession(str(path), session_options(threads), providers=["CPUExecutionProvider"])
    except Exception as e:  # onnxruntime raises its own Fail/InvalidProtobuf types
        raise UserError(f"{path}: onnxruntime cannot load it ({type(e).__name__}: "
                        f"{str(e).splitlines()[0][:120] if str(e) else ''}); {advice}") from None


class OnnxBackend:
    """An ONNX file run by onnxruntime; outputs renamed to the contract names from metadata."""

    name = "onnxruntime"

    def __init__(self, path: str | Path, meta: dict, *, threads: int | None = None) -> None:
        self.session = cpu_session(path, threads=threads, advice="the file is damaged, re-export it")
        self.input_name = meta["input"]["name"]
        graph_in = self.session.get_inputs()[0]
        check_graph_input(path, meta, {graph_in.name}, list(graph_in.shape))
        self.blobs = output_blobs(meta)
        check_graph_outputs(path, self.blobs, {o.name for o in self.session.get_outputs()})
        self.fixed_input = fixed_input(meta)
        self.static = static_batch(meta)
        self.precision = "fp32"

    def _run(self, x: np.ndarray) -> dict[str, np.ndarray]:
        names = list(self.blobs)
        outs = self.session.run([self.blobs[n] for n in names], {self.input_name: x})
        return {n: as_host(o) for n, o in zip(names, outs)}

    def infer(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        return run_batched(self._run, np.ascontiguousarray(batch, np.float32), self.static)


def open_onnx(path: Path, meta: dict, threads: int | None = None, **options) -> tuple[OnnxBackend, ModelInfo]:
    """ONNX artifact + its metadata -> (backend, info)."""
    from ..export.metadata import model_info
    from .loader import refuse_precision_hint

    refuse_precision_hint(path, "onnxruntime", **options)

    backend = OnnxBackend(path, meta, threads=threads)
    return backend, model_info(meta)
