"""yolox-edge package: an exported model as one mobile bundle (.zip) with metadata, labels, card, sha256s."""
from __future__ import annotations

import sys

from ..thresholds import APP_CONF, APP_NMS_IOU, BUNDLE_MAX_DET
from .argtypes import app_count, unit_interval


def add_parser(sub) -> None:
    p = sub.add_parser("package", help="package an exported model as a verified mobile bundle (.zip)")
    p.add_argument("artifact", help="export folder, model file or metadata.json (from 'yolox-edge export')")
    p.add_argument("--target", required=True, choices=["ncnn", "openvino", "onnx"], help="runtime of the bundle")
    p.add_argument("--out", required=True, help="bundle file, NAME.zip")
    p.add_argument("--conf", type=unit_interval, default=APP_CONF,
                   help=f"score threshold the app uses (default {APP_CONF})")
    p.add_argument("--nms", type=unit_interval, default=APP_NMS_IOU,
                   help=f"NMS IoU threshold the app uses (default {APP_NMS_IOU})")
    p.add_argument("--max-det", type=app_count, default=BUNDLE_MAX_DET,
                   help=f"most detections per image, 1 to 2^31-1 (default {BUNDLE_MAX_DET})")
    p.add_argument("--eval-json", default=None, help="'yolox-edge eval --json' output: AP for the model card")
    p.add_argument("--bench-json", default=None, help="'yolox-edge bench --json' output: latency for the model card")
    p.add_argument("--force", action="store_true", help="replace an existing bundle at --out")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..bundle.package import package_bundle, stopped_note
    from ..fileio import file_identity

    before = file_identity(args.out)
    try:
        rep = package_bundle(args.artifact, target=args.target, out=args.out, conf=args.conf, iou=args.nms,
                             max_det=args.max_det, eval_json=args.eval_json, bench_json=args.bench_json,
                             force=args.force)
        size = sum(f["bytes"] for f in rep["files"].values())
        print(f"{args.out}: {rep['model']} {rep['target']} {rep['precision']}, {rep['classes']} "
              f"class{'es' if rep['classes'] != 1 else ''}, input {rep['input_size'][1]}x{rep['input_size'][0]}, "
              f"{len(rep['files'])} files ({size} bytes), verified")
        for note in rep["notes"]:
            print(f"note: {note}", file=sys.stderr)
    except KeyboardInterrupt:  # still 130, as calibrate and quantize: the run was stopped; the line says what is at --out
        print(stopped_note(args.out, before), file=sys.stderr)
        raise
    return 0
