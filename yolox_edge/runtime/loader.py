"""Open any model artifact as a Predictor. Export-format backends register here."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from ..errors import UserError
from .base import Backend, ModelInfo
from .predictor import Predictor

# suffix -> opener(path, threads) -> (backend, info); filled by each backend module.
OPENERS: dict[str, Callable[[Path, int | None], tuple[Backend, ModelInfo]]] = {}


def _open_checkpoint(path: Path, threads: int | None) -> tuple[Backend, ModelInfo]:
    from ..data.preprocess import PreprocessConfig
    from ..engine.checkpoint import load_model
    from .torch_backend import TorchBackend

    model, ckpt = load_model(path)
    info = ModelInfo(name=f"yolox_{ckpt['variant']}", class_names=list(ckpt["class_names"]),
                     preprocess=PreprocessConfig.from_dict(ckpt["preprocess"]), output_kind="decoded",
                     strides=tuple(model.strides), precision="fp32", extra={"variant": ckpt["variant"]})
    return TorchBackend(model, threads=threads), info


OPENERS[".pt"] = _open_checkpoint
OPENERS[".pth"] = _open_checkpoint


def open_model(path: str | Path, *, threads: int | None = None) -> tuple[Backend, ModelInfo]:
    """Artifact path -> (backend, model info)."""
    p = Path(path)
    if not p.exists():
        raise UserError(f"{p}: model not found; pass a checkpoint (.pt) or an exported artifact")
    opener = OPENERS.get(p.suffix.lower())
    if opener is None:
        raise UserError(f"{p}: unknown model type {p.suffix or '(no suffix)'}; "
                        f"supported: {', '.join(sorted(OPENERS))}")
    return opener(p, threads)


def load_predictor(path: str | Path, *, threads: int | None = None, **kw) -> Predictor:
    """Artifact path -> Predictor (kw: conf, iou, agnostic, max_det)."""
    backend, info = open_model(path, threads=threads)
    return Predictor(backend, info, **kw)
