"""yolox-edge pipeline: data -> train -> INT8 -> export -> bench -> bundle, in one command."""
from __future__ import annotations

from . import add_no_progress
from .argtypes import img_size, int_list, positive


def add_parser(sub) -> None:
    p = sub.add_parser("pipeline", help="run the whole path (default: on a generated dataset) and write a bundle")
    p.add_argument("--data", default=None, help="data spec YAML (default: generate a small shapes dataset)")
    p.add_argument("--out", default="runs/pipeline", help="output folder (default runs/pipeline)")
    p.add_argument("--recipe", default=None, help="a shipped recipe's name or a YAML file (default: a short "
                   "from-scratch Nano schedule)")
    p.add_argument("--weights", default=None, help="start from this checkpoint, e.g. an imported COCO Nano")
    p.add_argument("--epochs", type=positive, default=None, help="training epochs (default: the recipe's)")
    p.add_argument("--img-size", type=img_size, default=None, metavar="S|WxH",
                   help="input size S or WIDTHxHEIGHT (e.g. 416x320), multiples of 32: training, exports, "
                        "calibration and INT8 all use it (default: the recipe's)")
    p.add_argument("--target", choices=["ncnn", "openvino", "onnx"], default="ncnn", help="bundle target (default ncnn)")
    p.add_argument("--no-int8", action="store_true", help="skip INT8; bundle the FP32 export")
    p.add_argument("--calib-count", type=positive, default=32, help="INT8 calibration images (default 32)")
    p.add_argument("--bench-runs", type=positive, default=20, help="timed runs per bench row (default 20)")
    p.add_argument("--threads", type=int_list(1), default=(1, 2),
                   help="bench thread counts (default 1,2); torch's threads for training and INT8: "
                        "--set train.threads=N")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a recipe value, e.g. --set train.batch=16 (repeatable)")
    p.add_argument("--resume", action="store_true",
                   help="continue an earlier run in --out: training resumes from its train/last.pt (an error "
                        "where there is none), later stages run again")
    add_no_progress(p)
    p.set_defaults(func=run)


def run(args) -> int:
    import time

    from ..pipeline import run_pipeline, summary_table

    t0 = time.perf_counter()
    res = run_pipeline(out=args.out, data=args.data, recipe=args.recipe, weights=args.weights, epochs=args.epochs,
                       img_size=args.img_size, target=args.target, int8=not args.no_int8,
                       calib_count=args.calib_count, bench_runs=args.bench_runs, threads=args.threads,
                       overrides=args.overrides, resume=args.resume, progress=not args.no_progress)
    print("\n" + summary_table(res, threads=min(args.threads)))
    print("\nsteps: " + ", ".join(f"{k} {v:.0f}s" for k, v in res.seconds.items()))
    print(f"total {time.perf_counter() - t0:.0f} s; checkpoint {res.checkpoint}")
    print(f"bundle: {res.bundle}")
    return 0
