"""`--json` the same on every command: alone, JSON is printed on stdout and the readable report
moves to stderr (so `... --json | jq` works); `--json FILE.json` writes the file and keeps the report."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, TextIO

from ..errors import UserError

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


def check_json_target(args: argparse.Namespace, reads: Iterable[str | Path | None] = (),
                      data: str | Path | None = None) -> None:
    """Refuse an unwritable JSON file before the work whose result it holds, and one that is a file
    the command reads: one of ``reads`` (see ``own_files``) or of the data spec ``data``."""
    if args.json_out and args.json_out != STDOUT:
        if data is not None:
            from ..data.spec import refuse_data_file
            refuse_data_file(args.json_out, data, "--json")
        refuse_own_file(args.json_out, reads)
        from ..fileio import require_writable
        require_writable(args.json_out, "JSON")


# What a folder given as an input holds that a command reads: an export's, a calibration set's.
FOLDER_FILES = ("metadata.json", "manifest.json")
MODEL_SUFFIXES = (".onnx", ".xml", ".bin", ".param")  # model files read with the metadata.json beside them


def own_files(path: str | Path) -> list[Path]:
    """The files an input ``path`` stands for: itself; for a folder (an export, a calibration set)
    its metadata.json and manifest.json; for an exported model file the metadata.json beside it."""
    p = Path(path)
    if p.is_dir():
        return [p, *(p / name for name in FOLDER_FILES)]
    if p.suffix.lower() in MODEL_SUFFIXES:
        return [p, p.parent / "metadata.json"]
    return [p]


def refuse_own_file(target: str | Path, reads: Iterable[str | Path | None], flag: str = "--json",
                    what: str = "the JSON") -> None:
    """UserError when ``target`` is one of the files the inputs ``reads`` stand for (``own_files``):
    `info EXPORT --json EXPORT/metadata.json` or `bench-compare A.json B.json --json B.json` replaced
    the export's metadata or the run being compared, and exited 0 (``bench --plot IMAGE``, ``convert
    --log`` on the calibration manifest, ``demo --save IMAGE`` as well: ``what`` names what is written)."""
    here = Path(target).resolve()
    for given in filter(None, reads):
        for f in own_files(given):
            if f.resolve() == here:
                part = "" if f == Path(given) else f" (that of {given})"
                raise UserError(f"{target}: {flag} names a file this command uses{part}; writing {what} there "
                                "would replace it: choose another file name")


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
