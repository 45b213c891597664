"""User-facing errors: the CLI prints one line and exits with code 2."""
from __future__ import annotations

import numbers
import os
from pathlib import Path

# What a caller catches; the functions below are the library's own message and check helpers.
__all__ = ["UserError", "BadArgument"]


class UserError(Exception):
    """Bad input the user can fix. The message names the file and what to do."""

    exit_code = 2


class BadArgument(UserError, ValueError):
    """An argument of a library call out of its range: a UserError (one line from the CLI), and a
    ValueError for Python callers that catch those."""


def in_python(flag: str, keyword: str) -> str:
    """A CLI flag and the keyword that does the same in a library call, as messages name them:
    ``in_python("--force", "force=True")`` is ``--force (force=True in Python)``. A message raised
    from the library reaches notebook users too, where the flag means nothing."""
    return f"{flag} ({keyword} in Python)"


def flag_value(flag: str, keyword: str, value: object, shown: object = None) -> str:
    """A flag with the value given, and the keyword with it as a library call takes it:
    ``flag_value("--topk", "topk", -1)`` is ``--topk -1 (topk=-1 in Python)``. ``shown`` is the
    value as the CLI writes it (``416x320`` for ``img_size=(320, 416)``), by default ``value``."""
    return in_python(f"{flag} {value if shown is None else shown}", f"{keyword}={value!r}")


FORCE = in_python("--force", "force=True")  # "... or pass {FORCE} to replace it"
OUT = in_python("--out", "out=")  # "... choose another {OUT}": every writing call names it out=


def require_utf8_path(path: str | Path, what: str) -> None:
    """UserError when ``path`` holds bytes that are not UTF-8 (a file name from another system's
    encoding): onnx, onnxruntime, OpenVINO and ncnn take paths as UTF-8 strings, and such a path
    was a TypeError traceback (or 'the file is damaged') from inside them."""
    import os

    try:
        os.fsencode(str(path)).decode("utf-8")
    except UnicodeDecodeError:
        raise UserError(f"{os.fsencode(str(path)).decode('utf-8', 'backslashreplace')}: the {what}'s path has bytes "
                        "that are not UTF-8, which onnx, OpenVINO and ncnn cannot open; rename it (or a folder "
                        "above it) in UTF-8") from None


def require_file(path: str | Path, what: str = "file") -> Path:
    """Return ``path`` as a Path, or raise UserError if it is not an existing file."""
    p = Path(path)
    if not p.exists():
        raise UserError(f"{p}: no such {what}; check the path")
    if not p.is_file():
        raise UserError(f"{p}: is not a file (expected a {what})")
    return p


def read_utf8_text(path: str | Path, *, binary: str | None = None) -> str:
    """A text file's content as UTF-8 (a BOM, which Windows editors write, dropped), or a UserError
    naming the file and the first byte that is not (a list saved as UTF-16 by PowerShell, or in a
    Windows code page): the locale is not asked, so a file reads the same on every machine.
    ``binary``: the message instead, for a file that is likely no text at all (an image given by mistake)."""
    raw = Path(path).read_bytes()
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise UserError(binary or f"{path}: not UTF-8 text (byte 0x{raw[e.start]:02x} at offset {e.start}); save it "
                        "as UTF-8 and try again") from None


def read_yaml(path: Path) -> object:
    """Parse a YAML file (safe loader), or raise a UserError naming it and the first problem."""
    import yaml

    named_yaml = Path(path).suffix.lower() in (".yaml", ".yml")  # else an image or a model given by mistake
    text = read_utf8_text(path, binary=None if named_yaml else
                          f"{path}: not a YAML file (binary data); give the .yaml file here")
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise UserError(f"{path}: not valid YAML ({_yaml_problem(e)})") from None


def _yaml_problem(e: Exception) -> str:
    """Where and what a YAML parse error is: 'line 3, column 6: expected ',' or ']', but got ':'
    (in the flow sequence from line 2)', not only its context ('while parsing a flow sequence')."""
    mark, problem = getattr(e, "problem_mark", None), getattr(e, "problem", None)
    if mark is None or not problem:
        return str(e).splitlines()[0]
    where = f"line {mark.line + 1}, column {mark.column + 1}: {problem}"
    context, cmark = getattr(e, "context", None), getattr(e, "context_mark", None)
    if context and cmark is not None and cmark.line != mark.line:
        where += f" ({context.removeprefix('while ')} started on line {cmark.line + 1})"
    return where


def require_out_folder(path: str | Path, flag: str = OUT) -> Path:
    """``path`` as a Path, or a UserError when something other than a folder is already there
    (the check every command writing into an output folder, ``flag``, makes before its work)."""
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise UserError(f"{p}: exists and is not a folder; choose another {flag}")
    blocker = file_in_the_way(p)
    if blocker is not None:
        raise UserError(f"{p}: cannot be made: {blocker} is a file, not a folder; choose another {flag}")
    # A read-only mount or a folder of another user: found here, not after the data is read and
    # the model built (training found out only when it saved its first file).
    where = p if p.exists() else next((a for a in p.absolute().parents if a.exists()), None)
    if where is not None and not os.access(where, os.W_OK | os.X_OK):
        raise UserError(f"{p}: cannot be written ({where} is read-only or not yours to write in); choose another "
                        f"{flag}, or check its permissions")
    return p


def file_in_the_way(path: str | Path) -> Path | None:
    """The nearest existing parent of ``path`` when it is a plain file (making the folders would
    fail with only 'File exists' or 'Not a directory'), else None."""
    up = next((p for p in Path(path).parents if p.exists()), None)
    return up if up is not None and not up.is_dir() else None


def refuse_overwrite(path: str | Path, force: bool, what: str = "checkpoint") -> Path:
    """``path`` as a Path, or a UserError when a file is already there and ``force`` is off:
    a trained checkpoint must not be replaced by a typo in --out."""
    p = Path(path)
    # A checkpoint under an export's name (--out model.onnx) sent every loader to the wrong reader.
    if what == "checkpoint" and p.suffix.lower() not in (".pt", ".pth"):
        raise UserError(f"{p}: a checkpoint is a torch file; name it .pt (e.g. {p.with_suffix('.pt').name}), "
                        f"not {p.suffix or 'without a suffix'}")
    if p.is_file() and not force:
        raise UserError(f"{p}: a {what} is already there; choose another {OUT}, or pass {FORCE} to replace it")
    return p


def input_hw(size) -> tuple[int, int]:
    """``--img-size`` as (height, width): an int S is S x S, a pair is already (H, W)."""
    if isinstance(size, numbers.Integral):
        return int(size), int(size)
    h, w = size
    return int(h), int(w)


def format_size(size) -> str:
    """A size as the user types it: ``416`` when square, else ``WIDTHxHEIGHT`` (``416x320``)."""
    h, w = input_hw(size)
    return str(h) if h == w else f"{w}x{h}"


def nearest_on_grid(size, step: int) -> tuple[int, int] | None:
    """None when each side of ``size`` (an int, or (H, W)) is a positive multiple of ``step``,
    else the nearest (H, W) that is (each side rounded to the nearest multiple, at least ``step``)."""
    h, w = input_hw(size)
    if min(h, w) > 0 and not h % step and not w % step:
        return None
    return max(step, int(h / step + 0.5) * step), max(step, int(w / step + 0.5) * step)


def _is_size(size) -> bool:
    """Whether ``size`` has the form of an input size: an int, or a pair of ints (a list from
    JSON metadata, numpy integers from an array's shape); bools are not sizes."""
    def whole(v) -> bool:
        return isinstance(v, numbers.Integral) and not isinstance(v, bool)

    return whole(size) or (isinstance(size, (tuple, list)) and len(size) == 2 and all(map(whole, size)))


# The largest input side taken: Nano's activations alone need about 100 MB per million input pixels
# (8192 x 8192: several GB), and 65536 asked for 12 GiB at the first canvas, a MemoryError traceback.
MAX_INPUT_SIDE = 8192


def check_input_size(size, strides, flag: str = "--img-size", keyword: str = "img_size") -> None:
    """BadArgument (a UserError and a ValueError) unless each side of ``size`` (an int, or (H, W)) is
    a positive multiple of the largest stride; the message gives the nearest size that is, and names ``flag`` and the
    library's ``keyword`` (every call taking a size names it img_size). A value that is no size at
    all (``"416"``, ``416.0``, ``(320,)``) is refused the same way, not met as a TypeError from unpacking it."""
    if not _is_size(size):
        raise BadArgument(f"{flag_value(flag, keyword, size)}: expected a size S or (HEIGHT, WIDTH) in whole "
                        "pixels (e.g. 416 or (320, 416))")
    if max(input_hw(size)) > MAX_INPUT_SIDE:
        raise BadArgument(f"{flag_value(flag, keyword, size, format_size(input_hw(size)))}: at most {MAX_INPUT_SIDE} "
                          "pixels a side (memory grows with the square of the size); for larger images, tile them")
    step = max(strides)
    near = nearest_on_grid(size, step)
    if near is None:
        return
    h, w = input_hw(size)
    what = "the size" if h == w else "each side (width and height)"
    given = flag_value(flag, keyword, size, format_size((h, w)))
    raise BadArgument(f"{given}: {what} must be a positive multiple of {step}; "
                    f"the nearest that is: {format_size(near)}")
