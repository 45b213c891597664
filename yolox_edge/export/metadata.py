"""metadata.json: the one description of an exported model that the runtime reads back.

Written beside every artifact (and reused by INT8 exports, benchmarks and bundles). Fields
(DESIGN.md): schema_version, format, model, variant, class_names, category_ids (optional: the
dataset's id of each class, absent when the data had none), input_size, preprocess,
strides, graph {decode, topk, nms (false | {iou, conf, class_aware}), box_format, box_units, output_kind, raw_activated,
silu (only when not exact: "rational")},
input {name, shape, dtype}, outputs [{name, blob, shape, dtype, layout}], precision,
source {checkpoint_sha256}, source_checkpoint (its file name), files {filename: sha256}, model_file,
counts {params_m, gflops}; INT8 exports add quantization.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

from ..data.preprocess import PreprocessConfig, check_pixel_input
from ..decode_np import level_shapes
from ..fileio import atomic_write_bytes, run_checkpoint, sha256_file
from ..errors import UserError
from ..progress import first_few
from ..runtime.base import OUTPUT_KINDS, ModelInfo, category_ids_problem

SCHEMA_VERSION = 1
METADATA_FILE = "metadata.json"
FORMATS = ("onnx", "openvino", "ncnn")
REQUIRED = ("schema_version", "format", "model", "class_names", "preprocess", "strides", "graph",
            "input", "outputs", "precision", "files", "model_file")

_LAYOUTS = {"raw": "[B, N, 4+1+C]: dx, dy, log w, log h (raw), obj, cls (sigmoid-ed)",
            "boxes": "[B, N|K, 4]: x1, y1, x2, y2 in network-input pixels",
            "scores": "[B, N, C] obj*cls per class | [B, K] best-class score",
            "labels": "[B, K]: class index of each top-K score"}


def output_specs(kind: str, *, batch: int | str, num_anchors: int, num_classes: int, topk: int | None,
                 label_dtype: str = "int64", blobs: Sequence[str] | None = None) -> list[dict]:
    """Describe the graph outputs of an output kind; ``blobs`` are the backend's own tensor names."""
    if kind == "raw":
        specs = [("raw", [batch, num_anchors, 5 + num_classes], "float32")]
    elif kind == "decoded":
        specs = [("boxes", [batch, num_anchors, 4], "float32"), ("scores", [batch, num_anchors, num_classes], "float32")]
    elif kind == "topk":
        k = min(int(topk), num_anchors)
        specs = [("boxes", [batch, k, 4], "float32"), ("scores", [batch, k], "float32"), ("labels", [batch, k], label_dtype)]
    else:
        raise ValueError(f"unknown output kind {kind!r}")
    blobs = list(blobs) if blobs is not None else [n for n, _, _ in specs]
    return [{"name": n, "blob": b, "shape": s, "dtype": d, "layout": _LAYOUTS[n]}
            for (n, s, d), b in zip(specs, blobs)]


def output_bytes_per_image(meta: dict) -> int:
    """Bytes the graph hands back per image (batch dimension excluded)."""
    size = {"float32": 4, "float16": 2, "int64": 8, "int32": 4}
    total = 0
    for o in meta["outputs"]:
        n = 1
        for d in o["shape"][1:]:
            n *= int(d)
        total += n * size[o["dtype"]]
    return total


def build_metadata(*, fmt: str, model_file: str, model_name: str, variant: str | None, class_names: list[str],
                   preprocess: PreprocessConfig, strides: Sequence[int], kind: str, topk: int | None,
                   input_name: str, batch: int | str, outputs: list[dict], precision: str,
                   source_sha256: str | None, nms: dict | None = None, counts: dict | None = None,
                   extra: dict | None = None, silu: str = "exact",
                   category_ids: list[int] | None = None) -> dict:
    """The metadata dict of one export (``files`` is filled in by ``write_metadata``).

    ``category_ids``: the checkpoint's (the dataset's id of each class); written only when known.

    ``nms``: None, or {"iou", "conf", "class_aware"} of the NMS inside the graph.
    ``counts``: {"params_m", "gflops"} of the variant at this input size (``models.variant_counts``).
    ``silu``: "rational" when the IR computes SiLU by export/silu_rational.py (recorded only then).
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}")
    h, w = preprocess.input_size
    return {
        "schema_version": SCHEMA_VERSION, "format": fmt, "model": model_name, "variant": variant,
        "class_names": list(class_names),
        **({"category_ids": [int(i) for i in category_ids]} if category_ids is not None else {}),
        "input_size": [h, w], "preprocess": preprocess.to_dict(),
        "strides": list(strides),
        "graph": {"decode": kind != "raw", "topk": topk if kind == "topk" else None, "nms": nms or False,
                  "box_format": "xyxy" if kind != "raw" else "raw", "box_units": "input pixels",
                  "output_kind": kind, "raw_activated": kind == "raw",
                  **({"silu": silu} if silu != "exact" else {})},
        "input": {"name": input_name, "shape": [batch, 3, h, w], "dtype": "float32"},
        "outputs": outputs, "precision": precision,
        "source": {"checkpoint_sha256": source_sha256}, "model_file": model_file, "files": {},
        "counts": counts,
        **(extra or {}),
    }


def write_metadata(directory: str | Path, meta: dict, files: Sequence[str]) -> Path:
    """Hash ``files`` (names inside ``directory``) into ``meta['files']`` (in place), write metadata.json atomically."""
    d = Path(directory)
    meta["files"] = {f: sha256_file(d / f) for f in files}
    path = d / METADATA_FILE
    atomic_write_bytes(path, lambda fh: fh.write(json.dumps(meta, indent=2).encode()))
    return path


def peek_metadata(directory: str | Path) -> dict | None:
    """A folder's metadata.json read leniently (no schema or sha256 check), or None when it is
    absent, unreadable or not a JSON object: for asking what a folder holds, not for loading it."""
    try:
        meta = json.loads((Path(directory) / METADATA_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        return None
    return meta if isinstance(meta, dict) else None


def is_export_metadata(meta: object) -> bool:
    """Whether ``meta`` (``peek_metadata``'s) has the form of a yolox_edge export's metadata.json: a
    schema version, a known format and a ``files`` mapping of names to sha256s (not a dataset's
    metadata.json that happens to share the name; an export too damaged to load still counts)."""
    return (isinstance(meta, dict) and isinstance(meta.get("schema_version"), int) and meta.get("format") in FORMATS
            and _is_files_table(meta.get("files")))


def _is_files_table(files: object, *, plain_names: bool = False) -> bool:
    """Whether ``files`` is metadata.json's table of file name -> sha256 (``plain_names``: each name
    a file in the export's own folder, as a loader requires)."""
    return isinstance(files, dict) and all(isinstance(k, str) and isinstance(v, str)
                                           and (not plain_names or _plain_name(k)) for k, v in files.items())


def find_metadata(path: str | Path) -> Path:
    """metadata.json for an artifact: the file itself, inside a folder, or beside a model file."""
    p = Path(path)
    if not p.exists():
        raise UserError(f"{p}: not found; give an export folder (from 'yolox-edge export' or 'quantize'), "
                        "its model file or its metadata.json")
    if p.is_dir():
        cand = p / METADATA_FILE
    elif p.name == METADATA_FILE or p.suffix == ".json":
        cand = p
    else:
        cand = p.parent / METADATA_FILE
    if not cand.is_file():
        ckpt = run_checkpoint(p) if p.is_dir() else None
        if ckpt:  # a training run's folder
            raise UserError(f"{p}: a training run, not an export; give its checkpoint ({ckpt}) or export it "
                            f"with 'yolox-edge export {ckpt} --format onnx --out OUT'")
        from ..quantize.calib import MANIFEST_NAME, is_calibration_manifest

        if p.is_dir() and is_calibration_manifest(p / MANIFEST_NAME):  # given where a model goes: 'export it' misled
            raise UserError(f"{p}: a calibration set (from 'yolox-edge calibrate'), not a model; "
                            f"'yolox-edge calibrate --show {p}' prints it, and 'yolox-edge quantize MODEL --calib "
                            f"{p}' uses it")
        if p.is_dir():
            # three levels down at most: a quantize folder keeps its FP32 references under fp32/FORMAT
            # (not in hidden folders: a quantize run killed mid-way can leave its .quantize_run_* there)
            found = sorted(str(m.parent) for depth in ("*", "*/*", "*/*/*")
                           for m in p.glob(f"{depth}/{METADATA_FILE}")
                           if not any(part.startswith(".") for part in m.relative_to(p).parts))
            if found:
                raise UserError(f"{p}: holds exports in subfolders, not one itself; give one of them: "
                                f"{first_few(found, 8)}")
            onnx = sorted(p.glob("*.onnx"))
            if len(onnx) == 1:  # a folder holding the official YOLOX ONNX, say
                p = onnx[0]
        if p.suffix.lower() == ".onnx":  # e.g. the official YOLOX ONNX
            raise UserError(f"{p}: an ONNX without {METADATA_FILE} beside it (the official YOLOX ONNX is one): "
                            f"import it with 'yolox-edge import-official {p} --variant nano --out MODEL.pt' "
                            "(your variant), then export or quantize that; 'bench --baseline' takes it as it is")
        raise UserError(f"{p}: no {METADATA_FILE} beside this model; export it with 'yolox-edge export' "
                        "(the runtime reads class names, input size and outputs only from metadata)")
    return cand


class _DuplicateKey(ValueError):
    """A key given twice in one JSON object (its args: the key)."""


def _refuse_duplicate_keys(pairs: list[tuple[str, object]]) -> dict:
    # json keeps the last of two equal keys silently; a hand edit that added a second "conf" or
    # "files" would then mean whatever each reader (Python, the app's) happens to keep
    out: dict = {}
    for key, value in pairs:
        if key in out:
            raise _DuplicateKey(key)
        out[key] = value
    return out


def read_metadata(path: str | Path, *, verify: bool = True) -> dict:
    """Read and check metadata.json (path: the json, its folder, or a model file beside it).

    ``verify`` checks the sha256 of every listed file; a mismatch raises UserError.
    """
    mpath = find_metadata(path)
    try:
        meta = json.loads(mpath.read_text(), object_pairs_hook=_refuse_duplicate_keys)
    except _DuplicateKey as e:
        raise UserError(f"{mpath}: key {e.args[0]!r} appears twice in one object (JSON readers differ in which they "
                        "keep); remove one, or re-export the model") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise UserError(f"{mpath}: not valid JSON ({type(e).__name__}); re-export the model") from None
    if not isinstance(meta, dict):
        raise UserError(f"{mpath}: not a yolox_edge metadata file; re-export the model")
    missing = [k for k in REQUIRED if k not in meta]
    if missing:
        raise UserError(f"{mpath}: not a yolox_edge metadata file (missing {', '.join(missing)}); re-export the model")
    # Types of what is compared below: a hand edit gets this line, not a TypeError traceback.
    if not isinstance(meta["schema_version"], int) or not isinstance(meta["graph"], dict):
        raise UserError(f"{mpath}: not a yolox_edge metadata file (schema_version must be a number, graph an "
                        "object); re-export the model")
    if meta["schema_version"] > SCHEMA_VERSION:
        raise UserError(f"{mpath}: schema_version {meta['schema_version']} is newer than this yolox_edge "
                        f"({SCHEMA_VERSION}); upgrade yolox-edge")
    if meta["graph"].get("output_kind") not in OUTPUT_KINDS:
        raise UserError(f"{mpath}: unknown output kind {meta['graph'].get('output_kind')!r}; re-export the model")
    check_consistency(meta, mpath)
    # the runtimes feed 0..255 NCHW pixels whatever it says: refused, as verify refuses it for the app
    check_pixel_input(meta["preprocess"], str(mpath))
    # optional (the app reads preprocess.input_size then), and 416.0 is 416: whole numbers, one place to read
    meta["input_size"] = [int(v) for v in meta["preprocess"]["input_size"]]
    if verify:
        verify_files(mpath.parent, meta, where=mpath)
    meta["_dir"] = str(mpath.parent)
    return meta


def check_consistency(meta: dict, where: Any) -> None:
    """UserError when metadata.json contradicts itself: the sizes, anchors and classes the runtime
    (and the app) read from it must describe one graph. metadata.json carries no hash of its own, so
    a hand edit (input_size changed to run the model at another size, a class removed) otherwise
    gives wrong boxes or names without a word: the grids are baked into the graph at export.
    ``category_ids``, when present, must give one distinct whole number per class name."""
    def bad(what: str) -> UserError:
        return UserError(f"{where}: {what}; metadata.json does not describe its graph (edited?), re-export the model")

    try:
        given = meta["preprocess"]["input_size"]
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and float(v).is_integer() for v in given):
            raise ValueError  # 64.5 read as 64 here, as 64.5 by the letterbox
        size = [int(v) for v in given]
        shape = meta["input"]["shape"]
        top = meta.get("input_size")
        strides = [int(s) for s in meta["strides"]]
        outputs = {o["name"]: o["shape"] for o in meta["outputs"]}
        names = [o["name"] for o in meta["outputs"]]
    except (KeyError, TypeError, ValueError):
        raise bad("input_size, input, strides or outputs are malformed") from None
    # The fields the loaders index without a second look: a wrong type was a TypeError, KeyError or
    # AttributeError traceback, a model_file outside the folder ran a file no sha256 covers.
    classes_listed = meta.get("class_names")
    if not (isinstance(classes_listed, list) and classes_listed and all(isinstance(n, str) for n in classes_listed)):
        raise bad(f"class_names must be a list of names (strings), not {str(classes_listed)[:60]}")
    if not isinstance(meta["input"].get("name"), str):
        raise bad(f"input.name {meta['input'].get('name')!r} is not the name of the graph's input (a string)")
    if not isinstance(shape, list):
        raise bad(f"input.shape {shape!r} is not the graph's input shape (a list)")
    if any("blob" in o and not (isinstance(o["blob"], str) and o["blob"]) for o in meta["outputs"]):
        raise bad("each output's blob must be the name of a graph blob (a string)")
    if top is not None and not (isinstance(top, list) and len(top) == 2):
        raise bad(f"input_size {top!r} is not [height, width]")
    if not strides or min(strides) <= 0:
        raise bad(f"strides {meta['strides']!r} are not the model's (positive, at least one)")
    kind = meta["graph"].get("output_kind")
    box_format = meta["graph"].get("box_format")
    if kind != "raw" and box_format is not None and box_format != "xyxy":  # read as x1, y1, x2, y2 whatever it says
        raise bad(f"graph.box_format {box_format!r} is not xyxy, the corners every runtime and the app read")
    want = [o["name"] for o in output_specs(kind, batch=1, num_anchors=1, num_classes=1, topk=1)]
    if names != want:
        raise bad(f"outputs {names} are not the {kind} graph's {want}")
    if not _is_files_table(meta.get("files"), plain_names=True):
        raise bad("files must map file names in the export's folder to their sha256")
    if not isinstance(meta.get("model_file"), str) or meta["model_file"] not in meta["files"]:
        raise bad(f"model_file {meta.get('model_file')!r} is not one of the files it lists")
    if top is not None and list(top) != size:
        raise bad(f"input_size {list(top)} differs from preprocess.input_size {size}")
    if isinstance(shape, list) and len(shape) == 4 and all(isinstance(v, int) for v in shape[2:]) \
            and list(shape[2:]) != size:
        raise bad(f"input.shape {shape} is not the input_size {size}")
    if kind in ("decoded", "raw"):
        anchors = sum(h * w for h, w in level_shapes(size, strides))
        classes = len(meta["class_names"])
        # the shapes the exporter writes for this size and class count (``output_specs``)
        for spec in output_specs(kind, batch="B", num_anchors=anchors, num_classes=classes, topk=None):
            got, dims = outputs.get(spec["name"]), spec["shape"][1:]
            if isinstance(got, list) and len(got) == 3 and all(isinstance(v, int) for v in got[1:]) \
                    and got[1:] != dims:
                raise bad(f"output {spec['name']} {got} is not [B, {dims[0]}, {dims[1]}] for input {size} and "
                          f"{classes} class names")
    ids = meta.get("category_ids")
    if ids is not None:
        why = category_ids_problem(ids, len(meta["class_names"]) if isinstance(meta["class_names"], list) else -1)
        if why:  # one id per class name, each once: predict --json would give other classes' ids
            raise UserError(f"{where}: category_ids {why}, not one id per class name (edited?); re-export the model")


def _plain_name(name: str) -> bool:
    """A file name inside the export's folder: no folder part, not '.' or '..'."""
    return bool(name) and name not in (".", "..") and "/" not in name and "\\" not in name


def verify_files(directory: Path, meta: dict, *, where: Any = None) -> None:
    """Check every file listed in meta['files'] exists with the recorded sha256."""
    where = where or directory / METADATA_FILE
    for name, digest in meta["files"].items():
        f = directory / name
        if not f.is_file():
            raise UserError(f"{f}: listed in {where} but missing; copy the whole export folder")
        if sha256_file(f) != digest:
            raise UserError(f"{f}: sha256 does not match {where} (truncated, replaced or edited); re-export the model")


def model_info(meta: dict) -> ModelInfo:
    """ModelInfo for the Predictor, from metadata alone."""
    g = meta["graph"]
    return ModelInfo(name=meta["model"], class_names=list(meta["class_names"]),
                     preprocess=PreprocessConfig.from_dict(meta["preprocess"]), output_kind=g["output_kind"],
                     strides=tuple(meta["strides"]), raw_activated=bool(g.get("raw_activated")),
                     precision=meta["precision"], extra={"format": meta["format"], "variant": meta.get("variant"),
                                                         "metadata": meta},
                     category_ids=list(meta["category_ids"]) if meta.get("category_ids") is not None else None)
