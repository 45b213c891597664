"""OpenVINO backend (CPU) for IR (.xml/.bin) exports, with an explicit precision hint."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import UserError
from .base import ModelInfo
from .artifact import fixed_input, output_blobs, precision_label, run_batched, static_batch

# OpenVINO on CPUs with bf16/fp16 units runs FP32 IRs in reduced precision by default;
# accuracy work needs f32, so the backend always states the hint.
PRECISION_HINTS = ("f32", "bf16", "f16")
DEFAULT_HINT = "f32"


class OpenVINOBackend:
    """An IR compiled for CPU with INFERENCE_PRECISION_HINT and thread count set explicitly."""

    name = "openvino"

    def __init__(self, xml_path: str | Path, meta: dict, *, threads: int | None = None,
                 precision_hint: str = DEFAULT_HINT, device: str = "CPU") -> None:
        import openvino as ov

        if precision_hint not in PRECISION_HINTS:
            raise UserError(f"OpenVINO precision hint {precision_hint!r}: choose one of {', '.join(PRECISION_HINTS)}")
        config: dict[str, object] = {"INFERENCE_PRECISION_HINT": precision_hint}
        if threads:
            config["INFERENCE_NUM_THREADS"] = int(threads)
        core = ov.Core()
        try:
            model = core.read_model(str(xml_path))
            self.compiled = core.compile_model(model, device, config)
        except Exception as e:  # openvino raises RuntimeError with a long C++ trace
            raise UserError(f"{xml_path}: OpenVINO cannot load it ({type(e).__name__}); the IR is damaged or its "
                            ".bin is missing, re-export it") from None
        # What the plugin actually uses (a device without the requested type may fall back).
        self.precision = self.compiled.get_property("INFERENCE_PRECISION_HINT").to_string()
        self.input_name = meta["input"]["name"]
        self.blobs = output_blobs(meta)
        self.ports = {n: self.compiled.output(b) for n, b in self.blobs.items()}
        self.fixed_input = fixed_input(meta)
        self.static = static_batch(meta)
        self.request = self.compiled.create_infer_request()

    def _run(self, x: np.ndarray) -> dict[str, np.ndarray]:
        res = self.request.infer({self.input_name: x})
        return {n: np.array(res[p]) for n, p in self.ports.items()}

    def infer(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        return run_batched(self._run, np.ascontiguousarray(batch, np.float32), self.static)


def open_openvino(path: Path, meta: dict, threads: int | None = None, *, precision_hint: str | None = None,
                  **_: object) -> tuple[OpenVINOBackend, ModelInfo]:
    """IR artifact + its metadata -> (backend, info); info.precision states weights and execution."""
    from ..export.metadata import model_info

    backend = OpenVINOBackend(path, meta, threads=threads, precision_hint=precision_hint or DEFAULT_HINT)
    info = model_info(meta)
    info.precision = precision_label(meta, backend.precision)
    info.extra["inference_precision"] = backend.precision
    return backend, info
