"""The model card of a bundle (MODEL_CARD.md): what the model is, how it was measured, where it came from."""
from __future__ import annotations

import json
from pathlib import Path

from ..describe import calibration_count
from ..errors import UserError


def _fmt_size(hw) -> str:
    return f"{hw[1]}x{hw[0]} (width x height)"


def _counts(counts) -> str:
    """Parameters and GFLOPs from metadata ``counts`` (as the YOLOX README counts them)."""
    if not isinstance(counts, dict) or not isinstance(counts.get("params_m"), (int, float)):
        return "unknown"
    flops = counts.get("gflops")
    return f"{counts['params_m']:.3f} M parameters, " + (
        f"{flops:.2f} GFLOPs at the input size" if isinstance(flops, (int, float)) else "GFLOPs unknown")


def _or(value, missing: str = "unknown") -> str:
    """``value`` as text, ``missing`` for None or an empty value (never the word None on a card)."""
    return missing if value is None or value == "" else str(value)


def _numbers(values) -> str:
    """[123.675, 116.28] as '123.675, 116.28' (a list as a reader writes it, not Python's repr)."""
    return ", ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in values)


def _shape(shape) -> str:
    """[1, 100, 4] as '1x100x4' (a named dimension such as 'batch' stays a word)."""
    return "x".join(str(d) for d in shape) if isinstance(shape, (list, tuple)) else _or(shape)


def _preprocessing(pre: dict) -> str:
    """The preprocessing contract in words: letterbox, pad, channel order and value range, normalisation."""
    vr = pre.get("value_range")
    span = f"{_numbers(vr[:1])}..{_numbers(vr[1:])}" if isinstance(vr, (list, tuple)) and len(vr) == 2 else _or(vr)
    mean, std = pre.get("mean"), pre.get("std")
    if mean is None and std is None:
        norm = "no mean/std"
    else:  # what the network subtracts and divides by, per channel in channel order
        norm = (f"mean {_numbers(mean) if isinstance(mean, (list, tuple)) else _or(mean, 'none')}, "
                f"std {_numbers(std) if isinstance(std, (list, tuple)) else _or(std, 'none')}")
    return (f"letterbox {_or(pre.get('letterbox'))}, pad {_or(pre.get('pad_value'))}, "
            f"{_or(pre.get('channel_order'))} values {span}, {norm}")


def _graph(g: dict) -> str:
    """What the exported graph does after the network: decode, top-K, NMS, box format (metadata ``graph``)."""
    parts = ["decode in the graph" if g.get("decode") else "no decode (raw outputs: decode on the host)"]
    k = g.get("topk")
    parts.append(f"top-K: {k}" if k else "top-K: none (all candidates)")
    nms = g.get("nms")
    if isinstance(nms, dict):
        said = [f"IoU {nms['iou']}" if nms.get("iou") is not None else None,
                f"scores > {nms['conf']}" if nms.get("conf") is not None else None,
                {True: "per class", False: "across classes"}.get(nms.get("class_aware"))]
        parts.append("NMS in graph: " + (", ".join(x for x in said if x) or "yes"))
    else:
        parts.append("NMS in graph: none (done after the model, with the thresholds below)")
    if g.get("decode"):
        parts.append(f"boxes {_or(g.get('box_format'))} in {_or(g.get('box_units'))}")
    if g.get("silu") == "rational":
        parts.append("SiLU by a rational approximation (--silu rational)")
    return "; ".join(parts)  # the NMS part has commas of its own


def _evaluated_on(evaluation: dict) -> str:
    """' (80 images, onnxruntime fp32)': what of the evaluation is known, nothing where it is not."""
    said = [f"{evaluation['images']} images" if evaluation.get("images") is not None else None,
            " ".join(str(evaluation[k]) for k in ("backend", "precision") if evaluation.get(k)) or None]
    said = [x for x in said if x]
    return f" ({', '.join(said)})" if said else ""


# The backend name ``eval`` records for each export format.
_FORMAT_BACKEND = {"onnx": "onnxruntime", "openvino": "openvino", "ncnn": "ncnn"}


def evaluation_from_json(path: str | Path, meta: dict | None = None, folder: Path | None = None) -> dict:
    """The fields of ``yolox-edge eval --json`` that a card reports.

    With the export's ``meta`` (and its ``folder``), the JSON must be of that export: same runtime,
    precision and input size, and, where its model path exists here, the same files. A card
    quoting the FP32 checkpoint's AP, or AP at another input size, for an INT8 bundle misleads.
    """
    p = Path(path)
    if not p.is_file():
        raise UserError(f"{p}: not found; write it with 'yolox-edge eval EXPORT --data SPEC --json {p}'")
    try:
        res = json.loads(p.read_text())
        out = {k: float(res[k]) for k in ("AP", "AP50")}
    except (OSError, ValueError, KeyError, TypeError):
        raise UserError(f"{p}: not the JSON of 'yolox-edge eval --json' (needs AP and AP50); "
                        "write it with 'yolox-edge eval MODEL --data SPEC --json FILE'") from None
    if meta is not None:
        _check_same_model(p, res, meta, folder)
    for k in ("AP75", "data", "split", "images", "backend", "precision", "model"):
        if k in res:
            out[k] = res[k]
    if not strict_json(out):
        raise UserError(f"{p}: holds NaN or Infinity, which the app cannot read; evaluate the export again "
                        "with 'yolox-edge eval EXPORT --data SPEC --json FILE'")
    return out


def strict_json(value) -> bool:
    """Whether ``value`` is JSON as the app's strict reader takes it: Python's json writes and reads
    NaN and Infinity, and one of them in metadata.json makes the whole bundle unreadable there."""
    try:
        json.dumps(value, allow_nan=False)
    except ValueError:
        return False
    return True


def _check_same_model(p: Path, res: dict, meta: dict, folder: Path | None) -> None:
    fix = f"evaluate this export itself: yolox-edge eval {folder or 'EXPORT'} --data SPEC --json FILE"
    # eval records what ran, e.g. 'int8 weights, int8 layers + f32 inference' for an INT8 export.
    precision = str(res["precision"]).split()[0] if res.get("precision") else None
    said = (res.get("backend"), precision, res.get("input_size"))
    want = (_FORMAT_BACKEND.get(meta["format"]), meta.get("precision"), list(meta["preprocess"]["input_size"]))
    for name, got, expected in zip(("runtime", "precision", "input size"), said, want):
        if got is not None and expected is not None and got != expected:
            raise UserError(f"{p}: measures {res.get('model', 'another model')} ({name} {got}); this bundle's "
                            f"model is {name} {expected}; {fix}")
    model = Path(str(res.get("model", "")))
    if folder is not None and res.get("model") and model.exists():  # a relative path from elsewhere: unknown
        here = folder.resolve()
        if model.resolve() not in {here, here / meta["model_file"], here / "metadata.json"}:
            raise UserError(f"{p}: measures {res['model']}, not the export in {folder}; {fix}")


RUNTIME_OF_FORMAT = {"onnx": "onnxruntime", "openvino": "openvino", "ncnn": "ncnn"}


def latency_from_json(path: str | Path, artifact: str | Path, meta: dict | None = None) -> dict:
    """Median latencies of ``artifact`` from ``yolox-edge bench --json`` (schema yolox_edge.bench/1).
    A bench of one artifact run from another folder (its path not this one's) is taken when it
    times what ``meta`` (the export's metadata) describes: runtime, precision, input size."""
    p = Path(path)
    if not p.is_file():
        raise UserError(f"{p}: not found; write it with 'yolox-edge bench ARTIFACT --json FILE.json'")
    # Any shape but the bench's own (a hand-made or other tool's JSON) is one line, not a traceback.
    not_bench = UserError(f"{p}: not the JSON of 'yolox-edge bench --json'; write it with "
                          "'yolox-edge bench ARTIFACT --json FILE'")
    try:
        res = json.loads(p.read_text())
        rows = [r for r in res["rows"] if not r.get("baseline")]
        cpu = res.get("machine", {}).get("cpu")
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        raise not_bench from None
    def export_folder(path: object) -> Path:  # an export named by its folder or by a file in it
        p = Path(str(path)).resolve()
        return p if p.is_dir() else p.parent

    want = export_folder(artifact)
    mine = [r for r in rows if export_folder(r.get("artifact", "")) == want]
    if not mine and len({r.get("artifact") for r in rows}) == 1:
        mine = rows  # a bench of this one artifact, run from another folder
        r = rows[0]
        if meta is not None and r.get("backend") is not None:  # a torch checkpoint's went onto an ONNX card
            got = (r.get("backend"), str(r.get("precision", "")).split(" ")[0], list(r.get("input_size") or []))
            want_row = (RUNTIME_OF_FORMAT.get(meta.get("format")), meta.get("precision"), list(meta.get("input_size") or []))
            if got != want_row:
                raise UserError(f"{p}: times {r.get('artifact')} ({got[0]} {got[1]} at {got[2]}), not {artifact} "
                                f"({want_row[0]} {want_row[1]} at {want_row[2]}); bench this artifact and pass that JSON")
    if not mine:
        raise UserError(f"{p}: has no rows for {artifact}; bench this artifact and pass that JSON")
    # a bench with --precision-hint f32,bf16 has a row per hint: the card states the export as the
    # app runs it, f32 (the last row, bf16's, went onto the card unnamed)
    f32 = [r for r in mine if r.get("precision_hint") in (None, "f32")]
    if not f32:  # a bench of --precision-hint bf16 alone: its latency would read as the app's f32
        raise UserError(f"{p}: times {artifact} only at --precision-hint {mine[0].get('precision_hint')}, and the app "
                        "runs it in f32; bench it without --precision-hint (or with f32) and pass that JSON")
    mine = f32
    if len({(r.get("artifact"), r.get("threads")) for r in mine}) < len(mine):
        raise UserError(f"{p}: times {artifact} in several precisions at one thread count (a bench from before "
                        "rows recorded their --precision-hint); bench it again with 'yolox-edge bench ARTIFACT "
                        "--json FILE'")
    out: dict = {"machine": cpu, "threads": {}}
    try:
        for r in mine:
            t = out["threads"].setdefault(str(int(r["threads"])), {})  # the card sorts them as numbers
            for mode, stats in r.get("latency_ms", {}).items():
                t[f"{mode}_p50_ms"] = round(float(stats["p50"]), 3)
    except (ValueError, KeyError, TypeError, AttributeError):
        raise not_bench from None
    if not strict_json(out):
        raise UserError(f"{p}: holds NaN or Infinity, which the app cannot read; bench the artifact again "
                        "with 'yolox-edge bench ARTIFACT --json FILE'")
    return out


def render_card(meta: dict, *, target: str, files: dict[str, int], evaluation: dict | None,
                latency: dict | None) -> str:
    """Markdown model card from the bundle's metadata and what is known about its accuracy and speed."""
    g = meta["graph"]
    names = meta["class_names"]
    pre = meta["preprocess"]
    lines = [
        f"# {meta['model']} ({target}, {meta['precision']})",
        "",
        "| field | value |",
        "|---|---|",
        f"| model | {meta['model']} |",
        f"| variant | {meta.get('variant') or 'unknown'} |",
        f"| runtime target | {target} |",
        f"| precision | {meta['precision']} |",
        f"| input size | {_fmt_size(meta['input_size'])} |",
        f"| classes | {len(names)} (labels.txt) |",
        f"| size of the network | {_counts(meta.get('counts'))} |",
        f"| preprocessing | {_preprocessing(pre)} |",
        f"| graph | {_graph(g)} |",
        "| outputs | " + ", ".join(f"{o['name']} {_shape(o.get('shape'))} {_or(o.get('dtype'))}"
                                   for o in meta["outputs"]) + " |",
        f"| thresholds | conf {meta['postprocess']['conf']}, NMS IoU {meta['postprocess']['nms']}, "
        f"max detections {meta['postprocess']['max_det']} |",
        f"| source checkpoint sha256 | {(meta.get('source') or {}).get('checkpoint_sha256') or 'unknown'} |",
    ]
    q = meta.get("quantization")
    if isinstance(q, dict):
        cal = q.get("calibration") or {}
        digest = cal.get("sha256")
        lines.append(f"| quantization | {_or(q.get('method'))} ({_or(q.get('engine'), 'engine unknown')}), "
                     f"calibration {calibration_count(cal)} images from {_or(cal.get('source'), 'an unnamed source')}"
                     + (f" (sha256 {digest[:16]}...)" if isinstance(digest, str) and digest else "") + " |")
    lines += [
        "",
        "## Accuracy",
        "",
    ]
    if evaluation:
        data, split = evaluation.get("data"), evaluation.get("split")
        where = ""
        if data:
            where = f" on {data}" + (f":{split}" if split else "")
        elif split:
            where = f" on the {split} split"
        lines.append(f"COCO-style AP {evaluation['AP']:.4f}, AP50 {evaluation['AP50']:.4f}{where}"
                     + _evaluated_on(evaluation))
    else:
        lines.append("Not measured for this bundle (package with --eval-json to record it).")
    lines += ["", "## Latency", ""]
    if latency and latency.get("threads"):
        lines.append(f"Median latency on {latency.get('machine') or 'an unnamed machine'}:")
        lines.append("")
        for t, v in sorted(latency["threads"].items(), key=lambda kv: int(kv[0])):
            lines.append(f"- {t} thread(s): " + ", ".join(f"{k.replace('_p50_ms', '')} {ms} ms" for k, ms in v.items()))
    else:
        lines.append("Not measured for this bundle (package with --bench-json to record it).")
    ids = meta.get("category_ids")  # the dataset's own id of each class, when it had ids (COCO)
    lines += ["", "## Classes", "", ", ".join(f"{i} {n}" + (f" (category id {ids[i]})" if ids else "")
                                             for i, n in enumerate(names))]
    lines += ["", "## Files (sha256 in SHA256SUMS)", ""]
    lines += [f"- {name}: {size} bytes" for name, size in sorted(files.items())]
    lines += ["", "Check with `yolox-edge verify BUNDLE` (or `sha256sum -c SHA256SUMS` after unzipping).", ""]
    return "\n".join(lines)
