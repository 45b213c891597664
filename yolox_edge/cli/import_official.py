"""yolox-edge import-official: official .onnx/.pth weights -> a yolox_edge checkpoint."""
from __future__ import annotations


def add_parser(sub) -> None:
    p = sub.add_parser("import-official", help="convert official YOLOX weights (.onnx or .pth) to a checkpoint")
    p.add_argument("file", help="official yolox_*.onnx (BN folded) or yolox_*.pth ({'model': state_dict})")
    p.add_argument("--variant", required=True, help="nano, tiny, s, m, l, x or darknet53")
    p.add_argument("--out", required=True, help="checkpoint to write (.pt)")
    p.add_argument("--force", action="store_true", help="replace --out if it exists")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..models.official import import_official_checkpoint

    res = import_official_checkpoint(args.file, variant=args.variant, out=args.out, force=args.force)
    print(f"imported {args.file} as yolox_{args.variant} ({len(res.class_names)} classes) -> {res.path}")
    return 0
