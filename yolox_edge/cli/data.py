"""yolox-edge data check SPEC: counts, class/box-size histograms and every problem, by file."""
from __future__ import annotations

from ..errors import UserError
from . import add_no_progress
from .argtypes import positive
from .jsonout import add_json_option, check_json_target, report_stream, write_json


def add_parser(sub) -> None:
    p = sub.add_parser("data", help="inspect a dataset (data check SPEC)")
    dsub = p.add_subparsers(dest="data_command", required=True, metavar="SUBCOMMAND")
    c = dsub.add_parser("check", help="counts, histograms and problems of a data spec")
    c.add_argument("spec", help="data spec YAML (or a folder holding data.yaml)")
    c.add_argument("--split", action="append", default=None, help="only this split (repeatable)")
    c.add_argument("--no-decode", action="store_true",
                   help="read image headers and end markers only, as train does before it starts "
                        "(fast; misses an image damaged between the two)")
    c.add_argument("--threads", type=positive, default=4,
                   help="threads reading images (decoding, or headers with --no-decode; default %(default)s)")
    add_json_option(c, "the report")
    c.add_argument("--strict", action="store_true", help="exit 1 when any problem is found")
    add_no_progress(c)
    c.set_defaults(func=run_check)


def run_check(args) -> int:
    from ..data.check import check_dataset, format_report
    check_json_target(args, data=args.spec)
    report = check_dataset(args.spec, splits=args.split, decode=not args.no_decode, threads=args.threads,
                           progress=not args.no_progress)
    write_json(report, args.json_out)
    print(format_report(report), file=report_stream(args))
    bad = report["unreadable_splits"]
    if bad:
        raise UserError(f"{args.spec}: split{'s' if len(bad) > 1 else ''} {', '.join(bad)} cannot be read "
                        "(reason above); fix the spec, then check again")
    return 1 if args.strict and report["problems"] else 0
