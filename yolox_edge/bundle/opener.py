"""Open a bundle as a model: verify, extract into a private folder, open the inner artifact."""
from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import UserError, file_in_the_way
from ..fileio import fsync_folder, fsync_tree, missing_folders, move_to_new, new_folder_mode, remove_empty_folders
from ..owners import owned_temp_folder, owner_tag, short_name, sweep_dead_folders
from ..progress import deprecated_keywords, renamed
from .package import check_extracted
from .safezip import safe_extract

if TYPE_CHECKING:
    from ..runtime.base import Backend, ModelInfo


# The earlier forms: extract_bundle(bundle, dest) and dest= (the folder a call writes is out=
# everywhere else).
@deprecated_keywords("out", dest=renamed("out"))
def extract_bundle(bundle: str | Path, *, out: str | Path | None = None) -> tuple[Path, dict]:
    """Verify ``bundle`` and extract it; returns (folder, metadata).

    Without ``out`` the folder is private (mode 0700) and removed when the process exits,
    so nothing else can swap a file between the sha256 check and its use. With ``out`` (a new
    or empty folder: ``verify --extract``) the bundle is extracted and checked in a private folder
    beside it, which is renamed to ``out`` only when every check has passed: a bundle refused at
    any check leaves ``out`` as it was (and no folder made for it). ``out`` was ``dest``, given by
    position or as ``dest=``: those forms still work, with a DeprecationWarning.
    """
    if out is None:
        # Held until this process exits, and named for it (owners.owned_temp_folder): another run's
        # sweep removes it only once this process is gone, never while it runs; one a kill -9 left
        # (the whole model) is removed by the next run on this host.
        tmp = owned_temp_folder("yolox_edge_bundle_")
        atexit.register(shutil.rmtree, tmp, True)
        try:
            return tmp, _extract_checked(bundle, tmp)
        except BaseException:  # a refused bundle's files are of no use until exit
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    given, dest = Path(out), Path(out).absolute()  # "." has no name to put a sibling beside
    if dest.exists() and not dest.is_dir():
        raise UserError(f"{dest}: is a file, not a folder; name a new folder to extract the bundle into")
    if dest.is_dir() and any(dest.iterdir()):
        raise UserError(f"{dest}: not empty; extract a bundle into a new folder")
    made = _make_parents(dest)
    try:
        # Beside dest, so the final rename stays on one file system (atomic); hidden, and 0700
        # while it is checked, like the private folder above. Named for this process: one a kill -9
        # left (the whole model) goes with the next extract into dest once that process is gone.
        prefix = f".{short_name(dest.name)}.extracting-"
        sweep_dead_folders(dest.parent, prefix)
        tmp = Path(tempfile.mkdtemp(prefix=f"{prefix}{owner_tag()}.", dir=dest.parent))
    except OSError as e:
        remove_empty_folders(made)
        raise UserError(f"{dest}: cannot create this folder ({e.strerror}); name a new folder to extract "
                        "into") from None
    try:
        meta = _extract_checked(bundle, tmp)
        if dest.is_dir():
            # An empty folder the user made (or stands in: "."): filled, never replaced, so its
            # owner, mode and anyone's working directory in it stay as they were.
            _move_files_into(tmp, dest)
            tmp.rmdir()
        else:
            os.chmod(tmp, new_folder_mode(dest))  # mkdtemp's 0700 would outlive the checks
            fsync_tree(tmp)  # its files and entries on disk before the name that says it is whole
            try:
                os.rename(tmp, dest)  # one step: dest appears whole or not at all
            except OSError as e:
                raise UserError(f"{dest}: cannot be made ({e.strerror}; created meanwhile?); extract into a "
                                "new folder") from None
            fsync_folder(dest.parent)
    except BaseException:  # a refused bundle, a full disk or Ctrl-C: dest as it was
        shutil.rmtree(tmp, ignore_errors=True)
        remove_empty_folders(made)
        raise
    return given, meta


def _move_files_into(src: Path, dest: Path) -> None:
    """Move every checked file of ``src`` into the empty folder ``dest`` (renames on one file
    system); if one cannot go (a file of that name appeared meanwhile), put back those moved."""
    moved: list[Path] = []
    try:
        for f in sorted(src.iterdir()):
            target = dest / f.name
            try:
                move_to_new(f, target)  # fails, rather than replaces, where the name is taken
            except FileExistsError:
                raise UserError(f"{dest}: {f.name} appeared there while the bundle was checked; extract into a "
                                "new folder") from None
            moved.append(target)
    except BaseException:
        for target in moved:
            os.rename(target, src / target.name)
        raise


def _extract_checked(bundle: str | Path, folder: Path) -> dict:
    """safe_extract + the bundle contract into the empty ``folder``; the metadata."""
    entries = safe_extract(bundle, folder)
    return check_extracted(Path(bundle), folder, {e.name: e.sha256 for e in entries})


def _make_parents(dest: Path) -> list[Path]:
    """Create the missing folders above ``dest``; those made, deepest first (to undo on failure)."""
    blocker = file_in_the_way(dest)
    if blocker is not None:
        raise UserError(f"{dest}: cannot create this folder ({blocker} is a file); name a new folder to extract into")
    missing = missing_folders(dest.parent)
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:  # no permission
        remove_empty_folders(missing)
        raise UserError(f"{dest}: cannot create this folder ({e.strerror}); name a new folder to extract "
                        "into") from None
    return missing


@deprecated_keywords("threads")  # open_bundle_model(path, 2), the earlier form
def open_bundle_model(path: str | Path, *, threads: int | None = None, **options) -> tuple[Backend, ModelInfo]:
    """``runtime.loader.OPENERS['.zip']``: (backend, info) of the model inside a bundle.

    ``threads`` and ``options`` go to the inner artifact's backend (e.g. ``precision_hint``), as
    ``runtime.open_model``'s keywords.
    """
    from ..runtime.loader import open_model

    folder, meta = extract_bundle(path)
    # The folder, not the model file: the runtime then picks the backend by the metadata's
    # format (checked against model_file above), never by a file suffix the bundle chose.
    backend, info = open_model(folder, threads=threads, **options)
    info.extra = dict(info.extra, bundle=str(path), postprocess=meta["postprocess"])
    return backend, info
