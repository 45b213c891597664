"""yolox-edge convert: give a trained model another activation, fitted without labels."""
from __future__ import annotations

import json
import sys
from pathlib import Path
from statistics import fmean

from . import add_no_progress
from .argtypes import file_named, positive, positive_float


def add_parser(sub) -> None:
    p = sub.add_parser("convert", help="move trained weights to a variant with another activation "
                                       "(e.g. nano -> nano_hswish) by label-free block reconstruction")
    p.add_argument("model", help="checkpoint (.pt), e.g. from import-official")
    p.add_argument("--to", required=True, metavar="VARIANT",
                   help="variant with the same tensors and another activation, e.g. nano_hswish")
    p.add_argument("--calib", required=True,
                   help="image set (from 'yolox-edge calibrate'; no labels needed, 80+ images recommended)")
    p.add_argument("--out", required=True, help="output checkpoint (.pt)")
    p.add_argument("--force", action="store_true", help="replace --out if it exists")
    p.add_argument("--granularity", choices=("block", "unit"), default="block",
                   help="fit whole CSP/depthwise blocks (default) or every conv on its own")
    p.add_argument("--steps", type=positive, default=500, help="Adam steps per block (default %(default)s)")
    p.add_argument("--lr", type=positive_float, default=2e-3,
                   help="peak Adam learning rate, cosine-decayed per block (default %(default)s)")
    p.add_argument("--batch", type=positive, default=8, help="calibration images per fitting step (default %(default)s)")
    p.add_argument("--no-flip", dest="flip", action="store_false", help="do not add mirrored images")
    p.add_argument("--seed", type=int, default=0, help="seed of the fitting's image order (default %(default)s)")
    p.add_argument("--threads", type=positive, default=None, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--log", type=file_named(".json"), metavar="FILE.json", help="also write the per-block errors as "
                   "JSON here")
    add_no_progress(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from ..fileio import file_identity

    before = file_identity(args.out), file_identity(args.log) if args.log else None
    try:
        return _convert(args)
    except KeyboardInterrupt:  # still 130 (143 for SIGTERM); this line says what --out and --log hold
        print(stopped_note(args.out, args.log, before), file=sys.stderr)
        raise


def stopped_note(out: str | Path, log: str | Path | None,
                 before: tuple[tuple[int, ...] | None, tuple[int, ...] | None]) -> str:
    """What a ``convert`` stopped by Ctrl-C or SIGTERM left at ``out`` (and ``log``), whose
    ``file_identity`` were ``before``: the new checkpoint, the earlier one untouched, or none.

    A bare 'interrupted' said nothing of minutes of fitting: whether the checkpoint was saved
    (the stop came while its lines printed or --log was written) or an earlier one stayed."""
    from ..fileio import file_identity

    out, (out_before, log_before) = Path(out), before
    now = file_identity(out)
    if now is not None and now != out_before:  # saved by one rename of a whole file
        line = f"convert: interrupted after the checkpoint was written: {out} holds the new one, whole"
        if log is not None and file_identity(log) == log_before:
            line += f"; {log} was not written"
        return line
    rerun = "convert keeps nothing to resume from: run the same command again"
    if out_before is not None:
        return f"convert: interrupted: {out} keeps its earlier checkpoint, untouched; {rerun} to replace it"
    return f"convert: interrupted: no checkpoint was written to {out}; {rerun}"


def _convert(args) -> int:
    """The command itself: fit, save --out, print the errors, write --log."""
    from ..engine.convert import convert_checkpoint
    from ..fileio import atomic_write_bytes, require_writable

    # Written after minutes of fitting: a --log that cannot take it fails now (convert_checkpoint
    # checks --out itself before fitting).
    if args.log:
        from .jsonout import refuse_own_file

        # the calibration manifest or the new checkpoint under the log's name: rc 0, and it was gone
        refuse_own_file(args.log, (args.model, args.calib, args.out), flag="--log", what="the log")
        require_writable(args.log, "log")
    res = convert_checkpoint(args.model, to=args.to, calib=args.calib, out=args.out, force=args.force,
                             granularity=args.granularity, steps=args.steps, lr=args.lr, batch=args.batch,
                             flip=args.flip, seed=args.seed, threads=args.threads,
                             progress=not args.no_progress)
    blocks = res.blocks
    worst = max(blocks, key=lambda r: r.nmse_after)
    print(f"{len(blocks)} blocks; error (MSE / teacher variance) per block, mean "
          f"{fmean(r.nmse_before for r in blocks):.4f} before fitting -> "
          f"{fmean(r.nmse_after for r in blocks):.4f} after; worst {worst.name} {worst.nmse_after:.4f}")
    print(f"wrote {args.out} ({res.variant}); check it with 'yolox-edge eval {args.out} --data SPEC'")
    if args.log:
        atomic_write_bytes(Path(args.log), lambda f: f.write(json.dumps(res.to_dict(), indent=1).encode()))
    return 0
