"""yolox-edge info: what a checkpoint, export or bundle is, read from its own files."""
from __future__ import annotations

from .jsonout import add_json_option, check_json_target, report_stream, write_json


def add_parser(sub) -> None:
    p = sub.add_parser("info", help="say what a checkpoint, export or bundle is (variant, classes, size, "
                                    "precision, graph, INT8, files)")
    p.add_argument("artifact", help="checkpoint (.pt), export folder / model file, or bundle (.zip)")
    add_json_option(p, "the summary")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..describe import describe_artifact, describe_lines

    check_json_target(args, reads=(args.artifact,))
    info = describe_artifact(args.artifact)
    write_json(info, args.json_out)
    print("\n".join(describe_lines(info)), file=report_stream(args))
    return 0
