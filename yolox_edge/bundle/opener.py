"""Open a bundle as a model: verify, extract into a private folder, open the inner artifact."""
from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path

from .package import check_extracted
from .safezip import safe_extract


def extract_bundle(bundle: str | Path, dest: str | Path | None = None) -> tuple[Path, dict]:
    """Verify ``bundle`` and extract it; returns (folder, metadata).

    Without ``dest`` the folder is private (mode 0700) and removed when the process exits,
    so nothing else can swap a file between the sha256 check and its use.
    """
    if dest is None:
        dest = Path(tempfile.mkdtemp(prefix="yolox_edge_bundle_"))
        atexit.register(shutil.rmtree, dest, True)
    else:
        from ..errors import UserError

        dest = Path(dest)
        if dest.exists() and not dest.is_dir():
            raise UserError(f"{dest}: is a file, not a folder; name a new folder to extract the bundle into")
        try:
            dest.mkdir(parents=True, exist_ok=True)
        except OSError as e:  # a file where a parent folder should be, or no permission
            raise UserError(f"{dest}: cannot create this folder ({e.strerror}); name a new folder to "
                            "extract into") from None
        if any(dest.iterdir()):
            raise UserError(f"{dest}: not empty; extract a bundle into a new folder")
    entries = safe_extract(bundle, dest)
    meta = check_extracted(Path(bundle), dest, {e.name: e.sha256 for e in entries})
    return dest, meta


def open_bundle_model(path: Path, threads: int | None, **options):
    """``runtime.loader.OPENERS['.zip']``: (backend, info) of the model inside a bundle.

    ``options`` go to the inner artifact's backend (e.g. ``precision_hint``).
    """
    from ..runtime.loader import open_model

    folder, meta = extract_bundle(path)
    # The folder, not the model file: the runtime then picks the backend by the metadata's
    # format (checked against model_file above), never by a file suffix the bundle chose.
    backend, info = open_model(folder, threads=threads, **options)
    info.extra = dict(info.extra, bundle=str(path), postprocess=meta["postprocess"])
    return backend, info
