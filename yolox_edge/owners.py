"""Temps and staging folders named for the process that made them (``HOST.PID.NS``), and the sweeps
that remove those a kill -9 or a power loss left once that process is gone: never a live
process's, another host's or another PID namespace's. Torch-free, as ``fileio``."""
from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import tempfile
from pathlib import Path
from typing import Iterator


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
        raise ValueError(f"{prefix!r} is not one of owners.TEMP_PREFIXES")
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
