"""yolox-edge quantize: INT8 (NNCF PTQ or QAT) to OpenVINO / ONNX / ncnn, with an FP32-vs-INT8 report."""
from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import UserError
from ..thresholds import EVAL_CONF, EVAL_NMS_IOU
from . import add_no_progress
from .argtypes import img_size, non_negative, positive, positive_float, unit_interval
from .export import SILU_HELP


def add_parser(sub) -> None:
    p = sub.add_parser("quantize", help="INT8 export (PTQ or QAT through NNCF) with the decode kept in float")
    p.add_argument("model", help="checkpoint (.pt)")
    p.add_argument("--calib", required=True, help="calibration set folder (from 'yolox-edge calibrate')")
    p.add_argument("--format", nargs="+", default=["openvino"], choices=("openvino", "onnx", "ncnn"),
                   help="one or more formats; with several, each goes to OUT/<format> (default openvino)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--force", action="store_true", help="replace an INT8 export already in --out")
    p.add_argument("--preset", choices=("mixed", "performance"), default="mixed",
                   help="NNCF preset (mixed: asymmetric activations; default)")
    p.add_argument("--fast-bias-correction", action=argparse.BooleanOptionalAction, default=True,
                   help="NNCF fast bias correction (default on; --no-fast-bias-correction runs the full one, "
                        "slower and for --format openvino only: NNCF's fails on these ONNX graphs)")
    p.add_argument("--subset-size", type=positive, default=300, help="calibration images used (at most; default 300)")
    p.add_argument("--topk", type=non_negative, default=None, help="in-graph top-K (default: the format's export default)")
    p.add_argument("--nms", type=unit_interval, default=None, metavar="IOU",
                   help=f"IoU of the in-graph NMS before top-K (onnx/openvino), default {EVAL_NMS_IOU}")
    p.add_argument("--conf", type=unit_interval, default=None,
                   help=f"score threshold of the in-graph NMS, default {EVAL_CONF} (evaluation grade; "
                        "an app that only shows confident boxes can raise it, which shortens the NMS)")
    p.add_argument("--ncnn-keep-float", type=non_negative, default=4, metavar="N",
                   help="ncnn: leave the N most error-sensitive convs in float (default 4)")
    p.add_argument("--nncf-keep-float", type=non_negative, default=2, metavar="N",
                   help="openvino/onnx: leave the N most error-sensitive convs in float (default 2)")
    p.add_argument("--accuracy-control", action="store_true",
                   help="NNCF accuracy control: restore layers to float until the AP drop is within --max-drop")
    p.add_argument("--max-drop", type=unit_interval, default=0.005, help="absolute AP drop allowed (default %(default)s, half an AP point)")
    p.add_argument("--data", help="data spec: val split for accuracy control / report, train split for QAT")
    p.add_argument("--qat", action="store_true", help="quantization-aware fine-tuning before export (needs --data)")
    p.add_argument("--epochs", type=positive, default=None,
                   help="QAT epochs (default 1: one full cosine decay; measured best on a small train split)")
    p.add_argument("--lr", type=positive_float, default=None, help="QAT learning rate (default: low, see qat.py)")
    p.add_argument("--batch", type=positive, default=None, help="QAT batch size (default 8)")
    p.add_argument("--img-size", type=img_size, default=None, metavar="S|WxH",
                   help="input size of the INT8 graphs, S or WIDTHxHEIGHT (default: the checkpoint's); the calibration set must match")
    p.add_argument("--silu", choices=("exact", "rational"), default="exact",
                   help=SILU_HELP + "; the other formats keep exact SiLU")
    p.add_argument("--report", action="store_true",
                   help="also export FP32 of each format and print the FP32 vs INT8 table (needs --data)")
    p.add_argument("--threads", type=positive, default=None,
                   help="CPU threads for torch (calibration statistics, the conv scan, QAT, the graphs) and for "
                        "the runtimes of this package's evaluations (--report, QAT, --accuracy-control's scoring) "
                        "(default: every core; on a machine busy with other work, 1 can be many times faster). "
                        "NNCF's own OpenVINO/onnxruntime runs (its statistics, its accuracy-control candidates) "
                        "take no thread count and use every core: bound them with taskset -c")
    add_no_progress(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from ..export.api import refuse_unused_nms
    from ..quantize.pipeline import run_quantize
    from .export import given_nms_flags, nms_settings

    refuse_unused_nms(args.format, topk=args.topk, given=given_nms_flags(args))
    unused = [f for f, v in (("--epochs", args.epochs), ("--lr", args.lr), ("--batch", args.batch)) if v is not None]
    if unused and not args.qat:  # else a plain PTQ ran, the flags dropped without a word
        raise UserError(f"{'/'.join(unused)}: QAT settings, and this run does no QAT; add --qat (with --data) "
                        "or drop them")
    iou, conf = nms_settings(args)
    run_quantize(args.model, calib=args.calib, formats=args.format, out=Path(args.out), preset=args.preset,
                 fast_bias_correction=args.fast_bias_correction, subset_size=args.subset_size, topk=args.topk,
                 accuracy_control=args.accuracy_control, max_drop=args.max_drop, data=args.data, qat=args.qat,
                 epochs=args.epochs or 1, lr=args.lr, batch=args.batch or 8, report=args.report,
                 keep_float=args.ncnn_keep_float, nncf_keep_float=args.nncf_keep_float, iou=iou,
                 conf=conf, force=args.force, img_size=args.img_size, progress=not args.no_progress,
                 silu=args.silu, threads=args.threads)
    return 0
