"""`--json` the same on every command: alone, JSON is printed on stdout and the readable report
moves to stderr (so `... --json | jq` works); `--json FILE.json` writes the file and keeps the report."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from ..fileio import StagedFiles

STDOUT = "-"


def json_target(s: str) -> str:
    """``-`` or a name ending in .json: anything else is most likely a positional argument that
    `--json` took as its value (`predict --json model.pt img.jpg`), which would be overwritten."""
    if s == STDOUT or s.lower().endswith(".json"):
        return s
    raise argparse.ArgumentTypeError(f"expected a file name ending in .json (or no value, to print JSON), not {s!r}")


def add_json_option(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument("--json", dest="json_out", nargs="?", const=STDOUT, default=None, type=json_target,
                   metavar="FILE.json", help=f"{what} as JSON: printed on stdout with no value (the readable "
                   "report then goes to stderr), else written to FILE.json")


def report_stream(args: argparse.Namespace) -> TextIO:
    """Where the readable report goes: stderr while stdout carries the JSON."""
    return sys.stderr if getattr(args, "json_out", None) == STDOUT else sys.stdout


def check_json_target(args: argparse.Namespace) -> None:
    """Refuse an unwritable JSON file before the work whose result it holds."""
    if args.json_out and args.json_out != STDOUT:
        from ..fileio import require_writable
        require_writable(args.json_out, "JSON")


def write_json(obj: Any, target: str | None, files: StagedFiles | None = None) -> None:
    """Print ``obj`` (target ``-``) or write it atomically to ``target``; nothing for None.
    ``files``: a file is staged there, renamed into place with the others by its ``commit``."""
    if target is None:
        return
    text = json.dumps(obj, indent=2)
    if target == STDOUT:
        sys.stdout.write(text + "\n")
        sys.stdout.flush()
        return
    from ..fileio import atomic_write_bytes
    (files.write if files is not None else atomic_write_bytes)(Path(target), lambda f: f.write(text.encode()))
