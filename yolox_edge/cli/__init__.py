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
