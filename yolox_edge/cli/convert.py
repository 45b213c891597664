"""yolox-edge convert: give a trained model another activation, fitted without labels."""
from __future__ import annotations

import json
from pathlib import Path
from statistics import fmean

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
    p.add_argument("--batch", type=positive, default=8)
    p.add_argument("--no-flip", dest="flip", action="store_false", help="do not add mirrored images")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=positive, default=None, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--log", type=file_named(".json"), metavar="FILE.json", help="also write the per-block errors as "
                   "JSON here")
    p.set_defaults(func=run)


def run(args) -> int:
    import torch

    from ..data.preprocess import PreprocessConfig
    from ..engine.checkpoint import atomic_write_bytes, load_model, save_checkpoint
    from ..engine.reconstruct import convert_activation
    from ..errors import UserError, refuse_overwrite
    from ..fileio import require_writable
    from ..models.zoo import get_variant
    from ..quantize.calib import load_calibration_set

    # Written after minutes of fitting: a path that cannot take them fails now.
    require_writable(refuse_overwrite(args.out, args.force), "checkpoint")
    if args.log:
        require_writable(args.log, "log")
    target = get_variant(args.to).name  # an unknown name is a UserError (UnknownVariant)
    if args.threads:
        torch.set_num_threads(args.threads)
    teacher, ckpt = load_model(args.model)
    pre = PreprocessConfig.from_dict(ckpt["preprocess"])  # the student keeps the teacher's preprocessing
    cal = load_calibration_set(args.calib, input_size=pre.input_size)
    try:
        student, results = convert_activation(teacher, target, torch.from_numpy(cal.data),
                                              granularity=args.granularity, steps=args.steps, lr=args.lr,
                                              batch=args.batch, flip=args.flip, seed=args.seed)
    except UserError as e:  # the library does not know the file names; the user needs them
        raise UserError(f"{args.model} -> {target} with {args.calib}: {e}") from None
    source = {"kind": "converted", "from": str(args.model), "from_variant": teacher.variant,
              "method": f"label-free {args.granularity} reconstruction", "calibration": cal.describe(),
              "steps": args.steps, "lr": args.lr, "flip": args.flip}
    # BN statistics came with the teacher's weights, so bn_folded carries over
    save_checkpoint(args.out, student, class_names=ckpt["class_names"], preprocess=pre, source=source,
                    bn_folded=ckpt.get("bn_folded", False))
    worst = max(results, key=lambda r: r.nmse_after)
    print(f"{len(results)} blocks; error (MSE / teacher variance) per block, mean "
          f"{fmean(r.nmse_before for r in results):.4f} before fitting -> "
          f"{fmean(r.nmse_after for r in results):.4f} after; worst {worst.name} {worst.nmse_after:.4f}")
    print(f"wrote {args.out} ({target}); check it with 'yolox-edge eval {args.out} --data SPEC'")
    if args.log:
        atomic_write_bytes(Path(args.log), lambda f: f.write(json.dumps(
            {"source": source, "blocks": [r.to_dict() for r in results]}, indent=1).encode()))
    return 0
