"""fileio: names that never replace an existing file."""
from __future__ import annotations

import errno
import os

import pytest

from yolox_edge.fileio import free_name, move_no_clobber
from yolox_edge import owners


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


def _folder_fsync(monkeypatch, err: int | None) -> list[str]:
    """os.fsync recording what it flushed ('file' or 'folder'); ``err``: a folder's flush fails with it."""
    import stat

    real, seen = os.fsync, []

    def fsync(fd) -> None:
        kind = "folder" if stat.S_ISDIR(os.fstat(fd).st_mode) else "file"
        seen.append(kind)
        if kind == "folder" and err is not None:
            raise OSError(err, os.strerror(err))
        real(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    return seen


@pytest.mark.skipif(os.name == "nt", reason="Windows cannot flush a folder")
def test_every_atomic_write_flushes_the_file_then_its_folder(tmp_path, monkeypatch) -> None:
    """The rename is on disk when the call returns, for every write: the folder was flushed only
    where a caller asked (calibrate), so a power loss could lose any other file's rename."""
    from yolox_edge.fileio import atomic_write_bytes

    seen = _folder_fsync(monkeypatch, None)
    atomic_write_bytes(tmp_path / "b.json", lambda f: f.write(b"{}"))
    assert seen == ["file", "folder"] and (tmp_path / "b.json").read_bytes() == b"{}"


def test_atomic_write_bytes_can_leave_the_folder_flush_to_the_caller(tmp_path, fsync_log) -> None:
    """flush_folder=False (eval --save-dir's images): the file is still flushed before its rename,
    the folder not, for the caller to flush once after many files."""
    from yolox_edge.fileio import atomic_write_bytes

    atomic_write_bytes(tmp_path / "a.jpg", lambda f: f.write(b"abc"), flush_folder=False)
    i = fsync_log.named(tmp_path / "a.jpg")
    assert fsync_log.synced(tmp_path / "a.jpg", 0, i) and not fsync_log.synced(tmp_path), fsync_log.events
    atomic_write_bytes(tmp_path / "b.jpg", lambda f: f.write(b"abc"))
    fsync_log.assert_durable(tmp_path / "b.jpg")


def test_replace_durably_flushes_each_file_before_the_renames_and_each_folder_after(tmp_path, fsync_log) -> None:
    from yolox_edge.fileio import replace_durably

    stage, a, b = tmp_path / ".stage", tmp_path / "a", tmp_path / "b"
    for d in (stage, a, b):
        d.mkdir()
    (stage / "x.bin").write_bytes(b"x" * 100)
    (stage / "y.bin").write_bytes(b"y")
    (a / "x.bin").write_bytes(b"old")
    replace_durably([(stage / "x.bin", a / "x.bin"), (stage / "y.bin", b / "y.bin")])
    assert (a / "x.bin").read_bytes() == b"x" * 100 and not any(stage.iterdir())
    first = min(fsync_log.assert_durable(a / "x.bin"), fsync_log.assert_durable(b / "y.bin"))
    syncs = [e for e in fsync_log.events if e[0] == "sync"]
    assert len(syncs) == 4 and fsync_log.events.index(syncs[2]) > first  # two files, then two folders


@pytest.mark.parametrize("hard_links", [True, False])
def test_move_to_new_is_durable(tmp_path, monkeypatch, fsync_log, hard_links) -> None:
    """A live recording's move to a free name: flushed before the link (or the rename where the
    file system has no hard links), the folder after."""
    from yolox_edge.fileio import move_to_new

    if not hard_links:
        def no_link(a, b):
            raise OSError(errno.EPERM, os.strerror(errno.EPERM))
        monkeypatch.setattr(os, "link", no_link)
    src, dest = tmp_path / ".rec.tmp.mp4", tmp_path / "cam.mp4"
    src.write_bytes(b"frames")
    move_to_new(src, dest)
    assert dest.read_bytes() == b"frames" and not src.exists()
    fsync_log.assert_durable(dest)


def test_fsync_tree_flushes_files_then_their_folder(tmp_path, fsync_log) -> None:
    from yolox_edge.fileio import fsync_tree

    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "m.bin").write_bytes(b"m")
    (tmp_path / "s" / "metadata.json").write_bytes(b"{}")
    fsync_tree(tmp_path / "s")
    folder = [i for i in range(len(fsync_log.events)) if fsync_log.synced(tmp_path / "s", i, i + 1)]
    assert folder == [2] and fsync_log.synced(tmp_path / "s" / "m.bin", 0, 2), fsync_log.events
    assert fsync_log.synced(tmp_path / "s" / "metadata.json", 0, 2)


@pytest.mark.skipif(os.name == "nt", reason="Windows cannot flush a folder")
@pytest.mark.parametrize("err", [errno.EINVAL, errno.ENOTSUP])
def test_a_folder_the_file_system_cannot_flush_is_no_error(tmp_path, monkeypatch, err) -> None:
    """Some FUSE and network file systems refuse to flush a folder: the write stands."""
    from yolox_edge.fileio import atomic_write_bytes

    _folder_fsync(monkeypatch, err)
    atomic_write_bytes(tmp_path / "m.json", lambda f: f.write(b"{}"))
    assert (tmp_path / "m.json").read_bytes() == b"{}"


@pytest.mark.skipif(os.name == "nt", reason="Windows cannot flush a folder")
def test_a_failing_folder_flush_names_the_file(tmp_path, monkeypatch) -> None:
    """EIO flushing the folder: the rename may not be on disk, so it is an error, naming the file."""
    from yolox_edge.fileio import atomic_write_bytes

    _folder_fsync(monkeypatch, errno.EIO)
    with pytest.raises(OSError) as info:
        atomic_write_bytes(tmp_path / "m.json", lambda f: f.write(b"{}"))
    assert info.value.errno == errno.EIO and info.value.filename == str(tmp_path / "m.json")


@pytest.mark.parametrize("wrapped", [False, True])
def test_a_full_disk_names_the_file_and_keeps_the_old_one(tmp_path, wrapped) -> None:
    """ENOSPC while writing into the file object has no file name (torch.save even wraps it in
    a RuntimeError), so the CLI printed a traceback instead of one line naming the file."""
    from yolox_edge.fileio import atomic_write_bytes

    path = tmp_path / "last.pt"
    path.write_bytes(b"epoch 3")

    def write(f) -> None:
        f.write(b"half")
        try:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        except OSError:
            if wrapped:
                raise RuntimeError("[enforce fail at inline_container.cc] unexpected pos")
            raise

    with pytest.raises(OSError) as info:
        atomic_write_bytes(path, write)
    assert info.value.errno == errno.ENOSPC and info.value.filename == str(path)
    assert path.read_bytes() == b"epoch 3" and os.listdir(tmp_path) == ["last.pt"]


def test_train_stopped_by_a_full_disk_is_one_line_pointing_at_resume(run_cli, tmp_path, monkeypatch) -> None:
    import yolox_edge.cli.train as cli_train

    out = tmp_path / "run"
    out.mkdir()
    (out / "last.pt").write_bytes(b"x")

    def full(args) -> int:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(out / "last.pt"))

    monkeypatch.setattr(cli_train, "run", full)
    code, _, err = run_cli("train", "--recipe", "yolox_nano", "--data", tmp_path / "d.yaml", "--out", out)
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert "last.pt: No space left on device" in err and "--resume continues from last.pt" in err


def test_mib_is_the_size_unit_bench_prints() -> None:
    from yolox_edge.fileio import mib

    assert mib(3 * 1024 ** 2) == 3.0 and mib(1_000_000) == 0.95 and mib(0) == 0.0


def test_staged_files_are_renamed_into_place_together(tmp_path, monkeypatch) -> None:
    """eval's --json, --coco-results and --coco-gt were written one after another: a Ctrl-C between
    two left this run's beside an earlier run's. Staged, none moves until all are written, and a
    Ctrl-C during the renames comes after the last of them."""
    import signal

    from yolox_edge import fileio
    from yolox_edge.fileio import StagedFiles

    a, b = tmp_path / "a.json", tmp_path / "sub" / "b.json"
    a.write_text("earlier")
    with pytest.raises(KeyboardInterrupt), StagedFiles() as files:
        files.write(a, lambda f: f.write(b"new a"))
        files.write(b, lambda f: f.write(b"new b"))
        raise KeyboardInterrupt  # before the commit: nothing moves, the temps go
    assert a.read_text() == "earlier" and not b.exists() and sorted(p.name for p in tmp_path.rglob("*")) == [
        "a.json", "sub"]
    real = os.replace

    def ctrl_c_in_the_first_rename(src, dst):
        signal.raise_signal(signal.SIGINT)
        real(src, dst)

    monkeypatch.setattr(fileio.os, "replace", ctrl_c_in_the_first_rename)
    files = StagedFiles()
    files.write(a, lambda f: f.write(b"new a"))
    files.write(b, lambda f: f.write(b"new b"))
    with pytest.raises(KeyboardInterrupt):
        files.commit()
    assert a.read_text() == "new a" and b.read_text() == "new b" and files.committed
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["a.json", "b.json", "sub"]


def test_staged_files_are_durable_once_committed(tmp_path, fsync_log) -> None:
    """eval's files renamed into place together: each flushed before its rename, its folder after."""
    from yolox_edge.fileio import StagedFiles

    (tmp_path / "a").mkdir()
    with StagedFiles() as files:
        files.write(tmp_path / "a" / "x.json", lambda f: f.write(b"{}"))
        files.write(tmp_path / "y.json", lambda f: f.write(b"[1]"))
    fsync_log.assert_durable(tmp_path / "a" / "x.json")
    fsync_log.assert_durable(tmp_path / "y.json")


def test_a_write_removes_the_temps_of_a_killed_process_never_a_live_ones(tmp_path, monkeypatch) -> None:
    """A kill -9 between mkstemp and the rename left '.NAME.XXXXXXXX.tmp' (a checkpoint's: tens of
    MB) beside the target for good: nothing swept them. A temp's name now carries its process's
    host and PID (owners.owner_tag, as quantize's staging folders), and the first write of a process
    into a folder removes this host's temps whose process is gone, by the staging sweep's rule:
    never a live process's, another host's, or a file named otherwise."""
    import subprocess
    import sys

    from yolox_edge import fileio

    ended = subprocess.Popen([sys.executable, "-c", "pass"])
    ended.wait()  # a PID no process has now
    host, target = owners.host_tag(), tmp_path / "last.pt"
    dead = tmp_path / f".last.pt.{host}.{ended.pid}.a1b2c3d4.tmp"
    dead_video = tmp_path / f".cam_pred.mp4.{host}.{ended.pid}.e5f6g7h8.tmp.mp4"
    live = tmp_path / f".last.pt.{host}.{os.getpid()}.i9j0k1l2.tmp"  # a write going on now
    other = tmp_path / f".last.pt.gpu-node-7.{ended.pid}.m3n4o5p6.tmp"  # its PID means nothing here
    older = tmp_path / ".last.pt.q7r8s9t0.tmp"  # an earlier yolox_edge's: whose it is cannot be told
    users = tmp_path / f".notes.{host}.{ended.pid}.txt"  # not a temp's name
    for p in (dead, dead_video, live, other, older, users):
        p.write_bytes(b"half a checkpoint")
    fileio.atomic_write_bytes(target, lambda f: f.write(b"new"))
    assert target.read_bytes() == b"new"
    assert not dead.exists() and not dead_video.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in (target, live, other, older, users))
    fd, tmp = fileio.temp_beside(tmp_path / "log.json", "output")  # this process's own name
    os.close(fd)
    assert os.path.basename(tmp).startswith(f".log.json.{host}.{os.getpid()}.") and tmp.endswith(".tmp")
    long = tmp_path / ("é" * 100 + "x" * 50 + ".jpg")  # 254 bytes: the temp's name is cut, not the target's
    fileio.atomic_write_bytes(long, lambda f: f.write(b"x"))
    assert long.read_bytes() == b"x"
    # one scandir per folder and process: predict --save-dir writes thousands of images there
    dead.write_bytes(b"killed again")
    scans = []
    real = os.scandir
    monkeypatch.setattr(os, "scandir", lambda path: scans.append(path) or real(path))
    for i in range(3):
        fileio.atomic_write_bytes(tmp_path / f"{i}.jpg", lambda f: f.write(b"x"))
    assert scans == [] and dead.exists()
    monkeypatch.setattr(owners, "_SWEPT", set())  # the next process
    fileio.atomic_write_bytes(target, lambda f: f.write(b"newer"))
    assert len(scans) == 1 and not dead.exists() and live.exists() and other.exists()


def test_a_temp_of_another_pid_namespace_is_never_removed(tmp_path, monkeypatch) -> None:
    """A container run with --net=host shares the host's name but has its own PIDs: its live
    write's temp looked dead here. A temp's name carries the PID namespace; only ours are swept."""
    from yolox_edge import fileio

    monkeypatch.setattr(owners, "pid_namespace", lambda: 4026531836)
    monkeypatch.setattr(owners, "process_alive", lambda pid: pid == os.getpid())  # every other PID: gone here
    host = owners.host_tag()
    ours = tmp_path / f".e.json.{host}.70001.4026531836.a1b2c3d4.tmp"
    container = tmp_path / f".e.json.{host}.70002.4026532999.e5f6g7h8.tmp"
    before = tmp_path / f".e.json.{host}.70003.i9j0k1l2.tmp"  # no namespace in the name: host and PID decide
    for p in (ours, container, before):
        p.write_bytes(b"x")
    fileio.atomic_write_bytes(tmp_path / "e.json", lambda f: f.write(b"{}"))
    assert container.exists() and not ours.exists() and not before.exists()
    fd, tmp = fileio.temp_beside(tmp_path / "e.json", "output")
    os.close(fd)
    assert os.path.basename(tmp).startswith(f".e.json.{host}.{os.getpid()}.4026531836.")


@pytest.mark.skipif(os.name == "nt", reason="no fcntl on Windows")
@pytest.mark.parametrize("refused", [False, True])
def test_where_the_os_has_full_fsync_writes_ask_the_drive_for_it(tmp_path, monkeypatch, refused) -> None:
    """macOS's fsync leaves data in the drive's cache; there F_FULLFSYNC is asked for after it (so
    that the flush is still an os.fsync, which the tests' fsync_log records), and a file system
    that refuses it keeps the plain fsync, without an error (simulated: Linux has no F_FULLFSYNC)."""
    import fcntl

    from yolox_edge import fileio

    full, calls = 51, []  # macOS's value of F_FULLFSYNC
    real_fcntl, real_fsync = fcntl.fcntl, os.fsync

    def fake_fcntl(fd, cmd, *arg):
        if cmd != full:
            return real_fcntl(fd, cmd, *arg)
        calls.append("full")
        if refused:
            raise OSError(errno.ENOTSUP, os.strerror(errno.ENOTSUP))
        return 0

    def fsync(fd) -> None:
        calls.append("fsync")
        real_fsync(fd)

    monkeypatch.setattr(fcntl, "F_FULLFSYNC", full, raising=False)
    monkeypatch.setattr(fcntl, "fcntl", fake_fcntl)
    monkeypatch.setattr(os, "fsync", fsync)
    fileio.atomic_write_bytes(tmp_path / "a.json", lambda f: f.write(b"{}"))
    assert calls == ["fsync", "full"] * 2  # the file, then its folder
    assert (tmp_path / "a.json").read_bytes() == b"{}"


def test_yolox_edge_folders_in_the_system_temp_folder_of_a_killed_process_are_swept(tmp_path, monkeypatch) -> None:
    """A kill -9 of package (its trial zip and verify's extraction: twice the bundle), of an ncnn
    export (pnnx's folder) or of a run holding a bundle open left 'yolox_edge_*_XXXXXXXX' in the
    system temp folder, which nothing removed. Each is named for its process now, and the first
    one a process makes removes every prefix's whose process is gone on this host: never a live
    process's, another host's or PID namespace's, nor a name without an owner."""
    import subprocess
    import sys
    import tempfile

    from yolox_edge import owners

    temp = tmp_path / "tmp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    monkeypatch.setattr(owners, "_TEMPS_SWEPT", set())  # a new process
    ended = subprocess.Popen([sys.executable, "-c", "pass"])
    ended.wait()  # a PID no process has now
    host, ns = owners.host_tag(), owners.pid_namespace()
    dead_ns = f".{ns}" if ns is not None else ""
    dead = [temp / f"{p}{host}.{ended.pid}{dead_ns}.a1b2c3d4" for p in owners.TEMP_PREFIXES]
    dead.append(temp / f"yolox_edge_verify_{host}.{ended.pid}.e5f6g7h8")  # no namespace: host and PID decide
    kept = [temp / f"yolox_edge_bundle_{host}.{os.getpid()}{dead_ns}.i9j0k1l2",  # a live run's open bundle
            temp / f"yolox_edge_pnnx_gpu-node-7.{ended.pid}.m3n4o5p6",  # another host's: its PID means nothing here
            temp / f"yolox_edge_package_{host}.{ended.pid}.4026539999.q7r8s9t0",  # another PID namespace's
            temp / "yolox_edge_package_u1v2w3x4",  # an earlier yolox_edge's: whose it is cannot be told
            temp / f"yolox_edge_notes_{host}.{ended.pid}.y5z6a7b8"]  # not one of ours
    for p in dead + kept:
        p.mkdir()
        (p / "model.bin").write_bytes(b"half a bundle")
    a_file = temp / f"yolox_edge_pnnx_{host}.{ended.pid}{dead_ns}.c9d0e1f2"  # a file, not our folder
    a_file.write_bytes(b"x")
    if ns is None:
        kept.remove(temp / f"yolox_edge_package_{host}.{ended.pid}.4026539999.q7r8s9t0")
    made = owners.owned_temp_folder("yolox_edge_package_")
    assert made.parent == temp and made.name.startswith(f"yolox_edge_package_{owners.owner_tag()}.")
    assert made.is_dir() and (os.name == "nt" or made.stat().st_mode & 0o777 == 0o700)
    left = {p.name for p in temp.iterdir()}
    assert left == {p.name for p in kept} | {a_file.name, made.name}, left - {p.name for p in kept}
    # one listing of the temp folder per process, whichever command comes next
    dead[0].mkdir()
    scans = []
    real = os.scandir

    def scandir(path):
        if not isinstance(path, int):  # rmtree lists by file descriptor
            scans.append(path)
        return real(path)

    monkeypatch.setattr(os, "scandir", scandir)
    with owners.owned_temp_dir("yolox_edge_verify_") as mine:
        assert mine.is_dir() and mine.name.startswith(f"yolox_edge_verify_{owners.owner_tag()}.")
        (mine / "x").write_bytes(b"x")
    assert not mine.exists() and scans == [] and dead[0].exists()
    with pytest.raises(ValueError, match="TEMP_PREFIXES"):  # a prefix the sweep would not know
        owners.owned_temp_folder("yolox_edge_other_")
