"""``yolox-edge`` command line: thin subcommands over the library.

Each subcommand is a module in this package with ``add_parser(subparsers)`` and
``run(args) -> int``; add a new one by listing its module in ``COMMANDS``.
"""
from __future__ import annotations

import argparse
import importlib
import sys

from ..errors import UserError

COMMANDS = ["demo", "models", "import_official", "predict", "eval", "export", "train", "convert", "bench", "data",
            "package", "verify", "calibrate", "quantize", "pipeline"]

# Inference precisions a runtime can be asked for: OpenVINO takes all three, ncnn f32 and f16.
# Written out, not imported from the backends, so the CLI starts without numpy and cv2; a test
# keeps it equal to what the runtimes take.
PRECISION_HINTS = ("f32", "bf16", "f16")


def add_precision_hint(p: argparse.ArgumentParser) -> None:
    """``--precision-hint`` for commands that run one model (predict, eval)."""
    p.add_argument("--precision-hint", choices=PRECISION_HINTS, default=None,
                   help="OpenVINO (f32, bf16, f16) and ncnn (f32, f16) inference precision; default f32")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="yolox-edge", description="YOLOX-Nano/Tiny from training to the phone.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"{__name__}.{name}").add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except UserError as e:
        print(f"yolox-edge {args.command}: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print(f"yolox-edge {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
