"""Build and check a mobile bundle: one zip with the model, metadata.json, labels, a card and sha256s.

Layout (flat; names from the export):
  <model files>     e.g. model.ncnn.param + model.ncnn.bin | model.onnx | model.xml + model.bin
  metadata.json     the export's metadata + "postprocess" thresholds + "bundle" facts
  labels.txt        one class name per line, in class-index order
  MODEL_CARD.md     variant, classes, input size, precision, AP/latency when known, source hash
  SHA256SUMS        sha256 of every other entry (``sha256sum -c`` reads it)
"""
from __future__ import annotations

import hashlib
import io
import json
import operator
import zipfile
from pathlib import Path

from ..fileio import atomic_write_bytes, file_identity
from ..owners import owned_temp_dir
from ..progress import deprecated_keywords, renamed
from ..decode_np import level_shapes
from ..errors import BadArgument, UserError, flag_value, refuse_overwrite
from ..export.metadata import METADATA_FILE, read_metadata
from ..thresholds import APP_CONF, APP_INT_MAX, APP_NMS_IOU, BUNDLE_MAX_DET, check_thresholds
from .app_contract import check_app_reads
from .card import evaluation_from_json, latency_from_json, render_card, strict_json
from .safezip import CARD, LABELS, MANIFEST, safe_extract

BUNDLE_SCHEMA = 1
TARGETS = ("ncnn", "openvino", "onnx")
# The only model file each target may name: a bundle never holds anything the runtime would unpickle.
_MODEL_SUFFIX = {"onnx": ".onnx", "openvino": ".xml", "ncnn": ".param"}
# Fixed entry dates and modes: the same model and options always give the same bytes.
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)
# Model bytes are hashed, compressed and written a MiB at a time: Python acts on a Ctrl-C or SIGTERM
# only between two calls into C, and zlib took 3-7 s over a 100 MB model in one.
_CHUNK = 1 << 20


def _zip_entry(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=_ZIP_DATE)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.create_system = 3  # unix, so the mode below is read as a regular file
    info.external_attr = 0o100644 << 16
    return info


def _chunks(data: bytes | memoryview):
    view = memoryview(data)
    return (view[i:i + _CHUNK] for i in range(0, len(view), _CHUNK))


def _sha256(data: bytes) -> str:
    h = hashlib.sha256()
    for chunk in _chunks(data):
        h.update(chunk)
    return h.hexdigest()


def _write_entry(zf: zipfile.ZipFile, name: str, data: bytes) -> None:
    """``zf.writestr`` (the same bytes: zipfile's writestr is this with one write) a MiB at a time."""
    info = _zip_entry(name)
    info.file_size = len(data)  # as writestr sets it: the header's sizes (and zip64 or not) come from it
    with zf.open(info, "w") as dest:
        for chunk in _chunks(data):
            dest.write(chunk)


def _write_all(f, data: memoryview) -> None:
    for chunk in _chunks(data):
        f.write(chunk)


# The earlier forms: package_bundle(artifact, target, out), artifact= and nms= (the model as every
# other call names it; the NMS IoU as iou=, as evaluate_model, run_bench and load_predictor).
@deprecated_keywords("target", "out", artifact=renamed("model"), nms=renamed("iou"))
def package_bundle(model: str | Path, *, target: str, out: str | Path, conf: float = APP_CONF, iou: float = APP_NMS_IOU,
                   max_det: int = BUNDLE_MAX_DET, eval_json: str | Path | None = None,
                   bench_json: str | Path | None = None, force: bool = False) -> dict:
    """Package an exported ``model`` (folder, model file or metadata.json) as ``out`` (.zip), with
    the app's thresholds ``conf``, ``iou`` (NMS, ``package --nms``) and ``max_det``.

    An existing ``out`` is replaced only with ``force`` (a shipped bundle is not lost to a
    typo). Returns the verification report of the written bundle (see ``verify_bundle``).
    ``target`` and ``out`` were positional, ``artifact=`` and ``nms=`` the names of ``model`` and
    ``iou``: those forms still work, with a DeprecationWarning.
    """
    artifact, nms = model, iou  # the names below are the metadata's and the messages' ("postprocess.nms")
    out = refuse_overwrite(out, force, "bundle")
    if target not in TARGETS:
        raise UserError(f"{flag_value('--target', 'target', target)}: choose one of {', '.join(TARGETS)}")
    if out.suffix.lower() != ".zip":
        raise UserError(f"{out}: a bundle is a .zip file; name it like NAME.zip")
    max_det = check_max_det(max_det)
    check_thresholds(conf, nms, max_det)
    meta = read_metadata(artifact, verify=True)  # UserError on a missing/edited file
    src = Path(meta.pop("_dir"))
    if meta["format"] != target:
        make = (f"quantize it with 'yolox-edge quantize CHECKPOINT --calib DIR --format {target}'"
                if meta.get("quantization") else  # an INT8 folder: export would make an FP32 one
                f"export it with 'yolox-edge export CHECKPOINT --format {target}'")
        raise UserError(f"{artifact}: is an {meta['format']} export, not {target}; {make} or pass "
                        f"{flag_value('--target', 'target', meta['format'])}")
    if target == "ncnn" and meta["graph"]["output_kind"] == "raw":
        raise UserError(f"{artifact}: raw-output export; the app needs the decode in the graph "
                        "(export without --raw)")
    # One line each in labels.txt, as every reader splits it (str.splitlines also breaks at
    # \x0b, \x0c, \x1c-\x1e, \x85, \u2028, \u2029).
    bad = [n for n in meta["class_names"] if n.splitlines() != [n]]
    if bad:
        raise UserError(f"{artifact}: class name {bad[0]!r} cannot be written to labels.txt; rename it")
    files = dict(meta["files"])
    reserved = {METADATA_FILE, LABELS, CARD, MANIFEST} & set(files)
    if reserved:
        raise UserError(f"{artifact}: export file {sorted(reserved)[0]} clashes with a bundle file; rename it")
    if meta["model_file"] not in files or not meta["model_file"].endswith(_MODEL_SUFFIX[target]):
        raise UserError(f"{artifact}: metadata model_file {meta['model_file']} is not a listed {target} model; re-export")

    evaluation = evaluation_from_json(eval_json, meta, src) if eval_json else meta.get("evaluation")
    latency = latency_from_json(bench_json, artifact, meta) if bench_json else None
    meta["postprocess"] = {"conf": conf, "nms": nms, "max_det": max_det, "agnostic": False}
    meta["bundle"] = {"schema_version": BUNDLE_SCHEMA, "target": target, "labels": LABELS, "card": CARD,
                      "evaluation": evaluation, "latency": latency}

    contents: dict[str, bytes] = {name: (src / name).read_bytes() for name in sorted(files)}
    for name, data in contents.items():  # re-check: the files may have changed since read_metadata
        if _sha256(data) != files[name]:
            raise UserError(f"{src / name}: changed while packaging; run package again")
    if not strict_json(meta):
        raise UserError(f"{src / METADATA_FILE}: holds NaN or Infinity, which the app cannot read; re-export the model")
    contents[METADATA_FILE] = json.dumps(meta, indent=2).encode()
    contents[LABELS] = ("\n".join(meta["class_names"]) + "\n").encode()
    contents[CARD] = render_card(meta, target=target, files={n: len(b) for n, b in contents.items()},
                                 evaluation=evaluation, latency=latency).encode()
    manifest = "".join(f"{_sha256(b)}  {n}\n" for n, b in contents.items())
    contents[MANIFEST] = manifest.encode()

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in contents.items():
            _write_entry(zf, name, data)
    # Named for this process (owners.owned_temp_dir): a kill -9 left it, twice the bundle's size with
    # verify's, in the system temp folder for good; the next yolox_edge run on this host removes it.
    with owned_temp_dir("yolox_edge_package_") as tmp:
        # Verified before it is put in place: a bundle that fails its own check is never left at out.
        trial = tmp / out.name
        with open(trial, "wb") as f:
            _write_all(f, buf.getbuffer())
        try:
            report = verify_bundle(trial)
        except UserError as e:
            raise UserError(str(e).replace(str(trial), str(out)) + " (not written)") from None
    atomic_write_bytes(out, lambda f: _write_all(f, buf.getbuffer()))
    anchors = sum(h * w for h, w in level_shapes(meta["input_size"], meta["strides"]))
    return {**report, "bundle": str(out), "notes": graph_limits(meta["graph"], conf, nms, max_det, anchors)}


def stopped_note(out: str | Path, before: tuple[int, ...] | None) -> str:
    """What a ``package`` stopped by Ctrl-C or SIGTERM left at ``out``, whose ``file_identity`` was
    ``before``: the new bundle (the stop came after it was renamed into place), the earlier one, or none.

    'interrupted' alone read as 'nothing was written', also when the new bundle was already in place."""
    out = Path(out)
    now = file_identity(out)
    if now is not None and now != before:  # written only once verified, by one rename: whole
        return (f"package: interrupted after the bundle was written: {out} holds the new one, whole and verified; "
                f"'yolox-edge verify {out}' checks it again")
    if before is not None:
        return f"package: interrupted: {out} keeps its earlier bundle, untouched; run the same command again to replace it"
    return f"package: interrupted: no bundle was written to {out}; run the same command again"


def check_max_det(max_det) -> int:
    """``max_det`` as a plain int, or BadArgument: the app reads it as a 32-bit int and refuses the
    whole bundle beyond that, and a float or a bool is no count (numpy ints are fine)."""
    try:
        value = None if isinstance(max_det, bool) else operator.index(max_det)
    except TypeError:
        value = None
    if value is None or not 1 <= value <= APP_INT_MAX:
        raise BadArgument(f"{flag_value('--max-det', 'max_det', max_det)}: give a whole number from 1 to "
                          f"{APP_INT_MAX}, the most the app reads (default {BUNDLE_MAX_DET}; a graph gives at most "
                          "one detection per anchor anyway)")
    return value


def graph_limits(graph: dict, conf: float, nms: float, max_det: int, anchors: int | None = None) -> list[str]:
    """What the app thresholds cannot change because the graph already applied stricter ones
    (in-graph top-K and NMS, or its ``anchors``: one candidate each): recorded as given, but said,
    so the card is not read as a promise."""
    notes = []
    k = graph.get("topk") if graph.get("output_kind") == "topk" else None
    if k and max_det > k and not (anchors and k >= anchors):
        notes.append(f"the graph keeps at most {k} detections, so max_det {max_det} gives no more "
                     f"(export with --topk {max_det} for that)")
    elif anchors and max_det > anchors:  # a top-K as large as the anchors: --topk cannot raise it
        notes.append(f"the graph gives at most {anchors} candidates (one per anchor at its input size), so "
                     f"max_det {max_det} gives no more than that")
    g = graph.get("nms") or {}
    if g.get("conf") is not None and conf < g["conf"]:
        notes.append(f"the graph keeps only scores above {g['conf']}, so conf {conf} shows no more "
                     f"(export with --conf {conf} for that)")
    if g.get("iou") is not None and nms > g["iou"]:
        notes.append(f"the graph's NMS already removed boxes overlapping more than IoU {g['iou']}, so nms {nms} "
                     f"keeps no more (export with --nms {nms} for that)")
    return notes


def check_extracted(bundle: Path, directory: Path, manifest: dict[str, str]) -> dict:
    """The bundle-level contract on an extracted, sha256-checked bundle; returns its metadata."""
    for required in (METADATA_FILE, LABELS, CARD):
        if required not in manifest:
            raise UserError(f"{bundle}: has no {required}; not a yolox_edge bundle (rebuild it with 'yolox-edge package')")
    try:
        meta = read_metadata(directory, verify=False)
    except UserError as e:  # name the bundle, not the private folder it was checked in
        raise UserError(str(e).replace(str(directory), f"{bundle}!")) from None
    meta.pop("_dir", None)
    _check_field_types(bundle, meta)
    for name, digest in meta["files"].items():
        if manifest.get(name) != digest:
            raise UserError(f"{bundle}: {name} in metadata.json does not match the bundle's copy; "
                            "rebuild it with 'yolox-edge package'")
    want = _MODEL_SUFFIX.get(meta["format"])
    if want is None or not meta["model_file"].endswith(want):
        raise UserError(f"{bundle}: model_file {meta['model_file']!r} is not a {meta['format']} model "
                        f"({want or 'unknown format'}); rebuild it with 'yolox-edge package'")
    b = meta.get("bundle")
    if not isinstance(b, dict) or b.get("target") != meta["format"] or "postprocess" not in meta:
        raise UserError(f"{bundle}: metadata.json lacks the bundle section; rebuild it with 'yolox-edge package'")
    schema = b.get("schema_version", 0)
    if not isinstance(schema, int) or isinstance(schema, bool):
        raise _malformed(bundle, f"bundle.schema_version {schema!r} is not a whole number")
    if schema > BUNDLE_SCHEMA:
        raise UserError(f"{bundle}: bundle schema {schema} is newer than this yolox_edge; upgrade it")
    _check_postprocess(bundle, meta["postprocess"])
    _check_bundle_facts(bundle, b)
    _check_no_strays(bundle, meta, manifest)
    if meta["format"] == "ncnn":  # the target the Android app runs: what its reader refuses, verify refuses
        check_app_reads(bundle, meta)
    try:
        labels = (directory / LABELS).read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError:
        raise UserError(f"{bundle}: labels.txt is not UTF-8 text; rebuild it with 'yolox-edge package'") from None
    if labels != list(meta["class_names"]):
        raise UserError(f"{bundle}: labels.txt does not match class_names in metadata.json; rebuild it")
    return meta


def _malformed(bundle: Path, what: str) -> UserError:
    return UserError(f"{bundle}: metadata.json {what} (edited?); rebuild it with 'yolox-edge package'")


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _check_field_types(bundle: Path, meta: dict) -> None:
    """The fields checked below by value, checked first by type: a hand-edited metadata.json
    (SHA256SUMS summed again) gets one line, not a traceback."""
    if not strict_json(meta):
        raise _malformed(bundle, "holds NaN or Infinity, which is not JSON and the app cannot read")
    # files (a table of plain names), model_file (one of them): read_metadata's check_consistency
    if not isinstance(meta["format"], str):
        raise _malformed(bundle, f"format {meta['format']!r} is not a string")


def _check_postprocess(bundle: Path, pp) -> None:
    """The app's thresholds as ``package`` writes them: the app and ``predict`` use them as they are."""
    ok = (isinstance(pp, dict) and all(_is_number(pp.get(k)) and 0.0 <= pp[k] <= 1.0 for k in ("conf", "nms"))
          and isinstance(pp.get("max_det"), int) and not isinstance(pp["max_det"], bool)
          and 1 <= pp["max_det"] <= APP_INT_MAX and isinstance(pp.get("agnostic"), bool))
    if not ok:
        raise _malformed(bundle, f"postprocess {pp!r} is not conf and nms in [0, 1], max_det from 1 to {APP_INT_MAX} "
                                 "and agnostic true/false")


def _check_bundle_facts(bundle: Path, b: dict) -> None:
    """evaluation (printed by verify and info) and latency: absent, or what ``package`` records."""
    ev = b.get("evaluation")
    if ev is not None and not (isinstance(ev, dict) and _is_number(ev.get("AP")) and _is_number(ev.get("AP50"))):
        raise _malformed(bundle, "bundle.evaluation has no numeric AP and AP50")
    if not isinstance(b.get("latency"), (dict, type(None))):
        raise _malformed(bundle, "bundle.latency is not a table")


def _check_no_strays(bundle: Path, meta: dict, manifest: dict[str, str]) -> None:
    """A bundle is its export's files and the bundle files, nothing else: a file added (and summed
    into SHA256SUMS) later would otherwise be copied into the app with the model."""
    known = set(meta["files"]) | {METADATA_FILE, LABELS, CARD, MANIFEST}
    stray = sorted(set(manifest) - known)
    if stray:
        raise UserError(f"{bundle}: {stray[0]} is neither listed in metadata.json nor a bundle file (added after "
                        "packaging?); rebuild it with 'yolox-edge package'")


def read_bundle(bundle: str | Path) -> tuple[dict, list]:
    """(metadata, entries) of a bundle checked completely (zip structure, names, sizes, sha256s,
    metadata, labels) in a temporary folder; UserError with one line naming the problem."""
    bundle = Path(bundle)
    with owned_temp_dir("yolox_edge_verify_") as tmp:  # named for this process, as package's
        entries = safe_extract(bundle, tmp)
        return check_extracted(bundle, tmp, {e.name: e.sha256 for e in entries}), entries


def verify_bundle(bundle: str | Path) -> dict:
    """Check a bundle completely (``read_bundle``); returns a report dict."""
    bundle = Path(bundle)
    meta, entries = read_bundle(bundle)
    return {"bundle": str(bundle), "ok": True, "model": meta["model"], "variant": meta.get("variant"),
            "target": meta["bundle"]["target"], "precision": meta["precision"],
            "input_size": meta["input_size"], "classes": len(meta["class_names"]),
            "output_kind": meta["graph"]["output_kind"], "postprocess": meta["postprocess"],
            "evaluation": meta["bundle"].get("evaluation"), "latency": meta["bundle"].get("latency"),
            "files": {e.name: {"bytes": e.size, "sha256": e.sha256} for e in entries}}
