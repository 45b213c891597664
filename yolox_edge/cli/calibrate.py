"""yolox-edge calibrate: build (or show) an INT8 calibration set."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .argtypes import img_size, positive
from .jsonout import add_json_option, check_json_target, report_stream, write_json


class _BuildFlag(argparse.Action):
    """Stores the value and notes the flag as given: --show would otherwise ignore it unsaid,
    and a default typed out (--img-size 416) cannot be told from one left out afterwards."""

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        setattr(namespace, self.dest, self.const if self.nargs == 0 else values)
        namespace.build_flags = (*namespace.build_flags, option_string)


def add_parser(sub) -> None:
    p = sub.add_parser("calibrate", help="build an INT8 calibration set from a data spec or an image folder")
    p.add_argument("--data", action=_BuildFlag,
                   help="data spec YAML (uses --split) or a folder of images (searched with its "
                   "subfolders; hidden ones and hidden files, names starting with '.', are skipped)")
    p.add_argument("--img-size", "--size", dest="size", type=img_size, default=416, action=_BuildFlag,
                   metavar="S|WxH", help="network input size: S (square, e.g. 416 for Nano/Tiny) or "
                   "WIDTHxHEIGHT (e.g. 416x320), as the model will be quantized at (default 416)")
    p.add_argument("--count", type=positive, default=100, action=_BuildFlag,
                   help="images to keep (default 100; see calibration/README.md)")
    p.add_argument("--sampling", choices=("random", "class-balanced"), default="random", action=_BuildFlag,
                   help="random (the default) or class-balanced: every class covered before any repeats (needs a data spec)")
    p.add_argument("--seed", type=int, default=0, action=_BuildFlag,
                   help="seed of the image sampling (default 0)")
    p.add_argument("--split", default="train", action=_BuildFlag,
                   help="split of the data spec to sample (default train)")
    p.add_argument("--out", action=_BuildFlag, help="folder for calib.npy + manifest.json")
    p.add_argument("--show", metavar="DIR", help="print the statistics of an existing calibration set and exit "
                   "(with --json only: the flags that build a set are refused)")
    add_json_option(p, "the statistics")
    p.add_argument("--force", nargs=0, const=True, default=False, action=_BuildFlag,
                   help="replace a calibration set already in --out")
    p.set_defaults(func=run, build_flags=())


FEW_IMAGES = 20  # below this a calibration set is a sample of very few scenes


def run(args) -> int:
    from ..errors import UserError
    from ..quantize.calib import (build_calibration_set, calibration_stats, load_calibration_set, manifest_bytes,
                                  stopped_note)

    # --out's manifest.json too: this run writes it, and the JSON over it would leave a set without one
    check_json_target(args, reads=(args.show, args.data, args.out and Path(args.out) / "manifest.json"),
                      data=args.data)
    if args.show and args.build_flags:
        given = ", ".join(dict.fromkeys(args.build_flags))
        raise UserError(f"--show {args.show} only prints an existing set; it takes no build flags (got {given}): "
                        "drop them, or drop --show to build a set")
    if args.show:
        cal = load_calibration_set(args.show)
        _report(args, cal, calibration_stats(cal))
        return 0
    if not args.data or not args.out:
        raise UserError("calibrate needs --data SPEC|DIR and --out DIR (or --show DIR)")
    if "--split" in args.build_flags and Path(args.data).is_dir():
        # a folder has no splits: every image in it is a candidate, whatever --split said
        raise UserError(f"--split {args.split}: {args.data} is a folder of images, which has no splits; drop --split, "
                        "or pass a data spec YAML to sample one of its splits")
    before = manifest_bytes(Path(args.out))
    try:
        cal = build_calibration_set(args.data, args.out, img_size=args.size, count=args.count,
                                    sampling=args.sampling, seed=args.seed, split=args.split, force=args.force)
        # the report too: a stop while --json was written or the lines printed came after the new
        # set was in place, and a bare 'interrupted' read as 'nothing changed'
        _report(args, cal, calibration_stats(cal))
    except KeyboardInterrupt:
        print(stopped_note(Path(args.out), before), file=sys.stderr)
        raise
    return 0


def _report(args, cal, stats: dict) -> None:
    """The set's statistics (and --json), and for a set just built where it went and its notes."""
    from ..quantize.calib import _is_spec, format_stats

    write_json(stats, args.json_out)
    out = report_stream(args)
    print(format_stats(stats), file=out)
    if not args.show:
        print(f"wrote {Path(args.out) / cal.array} and manifest.json", file=out)
        if cal.leftovers:  # replaced without --force: say so, they were files in the user's folder
            print(f"note: replaced {', '.join(cal.leftovers)} in {args.out}: an array without its manifest.json, left "
                  "by a calibrate run that was killed (kill -9, power loss) before it finished", file=out)
        if cal.problems and not _is_spec(Path(args.data)):  # a folder's images OpenCV cannot decode
            print("\n".join(f"note: {p}" for p in cal.problems), file=out)
        elif cal.problems:  # the reader skipped samples: the set was drawn from fewer images than listed
            print(f"note: {len(cal.problems)} problem(s) reading {cal.source}, its samples skipped (first: "
                  f"{cal.problems[0]}); run 'yolox-edge data check {args.data}'", file=out)
        for why in cal.skipped:  # one line each with its reason, as training skips them
            print(f"note: skipped {why}", file=out)
        if cal.skipped and stats["count"] >= args.count:
            print(f"note: other images of the source took the place of the {len(cal.skipped)} skipped", file=out)
        if stats["count"] < args.count:
            n = stats["count"]
            few = (f"; under {FEW_IMAGES} images the INT8 ranges may not hold on other images (calibration/README.md "
                   "suggests 100-300)" if n < FEW_IMAGES else "")
            skipped = " (less the samples skipped)" if cal.problems or cal.skipped else ""
            print(f"note: {n} image{'s' if n != 1 else ''}, fewer than --count {args.count}: that is all the "
                  f"source has{skipped}{few}", file=out)
