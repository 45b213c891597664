"""yolox-edge train: a recipe + a data spec -> runs/NAME/{best,last}.pt and logs."""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from .argtypes import img_size, non_negative, positive


def add_parser(sub) -> None:
    p = sub.add_parser("train", help="train or fine-tune a detector (DDP: launch with torchrun)")
    p.add_argument("--recipe", default=None,
                   help="a shipped recipe's name (yolox_nano, yolox_tiny, finetune_nano_cpu, ...) or a YAML "
                        "file; not needed with --resume (the run's own is stored in last.pt)")
    p.add_argument("--data", required=True, help="data spec YAML")
    p.add_argument("--out", required=True, help="run folder (checkpoints, log.csv/json/png)")
    p.add_argument("--weights", default=None,
                   help="start from this checkpoint (another class count is fine, and so is a variant with the "
                        "same tensors and another activation, e.g. nano weights for nano_hswish)")
    p.add_argument("--epochs", type=positive, default=None, help="= --set train.epochs=N")
    p.add_argument("--img-size", type=img_size, default=None, metavar="S|WxH",
                   help="train around S (or WIDTHxHEIGHT, e.g. 416x320; multi-scale keeps its aspect) and "
                        "evaluate/export at it (model.input_size and test_size; a recipe's train.random_size "
                        "is scaled with the long side); multiples of 32")
    p.add_argument("--batch", type=positive, default=None, help="total batch over all processes")
    p.add_argument("--device", default=None, help="auto | cpu | cuda")
    p.add_argument("--freeze-backbone-epochs", type=non_negative, default=None, metavar="N",
                   help="train only neck and head for the first N epochs")
    p.add_argument("--resume", action="store_true",
                   help="continue OUT/last.pt with its own recipe and state; --device and --set of the machine's "
                        "settings (data.workers, data.cache_images, train.threads) apply to it")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a recipe value, e.g. --set train.epochs=30 (repeatable)")
    p.add_argument("--no-progress", action="store_true", help="no per-epoch progress bar")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..config import build_recipe, split_machine_items
    from ..engine.trainer import Trainer, resume_flags_note, unused_resume_weights
    from ..errors import UserError

    if args.recipe is None:
        if not args.resume:
            raise UserError("train needs --recipe RECIPE.yaml (e.g. yolox_nano, or a YAML file) to start a run")
        flags = ("img_size", "epochs", "batch", "freeze_backbone_epochs")
        given = [f"--{k.replace('_', '-')}" for k in flags if getattr(args, k) is not None]
        given += [f"--set {s}" for s in split_machine_items(args.overrides)[1]]
        other_weights = unused_resume_weights(Path(args.out) / "last.pt", args.weights)
        if other_weights:  # named in the one note; the Trainer, not given them, says nothing more
            given.append(other_weights)
        if given:
            print(resume_flags_note(Path(args.out) / "last.pt", given))
        res = Trainer(None, data=args.data, out=args.out, weights=None if other_weights else args.weights,
                      resume=True, progress=not args.no_progress, machine=_machine_items(args)).train()
        return _summary(res)
    recipe = build_recipe(args.recipe, img_size=args.img_size, epochs=args.epochs, batch=args.batch,
                          device=args.device, freeze_backbone_epochs=args.freeze_backbone_epochs,
                          overrides=args.overrides)
    res = Trainer(recipe, data=args.data, out=args.out, weights=args.weights, resume=args.resume,
                  progress=not args.no_progress, machine=_machine_items(args) if args.resume else None).train()
    return _summary(res)


def _machine_items(args) -> list[str]:
    """The command's settings of the machine as ``--set`` items, which a resumed run takes."""
    from ..config import split_machine_items

    return split_machine_items(args.overrides)[0] + ([f"train.device={args.device}"] if args.device else [])


def _summary(res: Mapping) -> int:
    if not res.get("main", True):
        return 0  # torchrun: rank 0 wrote the checkpoints and says so; the other ranks stay quiet
    if res.get("best_epoch", -1) > 0:
        print(f"done: best AP {res['best_ap']:.4f} at epoch {res['best_epoch']} -> {res['best']}; last -> {res['last']}")
        if len(res.get("best_per_class") or []) > 1:  # where the model needs more data or labels
            from ..engine.evaluator import per_class_lines

            print(f"per class at epoch {res['best_epoch']} (val, worst AP first):")
            print("\n".join(per_class_lines(res["best_per_class"])))
    else:
        print(f"done: last -> {res['last']}")
    if res.get("skipped_samples"):
        print(f"skipped {res['skipped_samples']} bad sample(s) during training (see 'yolox-edge data check')")
    return 0
