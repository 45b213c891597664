"""What the Android app accepts in an ncnn bundle's metadata.json: the conditions of its reader
(android_demo/app/src/main/cpp/core/metadata.cpp, ``parse_metadata``), checked on the host.

``package`` writes only what the app reads, but SHA256SUMS is no signature: a metadata.json
edited (and summed again) to say raw outputs or mean/std passed ``verify`` and was then refused
on the phone. Keep this module in step with metadata.cpp; tests/native feeds both the same edits.
"""
from __future__ import annotations

from pathlib import Path

from ..data.preprocess import check_pixel_input
from ..errors import UserError
from ..thresholds import APP_INT_MAX as INT32_MAX

# json.cpp ``Value::as_int``: a whole number that fits a C++ int.
INT32_MIN = -(2**31)
APP_OUTPUT_KINDS = ("topk", "decoded")
APP_CHANNEL_ORDERS = ("BGR", "RGB")
_MISSING = object()


def _is_app_int(v) -> bool:
    """Whether the app's ``as_int`` takes ``v``: a JSON number (not true/false) with no fraction, in int32."""
    return (isinstance(v, (int, float)) and not isinstance(v, bool) and v == v
            and float(v).is_integer() and INT32_MIN <= v <= INT32_MAX)


def _refuse(bundle: Path, field: str, what: str, fix: str) -> UserError:
    return UserError(f"{bundle}: metadata.json {field} {what}; the Android app refuses it; {fix}")


_REBUILD = "rebuild it with 'yolox-edge package' from an unedited export"


def check_app_reads(bundle: Path, meta: dict) -> None:
    """UserError naming the bundle and the field when the app's metadata reader would refuse
    ``meta`` (an ncnn bundle's metadata.json, already checked as JSON without NaN)."""
    def get(obj, key):
        return obj.get(key, _MISSING) if isinstance(obj, dict) else _MISSING

    def need(ok: bool, field: str, what: str, fix: str = _REBUILD) -> None:
        if not ok:
            raise _refuse(bundle, field, what, fix)

    schema = get(meta, "schema_version")
    need(_is_app_int(schema), "schema_version", f"{schema!r} is not a whole number")
    for key in ("model", "precision"):
        need(isinstance(get(meta, key), str), key, f"{get(meta, key)!r} is not a string")

    pre = get(meta, "preprocess")
    need(isinstance(pre, dict), "preprocess", "is not an object")
    # The app reads the top-level input_size first, else the one in preprocess.
    size = get(meta, "input_size")
    field = "input_size"
    if size is _MISSING:
        size, field = get(pre, "input_size"), "preprocess.input_size"
    need(isinstance(size, list) and len(size) == 2 and all(_is_app_int(v) and v > 0 for v in size),
         field, f"{size!r} is not [height, width] of positive whole numbers")
    pad = get(pre, "pad_value")
    need(pad is _MISSING or _is_app_int(pad), "preprocess.pad_value", f"{pad!r} is not a whole number")
    order = get(pre, "channel_order")
    need(order is _MISSING or order in APP_CHANNEL_ORDERS, "preprocess.channel_order",
         f"{order!r} is not BGR or RGB", "export the model with BGR or RGB input")
    box = get(pre, "letterbox")
    # null is absent; anything else but "top-left" metadata.cpp refuses (as check_pixel_input does)
    need(box is None or box == "top-left", "preprocess.letterbox", f"{box!r} is not top-left",
         "export the model with the top-left letterbox of the preprocessing contract")
    # The app fills 0..255 pixels, NCHW, whatever these say (it read neither), as the Python runtimes
    # do: another range or layout ran on values the model was not made for. One check for both.
    check_pixel_input(pre, f"{bundle}: metadata.json")
    for key in ("mean", "std"):
        v = get(pre, key)
        # The app has no normalisation step: it refuses such a model rather than run it on the
        # wrong values, and verify says so before a phone does.
        need(v is _MISSING or v is None, f"preprocess.{key}", f"{v!r} asks for mean/std normalisation (the app "
             "feeds 0..255 pixels as they are)", "export a model without mean/std, or package it for onnx or "
             "openvino and run it with yolox-edge")

    names = get(meta, "class_names")
    need(isinstance(names, list) and names and all(isinstance(n, str) for n in names), "class_names",
         "is not a non-empty list of strings")

    graph = get(meta, "graph")
    need(isinstance(graph, dict), "graph", "is not an object")
    kind = get(graph, "output_kind")
    need(kind in APP_OUTPUT_KINDS, "graph.output_kind", f"{kind!r} is not topk or decoded (the app has no "
         "decode of its own)", "export the model with the decode in the graph (without --raw) and package that")
    fmt = get(graph, "box_format")
    need(fmt is _MISSING or fmt == "xyxy", "graph.box_format", f"{fmt!r} is not xyxy")

    need(isinstance(get(get(meta, "input"), "name"), str), "input.name", "is not a string")
    outputs = get(meta, "outputs")
    need(isinstance(outputs, list) and all(isinstance(get(o, "name"), str) for o in outputs), "outputs",
         "is not a list of outputs with a name each")
    roles = {o["name"] for o in outputs}
    need({"boxes", "scores"} <= roles, "outputs", f"{sorted(roles)} lacks boxes or scores")
    need(kind != "topk" or "labels" in roles, "outputs", f"{sorted(roles)} lacks the labels of a top-K graph")

    pp = get(meta, "postprocess")
    if isinstance(pp, dict):  # absent or not an object: the app keeps its own thresholds
        for key in ("conf", "nms"):
            v = get(pp, key)
            need(v is _MISSING or (isinstance(v, (int, float)) and not isinstance(v, bool)),
                 f"postprocess.{key}", f"{v!r} is not a number")
        v = get(pp, "max_det")
        need(v is _MISSING or _is_app_int(v), "postprocess.max_det", f"{v!r} is not a whole number of at most "
             f"{INT32_MAX}")
        v = get(pp, "agnostic")
        need(v is _MISSING or isinstance(v, bool), "postprocess.agnostic", f"{v!r} is not true or false")
