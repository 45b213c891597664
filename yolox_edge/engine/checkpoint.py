"""The checkpoint contract (DESIGN.md): one dict, saved atomically, loaded weights-only.

Keys: format, version, variant, class_names, preprocess, model (state dict), source,
bn_folded; category_ids (the dataset's id of each class, e.g. a COCO json's category ids) when
the data had ids: a checkpoint without the key loads as before. A training checkpoint adds
recipe, epoch, optimizer, train_state and (EMA on) ema, ema_updates.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from ..data.preprocess import PreprocessConfig
from ..errors import UserError, require_file
from ..fileio import atomic_write_bytes, run_checkpoint
from ..models import Detector, create_model, get_variant
from ..runtime.base import category_ids_problem

FORMAT = "yolox_edge.checkpoint"
VERSION = 1


def save_checkpoint(path: str | Path, model: Detector, *, class_names: list[str],
                    preprocess: PreprocessConfig | None = None, category_ids: list[int] | None = None,
                    **extra: Any) -> Path:
    """Write a checkpoint atomically. ``extra`` holds ema/recipe/epoch/optimizer/etc.
    ``category_ids``: the dataset's id of each class index (stored only when given)."""
    variant = getattr(model, "variant", None)
    if variant is None:
        raise ValueError("model has no .variant; build it with create_model")
    if len(class_names) != model.num_classes:
        raise ValueError(f"{len(class_names)} class names for a {model.num_classes}-class model")
    if category_ids is not None:
        why = category_ids_problem(category_ids, model.num_classes)
        if why:
            raise ValueError(f"category_ids {category_ids!r:.80}: {why}")
    pre = preprocess or PreprocessConfig(input_size=(get_variant(variant).input_size,) * 2)
    ckpt = {"format": FORMAT, "version": VERSION, "variant": variant, "class_names": list(class_names),
            "preprocess": pre.to_dict(), "model": model.state_dict(), **extra}
    if category_ids is not None:
        ckpt["category_ids"] = [int(i) for i in category_ids]
    atomic_write_bytes(path, lambda f: torch.save(ckpt, f))
    return Path(path)


def load_checkpoint(path: str | Path) -> dict:
    """Load a checkpoint dict safely (weights_only) and check it is ours."""
    p = Path(path)
    if p.is_dir():  # an export or a run folder given where its checkpoint belongs
        run = run_checkpoint(p)
        raise UserError(f"{p}: a folder, not a checkpoint; " + (f"give {run}" if run else
                        "give the .pt checkpoint (an export is made from one: quantize and export start from it)"))
    p = require_file(path, "checkpoint")
    try:
        ckpt = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for a corrupt or foreign file
        _refuse_export_file(p)
        hint = (f"official YOLOX weights are imported with 'yolox-edge import-official {p} --variant NAME "
                f"--out {p.stem}.pt'" if p.suffix.lower() in (".onnx", ".pth", ".tar")
                else "give a checkpoint written by yolox-edge (train, import-official, convert)")
        why = "" if p.suffix.lower() in (".onnx", ".pth", ".tar") else f" ({type(e).__name__})"
        raise UserError(f"{p}: not a readable yolox_edge checkpoint{why}; {hint}") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise UserError(f"{p}: not a yolox_edge checkpoint; for official YOLOX weights run "
                        f"'yolox-edge import-official {p} --variant NAME --out model.pt'")
    check_checkpoint_fields(ckpt, p)
    return ckpt


def check_checkpoint_fields(ckpt: dict, path: str | Path = "checkpoint") -> None:
    """UserError naming the field when what the commands read of a checkpoint is not of its kind:
    edited or damaged, a string of class names, a preprocess of another contract or a section that is
    no dict gave TypeError and AttributeError tracebacks (``info``, ``predict``), or an export every
    loader refused. The weights are checked where the model is built (``build_from_checkpoint``)."""
    from ..data.preprocess import check_pixel_input

    edited = "the file is damaged or was edited"
    names = ckpt.get("class_names")
    if names is not None and not (isinstance(names, list) and names and all(isinstance(n, str) for n in names)):
        raise UserError(f"{path}: class_names must be a list of names (strings), not {str(names)[:60]}; {edited}")
    version = ckpt.get("version")
    if version is not None and (not isinstance(version, int) or isinstance(version, bool)):
        raise UserError(f"{path}: version {version!r} is not a number; {edited}")
    if isinstance(version, int) and version > VERSION:  # a field this code would not know how to read
        raise UserError(f"{path}: checkpoint version {version} is newer than this yolox_edge reads ({VERSION}); "
                        "upgrade yolox-edge")
    if ckpt.get("variant") is not None and not isinstance(ckpt["variant"], str):
        raise UserError(f"{path}: variant must be a model name (a string), not {str(ckpt['variant'])[:60]}; {edited}")
    for key in ("preprocess", "source", "train_state", "recipe"):
        if ckpt.get(key) is not None and not isinstance(ckpt[key], dict):
            raise UserError(f"{path}: {key} must be a mapping, not {type(ckpt[key]).__name__}; {edited}")
    check_pixel_input(ckpt.get("preprocess"), f"{path}:", remedy=edited)


def _refuse_export_file(p: Path) -> None:
    """A model file of our own export (its metadata.json beside it lists it) given where a checkpoint
    belongs: the hint for official weights sent users to import-official, which refuses it."""
    from ..export.metadata import METADATA_FILE, peek_metadata

    meta = peek_metadata(p.parent)
    if meta is not None and p.name in (meta.get("files") or {}):
        src = meta.get("source_checkpoint")
        raise UserError(f"{p}: a yolox_edge export (see {p.parent / METADATA_FILE}), not a checkpoint; give the "
                        + (f"checkpoint it was exported from ({src})" if src else ".pt checkpoint it was exported from")
                        + ": export and quantize start from a checkpoint")


def checkpoint_category_ids(ckpt: dict, path: str | Path = "checkpoint") -> list[int] | None:
    """The checkpoint's ``category_ids`` (None when it has none: older checkpoints, YOLO/VOC data),
    or a UserError when the value does not give one id per class."""
    ids = ckpt.get("category_ids")
    if ids is None:
        return None
    why = category_ids_problem(ids, len(ckpt.get("class_names") or []))
    if why:
        raise UserError(f"{path}: category_ids {why}; the file is damaged or was edited")
    return [int(i) for i in ids]


def check_checkpoint_input_size(ckpt: dict, strides, path: str | Path = "checkpoint") -> None:
    """UserError unless ``preprocess.input_size`` is [H, W] (or S), each a positive multiple of the
    largest stride: missing or edited, it was a KeyError or TypeError traceback in predict and
    export, a torch RuntimeError at 65x65."""
    from ..errors import check_input_size

    size = ckpt.get("preprocess", {}).get("input_size") if isinstance(ckpt.get("preprocess"), dict) else None
    try:
        check_input_size(tuple(size) if isinstance(size, list) else size, strides)
    except UserError:
        raise UserError(f"{path}: preprocess.input_size {size!r} is no input size of this model (a positive multiple "
                        f"of {max(strides)} a side); the file is damaged or was edited") from None


def require_checkpoint_keys(ckpt: dict, keys: tuple[str, ...], path: str | Path = "checkpoint") -> None:
    """UserError naming those of ``keys`` the checkpoint lacks (absent or empty): what ``info`` reads
    of it, or (with the weights) what building its model needs."""
    missing = [k for k in keys if not ckpt.get(k)]
    if missing:
        raise UserError(f"{path}: checkpoint lacks {', '.join(missing)}; the file is damaged or was edited")


def build_from_checkpoint(ckpt: dict, *, path: str | Path = "checkpoint", use_ema: bool = True) -> Detector:
    """Instantiate the checkpoint's variant and load its (EMA, when present) weights."""
    require_checkpoint_keys(ckpt, ("variant", "class_names", "model"), path)
    checkpoint_category_ids(ckpt, path)  # a bad value stops here, not in an export or a prediction
    try:
        # The random init is overwritten below; it must not move the caller's random stream.
        with torch.random.fork_rng(devices=[]):
            model = create_model(ckpt["variant"], num_classes=len(ckpt["class_names"]))
    except KeyError as e:  # a variant this version does not know
        raise UserError(f"{path}: {e.args[0]}; upgrade yolox_edge or re-export the checkpoint") from None
    state = ckpt.get("ema") if use_ema and ckpt.get("ema") else ckpt["model"]
    problem = state_mismatch(model.state_dict(), state)
    if problem:
        raise UserError(f"{path}: weights do not fit variant {ckpt['variant']!r} with "
                        f"{len(ckpt['class_names'])} classes ({problem}); the file is damaged or was edited")
    model.load_state_dict(state)
    check_checkpoint_input_size(ckpt, model.strides, path)
    return model.eval()


def state_mismatch(own: dict, state: dict) -> str:
    """A short description of how ``state`` fails to fit ``own`` ('' when it fits)."""
    if not isinstance(state, dict):
        return f"weights are a {type(state).__name__}, not a state dict"
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [k for k in own if k in state and tuple(getattr(state[k], "shape", ())) != tuple(own[k].shape)]
    parts = [f"{len(v)} {what}, e.g. {v[0]}" for what, v in
             (("missing keys", missing), ("unexpected keys", unexpected), ("wrong shapes", shapes)) if v]
    return "; ".join(parts)


def load_model(path: str | Path) -> tuple[Detector, dict]:
    """Checkpoint file -> (model in eval mode, checkpoint dict)."""
    ckpt = load_checkpoint(path)
    return build_from_checkpoint(ckpt, path=path), ckpt
