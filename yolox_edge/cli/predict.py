"""yolox-edge predict: detections for images, printed or as JSON, annotated copies saved."""
from __future__ import annotations

import json
from pathlib import Path

from . import add_precision_hint
from .argtypes import positive, unit_interval


def add_parser(sub) -> None:
    p = sub.add_parser("predict", help="detect objects in images with any model artifact")
    p.add_argument("model", help="checkpoint (.pt) or exported artifact / folder")
    p.add_argument("images", nargs="+", help="image files")
    p.add_argument("--conf", type=unit_interval, default=0.3, help="score threshold (obj x cls), default 0.3")
    p.add_argument("--nms", type=unit_interval, default=0.45, help="NMS IoU threshold, default 0.45")
    p.add_argument("--agnostic", action="store_true", help="class-agnostic NMS")
    p.add_argument("--max-det", type=positive, default=300)
    p.add_argument("--threads", type=positive, default=None)
    add_precision_hint(p)
    p.add_argument("--save-dir", default=None, help="write an annotated copy of each image here")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..data.preprocess import read_image
    from ..runtime import load_predictor
    from ..visualize import draw_detections, write_image

    images = [(Path(f), read_image(f)) for f in args.images]  # fail on a bad file before any work
    pred = load_predictor(args.model, threads=args.threads, precision_hint=args.precision_hint, conf=args.conf,
                          iou=args.nms, agnostic=args.agnostic, max_det=args.max_det)
    results = []
    for path, img in images:
        det = pred.predict(img)
        results.append({"image": str(path), "detections": det.to_list(pred.class_names)})
        if args.save_dir:
            out = Path(args.save_dir) / f"{path.stem}_pred.jpg"
            write_image(out, draw_detections(img, det, pred.class_names))
        if not args.json:
            print(f"{path}: {len(det)} detections")
            for d in results[-1]["detections"]:
                print(f"  {d['name']:<14} {d['score']:.3f}  [{', '.join(f'{v:.1f}' for v in d['box'])}]")
    if args.json:
        print(json.dumps(results, indent=2))
    return 0
