"""Atomic, durable writes (file and folder flushed) and file hashes: torch-free, so device-side
commands (bench, predict, eval, verify) run on boards where only the runtimes are installed."""
from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
import signal
import shutil
import socket
import tempfile
import threading
from pathlib import Path
from typing import BinaryIO, Callable, Iterator, Sequence

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


def host_tag() -> str:
    """This host's name as a temp or staging name carries it: letters, digits and '-' (a dot
    would split the name; node1.lab -> node1-lab), at most 63 of them (a DNS label's limit)."""
    return re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname())[:63] or "unknown-host"


def pid_namespace() -> int | None:
    """This process's PID namespace (Linux: the inode of /proc/self/ns/pid), None where it cannot
    be read (not Linux, no /proc). A container run with --net=host shares the host's name but has
    its own PIDs: a PID names a process only within one namespace."""
    try:
        return os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        return None


def owner_tag() -> str:
    """``HOST.PID.NS`` of this process (``HOST.PID`` where its PID namespace cannot be read), as the
    names of its temps and staging folders carry it: a later process on this host, in the same PID
    namespace, removes one left by a kill -9 once that process is gone (``owner_state``)."""
    ns = pid_namespace()
    return f"{host_tag()}.{os.getpid()}" + (f".{ns}" if ns is not None else "")


# owner_tag in a name: host (group 1), PID (group 2), PID namespace (group 3, None in the older HOST.PID)
OWNER_PATTERN = r"([A-Za-z0-9-]+)\.([0-9]+)(?:\.([0-9]+))?"


def process_alive(pid: int) -> bool | None:
    """Whether process ``pid`` exists here (another user's counts: it may be a run writing into a
    shared folder). None on Windows, where os.kill ends the process instead of probing it: whether
    it runs cannot be told (this process's own PID excepted)."""
    if pid == os.getpid():
        return True
    if os.name == "nt":
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # PermissionError: it exists
        return True
    return True


def owner_state(host: str, pid: int, namespace: int | None = None) -> str:
    """What became of the process that named a temp or staging folder ``HOST.PID.NS`` (``owner_tag``):
    'gone' (its leftovers may be removed), 'alive', 'elsewhere' (another host's, or another PID
    namespace's on this one: its PID means nothing here) or 'unprobed' (Windows: no PID can be
    probed). A name without its namespace (``namespace`` None: written where it could not be read,
    or by an earlier yolox_edge) is judged by host and PID alone, as before."""
    if host != host_tag():
        return "elsewhere"
    if namespace is not None and namespace != pid_namespace():  # a container's PIDs are not ours
        return "elsewhere"
    alive = process_alive(pid)
    return "unprobed" if alive is None else "alive" if alive else "gone"


# folders whose leftover temps this process has swept: one scandir per folder, not one per write
# (predict --save-dir writes thousands of images into one folder)
_SWEPT: set[str] = set()


def sweep_dead_temps(folder: Path) -> list[Path]:
    """Remove the temps in ``folder`` that ``temp_beside`` made for a process of this host that is
    gone (a kill -9 or a power loss skipped its cleanup; a checkpoint's is tens of MB), named
    ``.NAME.HOST.PID.NS.XXXXXXXX.tmp`` (mkstemp's suffix; ``.tmp.mp4`` for a video), once per
    folder and process; returns them. Never one of a live process, of another host or PID
    namespace (``owner_state``), nor a file not named as ``temp_beside`` names its temps."""
    key = os.path.abspath(folder)
    if key in _SWEPT:
        return []
    _SWEPT.add(key)
    removed: list[Path] = []
    # only this host's are candidates: spelt out, the host also fixes where a NAME with dots ends
    ours = re.compile(r"\..+\.(" + re.escape(host_tag()) + r")\.([0-9]+)(?:\.([0-9]+))?\.[A-Za-z0-9_]+\.tmp(?:\.mp4)?")
    try:
        with os.scandir(folder) as it:
            for e in it:
                m = ours.fullmatch(e.name)
                if (m is not None and e.is_file(follow_symlinks=False)
                        and owner_state(m.group(1), int(m.group(2)), _number(m.group(3))) == "gone"):
                    with contextlib.suppress(OSError):  # another process swept it first, or no permission
                        os.unlink(e.path)
                        removed.append(Path(e.path))
    except OSError:  # the folder is not there yet, or not listable: mkstemp says what is wrong
        pass
    return removed


def owned_folders(folder: Path, prefix: str | tuple[str, ...]) -> list[tuple[Path, str | None]]:
    """The folders in ``folder`` whose names start with ``prefix`` (one of them, for a tuple), by name,
    each with what became of the process its name carries (``PREFIX + HOST.PID.NS + .XXXXXXXX``:
    ``owner_tag``, then mkdtemp's suffix; ``owner_state``), None for a name without one. Empty when
    ``folder`` is not there or not listable (the write that follows says what is wrong)."""
    prefixes = (prefix,) if isinstance(prefix, str) else tuple(prefix)
    name = re.compile("(?:" + "|".join(map(re.escape, prefixes)) + ")" + OWNER_PATTERN + r"\.[A-Za-z0-9_]+")
    try:
        with os.scandir(folder) as it:
            found = sorted((e for e in it if e.name.startswith(prefixes) and e.is_dir(follow_symlinks=False)),
                           key=lambda e: e.name)
    except OSError:
        return []
    out: list[tuple[Path, str | None]] = []
    for e in found:
        m = name.fullmatch(e.name)
        out.append((Path(e.path), None if m is None else owner_state(m.group(1), int(m.group(2)), _number(m.group(3)))))
    return out


def remove_tree(path: Path) -> bool:
    """Remove the folder ``path`` and what it holds, as far as possible; whether it is gone."""
    shutil.rmtree(path, ignore_errors=True)
    return not os.path.exists(path)


def sweep_dead_folders(folder: Path, prefix: str | tuple[str, ...]) -> list[Path]:
    """Remove the folders in ``folder`` named for a process (``owned_folders``) of this host and PID
    namespace that is gone (a kill -9 skipped its cleanup); returns them. Never one of a live
    process, another host or PID namespace (``owner_state``), nor a name without an owner."""
    return [p for p, state in owned_folders(folder, prefix) if state == "gone" and remove_tree(p)]


# yolox_edge's folders in the system temp folder (tempfile.gettempdir()), each named PREFIX + owner_tag()
# + "." + mkdtemp's suffix (``owned_temp_folder``). A kill -9 or a power loss left them there for good
# (package's two: twice the bundle's size); the first one a process makes removes those of every
# prefix whose process is gone: one listing of the temp folder per process, whichever command runs.
TEMP_PREFIXES = ("yolox_edge_package_", "yolox_edge_verify_", "yolox_edge_pnnx_", "yolox_edge_bundle_",
                 "yolox_edge_qat_")
_TEMPS_SWEPT: set[str] = set()  # temp folders (the system's, as it was then) this process has swept


def sweep_dead_temp_folders() -> list[Path]:
    """Remove yolox_edge's folders in the system temp folder (``TEMP_PREFIXES``) whose process is
    gone (``sweep_dead_folders``: never a live process's, another host's or PID namespace's, nor
    a name without an owner), once per process; returns them."""
    folder = tempfile.gettempdir()
    key = os.path.abspath(folder)
    if key in _TEMPS_SWEPT:
        return []
    _TEMPS_SWEPT.add(key)
    return sweep_dead_folders(Path(folder), TEMP_PREFIXES)


def owned_temp_folder(prefix: str) -> Path:
    """A new private (0700) folder in the system temp folder named for this process (``prefix``, one
    of ``TEMP_PREFIXES``, + ``owner_tag()``), after the sweep of dead processes' (``sweep_dead_temp_folders``).
    The caller removes it; ``owned_temp_dir`` does so at the end of a ``with`` block."""
    if prefix not in TEMP_PREFIXES:  # a prefix the sweep does not know would be left for good again
        raise ValueError(f"{prefix!r} is not one of fileio.TEMP_PREFIXES")
    sweep_dead_temp_folders()
    return Path(tempfile.mkdtemp(prefix=f"{prefix}{owner_tag()}."))


@contextlib.contextmanager
def owned_temp_dir(prefix: str) -> Iterator[Path]:
    """``owned_temp_folder(prefix)`` for a ``with`` block, removed at its end (an error or a stop too)."""
    path = owned_temp_folder(prefix)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _number(text: str | None) -> int | None:
    return None if text is None else int(text)


def short_name(name: str, most: int = 120) -> str:
    """``name`` cut to ``most`` bytes for a temp's or staging folder's name: with the host, PID and
    namespace beside it a long file name's temp would pass the file system's 255 and the write fail."""
    while len(os.fsencode(name)) > most:
        name = name[:-1]
    return name


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
