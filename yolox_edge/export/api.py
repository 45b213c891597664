"""``export_model``: a checkpoint -> one exported artifact folder (model files + metadata.json)."""
from __future__ import annotations

import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from ..thresholds import EVAL_CONF, EVAL_NMS_IOU
from ..data.preprocess import PreprocessConfig
from ..engine.checkpoint import checkpoint_category_ids, load_model
from ..fileio import missing_folders, remove_empty_folders, replace_durably, sha256_file, stops_held
from ..owners import owner_tag, sweep_dead_folders
from ..progress import deprecated_keywords, renamed
from ..errors import (FORCE, OUT, BadArgument, UserError, check_input_size, flag_value, in_python, input_hw,
                      require_out_folder, require_utf8_path)
from ..models import Detector, variant_counts
from .metadata import METADATA_FILE, build_metadata, output_specs, write_metadata
from .wrapper import DeployModel, num_anchors

FORMATS = ("onnx", "openvino", "ncnn")
PRECISIONS = ("fp32", "fp16")
DEFAULT_TOPK = 100
# In-graph NMS defaults (top-K exports to formats with an NMS op): YOLOX's eval threshold,
# so an export's AP equals the host pipeline's; apps may NMS again at a lower IoU on the host.
DEFAULT_NMS_IOU = EVAL_NMS_IOU
DEFAULT_NMS_CONF = EVAL_CONF
NMS_FORMATS = ("onnx", "openvino")
STAGE_PREFIX = ".export_"  # the hidden folder an export is written in before its files move into --out


@dataclass
class ExportResult:
    """Where an export went and what it says about itself: ``directory`` (the folder),
    ``model_file`` (the file a runtime opens: .onnx, .xml or .param), ``files`` (every file
    written, metadata.json last) and ``metadata`` (metadata.json's contents)."""

    directory: Path
    model_file: Path
    files: list[Path]
    metadata: dict


def check_silu(formats: list[str], silu: str) -> None:
    """Refuse an unknown ``silu`` mode, and ``rational`` where no format is OpenVINO."""
    from .silu_rational import check_silu_mode

    check_silu_mode(silu)
    if silu == "rational" and "openvino" not in formats:
        raise UserError(f"{flag_value('--silu', 'silu', silu)} rewrites OpenVINO IR only; add --format openvino "
                        "or leave --silu out")


def output_plan(fmt: str, precision: str, topk: int | None, raw: bool, dynamic_batch: bool) -> tuple[str, int | None]:
    """Check the option combination; returns (output kind, K)."""
    if fmt not in FORMATS:
        raise UserError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    if precision not in PRECISIONS:
        raise UserError(f"unknown precision {precision!r}; choose fp32 or fp16")
    if precision == "fp16" and fmt == "onnx":
        fp16_ir = in_python("--format openvino --precision fp16", "format='openvino', precision='fp16'")
        raise UserError("fp16 ONNX is not supported (onnxruntime CPU has no fp16 kernels for most ops); "
                        f"use {fp16_ir}, or fp32 ONNX")
    if fmt == "ncnn" and dynamic_batch:
        raise UserError(f"{in_python('--dynamic-batch', 'dynamic_batch=True')} does not apply to ncnn (it runs one "
                        "image per extractor); drop it")
    if raw and topk:
        raise UserError(f"{in_python('--raw and --topk', f'raw=True and topk={topk}')} exclude each other; --raw "
                        "writes the official [B, N, 5+C] output")
    if topk is not None and topk < 0:
        raise BadArgument(f"{flag_value('--topk', 'topk', topk)}: must be >= 1, or 0 for no in-graph top-K")
    if fmt == "ncnn" and topk:
        raise UserError("ncnn has no TopK/ArgMax/Gather layer in its standard build, so an ncnn graph cannot keep "
                        f"the top-K; omit {in_python('--topk', 'topk=None')}: the graph then ends in decoded boxes + scores")
    if raw:
        return "raw", None
    if topk is None:
        topk = 0 if fmt == "ncnn" else DEFAULT_TOPK
    return ("topk", topk) if topk else ("decoded", None)


def output_folder(out_dir: str | Path) -> Path:
    """Create the artifact folder (files reach it by rename from a temp folder inside it)."""
    out = require_out_folder(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    return out


def graph_topk(k: int | None, hw: tuple[int, int], strides) -> int | None:
    """The K a top-K graph of input ``hw`` keeps, and its metadata records: a graph cannot keep
    more candidates than it has anchors (``k`` None or 0, no top-K, is returned as it is)."""
    return min(k, num_anchors(hw, strides)) if k else k


def model_file_names(fmt: str, stem: str) -> list[str]:
    """The model files an export of ``fmt`` writes, named from ``stem`` (``yolox_<variant>``, with
    ``_int8`` for quantize's): the main one first."""
    return {"onnx": [f"{stem}.onnx"], "openvino": [f"{stem}.xml", f"{stem}.bin"],
            "ncnn": [f"{stem}.ncnn.param", f"{stem}.ncnn.bin"]}[fmt]


def refuse_files_in_the_way(out_dir: str | Path, names: list[str], force: bool) -> None:
    """UserError, unless ``force``, when a file an export is about to write is in ``out_dir`` and
    no earlier export's metadata.json there lists it: a user's own ``yolox_nano.onnx`` (the official
    model, in the folder given as --out) was written over without a word."""
    if force:
        return
    from .metadata import peek_metadata

    listed = set((peek_metadata(out_dir) or {}).get("files") or {})
    for name in names:
        p = Path(out_dir) / name
        if (p.exists() or p.is_symlink()) and name not in listed:
            raise UserError(f"{p}: already there, and no export in {out_dir} lists it: this export would write over "
                            f"it; move it away, choose another {OUT}, or pass {FORCE} to replace it")


def refuse_earlier_export(out_dir: str | Path, force: bool) -> None:
    """UserError when the --out folder holds an export (its metadata.json) and ``force`` is off, and
    whatever ``force`` when its metadata.json is not a yolox_edge export's (a dataset's, say): that one
    is no list of files to remove, and this export would write over it."""
    from .metadata import METADATA_FILE, is_export_metadata, peek_metadata

    meta_path = Path(out_dir) / METADATA_FILE
    if not meta_path.is_file():
        return
    if not is_export_metadata(peek_metadata(out_dir)):
        raise UserError(f"{meta_path}: not a yolox_edge export's metadata.json, and this export would write over it; "
                        f"choose another {OUT}")
    if not force:
        raise UserError(f"{out_dir}: already holds an export (its metadata.json); choose another {OUT}, or pass "
                        f"{FORCE} to replace it")


def clear_earlier_export(out_dir: str | Path, force: bool) -> None:
    """``refuse_earlier_export``; then, with ``force``, the earlier export goes: its metadata.json, and
    each file it lists that is still the file it lists (same sha256; a plain name in the folder).
    Writing over it left the earlier model beside a metadata.json that no longer named it (and a
    pipeline's eval.json describing another model)."""
    from .metadata import METADATA_FILE, peek_metadata

    refuse_earlier_export(out_dir, force)
    meta_path = Path(out_dir) / METADATA_FILE
    if not force or not meta_path.is_file():
        return
    listed = (peek_metadata(out_dir) or {}).get("files") or {}
    # The metadata first: a run killed in between leaves a folder no loader takes for an export (and
    # the next export needs no --force), not a metadata.json naming model files already gone.
    meta_path.unlink()
    for name, digest in listed.items():
        p = Path(out_dir) / Path(name).name  # names only: nothing outside the folder
        if p.is_file() and sha256_file(p) == digest:
            p.unlink()


def refuse_unused_nms(formats: list[str], *, raw: bool = False, topk: int | None = None,
                      given: list[str], no_nms: bool = False) -> None:
    """UserError when NMS flags were ``given`` but none of ``formats`` gets an in-graph NMS
    (ncnn, --raw, --topk 0, --no-nms): the flag would be dropped without a word."""
    if not given or (not raw and not no_nms and topk != 0 and any(f in NMS_FORMATS for f in formats)):
        return
    why = ("--raw writes no NMS" if raw else "--no-nms keeps the top-K anchors without NMS" if no_nms else
           "--topk 0 keeps every anchor, no NMS" if topk == 0 else
           "ncnn graphs end in decoded boxes + scores; the app (or Predictor) runs NMS")
    raise UserError(f"{' and '.join(given)}: no in-graph NMS here ({why}); drop the flag, or set the app's "
                    "thresholds with 'yolox-edge package --conf/--nms'")


def graph_nms(kind: str, fmt: str, iou: float | None = DEFAULT_NMS_IOU,
              conf: float = DEFAULT_NMS_CONF) -> dict | None:
    """The in-graph NMS of a top-K export ({"iou", "conf", "class_aware"}), or None without one."""
    if iou is not None and not 0.0 < iou <= 1.0:
        raise BadArgument(f"{flag_value('--nms', 'iou', iou)}: the IoU threshold must be in (0, 1]")
    if not 0.0 <= conf <= 1.0:  # a score threshold above 1 keeps nothing, ever
        raise BadArgument(f"{flag_value('--conf', 'conf', conf)}: the score threshold must be in [0, 1]")
    if kind != "topk" or fmt not in NMS_FORMATS or iou is None:
        return None
    return {"iou": float(iou), "conf": float(conf), "class_aware": True}


# The earlier forms: export_model(model, fmt, out), out_dir=, nms_iou=, nms_conf= (the names of
# --out, --nms and --conf everywhere else).
@deprecated_keywords("format", "out", fmt=renamed("format"), out_dir=renamed("out"), nms_iou=renamed("iou"),
                     nms_conf=renamed("conf"))
def export_model(model: str | Path, *, format: str, out: str | Path, precision: str = "fp32",
                 topk: int | None = None, raw: bool = False, img_size: int | tuple[int, int] | None = None,
                 dynamic_batch: bool = False, iou: float | None = DEFAULT_NMS_IOU,
                 conf: float = DEFAULT_NMS_CONF, force: bool = False, silu: str = "exact") -> ExportResult:
    """Export a checkpoint to the folder ``out`` as ONNX, OpenVINO IR or ncnn, with decode in the graph.

    ``topk=None`` means the format's default (K=100 for ONNX/OpenVINO, none for ncnn);
    ``topk=0`` keeps every anchor (decoded boxes [B, N, 4] + scores [B, N, C]);
    ``raw=True`` writes the official raw output instead. With top-K on ONNX/OpenVINO the
    graph runs class-aware NMS (IoU ``iou``, scores > ``conf``) before keeping K;
    ``iou=None`` keeps the K best anchors without NMS. ``silu="rational"`` (OpenVINO only)
    computes SiLU by a rational approximation that runs faster on some CPUs (silu_rational.py). ``img_size`` (an int, or (H, W) for a
    rectangular input such as (320, 416)) overrides the checkpoint's input size. Files are written in a temp
    folder and moved into ``out`` only when complete; metadata.json comes last. An
    ``out`` that already holds an export is refused unless ``force``, which removes it once the
    new files are ready (exporting over it left the earlier model files beside a metadata.json naming
    others; removing it first lost it to a mistyped checkpoint path or a Ctrl-C). ``format`` and
    ``out`` were positional, ``fmt=``, ``out_dir=``, ``nms_iou=`` and ``nms_conf=`` their names: both
    still work, with a DeprecationWarning.
    """
    fmt = format  # the keyword is --format's name; the builtin is not used here
    output_plan(fmt, precision, topk, raw, dynamic_batch)  # refuse bad combinations before loading anything
    check_silu([fmt], silu)
    refuse_earlier_export(out, force)  # before the checkpoint loads
    ckpt_path = Path(model)
    detector, ckpt = load_model(ckpt_path)
    return export_detector(detector, format=fmt, out=out, class_names=list(ckpt["class_names"]),
                           variant=ckpt["variant"],
                           category_ids=checkpoint_category_ids(ckpt, ckpt_path),
                           preprocess=PreprocessConfig.from_dict(ckpt["preprocess"]),
                           source_sha256=sha256_file(ckpt_path), source_name=ckpt_path.name, precision=precision,
                           topk=topk, raw=raw, img_size=img_size, dynamic_batch=dynamic_batch, iou=iou,
                           conf=conf, silu=silu, replace_export=force)


@deprecated_keywords("format", "out", fmt=renamed("format"), out_dir=renamed("out"), nms_iou=renamed("iou"),
                     nms_conf=renamed("conf"))  # the earlier forms, as export_model's
def export_detector(detector: Detector, *, format: str, out: str | Path, class_names: list[str], variant: str,
                    preprocess: PreprocessConfig, source_sha256: str | None = None, source_name: str | None = None,
                    precision: str = "fp32", topk: int | None = None, raw: bool = False,
                    img_size: int | tuple[int, int] | None = None, dynamic_batch: bool = False,
                    iou: float | None = DEFAULT_NMS_IOU, conf: float = DEFAULT_NMS_CONF,
                    silu: str = "exact", replace_export: bool = False,
                    category_ids: list[int] | None = None) -> ExportResult:
    """``export_model`` for a detector in memory (e.g. a fine-tuned or quantized one).
    ``category_ids``: the dataset's id of each class (the checkpoint's), written to metadata.json.

    ``replace_export``: an export already in ``out`` is removed once the new files are ready
    (``export_model(force=True)``), so a run that stops before leaves it as it was."""
    fmt = format
    kind, k = output_plan(fmt, precision, topk, raw, dynamic_batch)
    check_silu([fmt], silu)
    refuse_earlier_export(out, replace_export)
    if len(class_names) != detector.num_classes:  # a label with no name, or an export its readers refuse as edited
        raise UserError(f"class_names gives {len(class_names)} names for a model of {detector.num_classes} classes; "
                        "give one name per class")
    if category_ids is not None:  # else an export every reader refuses (metadata.check_consistency)
        from ..runtime.base import category_ids_problem

        why = category_ids_problem(category_ids, detector.num_classes)
        if why:
            raise UserError(f"category_ids={category_ids!r:.80}: {why}; give one distinct whole number per class "
                            f"({detector.num_classes}), or None")
    nms = graph_nms(kind, fmt, iou, conf)
    pre = preprocess
    if img_size is not None:
        check_input_size(img_size, detector.strides)
        pre = replace(pre, input_size=input_hw(img_size))
    h, w = pre.input_size
    k = graph_topk(k, (h, w), detector.strides)
    deploy = DeployModel(detector, kind=kind, topk=k, float_labels=(fmt == "ncnn"),
                         iou=nms["iou"] if nms else None, conf=conf)
    # A real-looking input range keeps tracing-time checks meaningful (0..255, like preprocess).
    example = torch.rand(1, 3, h, w, generator=torch.Generator().manual_seed(0)) * 255
    stem = f"yolox_{variant}"
    require_utf8_path(out, f"{OUT} folder")
    names = model_file_names(fmt, stem)
    refuse_files_in_the_way(out, names, replace_export)
    made = missing_folders(out)  # taken away again if this run stops before the files are in
    out = output_folder(out)
    try:
        # Named for this process (owners.owner_tag): a kill -9 leaves the folder, which the next export
        # into this --out removes once the process is gone; an unnamed one stayed there for good.
        sweep_dead_folders(out, STAGE_PREFIX)
        with tempfile.TemporaryDirectory(prefix=f"{STAGE_PREFIX}{owner_tag()}.", dir=out) as tmp:
            tmp_p = Path(tmp)
            rewritten = 0  # SiLUs the OpenVINO IR computes by the rational approximation
            if fmt == "onnx":
                from .to_onnx import export_onnx
                input_name = export_onnx(deploy, example, tmp_p / names[0], dynamic_batch=dynamic_batch)
                blobs = list(deploy.output_names)
            elif fmt == "openvino":
                from .to_openvino import export_openvino
                input_name, rewritten = export_openvino(deploy, example, tmp_p / names[0], precision=precision,
                                                        dynamic_batch=dynamic_batch, silu=silu)
                blobs = list(deploy.output_names)
            else:
                from .to_ncnn import export_ncnn
                input_name, blobs = export_ncnn(deploy, example, tmp_p / names[0], tmp_p / names[1],
                                                fp16=precision == "fp16")
            batch = "batch" if dynamic_batch else 1
            outputs = output_specs(kind, batch=batch, num_anchors=num_anchors((h, w), detector.strides),
                                   num_classes=detector.num_classes, topk=k,
                                   label_dtype="float32" if fmt == "ncnn" else "int64", blobs=blobs)
            meta = build_metadata(fmt=fmt, model_file=names[0], model_name=stem, variant=variant,
                                  class_names=list(class_names), preprocess=pre, strides=detector.strides,
                                  kind=kind, topk=k, input_name=input_name, batch=batch, outputs=outputs,
                                  precision=precision, source_sha256=source_sha256, nms=nms,
                                  counts=variant_counts(variant, num_classes=len(class_names), input_hw=(h, w)),
                                  extra={"source_checkpoint": source_name},
                                  silu="rational" if rewritten else "exact", category_ids=category_ids)
            write_metadata(tmp_p, meta, names)  # hashed where this run wrote them
            # Ctrl-C held off from the removal of the earlier export to the new one's metadata: a stop
            # in between left neither. Complete files move in one rename each, flushed; the metadata
            # (which names their hashes) last.
            with stops_held():
                if replace_export:
                    clear_earlier_export(out, True)
                replace_durably([(tmp_p / n, out / n) for n in names])
                replace_durably([(tmp_p / METADATA_FILE, out / METADATA_FILE)])
    except BaseException:  # Ctrl-C or an error: no empty --out left behind (quantize does the same)
        remove_empty_folders(made)
        raise
    files = [out / n for n in names] + [out / METADATA_FILE]
    return ExportResult(directory=out, model_file=out / names[0], files=files, metadata=meta)

