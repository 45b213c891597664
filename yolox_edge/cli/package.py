"""yolox-edge package: an exported model as one mobile bundle (.zip) with metadata, labels, card, sha256s."""
from __future__ import annotations

from .argtypes import positive, unit_interval


def add_parser(sub) -> None:
    p = sub.add_parser("package", help="package an exported model as a verified mobile bundle (.zip)")
    p.add_argument("artifact", help="export folder, model file or metadata.json (from 'yolox-edge export')")
    p.add_argument("--target", required=True, choices=["ncnn", "openvino", "onnx"], help="runtime of the bundle")
    p.add_argument("--out", required=True, help="bundle file, NAME.zip")
    p.add_argument("--conf", type=unit_interval, default=0.3, help="score threshold the app uses (default 0.3)")
    p.add_argument("--nms", type=unit_interval, default=0.45, help="NMS IoU threshold the app uses (default 0.45)")
    p.add_argument("--max-det", type=positive, default=100, help="most detections per image (default 100)")
    p.add_argument("--eval-json", default=None, help="'yolox-edge eval --json' output: AP for the model card")
    p.add_argument("--bench-json", default=None, help="'yolox-edge bench --json' output: latency for the model card")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..bundle import package_bundle

    rep = package_bundle(args.artifact, args.target, args.out, conf=args.conf, nms=args.nms, max_det=args.max_det,
                         eval_json=args.eval_json, bench_json=args.bench_json)
    size = sum(f["bytes"] for f in rep["files"].values())
    print(f"{args.out}: {rep['model']} {rep['target']} {rep['precision']}, {rep['classes']} classes, "
          f"input {rep['input_size'][1]}x{rep['input_size'][0]}, {len(rep['files'])} files ({size} bytes), verified")
    return 0
