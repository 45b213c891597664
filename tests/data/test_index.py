"""The cached index: used on the second load, invalidated by annotation changes, no pickle."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from data_synth import make_voc
from yolox_edge.data import index, voc
from yolox_edge.data.spec import read_split


def _boom(*a, **k):
    raise AssertionError("the XML was parsed although the index is cached")


def test_index_used_then_invalidated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                     _index_cache: Path) -> None:
    spec = make_voc(tmp_path / "ds", {"a": (32, 32, [("cat", (2, 2, 20, 20))]), "b": (32, 32, [])})
    first = read_split(spec, "train")
    assert not getattr(first, "from_cache", False)
    files = list(_index_cache.glob("*.npz"))
    assert len(files) == 1
    with np.load(files[0], allow_pickle=False) as z:  # plain arrays only
        assert all(z[k].dtype != object for k in z.files) and z["images"].dtype == np.uint8  # UTF-8 JSON
    monkeypatch.setattr(voc, "parse_voc_xml", _boom)
    second = read_split(spec, "train")
    assert second.from_cache and len(second.samples) == 2
    np.testing.assert_array_equal(second.samples[0].boxes, first.samples[0].boxes)
    assert second.samples[0].image == first.samples[0].image
    # same size, new mtime: still invalidates
    xml = tmp_path / "ds" / "annotations" / "a.xml"
    st = xml.stat()
    os.utime(xml, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    with pytest.raises(AssertionError, match="parsed"):
        read_split(spec, "train")
    monkeypatch.undo()
    monkeypatch.setenv("YOLOX_EDGE_CACHE", str(_index_cache))
    xml.write_text(xml.read_text().replace("<xmax>20</xmax>", "<xmax>30</xmax>"))
    third = read_split(spec, "train")
    assert not getattr(third, "from_cache", False)
    np.testing.assert_allclose(third.samples[0].boxes, [[1, 1, 30, 20]])
    assert read_split(spec, "train").from_cache
    # a same-size edit with its mtime put back (rsync -t, tar): ctime still moves, the cache is not used
    st = xml.stat()
    xml.write_text(xml.read_text().replace("<xmax>30</xmax>", "<xmax>31</xmax>"))
    os.utime(xml, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert xml.stat().st_size == st.st_size and xml.stat().st_mtime_ns == st.st_mtime_ns
    fourth = read_split(spec, "train")
    assert not getattr(fourth, "from_cache", False)
    np.testing.assert_allclose(fourth.samples[0].boxes, [[1, 1, 31, 20]])


def test_cache_beside_data_or_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("YOLOX_EDGE_CACHE")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    spec = make_voc(tmp_path / "ds", {"a": (32, 32, [("cat", (2, 2, 20, 20))])})
    read_split(spec, "train")
    assert len(list((tmp_path / "ds" / ".yolox_edge_cache").glob("*.npz"))) == 1
    ro = tmp_path / "ro"
    spec = make_voc(ro, {"a": (32, 32, [("cat", (2, 2, 20, 20))])})
    ro.chmod(0o555)  # read-only data folder (honoured even when the tests run as root)
    try:
        read_split(spec, "train")
        assert read_split(spec, "train").from_cache
        assert index.cache_dir(ro) == tmp_path / "home" / ".cache" / "yolox_edge"
    finally:
        ro.chmod(0o755)
    assert not (ro / ".yolox_edge_cache").exists()
    assert len(list((tmp_path / "home" / ".cache" / "yolox_edge").glob("*.npz"))) == 1


def test_large_coco_json_is_indexed(refdata: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                    _index_cache: Path) -> None:
    from yolox_edge.data import coco

    spec = refdata / "coco_tiny" / "data.yaml"
    direct = read_split(spec, "val")
    monkeypatch.setattr(index, "COCO_CACHE_MIN_BYTES", 0)
    first = read_split(spec, "val")
    monkeypatch.setattr(coco, "read_coco", _boom)  # a hit must not parse the big json
    second = read_split(spec, "val")
    assert second.from_cache and not getattr(first, "from_cache", False)
    assert second.names == direct.names and second.problems == direct.problems
    assert [s.image for s in second.samples] == [s.image for s in direct.samples]
    for a, b in zip(second.samples, direct.samples):
        np.testing.assert_array_equal(a.boxes, b.boxes)
        np.testing.assert_array_equal(a.crowd, b.crowd)
    gt = direct.coco_gt
    assert second.coco_gt["images"] == gt["images"] and second.coco_gt["categories"] == gt["categories"]
    keys = ("id", "image_id", "category_id", "bbox", "area", "iscrowd")
    assert second.coco_gt["annotations"] == [{k: a[k] for k in keys} for a in gt["annotations"]]
    # the run that parses the json holds what the index keeps, not the polygons as well (GBs on COCO)
    assert first.coco_gt == second.coco_gt
    # text in the file as UTF-8: as numpy str (4 bytes a character) the file was 4x the ground truth's json
    (cache,) = _index_cache.glob("*.npz")
    assert cache.stat().st_size < 1.5 * len(json.dumps(second.coco_gt).encode())


def test_image_paths_are_stored_as_utf8_and_come_back_exactly(tmp_path: Path) -> None:
    """As numpy str the paths took 4 bytes a character of the longest one (a 100k-image split
    with one long path: hundreds of MB); any name the file system gives comes back, a name that is
    not UTF-8 (Linux: surrogate-escaped in Python) too."""
    from yolox_edge.data.sample import Sample
    from yolox_edge.data.spec import Split

    names = ["a.jpg", "ünïcode 画像.jpg", os.fsdecode(b"latin1-\xe9.jpg"), "d" * 300 + ".jpg"]
    samples = [Sample(tmp_path / n, np.array([[1, 2, 3, 4]], np.float32), np.array([0]), image_id=i, width=8,
                      height=6, crowd=np.array([False])) for i, n in enumerate(names)]
    path = tmp_path / "idx.npz"
    arrays = index._pack(Split(samples, ["cat"], []), {"signature": "s"})
    np.savez(path, **arrays)
    back, meta = index._unpack(path)
    assert [s.image for s in back.samples] == [tmp_path / n for n in names] and meta["signature"] == "s"
    assert arrays["images"].nbytes < 2 * sum(len(str(tmp_path / n)) for n in names)  # not 4 a character


def test_a_new_index_version_deletes_the_splits_earlier_cache_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                   _index_cache: Path) -> None:
    """Each INDEX_VERSION bump left the split's earlier cache file behind for good (tens of MB for a
    COCO train split); the new one's write removes it, and nothing else in the folder."""
    spec = make_voc(tmp_path / "ds", {"a": (32, 32, [("cat", (2, 2, 20, 20))])})
    other = make_voc(tmp_path / "other", {"b": (32, 32, [])})
    current = index.INDEX_VERSION
    monkeypatch.setattr(index, "INDEX_VERSION", current - 1)
    read_split(spec, "train")
    read_split(other, "train")
    earlier = set(_index_cache.glob("*.npz"))
    assert len(earlier) == 2
    monkeypatch.setattr(index, "INDEX_VERSION", current)
    assert not getattr(read_split(spec, "train"), "from_cache", False)  # another version: built again
    now = set(_index_cache.glob("*.npz"))
    assert len(now) == 2 and len(now & earlier) == 1  # the other dataset's earlier cache stays
    assert read_split(spec, "train").from_cache
