"""``yolox-edge`` command line: thin subcommands over the library.

Each subcommand is a module in this package with ``add_parser(subparsers)`` and
``run(args) -> int``; add a new one by listing its module in ``COMMANDS``.
"""
from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import io
import os
import sys
from pathlib import Path

from ..errors import UserError
from .signals import Terminated, finished, sigterm_stops

COMMANDS = ["demo", "models", "import_official", "predict", "eval", "export", "train", "convert", "bench",
            "bench_compare", "data", "package", "verify", "info", "calibrate", "quantize", "pipeline"]

# Inference precisions a runtime can be asked for: OpenVINO takes all three, ncnn f32 and f16.
# Written out, not imported from the backends, so the CLI starts without numpy and cv2; a test
# keeps it equal to what the runtimes take.
PRECISION_HINTS = ("f32", "bf16", "f16")


# Packages a command may meet missing on a device install (README "Measuring on ARM": the
# runtimes only), with what each is for and how to get it: one line and exit 2, not a traceback.
TORCH_CPU = "pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu"
OPTIONAL_PACKAGES = {
    "torch": ("PyTorch", "training, export, INT8 and .pt checkpoints", TORCH_CPU),
    "nncf": ("NNCF", "INT8 quantization", "pip install nncf"),
    "pnnx": ("pnnx", "ncnn export", "pip install pnnx"),
    "onnx": ("onnx", "export and INT8", "pip install onnx"),
    "onnxslim": ("onnxslim", "ONNX export", "pip install onnxslim"),
    "onnxruntime": ("onnxruntime", "ONNX artifacts and the official-style baseline", "pip install onnxruntime"),
    "openvino": ("OpenVINO", "OpenVINO IR artifacts", "pip install openvino"),
    "ncnn": ("ncnn", "ncnn artifacts", "pip install ncnn"),
    "pycocotools": ("pycocotools", "AP", "pip install pycocotools"),
    "matplotlib": ("matplotlib", "plots", "pip install matplotlib"),
}


def missing_package_message(e: ModuleNotFoundError) -> str | None:
    """The line for an optional package this install lacks; None for any other missing module."""
    top = (e.name or "").split(".")[0]
    if top not in OPTIONAL_PACKAGES:
        return None
    name, purpose, install = OPTIONAL_PACKAGES[top]
    return f"{name} is not installed here and this needs it ({name} serves {purpose}); install it: {install}"


def add_precision_hint(p: argparse.ArgumentParser) -> None:
    """``--precision-hint`` for commands that run one model (predict, eval)."""
    p.add_argument("--precision-hint", choices=PRECISION_HINTS, default=None,
                   help="OpenVINO (f32, bf16, f16) and ncnn (f32, f16) inference precision; default f32")


def add_no_progress(p: argparse.ArgumentParser) -> None:
    """``--no-progress`` for commands with long work: no progress bars on stderr (the library's
    ``progress=False``; in a log file the bars are already sparse plain lines)."""
    p.add_argument("--no-progress", action="store_true", help="no progress bars on stderr")


def _version() -> str:
    from .. import __version__
    return __version__


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors: the message and where the usage is, not the whole usage
    (a dozen lines for bench) above it."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="yolox-edge", description="YOLOX-Nano/Tiny from training to the phone.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"{__name__}.{name}").add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run ``yolox-edge ARGV`` (None: the process's own arguments, as the console script and
    ``python -m yolox_edge`` call it) and return its exit status."""
    code = _main(argv)
    if argv is None:  # the process's entry point: a stop during Python's teardown is no stop of the command
        finished(code)
    return code


def _main(argv: list[str] | None) -> int:
    # Redirected to a log file, stdout is block-buffered: quantize's step lines showed up minutes
    # after the progress bars (stderr) that followed them. A line at a time keeps the log in order.
    if isinstance(sys.stdout, io.TextIOWrapper):
        # surrogateescape: a file name in another encoding ('bad\\xffname.jpg') is printed as the bytes
        # it is, as ls prints it; strict UTF-8 (PYTHONIOENCODING=utf-8) stopped predict with a traceback
        sys.stdout.reconfigure(line_buffering=True, errors="surrogateescape")
    # OpenCV's FFmpeg prints its own line ('moov atom not found', 'Connection refused') above
    # ours, which says which file or stream and what to do. It reads this once per process, so
    # the CLI sets it and the library leaves it to the caller; a value set outside is kept
    # (OPENCV_FFMPEG_LOGLEVEL=24 shows FFmpeg's warnings again).
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
    except KeyboardInterrupt:
        # Ctrl-C while the command modules import (the first few tenths of a second) was a
        # traceback from argparse's setup; every later stop is this one line and 130.
        print(f"yolox-edge{_command_word(argv)}: interrupted", file=sys.stderr)
        return 130
    command = " ".join(filter(None, (args.command, getattr(args, "data_command", None))))  # 'data check'
    try:
        # SIGTERM (systemd, docker stop, timeout) stops every command as Ctrl-C does: unhandled, it
        # ended export, quantize, calibrate, package, bench and convert without a word, their temps
        # and staging folders left in --out (an export's never swept) and no line saying what --out holds
        with sigterm_stops():
            return int(args.func(args) or 0)
    except UserError as e:
        print(f"yolox-edge {command}: error: {e}", file=sys.stderr)
        return e.exit_code
    except ModuleNotFoundError as e:
        msg = missing_package_message(e)
        if msg is None:
            raise
        print(f"yolox-edge {command}: error: {msg}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # The reader of our output went away (`... | head`): stop quietly, as cat does, and keep
        # Python from reporting the pipe again when it flushes stdout at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # 128 + SIGPIPE, what a shell reports for a writer killed by the pipe
    except OSError as e:
        # A path the system refused (missing, no permission, disk full) is the user's to fix;
        # one line naming it, like a UserError. An OSError without a file is a bug: traceback.
        if e.filename is None:
            raise
        print(f"yolox-edge {command}: error: {e.filename}: {e.strerror or e}; check the path, its "
              f"permissions and free space{_resume_hint(command, args)}", file=sys.stderr)
        return 2
    except (MemoryError, RuntimeError) as e:
        # Python's MemoryError, or torch's allocator refusing (a RuntimeError): the machine's limit,
        # not a bug; say what takes memory. Any other RuntimeError is a bug: traceback.
        if isinstance(e, RuntimeError) and "can't allocate memory" not in str(e):
            raise
        print(f"yolox-edge {command}: error: out of memory; a smaller --img-size or --batch, fewer --workers, or "
              f"closing other programs frees some{_resume_hint(command, args)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as e:
        hint = ""
        last = _last_checkpoint(command, args)
        if last is not None:
            # last.pt holds the last finished epoch; before the first one there is nothing to resume
            hint = ("; the same command with --resume continues from the last finished epoch" if last.is_file()
                    else "; no epoch had finished, so nothing was saved: run the same command again")
        if isinstance(e, Terminated):  # 128 + SIGTERM, as a shell reports a process it ended
            print(f"yolox-edge {command}: stopped by SIGTERM{hint}", file=sys.stderr)
            return 143
        print(f"yolox-edge {command}: interrupted{hint}", file=sys.stderr)
        return 130


def _command_word(argv: list[str] | None) -> str:
    """' NAME' for the command the arguments name ('' when none does yet): the prefix of the stop
    line before the parser, which knows the commands, is built."""
    names = {c.replace("_", "-") for c in COMMANDS}
    word = next((a for a in (sys.argv[1:] if argv is None else argv) if not a.startswith("-")), None)
    return f" {word}" if word in names else ""


RESUMABLE = ("train", "pipeline")  # commands whose run folder --resume continues


def _resume_hint(command: str, args) -> str:
    """'; then ... --resume ...' where a resumable command has a last.pt to go on from, else ''.
    Checkpoints are written to a temp file and renamed: a failed save leaves the last good one."""
    last = _last_checkpoint(command, args)
    return "; then the same command with --resume continues from last.pt" if last and last.is_file() else ""


def _last_checkpoint(command: str, args) -> Path | None:
    """Where a resumable command keeps its last.pt (None for other commands, or without --out)."""
    if command not in RESUMABLE or not getattr(args, "out", None):
        return None
    return Path(args.out) / ("train" if command == "pipeline" else "") / "last.pt"


if __name__ == "__main__":
    sys.exit(main())
