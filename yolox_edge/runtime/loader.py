"""Open any model artifact as a Predictor. Export-format backends register here."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Callable

from ..errors import UserError, flag_value, require_utf8_path
from ..progress import deprecated_keywords, renamed
from ..threads import check_threads
from .base import Backend, ModelInfo
from .predictor import Predictor

if TYPE_CHECKING:
    import numpy as np

    from ..data.preprocess import PreprocessConfig

    # An image and the model's preprocessing -> (network input, scale), as data.preprocess.preprocess.
    PreprocessFn = Callable[[np.ndarray, PreprocessConfig], tuple[np.ndarray, float]]

# suffix -> opener(path, threads) -> (backend, info); filled by each backend module.
OPENERS: dict[str, Callable[[Path, int | None], tuple[Backend, ModelInfo]]] = {}


def refuse_precision_hint(path: Path, runtime: str, precision_hint: str | None = None, **_options) -> None:
    """UserError for a reduced-precision hint on a runtime that runs fp32 only here (torch,
    onnxruntime CPU): accepting it would report fp32 figures as f16/bf16 ones."""
    if precision_hint not in (None, "f32"):
        raise UserError(f"{path}: {flag_value('--precision-hint', 'precision_hint', precision_hint)} applies to "
                        f"OpenVINO and ncnn models; {runtime} runs fp32 here; drop it")


def _open_checkpoint(path: Path, threads: int | None, **options) -> tuple[Backend, ModelInfo]:
    refuse_precision_hint(path, "torch", **options)
    from ..data.preprocess import PreprocessConfig
    from ..engine.checkpoint import checkpoint_category_ids, load_model
    from .torch_backend import TorchBackend

    model, ckpt = load_model(path)
    info = ModelInfo(name=f"yolox_{ckpt['variant']}", class_names=list(ckpt["class_names"]),
                     preprocess=PreprocessConfig.from_dict(ckpt["preprocess"]), output_kind="decoded",
                     strides=tuple(model.strides), precision="fp32", extra={"variant": ckpt["variant"]},
                     category_ids=checkpoint_category_ids(ckpt, path))
    return TorchBackend(model, threads=threads), info


OPENERS[".pt"] = _open_checkpoint
OPENERS[".pth"] = _open_checkpoint


def _format_opener(fmt: str):
    # Imported on use: openvino/ncnn take a while to import and a checkpoint needs neither.
    if fmt == "onnx":
        from .onnx_backend import open_onnx
        return open_onnx
    if fmt == "openvino":
        from .openvino_backend import open_openvino
        return open_openvino
    if fmt == "ncnn":
        from .ncnn_backend import open_ncnn
        return open_ncnn
    raise UserError(f"unknown exported format {fmt!r} in metadata.json; re-export with this yolox-edge")


def _open_exported(path: Path, threads: int | None, **options) -> tuple[Backend, ModelInfo]:
    """An exported model (its folder, metadata.json or a model file): read + verify metadata, open by format."""
    from ..export.metadata import read_metadata

    meta = read_metadata(path)
    d = Path(meta["_dir"])
    if path.is_file() and path.suffix != ".json" and path.name not in meta["files"]:
        raise UserError(f"{path}: not listed in {d / 'metadata.json'} (it describes {meta['model_file']}); "
                        "keep each export in its own folder")
    return _format_opener(meta["format"])(d / meta["model_file"], meta, threads, **options)


for _suffix in (".onnx", ".xml", ".param", ".bin", ".json"):
    OPENERS[_suffix] = _open_exported


def _open_bundle(path: Path, threads: int | None, **options) -> tuple[Backend, ModelInfo]:
    """A mobile bundle (.zip): verified, extracted to a private folder, its model opened."""
    from ..bundle import open_bundle_model  # imported on use: bundle imports export.metadata

    return open_bundle_model(path, threads=threads, **options)


OPENERS[".zip"] = _open_bundle


def open_model(path: str | Path, *, threads: int | None = None, **options) -> tuple[Backend, ModelInfo]:
    """Artifact path (checkpoint, exported model file, metadata.json or export folder) -> (backend, info).

    ``options`` go to exported-model backends, e.g. ``precision_hint='f32'`` (OpenVINO, ncnn).
    """
    check_threads(threads)
    p = Path(path)
    if not p.exists():
        raise UserError(f"{p}: model not found; pass a checkpoint (.pt) or an exported artifact")
    if p.is_dir() or p.suffix.lower() in (".onnx", ".xml", ".param", ".bin", ".json"):
        require_utf8_path(p, "model")  # torch and the bundle reader open it through Python: any name is fine
    if p.is_dir():
        return _open_exported(p, threads, **options)
    opener = OPENERS.get(p.suffix.lower())
    if opener is None:
        raise UserError(f"{p}: unknown model type {p.suffix or '(no suffix)'}; "
                        f"supported: {', '.join(sorted(OPENERS))} or an export folder")
    return opener(p, threads, **options) if options else opener(p, threads)


# What ``load_predictor(defaults=)`` may hold: the keywords Predictor() takes beside the backend and
# info (tests/runtime check they stay the same). A misspelt key ({"nms": 0.5}) was merged as it was
# and failed after the model had been opened, in Predictor(), with a message naming neither.
DEFAULT_KEYS = ("conf", "iou", "agnostic", "max_det", "preprocess_fn")


def check_defaults(defaults: dict | None) -> None:
    """TypeError naming the keys of ``load_predictor(defaults=)`` that Predictor() does not take."""
    unknown = [k for k in defaults or {} if k not in DEFAULT_KEYS]
    if unknown:
        raise TypeError(f"load_predictor(defaults=): unknown key{'s' if len(unknown) > 1 else ''} "
                        f"{', '.join(map(repr, unknown))}; the keys it takes are {', '.join(DEFAULT_KEYS)} "
                        "(the NMS IoU is 'iou', the score threshold 'conf')")


def set_input_size_of(pred: Predictor, size: int | tuple[int, int], path: str | Path) -> None:
    """``pred.set_input_size(size)``, its refusal naming ``path`` (the predictor does not know
    the path the user typed)."""
    try:
        pred.set_input_size(size)
    except UserError as e:  # its class kept: an out-of-range size is a BadArgument (a ValueError too)
        raise type(e)(f"{path}: {e}") from None


@deprecated_keywords(path=renamed("model"))  # its earlier name; the model, as every other call names it
def load_predictor(model: str | Path, *, threads: int | None = None, precision_hint: str | None = None,
                   defaults: dict | None = None, img_size: int | tuple[int, int] | None = None,
                   conf: float | None = None, iou: float | None = None, agnostic: bool | None = None,
                   max_det: int | None = None, preprocess_fn: PreprocessFn | None = None) -> Predictor:
    """``model`` (checkpoint, export or bundle) -> Predictor.

    ``conf`` (``--conf``: the score threshold), ``iou`` (``--nms``: the NMS IoU), ``agnostic``
    (NMS across classes) and ``max_det`` (the most detections kept): each not given (or given as
    None) comes from a bundle's own thresholds (metadata ``postprocess``, what the app uses), else
    from ``defaults`` (a dict of those keys, and ``preprocess_fn``: ``DEFAULT_KEYS``; another key is
    a TypeError naming it, before the model is opened), else from the Predictor's (``thresholds.APP_*``).
    ``threads`` is the runtime's thread count (None: its default); ``precision_hint`` (OpenVINO,
    ncnn) e.g. ``'f16'``; ``img_size`` (an int, or (H, W)) runs the model at that input size (a
    static export at another size is refused); ``preprocess_fn`` takes the place of the letterbox
    (``data.preprocess.preprocess``). ``path=`` is the deprecated name of ``model``.
    """
    path = model
    check_defaults(defaults)
    options = {"precision_hint": precision_hint} if precision_hint else {}
    backend, info = open_model(path, threads=threads, **options)
    pp = info.extra.get("postprocess") or {}
    bundled = {"conf": pp.get("conf"), "iou": pp.get("nms"), "agnostic": pp.get("agnostic"),
               "max_det": pp.get("max_det")}
    given = {"conf": conf, "iou": iou, "agnostic": agnostic, "max_det": max_det, "preprocess_fn": preprocess_fn}
    layers = (defaults or {}, bundled, given)  # later layers win
    merged = {k: v for layer in layers for k, v in layer.items() if v is not None}
    pred = Predictor(backend, info, **merged)
    if img_size is not None:  # 0 too: refused by the size check, not ignored
        set_input_size_of(pred, img_size, path)
    return pred
