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
    from ..engine.checkpoint import save_checkpoint
    from ..errors import refuse_overwrite
    from ..fileio import sha256_file
    from ..models.official import import_official

    refuse_overwrite(args.out, args.force)
    model, names, folded = import_official(args.file, args.variant)
    source = {"kind": "official-onnx" if folded else "official-pth", "file": str(args.file),
              "sha256": sha256_file(args.file)}
    save_checkpoint(args.out, model, class_names=names, source=source, bn_folded=folded)
    print(f"imported {args.file} as yolox_{args.variant} ({model.num_classes} classes) -> {args.out}")
    return 0
