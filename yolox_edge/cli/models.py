"""yolox-edge models: the variant table (params, GFLOPs) against the official figures."""
from __future__ import annotations

from .argtypes import positive
from .jsonout import add_json_option, check_json_target, report_stream, write_json


def add_parser(sub) -> None:
    p = sub.add_parser("models", help="list model variants with parameter and FLOP counts")
    add_json_option(p, "the table")
    p.add_argument("--num-classes", type=positive, default=80,
                   help="classes the counted models have (default %(default)s, COCO's)")
    p.add_argument("--variant", action="append", default=None,
                   help="only this variant (repeatable); default: all")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..models.profile import OFFICIAL_CLASSES, model_table  # torch: not at parser build (device installs)

    check_json_target(args)
    rows = model_table(num_classes=args.num_classes, variants=args.variant)
    write_json(rows, args.json_out)
    out = report_stream(args)
    print(f"{'model':<12}{'act':>7}{'size':>6}{'params(M)':>11}{'official':>10}{'GFLOPs':>9}{'official':>10}", file=out)
    for r in rows:
        off_p, off_g = ("-" if v is None else str(v) for v in (r["official_params_m"], r["official_gflops"]))
        print(f"{r['name']:<12}{r['act']:>7}{r['input_size']:>6}{r['params_m']:>11.3f}{off_p:>10}"
              f"{r['gflops']:>9.2f}{off_g:>10}", file=out)
    print("GFLOPs counted as the YOLOX README does (thop x 2: conv MACs + biases + BatchNorm).", file=out)
    if args.num_classes != OFFICIAL_CLASSES:
        print(f"Official figures are for {OFFICIAL_CLASSES} classes; omitted at --num-classes {args.num_classes}.",
              file=out)
    return 0
