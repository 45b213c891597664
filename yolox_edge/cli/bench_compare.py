"""yolox-edge bench-compare: two bench --json results, which p50s moved beyond noise and why they might."""
from __future__ import annotations

from .argtypes import non_negative_float
from .jsonout import add_json_option, check_json_target, report_stream, write_json


def add_parser(sub) -> None:
    p = sub.add_parser("bench-compare", help="compare two bench --json results: p50 changes beyond run-to-run "
                                             "noise, speed-ups, and what differs between the machines or settings")
    p.add_argument("a", metavar="A.json", help="the reference run (bench --json): before the change, or one device")
    p.add_argument("b", metavar="B.json", help="the run compared with it: every change is B against A")
    p.add_argument("--tolerance", type=non_negative_float, default=15.0, metavar="PCT",
                   help="a p50 that moved more than PCT %% of A's, either way, is flagged (default 15: two "
                        "consecutive runs on a quiet machine stay within it)")
    p.add_argument("--mode", choices=["e2e", "model", "both"], default="both",
                   help="which timings to compare: e2e, model, or both (default: every mode both runs timed)")
    p.add_argument("--fail-slower", type=non_negative_float, default=None, metavar="PCT",
                   help="exit 1 when a row of B is slower than in A by more than PCT %% of A's p50: a regression "
                        "gate for CI (without it the exit is 0 whatever changed); A and B the same run (one file, or a "
                        "copy) are exit 2 with it")
    add_json_option(p, "the comparison")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..bench.compare import compare_reports, comparison_table
    from ..errors import UserError

    check_json_target(args, reads=(args.a, args.b))
    cmp = compare_reports(args.a, args.b, tolerance=args.tolerance, mode=args.mode)
    if cmp.same_run and args.fail_slower is not None:
        # Exit 2, as for two reports with no row in common: a gate fed one run twice (a CI script's
        # wrong path) would pass whatever the times, so it must not read as a pass.
        given = f"{cmp.a} is both A and B" if cmp.a == cmp.b else f"{cmp.a} and {cmp.b} are the same run ({cmp.same_run})"
        raise UserError(f"{given}: --fail-slower {args.fail_slower:g} would pass whatever the times; give the "
                        "reference run as A and the new run as B")
    write_json(cmp.to_dict(fail_slower=args.fail_slower), args.json_out)
    out = report_stream(args)
    print(comparison_table(cmp), end="", file=out)
    if args.fail_slower is None:
        return 0
    slower = cmp.slower_than(args.fail_slower)
    if not slower:
        print(f"No row of B is more than {args.fail_slower:g} % slower than in A (--fail-slower).", file=out)
        return 0
    print(f"--fail-slower {args.fail_slower:g}: {len(slower)} row(s) of B more than {args.fail_slower:g} % slower "
          f"than in A: " + "; ".join(f"{r.name} {r.change_pct:+.1f} %" for r in slower) + "; exit 1", file=out)
    return 1
