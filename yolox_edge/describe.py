"""What an artifact is, read from its own files: ``yolox-edge info``.

A checkpoint (variant, classes, input size, where its weights came from, training state), an
export folder or model file (format, precision, graph, outputs, quantization, files checked
against metadata.json) or a bundle (verified as ``verify`` does, plus its app thresholds).
Nothing is run: this is for knowing what to ship or what a teammate handed over.
"""
from __future__ import annotations

from pathlib import Path

from .errors import format_size, input_hw
from .progress import deprecated_keywords, first_few, renamed

__all__ = ["describe_artifact", "describe_lines"]


def _checkpoint(path: Path) -> dict:
    from .engine.checkpoint import (check_checkpoint_input_size, checkpoint_category_ids, load_checkpoint,
                                    require_checkpoint_keys)
    from .fileio import sha256_file
    from .models import variant_counts

    ckpt = load_checkpoint(path)  # also the hint for official .pth weights and foreign files
    require_checkpoint_keys(ckpt, ("variant", "class_names"), path)
    names = list(ckpt["class_names"])
    check_checkpoint_input_size(ckpt, (8, 16, 32), path)  # every variant's strides (models/detector.py)
    size = (ckpt.get("preprocess") or {}).get("input_size")
    size = list(input_hw(size)) if size else None  # S or [H, W], as the size check takes it
    state = ckpt.get("train_state") or {}
    planned = ((ckpt.get("recipe") or {}).get("train") or {}).get("epochs")
    return {"kind": "checkpoint", "path": str(path), "variant": ckpt["variant"], "class_names": names,
            "category_ids": checkpoint_category_ids(ckpt, path),
            "input_size": size,
            "counts": variant_counts(ckpt["variant"], num_classes=len(names), input_hw=tuple(size)) if size else None,
            "source": ckpt.get("source") or {}, "bn_folded": bool(ckpt.get("bn_folded")), "epoch": ckpt.get("epoch"),
            "epochs": planned,
            "best_ap": state.get("best_ap"), "best_epoch": state.get("best_epoch"),
            "has_ema": ckpt.get("ema") is not None, "sha256": sha256_file(path)}


def _export(meta: dict) -> dict:
    from .export.metadata import output_bytes_per_image

    return {"kind": "export", "path": meta.pop("_dir", None), "format": meta["format"], "model": meta["model"],
            "variant": meta.get("variant"), "precision": meta["precision"], "class_names": meta["class_names"],
            "category_ids": meta.get("category_ids"),
            "input_size": meta.get("input_size") or meta["preprocess"]["input_size"], "counts": meta.get("counts"),
            "graph": meta["graph"], "outputs": [{k: o[k] for k in ("name", "shape", "dtype")} for o in meta["outputs"]],
            "bytes_out_per_image": output_bytes_per_image(meta), "quantization": meta.get("quantization"),
            "files": meta["files"], "files_checked": True, "source_checkpoint": meta.get("source_checkpoint")}


# Checkpoints by suffix: ours (.pt) and the official YOLOX ones, which load_checkpoint names as such.
CHECKPOINT_SUFFIXES = (".pt", ".pth", ".tar")
EXPORT_SUFFIXES = (".onnx", ".xml", ".param", ".bin", ".json")  # an export's files


@deprecated_keywords(path=renamed("model"))  # its earlier name; the model, as every other call names it
def describe_artifact(model: str | Path) -> dict:
    """A summary dict of the model ``model`` in any form (``kind``: checkpoint, export or bundle);
    UserError naming the file when it is none of them or fails its checks (an export's sha256s, a
    bundle's all). ``path=`` is the deprecated name of ``model``."""
    path = model
    from .bundle.package import read_bundle
    from .export.metadata import read_metadata

    p = Path(path)
    if p.is_file() and p.suffix.lower() not in (*CHECKPOINT_SUFFIXES, ".zip", *EXPORT_SUFFIXES):
        from .errors import UserError

        raise UserError(f"{p}: not a model file ({p.suffix or 'no suffix'}); give a checkpoint (.pt), an export "
                        "folder or its model file (.onnx, .xml, .param) or metadata.json, or a bundle (.zip)")
    if p.suffix.lower() in CHECKPOINT_SUFFIXES and not p.is_dir():
        return _checkpoint(p)
    if p.suffix.lower() == ".zip" and not p.is_dir():
        meta, _entries = read_bundle(p)
        info = _export(meta)
        info.update(kind="bundle", path=str(p), target=meta["bundle"]["target"], postprocess=meta["postprocess"],
                    evaluation=meta["bundle"].get("evaluation"), latency=meta["bundle"].get("latency"))
        return info
    return _export(read_metadata(p))


def _source_line(src: dict) -> str:
    kind = src.get("kind", "unknown")
    if kind.startswith("official"):
        return f"official YOLOX weights ({kind}, {Path(src.get('file', '')).name})"
    if kind == "converted":
        return f"converted from {src.get('from')} ({src.get('from_variant')})"
    if kind == "trained":
        return "trained" + (f", starting from {src['weights']}" if src.get("weights") else " from scratch")
    return kind


def calibration_count(cal: dict) -> str:
    """``100``, or ``16 of 100`` where --subset-size had the statistics take the set's first images only."""
    used, count = cal.get("used"), cal.get("count", "?")
    return f"{used} of {count}" if isinstance(used, int) and used != count else str(count)


def _quant_line(q: dict) -> str:
    parts = [f"{q.get('method', '?').upper()} with {q.get('engine', '?')}"]
    floats = q.get("float_convs") or []
    if floats:
        parts.append(f"{len(floats)} conv{'s' if len(floats) != 1 else ''} kept float")
    cal = q.get("calibration") or {}
    if cal:
        parts.append(f"calibrated on {calibration_count(cal)} images ({cal.get('sampling')}) of {cal.get('source')}")
    if q.get("input_quantizer"):
        parts.append(f"input {q['input_quantizer']}")
    return "; ".join(parts)


def describe_lines(info: dict) -> list[str]:
    """``describe_artifact``'s dict as the lines ``yolox-edge info`` prints."""
    counts = info.get("counts") or {}
    size = f"{format_size(info['input_size'])} input" if info.get("input_size") else "input size not recorded"
    n = len(info["class_names"])
    net = f"{info.get('variant') or '?'}, {n} class{'es' if n != 1 else ''} ({first_few(info['class_names'], 6)})"
    if counts:
        net += f", {counts['params_m']:.3f} M params, {counts['gflops']:.2f} GFLOPs at {format_size(info['input_size'])}"
    ids = info.get("category_ids")
    # the dataset's ids beside the names they belong to; absent (older checkpoints, voc/yolo): no line
    id_line = ([f"  ids       category ids {first_few([f'{i} {n}' for i, n in zip(ids, info['class_names'])], 6)}"]
               if ids else [])
    if info["kind"] == "checkpoint":
        lines = [f"{info['path']}: checkpoint, {size}", f"  network   {net}", *id_line,
                 f"  weights   {_source_line(info['source'])}" + ("; BatchNorm folded" if info["bn_folded"] else "")
                 + ("; EMA weights inside (used for inference)" if info["has_ema"] else "")]
        if info.get("epoch") is not None:
            best = (f", best val AP {info['best_ap']:.4f} at epoch {info['best_epoch']}"
                    if info.get("best_ap") is not None and info["best_ap"] >= 0 else "")
            # the weights' own epoch, beside the schedule's length: best.pt of a 30-epoch run saved
            # at epoch 12 read '12 epoch(s) done', as if the run had stopped there
            of = f" of {info['epochs']}" if info.get("epochs") else ""
            lines.append(f"  training  weights of epoch {info['epoch']}{of}{best}")
        lines.append(f"  sha256    {info['sha256']}")
        return lines
    g = info["graph"]
    graph = ["decode in the graph" if g.get("decode") else "raw head outputs (decode on the host)"]
    if g.get("topk"):
        graph.append(f"top-{g['topk']}")
    if g.get("nms"):
        graph.append(f"NMS IoU {g['nms']['iou']} / score {g['nms']['conf']}"
                     + ("" if g["nms"].get("class_aware", True) else ", class-agnostic"))
    if g.get("silu") == "rational":
        graph.append("SiLU as a rational approximation (--silu rational)")
    what = "bundle" if info["kind"] == "bundle" else "export"
    lines = [f"{info['path']}: {info['format']} {what}, {info['precision']}, {size}",
             f"  network   {net}", *id_line,
             f"  graph     {', '.join(graph)}",
             "  outputs   " + ", ".join(f"{o['name']} {o['shape']} {o['dtype']}" for o in info["outputs"])
             + f" ({info['bytes_out_per_image']:,} bytes per image)"]
    if info.get("quantization"):
        lines.append(f"  INT8      {_quant_line(info['quantization'])}")
    if info["kind"] == "bundle":
        pp = info.get("postprocess") or {}
        lines.append("  app       " + ", ".join(f"{k} {v}" for k, v in pp.items() if not isinstance(v, (dict, list))))
        ev = info.get("evaluation")
        if ev:
            lines.append(f"  accuracy  AP {ev['AP']:.4f}, AP50 {ev['AP50']:.4f}"
                         + (f" on {ev['data']}:{ev.get('split', 'val')}" if ev.get("data") else ""))
    checked = "every file of the bundle sha256-checked" if info["kind"] == "bundle" else \
        "sha256 checked against metadata.json"
    lines.append(f"  files     {', '.join(info['files'])}: {checked}")
    return lines
