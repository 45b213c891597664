"""yolox-edge export: a checkpoint -> ONNX / OpenVINO IR / ncnn with the decode in the graph."""
from __future__ import annotations

import sys
from pathlib import Path

from ..fileio import read_bytes_or_none
from ..thresholds import EVAL_CONF, EVAL_NMS_IOU
from .argtypes import img_size, non_negative, unit_interval

SILU_HELP = ("exact (the default) or 'rational' (OpenVINO): SiLU as a rational approximation within 7.6e-4 of it, which the CPU plugin "
             "runs as its own pass instead of inside each convolution: faster on some CPUs (measure with bench), "
             "same weights")


def add_parser(sub) -> None:
    p = sub.add_parser("export", help="export a checkpoint with decode (+ top-K) in the graph, plus metadata.json")
    p.add_argument("model", help="checkpoint (.pt)")
    p.add_argument("--format", required=True, choices=["onnx", "openvino", "ncnn"],
                   help="the runtime to export for (required)")
    p.add_argument("--precision", default="fp32", choices=["fp32", "fp16"],
                   help="weights precision (default fp32); fp16: OpenVINO (compressed) and ncnn (stem conv kept fp32); not ONNX")
    p.add_argument("--topk", type=non_negative, default=None,
                   help="keep the K best anchors in the graph (default 100 for onnx/openvino; 0 = all anchors; "
                        "ncnn has no top-K layers)")
    p.add_argument("--nms", type=unit_interval, default=None,
                   help=f"IoU of the class-aware NMS run in the graph before top-K (onnx/openvino), default {EVAL_NMS_IOU}")
    p.add_argument("--no-nms", action="store_true", help="top-K of raw anchors, no NMS in the graph")
    p.add_argument("--conf", type=unit_interval, default=None,
                   help=f"score threshold of the in-graph NMS, default {EVAL_CONF}")
    p.add_argument("--raw", action="store_true", help="official raw output [B, N, 5+C] instead of decoded boxes")
    p.add_argument("--img-size", type=img_size, default=None, metavar="S|WxH",
                   help="input size: S (square) or WIDTHxHEIGHT such as 416x320, multiples of 32 "
                   "(default: the checkpoint's)")
    p.add_argument("--dynamic-batch", action="store_true", help="dynamic batch dimension (onnx/openvino)")
    p.add_argument("--silu", choices=("exact", "rational"), default="exact", help=SILU_HELP)
    p.add_argument("--out", required=True, help="output folder (model files + metadata.json)")
    p.add_argument("--force", action="store_true", help="replace an export already in --out")
    p.set_defaults(func=run)


def given_nms_flags(args) -> list[str]:
    """The in-graph NMS flags the user set (defaults are None, so a set flag is seen)."""
    return [f for f, v in (("--nms", args.nms), ("--conf", args.conf)) if v is not None]


def nms_settings(args) -> tuple[float, float]:
    """(IoU, score threshold) of the in-graph NMS: the flags, else the evaluation defaults."""
    return (EVAL_NMS_IOU if args.nms is None else args.nms), (EVAL_CONF if args.conf is None else args.conf)


def run(args) -> int:
    from ..export import export_model
    from ..export.api import refuse_unused_nms
    from ..export.metadata import output_bytes_per_image

    refuse_unused_nms([args.format], raw=args.raw, topk=args.topk, given=given_nms_flags(args), no_nms=args.no_nms)
    iou, conf = nms_settings(args)
    before = read_bytes_or_none(Path(args.out) / "metadata.json")
    try:
        res = export_model(args.model, format=args.format, out=args.out, precision=args.precision, topk=args.topk,
                           raw=args.raw, img_size=args.img_size, dynamic_batch=args.dynamic_batch,
                           iou=None if args.no_nms else iou, conf=conf, force=args.force,
                           silu=args.silu)
    except KeyboardInterrupt:
        print(_stopped_note(Path(args.out), before), file=sys.stderr)
        raise
    m = res.metadata
    g = m["graph"]
    print(f"exported {args.model} -> {res.directory} [{m['format']}, {m['precision']}, "
          f"input {m['input']['shape']}, output {g['output_kind']}"
          + (f", top-{g['topk']}" if g["topk"] else "")
          + (f", NMS {g['nms']['iou']}" if g["nms"] else "")
          + (", rational SiLU" if g.get("silu") == "rational" else "") + "]")
    if args.topk and g["topk"] and args.topk > g["topk"]:  # capped in the graph: 5000 became 1029 without a word
        h, w = m["input_size"]
        print(f"note: --topk {args.topk} is more than the {g['topk']} anchors at {w}x{h}: the graph keeps every "
              "anchor (the top-K only sorts them)", file=sys.stderr)
    for o in m["outputs"]:
        print(f"  output {o['name']:<7} {o['dtype']:<8} {o['shape']}")
    print(f"  {output_bytes_per_image(m):,} output bytes per image")
    for f in res.files:
        print(f"  {f}")
    if args.silu == "rational" and g.get("silu") != "rational":  # e.g. nano_hswish: nothing to rewrite
        print("  note: --silu rational: this model has no SiLU, so the export is as without it")
    return 0


def _stopped_note(out: Path, before: bytes | None) -> str:
    """What a stopped export left in ``out``: the moves into place happen with stops held off, so the
    folder holds the earlier export or the new one, whole ('interrupted' alone said neither)."""
    now = read_bytes_or_none(out / "metadata.json")
    if now is not None and now != before:
        return f"export: interrupted after the new export was written: {out} holds it, whole"
    if before is not None:
        return f"export: interrupted: {out} keeps its earlier export, untouched"
    return f"export: interrupted: nothing was written to {out}; run the same command again"
