"""fileio: names that never replace an existing file."""
from __future__ import annotations

import errno
import os

import pytest

from yolox_edge.fileio import free_name, move_no_clobber


def test_free_name_counts_past_taken_names(tmp_path) -> None:
    p = tmp_path / "cam_pred.mp4"
    assert free_name(p) == p
    p.write_bytes(b"1")
    (tmp_path / "cam_pred_2.mp4").write_bytes(b"2")
    assert free_name(p) == tmp_path / "cam_pred_3.mp4"


def test_move_no_clobber_keeps_what_is_there(tmp_path) -> None:
    src, dest = tmp_path / ".tmp1", tmp_path / "a.mp4"
    src.write_bytes(b"new")
    dest.write_bytes(b"old")
    assert move_no_clobber(src, dest) == tmp_path / "a_2.mp4"
    assert dest.read_bytes() == b"old" and (tmp_path / "a_2.mp4").read_bytes() == b"new" and not src.exists()


def test_move_no_clobber_when_the_name_is_taken_after_the_check(tmp_path, monkeypatch) -> None:
    src, dest = tmp_path / ".tmp1", tmp_path / "a.mp4"
    src.write_bytes(b"new")
    real_link = os.link

    def racing_link(a, b):  # another process creates the file between free_name and the link
        if not os.path.exists(dest):
            dest.write_bytes(b"theirs")
        real_link(a, b)

    monkeypatch.setattr(os, "link", racing_link)
    assert move_no_clobber(src, dest) == tmp_path / "a_2.mp4"
    assert dest.read_bytes() == b"theirs" and (tmp_path / "a_2.mp4").read_bytes() == b"new"


@pytest.mark.parametrize("errno_", [errno.EPERM, errno.EOPNOTSUPP])
def test_move_no_clobber_without_hard_links(tmp_path, monkeypatch, errno_) -> None:
    # FAT/exFAT SD cards and some Android storage have no hard links
    def no_link(a, b):
        raise OSError(errno_, os.strerror(errno_))

    src, dest = tmp_path / ".tmp1", tmp_path / "a.mp4"
    src.write_bytes(b"new")
    dest.write_bytes(b"old")
    monkeypatch.setattr(os, "link", no_link)
    assert move_no_clobber(src, dest) == tmp_path / "a_2.mp4"
    assert dest.read_bytes() == b"old" and (tmp_path / "a_2.mp4").read_bytes() == b"new" and not src.exists()
