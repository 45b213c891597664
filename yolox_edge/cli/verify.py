"""yolox-edge verify: check a bundle (zip safety, sizes, every sha256, metadata, labels); optionally extract it."""
from __future__ import annotations

import json


def add_parser(sub) -> None:
    p = sub.add_parser("verify", help="check a mobile bundle before use (exit 2 with one line when it is bad)")
    p.add_argument("bundle", help="bundle .zip from 'yolox-edge package'")
    p.add_argument("--extract", default=None, metavar="DIR", help="after checking, extract into this new/empty folder")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..bundle import extract_bundle, verify_bundle

    rep = verify_bundle(args.bundle)
    if args.extract:
        extract_bundle(args.bundle, args.extract)  # checks everything again on the bytes it writes
    if args.json:
        print(json.dumps(rep, indent=2))
        return 0
    ev = rep["evaluation"]
    print(f"{args.bundle}: OK  {rep['model']} ({rep['variant']}) {rep['target']} {rep['precision']}, "
          f"{rep['classes']} classes, input {rep['input_size'][1]}x{rep['input_size'][0]}, "
          f"outputs {rep['output_kind']}, {len(rep['files'])} files sha256-checked"
          + (f", AP {ev['AP']:.4f}" if ev else ""))
    if args.extract:
        print(f"extracted to {args.extract}")
    return 0
