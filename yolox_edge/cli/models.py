"""yolox-edge models: the variant table (params, GFLOPs) against the official figures."""
from __future__ import annotations

from .argtypes import positive
from .jsonout import add_json_option, check_json_target, report_stream, write_json


def add_parser(sub) -> None:
    p = sub.add_parser("models", help="list model variants with parameter and FLOP counts")
    add_json_option(p, "the table")
    p.add_argument("--num-classes", type=positive, default=80)
    p.add_argument("--variant", action="append", default=None,
                   help="only this variant (repeatable); default: all")
    p.set_defaults(func=run)


OFFICIAL_CLASSES = 80  # the COCO head the YOLOX README's figures count


def model_table(num_classes: int = 80, variants: list[str] | None = None) -> list[dict]:
    """One row per variant (default: all non-test ones): params, GFLOPs and official figures.

    The official figures count the 80-class COCO head, so they are given (not None) only at
    ``num_classes`` 80: beside another head size they would not compare."""
    from ..models import OFFICIAL, count_gflops, count_params, create_model, get_variant, list_models

    rows = []
    for name in variants or list_models():
        v = get_variant(name)  # an unknown name is a UserError (UnknownVariant)
        name = v.name
        m = create_model(name, num_classes=num_classes)
        params, gflops = count_params(m) / 1e6, count_gflops(m, v.input_size)
        off_p, off_g = OFFICIAL.get(name, (None, None)) if num_classes == OFFICIAL_CLASSES else (None, None)
        rows.append({"name": name, "input_size": v.input_size, "depth": v.depth, "width": v.width,
                     "depthwise": v.depthwise, "act": v.act, "params_m": round(params, 4), "gflops": round(gflops, 3),
                     "official_params_m": off_p, "official_gflops": off_g})
    return rows


def run(args) -> int:
    check_json_target(args)
    rows = model_table(args.num_classes, args.variant)
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
