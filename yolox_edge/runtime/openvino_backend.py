"""OpenVINO backend (CPU) for IR (.xml/.bin) exports, with an explicit precision hint."""
from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from ..errors import UserError
from ..data.preprocess import PreprocessConfig
from .base import ModelInfo
from .artifact import (check_graph_input, check_graph_outputs, fixed_input, output_blobs, precision_label,
                       run_batched, static_batch)

# OpenVINO on CPUs with bf16/fp16 units runs FP32 IRs in reduced precision by default;
# accuracy work needs f32, so the backend always states the hint.
PRECISION_HINTS = ("f32", "bf16", "f16")
DEFAULT_HINT = "f32"


def cpu_config(precision_hint: str, threads: int | None) -> dict[str, object]:
    """CPU compile settings: the precision hint always (see above), the thread count when given
    (None: OpenVINO's own, every core the process may use)."""
    config: dict[str, object] = {"INFERENCE_PRECISION_HINT": precision_hint}
    if threads:
        config["INFERENCE_NUM_THREADS"] = int(threads)
    return config


@functools.lru_cache(maxsize=None)
def shared_core():
    """The process's one ``openvino.Core``, for every model this package compiles.

    Why one: OpenVINO's CPU plugin (2026.4) puts an alternate signal stack of its own on the
    thread that compiles, and puts back the one it found when it is destroyed. Cores destroyed
    in another order than they were made leave the thread pointing at freed memory, and the next
    signal (Ctrl-C, SIGTERM) then kills the process with SIGSEGV instead of stopping it cleanly
    (two predictors loaded and dropped first-in first-out were enough). One Core is never
    destroyed before exit. Compile settings are per call, so sharing it changes nothing else."""
    import openvino as ov

    return ov.Core()


class OpenVINOBackend:
    """An IR compiled for CPU with INFERENCE_PRECISION_HINT and thread count set explicitly.

    It takes either float32 NCHW batches (the contract's tensor) or, where the model's input
    is a 3-channel NCHW image (``takes_pixels``), the letterboxed uint8 NHWC canvases: then the
    uint8 -> float32 conversion, the HWC -> CHW reorder, the channel order and mean/std run
    inside the compiled model (OpenVINO's preprocessing), about 1.2 ms less per Nano image at
    416 than doing them in numpy, with the same numbers. The IR on disk is not changed.
    """

    name = "openvino"

    def __init__(self, xml_path: str | Path, meta: dict, *, threads: int | None = None,
                 precision_hint: str = DEFAULT_HINT, device: str = "CPU") -> None:
        if precision_hint not in PRECISION_HINTS:
            raise UserError(f"OpenVINO precision hint {precision_hint!r}: choose one of {', '.join(PRECISION_HINTS)}")
        self.config = cpu_config(precision_hint, threads)
        self.xml_path, self.device = Path(xml_path), device
        self.core = shared_core()
        self.input_name = meta["input"]["name"]
        try:
            self.model = self.core.read_model(str(xml_path))
        except Exception as e:  # openvino raises RuntimeError with a long C++ trace
            raise self._unloadable(e) from None
        port = self.model.inputs[0]
        check_graph_input(xml_path, meta, set(port.get_names()),
                          [d.get_length() if d.is_static else None for d in port.get_partial_shape()])
        self.blobs = output_blobs(meta)
        check_graph_outputs(xml_path, self.blobs, {n for port in self.model.outputs for n in port.get_names()})
        self._pre = PreprocessConfig.from_dict(meta["preprocess"])
        self.takes_pixels = self._pre.layout == "NCHW" and _image_input(self.model) and _exact_on_pixels(self.model)
        self._requests: dict[bool, tuple] = {}  # pixels? -> (infer request, output ports)
        compiled = self._compile(pixels=self.takes_pixels)
        # What the plugin actually uses (a device without the requested type may fall back).
        self.precision = compiled.get_property("INFERENCE_PRECISION_HINT").to_string()
        self.fixed_input = fixed_input(meta)
        self.static = static_batch(meta)

    def _unloadable(self, e: Exception) -> UserError:
        return UserError(f"{self.xml_path}: OpenVINO cannot load it ({type(e).__name__}); the IR is damaged or its "
                         ".bin is missing, re-export it")

    def _compile(self, *, pixels: bool):
        """Compile the pixel-input or the float-input model (each once, when first needed)."""
        model = _with_pixel_input(self.model, self._pre) if pixels else self.model
        try:
            compiled = self.core.compile_model(model, self.device, self.config)
        except Exception as e:
            raise self._unloadable(e) from None
        ports = {n: compiled.output(b) for n, b in self.blobs.items()}
        self._requests[pixels] = (compiled.create_infer_request(), ports)
        return compiled

    def _run(self, x: np.ndarray) -> dict[str, np.ndarray]:
        pixels = x.dtype == np.uint8
        if pixels and not self.takes_pixels:
            raise ValueError("this model takes float32 NCHW input, not uint8 pixels")
        if pixels not in self._requests:
            self._compile(pixels=pixels)
        request, ports = self._requests[pixels]
        res = request.infer({self.input_name: x})
        return {n: np.array(res[p]) for n, p in ports.items()}

    def infer(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        """float32 [B, 3, H, W], or uint8 [B, H, W, 3] letterboxed BGR pixels when ``takes_pixels``."""
        if batch.dtype != np.uint8:
            batch = np.ascontiguousarray(batch, np.float32)
        return run_batched(self._run, np.ascontiguousarray(batch), self.static)


def _image_input(model) -> bool:
    """One input of shape [N, 3, H, W] in float32: the contract's image tensor."""
    import openvino as ov

    if len(model.inputs) != 1:
        return False
    port = model.inputs[0]
    shape = port.get_partial_shape()
    return port.get_element_type() == ov.Type.f32 and shape.rank.is_static and shape.rank.get_length() == 4 \
        and shape[1].is_static and shape[1].get_length() == 3


# An input quantizer that is the identity on pixels 0..255 (written by quantize.pixel_input).
PIXEL_FQ_LEVELS, PIXEL_FQ_RANGE = 256, (0.0, 255.0)


def input_fake_quantizes(model) -> list:
    """The FakeQuantize nodes fed directly by a model input (NNCF's input quantizer)."""
    return [t.get_node() for p in model.get_parameters() for t in p.output(0).get_target_inputs()
            if t.get_node().get_type_name() == "FakeQuantize"]


def _exact_on_pixels(model) -> bool:
    """False where a FakeQuantize on the input has a calibrated range (INT8 IRs from before
    ``quantize.pixel_input``): OpenVINO's uint8-input path then rounds differently from the
    float path (boxes moved by 1-2 px on Nano), so those IRs keep the float input."""
    lo, hi = PIXEL_FQ_RANGE
    for fq in input_fake_quantizes(model):
        ranges = [fq.input_value(i).get_node() for i in range(1, 5)]
        if fq.get_attributes().get("levels") != PIXEL_FQ_LEVELS:
            return False
        if any(r.get_type_name() != "Constant" for r in ranges):
            return False
        if [np.unique(r.get_data()).tolist() for r in ranges] != [[lo], [hi], [lo], [hi]]:
            return False
    return True


def _with_pixel_input(model, pre: PreprocessConfig):
    """A copy of ``model`` taking uint8 NHWC BGR pixels, converted in-graph as ``to_network`` does."""
    import openvino as ov
    from openvino.preprocess import PrePostProcessor

    ppp = PrePostProcessor(model.clone())
    ppp.input().tensor().set_element_type(ov.Type.u8).set_layout(ov.Layout("NHWC"))
    ppp.input().model().set_layout(ov.Layout("NCHW"))
    steps = ppp.input().preprocess()
    steps.convert_element_type(ov.Type.f32)
    if pre.channel_order == "RGB":
        steps.reverse_channels()
    if pre.mean is not None:
        steps.mean(list(map(float, pre.mean))).scale(list(map(float, pre.std)))
    return ppp.build()


def open_openvino(path: Path, meta: dict, threads: int | None = None, *, precision_hint: str | None = None,
                  **_: object) -> tuple[OpenVINOBackend, ModelInfo]:
    """IR artifact + its metadata -> (backend, info); info.precision states weights and execution."""
    from ..export.metadata import model_info

    backend = OpenVINOBackend(path, meta, threads=threads, precision_hint=precision_hint or DEFAULT_HINT)
    info = model_info(meta)
    info.precision = precision_label(meta, backend.precision)
    info.extra["inference_precision"] = backend.precision
    return backend, info
