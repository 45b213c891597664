"""Atomic, durable writes (file and folder flushed) and file hashes: torch-free, so device-side
commands (bench, predict, eval, verify) run on boards where only the runtimes are installed."""
from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import signal
import tempfile
import threading
from pathlib import Path
from typing import BinaryIO, Callable, Iterator, Sequence

from .owners import owner_tag, short_name, sweep_dead_temps

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]


MIB = 1024 ** 2  # every model size a user reads is in MiB, as bench prints it


def mib(n: int) -> float:
    """``n`` bytes in MiB (1024**2 bytes), two decimals: the one unit of every printed model size
    (bench, quantize --report, the pipeline's table; a mix of MB and MiB read as a 5% size change)."""
    return round(n / MIB, 2)


def sha256_file(path: str | Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def run_checkpoint(folder: str | Path) -> Path | None:
    """The checkpoint a training run's folder holds (best.pt, else last.pt), or None: for
    messages to a user who gave the folder where its checkpoint belongs."""
    return next((Path(folder) / n for n in ("best.pt", "last.pt") if (Path(folder) / n).is_file()), None)


def temp_beside(path: Path, what: str, suffix: str = ".tmp") -> tuple[int, str]:
    """A new temp file in ``path``'s folder (made if needed); UserError naming ``path`` if not possible.

    Its name, ``.NAME.HOST.PID.NS.XXXXXXXX.tmp`` (``owner_tag``), tells a later process whether it is
    a leftover: the first write of a process into a folder removes those of this host's processes
    that are gone (``sweep_dead_temps``)."""
    from .errors import UserError, file_in_the_way

    if path.is_dir():
        raise UserError(f"{path}: is a folder; give a file name for the {what}")
    blocker = file_in_the_way(path)
    if blocker is not None:
        raise UserError(f"{path}: {blocker} is a file, not a folder; choose another path for the {what}")
    sweep_dead_temps(path.parent)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return tempfile.mkstemp(prefix=f".{short_name(path.name)}.{owner_tag()}.", suffix=suffix, dir=path.parent)
    except OSError as e:  # named after the file the user asked for, not our temp file
        raise UserError(f"{path}: cannot write the {what} here ({e.strerror or e}); choose another path, "
                        f"or check its permissions") from None


def read_bytes_or_none(path: str | Path) -> bytes | None:
    """A file's bytes as they are now; None when it is absent or unreadable (a stopped command's
    note compares them with what they were before the run)."""
    try:
        return Path(path).read_bytes()
    except OSError:
        return None


def require_writable(path: str | Path, what: str = "output") -> Path:
    """Return ``path`` as a Path, or raise UserError now if it could not be written later.

    For results written only after long work (bench, eval --json, convert): the folder is
    made and a probe file written and removed, so a typo fails in a second, not at the end.
    """
    path = Path(path)
    fd, probe = temp_beside(path, what)
    os.close(fd)
    os.unlink(probe)
    return path


def atomic_write_bytes(path: str | Path, write, *, flush_folder: bool = True) -> None:
    """Call ``write(fileobj)`` on a temp file beside ``path``, then rename over it, durably.

    The file is flushed (fsync) before the rename and its folder after it, so when this returns
    the new bytes are on disk under ``path``: a power loss leaves the old file or the new one,
    never an empty file or a lost rename, and a next step's renames cannot reach the disk first
    (not every file system keeps them in order).

    ``flush_folder=False`` leaves the folder's flush to the caller, for many files written into
    one folder (eval --save-dir's images): each is still flushed before its rename, so its name
    never holds half a file, and the caller calls ``fsync_folder`` once after the last, on a stop
    or error too (until then a power loss may lose the newest names, never a file's bytes)."""
    path = Path(path)
    tmp = _written_temp(path, write)
    try:
        os.replace(tmp, path)
        if flush_folder:
            fsync_folder(path.parent)
    except BaseException as e:
        Path(tmp).unlink(missing_ok=True)
        _name_the_file(e, path)
        raise


def _written_temp(path: Path, write: Callable[[BinaryIO], object]) -> str:
    """A temp file beside ``path`` holding what ``write(fileobj)`` wrote, flushed to disk; its name."""
    fd, tmp = temp_beside(path, "output")
    try:
        os.fchmod(fd, new_file_mode(path))  # mkstemp makes 0600; the result is an ordinary file
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            flush_to_disk(f.fileno())
    except BaseException as e:
        Path(tmp).unlink(missing_ok=True)
        _name_the_file(e, path)
        raise
    return tmp


def _name_the_file(e: BaseException, path: Path) -> None:
    """Raise ``e`` again as an OSError naming ``path`` where it is one without a file name."""
    # A full disk while writing into the file object is an OSError without a file name
    # (torch.save even wraps it in a RuntimeError): name the file, so that the CLI says
    # which one and what to do in one line instead of a traceback.
    cause = e if isinstance(e, OSError) else e.__context__ if isinstance(e, RuntimeError) else None
    if isinstance(cause, OSError) and cause.errno is not None and cause.filename is None:
        raise OSError(cause.errno, cause.strerror or os.strerror(cause.errno), str(path)) from e


@contextlib.contextmanager
def stops_held() -> Iterator[None]:
    """Ctrl-C and SIGTERM held off until the block ends, then delivered as they would have been.

    For a few quick steps that must all happen or none (the renames of files that belong
    together, an MP4's closing index): a stop between two of them left a mix. Signal handlers
    can be set only in the main thread; elsewhere the block runs unguarded."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    got: list[int] = []
    old = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        handler = signal.getsignal(sig)
        if handler is not None:  # None: set outside Python, which cannot be put back
            old[sig] = signal.signal(sig, lambda signum, frame: got.append(signum))
    try:
        yield
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)
        for sig in dict.fromkeys(got):  # what the stop would have done: KeyboardInterrupt, Terminated, an exit
            signal.raise_signal(sig)


class StagedFiles:
    """Files that belong together (eval's --json, --coco-results, --coco-gt, ...), each written
    to a temp beside its name by ``write`` and all renamed into place at ``commit``, with Ctrl-C
    and SIGTERM held off between the renames: a run stopped before leaves every earlier file as
    it was, never a mix of this run's and an earlier run's. ``discard`` removes the temps; in a
    ``with`` block, leaving it commits, or discards on an exception."""

    def __init__(self) -> None:
        self._staged: list[tuple[str, Path]] = []  # (temp, name), in the order written
        self.committed = False  # every file is in place

    def write(self, path: str | Path, write: Callable[[BinaryIO], object]) -> None:
        """Call ``write(fileobj)`` on a temp file beside ``path``, which ``commit`` renames onto it."""
        path = Path(path)
        self._staged.append((_written_temp(path, write), path))

    def commit(self) -> None:
        """Rename every staged file into place (a failed rename removes the temps not yet moved)."""
        try:
            with stops_held():
                folders = dict.fromkeys(path.parent for _, path in self._staged)
                while self._staged:
                    tmp, path = self._staged[0]
                    os.replace(tmp, path)
                    self._staged.pop(0)
                for folder in folders:  # the renames on disk, as atomic_write_bytes' own
                    fsync_folder(folder)
                self.committed = True
        finally:
            self.discard()

    def discard(self) -> None:
        """Remove the temps not renamed into place."""
        for tmp, _ in self._staged:
            Path(tmp).unlink(missing_ok=True)
        self._staged = []

    def __enter__(self) -> StagedFiles:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.discard()


# What a file system that cannot flush a folder answers (some FUSE and network file systems,
# a folder this process may write into but not read): the rename stands, unflushed
_NO_FOLDER_SYNC = {errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EBADF, errno.EACCES, errno.EPERM}


def flush_to_disk(fd: int) -> None:
    """``os.fsync(fd)``, then on macOS ``F_FULLFSYNC``: there fsync only hands the data to the
    drive, whose cache a power loss empties; F_FULLFSYNC makes the drive write it (the fsync
    before it costs little there). A file system that refuses F_FULLFSYNC (some network and FUSE
    ones) keeps the plain fsync."""
    os.fsync(fd)
    full = getattr(fcntl, "F_FULLFSYNC", None) if fcntl is not None else None
    if full is not None:
        try:
            fcntl.fcntl(fd, full)
        except OSError:
            pass


def fsync_folder(folder: str | Path) -> None:
    """Flush ``folder``'s entries (the renames and removals in it so far) to disk.

    A no-op on Windows, where a folder cannot be opened to flush it, and where the file system
    cannot flush a folder; other errors (EIO) are raised."""
    if os.name == "nt":
        return
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError as e:
        if e.errno in _NO_FOLDER_SYNC:
            return
        raise
    try:
        flush_to_disk(fd)
    except OSError as e:
        if e.errno not in _NO_FOLDER_SYNC:
            raise
    finally:
        os.close(fd)


def fsync_file(path: str | Path) -> None:
    """Flush a file that other code wrote (an exporter, OpenCV, a zip extractor) to disk.

    Windows flushes only through a handle open for writing; POSIX through any, and read-only
    opens work on files whose mode forbids writing."""
    flags = (os.O_RDWR | getattr(os, "O_BINARY", 0)) if os.name == "nt" else os.O_RDONLY
    fd = os.open(path, flags)
    try:
        flush_to_disk(fd)
    finally:
        os.close(fd)


def replace_durably(moves: Sequence[tuple[Path, Path]]) -> None:
    """``os.replace(src, dst)`` for each pair, durably: every ``src`` is flushed first, then
    renamed, then each destination folder flushed once. For files written in a staging folder
    and moved into place: when this returns, the files and their names are on disk, so a
    metadata.json written next cannot outlive them after a power loss."""
    for src, _ in moves:
        fsync_file(src)
    for src, dst in moves:
        os.replace(src, dst)
    for folder in dict.fromkeys(Path(dst).parent for _, dst in moves):
        fsync_folder(folder)


def fsync_tree(folder: str | Path) -> None:
    """Flush every file and folder under ``folder``, ``folder`` last: a staging folder about to be
    renamed into place (then flush the folder it is renamed into)."""
    for dirpath, _, filenames in os.walk(folder, topdown=False):
        for name in filenames:
            fsync_file(Path(dirpath) / name)
        fsync_folder(dirpath)


def new_file_mode(path: Path) -> int:
    """The mode a plain ``open(path, 'w')`` would leave: the existing file's, else 0666 less the umask."""
    try:
        return path.stat().st_mode & 0o777
    except OSError:
        return 0o666 & ~_umask()


def new_folder_mode(path: Path) -> int:
    """The mode a plain ``mkdir(path)`` would leave: the existing folder's, else 0777 less the umask."""
    try:
        return path.stat().st_mode & 0o777
    except OSError:
        return 0o777 & ~_umask()


def _umask() -> int:
    """The process's umask: the only portable way to read it is to set it, then put it back at once."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def free_name(path: Path) -> Path:
    """``path``, or ``<stem>_2<suffix>``, ``<stem>_3<suffix>``, ...: the first that does not exist."""
    candidate, n = path, 2
    while candidate.exists():
        candidate, n = path.with_name(f"{path.stem}_{n}{path.suffix}"), n + 1
    return candidate


def move_no_clobber(src: Path, path: Path) -> Path:
    """Move ``src`` to ``path``, or to the next free name (``free_name``) when ``path`` exists,
    even if another process took it a moment ago; never replaces a file. Returns where it went.

    For what cannot be made again (a live recording): two runs that picked the same free name at
    their start must not overwrite each other at their end. A hard link claims the name
    atomically; where the file system has none (FAT and exFAT SD cards, some Android storage)
    the name is checked and then renamed onto, which leaves only that instant unguarded."""
    while True:
        dest = free_name(path)
        try:
            move_to_new(src, dest)
        except FileExistsError:  # taken between the check and the move: try the next name
            continue
        return dest


def move_to_new(src: Path, dest: Path) -> None:
    """Move ``src`` to ``dest``, which must not exist: FileExistsError if it does, even if another
    process made it a moment ago. A hard link claims the name atomically; where the file system
    has none (FAT, exFAT, some Android storage) the name is checked, then renamed onto. Durable as
    ``replace_durably``: ``src`` is flushed before, ``dest``'s folder after."""
    fsync_file(src)  # its bytes on disk before its new name is
    try:
        os.link(src, dest)
    except FileExistsError:
        raise
    except OSError:
        if os.path.lexists(dest):
            raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), str(dest)) from None
        os.replace(src, dest)
    else:
        os.unlink(src)
    fsync_folder(dest.parent)


def file_identity(path: str | Path) -> tuple[int, ...] | None:
    """What tells the file at ``path`` from one renamed over it later (device, inode, size, mtime);
    None when there is none. Not its bytes: packaging the same export again gives the same ones."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns


def missing_folders(path: str | Path) -> list[Path]:
    """``path`` and the folders above it that do not exist yet, deepest first: what a
    ``mkdir(parents=True)`` would make, so a run that stops can take them away again."""
    p = Path(path).absolute()
    return [f for f in (p, *p.parents) if not f.exists()]


def remove_empty_folders(folders: list[Path]) -> None:
    """Remove ``folders`` (deepest first) while they are empty; one that another process has
    filled meanwhile stays, and so do those above it."""
    for f in folders:
        try:
            f.rmdir()
        except OSError:
            break
