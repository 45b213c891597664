"""yolox-edge verify: check a bundle (zip safety, sizes, every sha256, metadata, labels); optionally extract it."""
from __future__ import annotations

from .jsonout import add_json_option, check_json_target, report_stream, write_json


def add_parser(sub) -> None:
    p = sub.add_parser("verify", help="check a mobile bundle before use (exit 2 with one line when it is bad)")
    p.add_argument("bundle", help="bundle .zip from 'yolox-edge package'")
    p.add_argument("--extract", default=None, metavar="DIR", help="after checking, extract into this new/empty folder")
    add_json_option(p, "the report")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..bundle import extract_bundle, verify_bundle

    from ..errors import UserError

    check_json_target(args)
    try:
        rep = verify_bundle(args.bundle)
    except UserError as e:  # a script reading `--json` gets a record of the failure too
        write_json({"ok": False, "bundle": str(args.bundle), "error": str(e)}, args.json_out)
        raise
    if args.extract:
        extract_bundle(args.bundle, out=args.extract)  # checks everything again on the bytes it writes
    write_json(rep, args.json_out)
    out = report_stream(args)
    ev = rep["evaluation"]
    print(f"{args.bundle}: OK  {rep['model']} ({rep['variant']}) {rep['target']} {rep['precision']}, "
          f"{rep['classes']} class{'es' if rep['classes'] != 1 else ''}, input {rep['input_size'][1]}x{rep['input_size'][0]}, "
          f"outputs {rep['output_kind']}, {len(rep['files'])} files sha256-checked"
          + (f", AP {ev['AP']:.4f}" if ev else ""), file=out)
    if args.extract:
        print(f"extracted to {args.extract}", file=out)
    return 0
