"""Data-test fixtures: index caches go to the test's tmp folder."""
from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _index_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Keep index caches in the test's own folder (never in refdata or ~/.cache)."""
    d = tmp_path / "index_cache"
    monkeypatch.setenv("YOLOX_EDGE_CACHE", str(d))
    return d
