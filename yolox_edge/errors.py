"""User-facing errors: the CLI prints one line and exits with code 2."""
from __future__ import annotations

from pathlib import Path


class UserError(Exception):
    """Bad input the user can fix. The message names the file and what to do."""

    exit_code = 2


def require_file(path: str | Path, what: str = "file") -> Path:
    """Return ``path`` as a Path, or raise UserError if it is not an existing file."""
    p = Path(path)
    if not p.exists():
        raise UserError(f"{p}: no such {what}; check the path")
    if not p.is_file():
        raise UserError(f"{p}: is not a file (expected a {what})")
    return p


def read_yaml(path: Path) -> object:
    """Parse a YAML file (safe loader), or raise a UserError naming it and the first problem."""
    import yaml

    try:
        return yaml.safe_load(Path(path).read_text())
    except yaml.YAMLError as e:
        raise UserError(f"{path}: not valid YAML ({str(e).splitlines()[0]})") from None


def require_writable(path: str | Path, what: str = "output") -> Path:
    """Return ``path`` as a Path, or raise UserError now if it could not be written later.

    For commands that write their results only at the end (bench): the folder is created
    and a probe file written and removed, so a typo fails in a second, not after the run.
    """
    import os
    import tempfile

    p = Path(path)
    if p.is_dir():
        raise UserError(f"{p}: is a folder; give a file name for the {what}")
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".probe", dir=p.parent)
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise UserError(f"{p}: cannot write the {what} here ({e.strerror}); choose another path") from None
    return p
