"""ncnn backend for pnnx-converted param/bin exports (one image per extractor)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import UserError
from .base import ModelInfo
from .artifact import check_graph_outputs, fixed_input, output_blobs, precision_label, run_batched

PRECISION_HINTS = ("f32", "f16")


def f16_in_effect(ncnn) -> str:
    """What ncnn makes of fp16 on this CPU when allowed to: 'f16' where ARM's fp16 arithmetic
    (asimdhp, ARMv8.2) runs the layers, 'f16 storage' where fp16 is only stored and converted (an
    ARM CPU without it), 'f32' on x86: its layers take no fp16 path here (outputs identical to f32)."""
    if ncnn.cpu_support_arm_asimdhp():
        return "f16"
    if ncnn.cpu_support_arm_vfpv4() or ncnn.cpu_support_arm_neon():
        return "f16 storage"
    return "f32"


class NcnnBackend:
    """An ncnn Net; ``precision_hint='f32'`` turns off ncnn's fp16/bf16 storage and arithmetic."""

    name = "ncnn"

    def __init__(self, param: str | Path, binf: str | Path, meta: dict, *, threads: int | None = None,
                 precision_hint: str = "f32") -> None:
        import ncnn

        if precision_hint not in PRECISION_HINTS:
            raise UserError(f"ncnn precision hint {precision_hint!r}: choose one of {', '.join(PRECISION_HINTS)}")
        net = ncnn.Net()
        fp16 = precision_hint == "f16"
        # ncnn enables fp16 paths by default where the CPU has them; accuracy work wants none.
        net.opt.use_fp16_storage = net.opt.use_fp16_packed = net.opt.use_fp16_arithmetic = fp16
        net.opt.use_bf16_storage = False
        net.opt.use_vulkan_compute = False
        if threads:
            net.opt.num_threads = int(threads)
        if net.load_param(str(param)) != 0:
            raise UserError(f"{param}: ncnn cannot parse this param file; it is damaged, re-export it")
        if net.load_model(str(binf)) != 0:
            raise UserError(f"{binf}: ncnn cannot load these weights (truncated?); re-export the model")
        self.net = net
        # What runs, not what was asked: the bench's row says "(f16 asked)" where they differ, as for
        # OpenVINO (a row that read 'f16 inference' ran f32 on x86)
        self.precision = f16_in_effect(ncnn) if fp16 else "f32"
        self.input_name = meta["input"]["name"]
        if self.input_name not in net.input_names():  # else ncnn's code -1 at the first image
            raise UserError(f"{param}: the graph's input is {', '.join(map(repr, net.input_names()))} but metadata.json "
                            f"names {self.input_name!r}; re-export the model")
        self.blobs = output_blobs(meta)
        check_graph_outputs(param, self.blobs, set(net.output_names()))
        self.fixed_input = fixed_input(meta)

    def _run(self, x: np.ndarray) -> dict[str, np.ndarray]:
        import ncnn

        # ncnn.Mat wraps the array's memory without copying: keep the array referenced
        # until every output is extracted, and copy outputs out before the extractor goes.
        arr = np.ascontiguousarray(x[0], dtype=np.float32)
        ex = self.net.create_extractor()
        try:
            ex.input(self.input_name, ncnn.Mat(arr))
            out = {}
            for name, blob in self.blobs.items():
                ret, mat = ex.extract(blob)
                if ret != 0:
                    raise RuntimeError(f"ncnn failed to compute output {blob!r} (code {ret})")
                out[name] = np.array(mat, copy=True)[None]  # ncnn drops the batch dimension; put it back
        finally:
            ex.clear()
            del ex
        return out

    def infer(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        return run_batched(self._run, np.ascontiguousarray(batch, np.float32), True)


def open_ncnn(path: Path, meta: dict, threads: int | None = None, *, precision_hint: str | None = None,
              **_: object) -> tuple[NcnnBackend, ModelInfo]:
    """ncnn param (+ the .bin named in metadata) -> (backend, info)."""
    from ..export.metadata import model_info

    d = Path(meta["_dir"])
    bins = [f for f in meta["files"] if f.endswith(".bin")]
    if not bins:
        raise UserError(f"{d / 'metadata.json'}: lists no ncnn .bin file; re-export the model")
    backend = NcnnBackend(path, d / bins[0], meta, threads=threads, precision_hint=precision_hint or "f32")
    info = model_info(meta)
    info.precision = precision_label(meta, backend.precision)
    return backend, info
