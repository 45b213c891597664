"""Calibration sets: selection, cache format, statistics and the bad-input errors."""
from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from yolox_edge.errors import UserError
from yolox_edge.quantize.calib import (build_calibration_set, calibration_stats, format_stats,
                                       load_calibration_set, select_images, _balanced_pick)
from yolox_edge.data.preprocess import PreprocessConfig, preprocess, read_image

from quant_helpers import write_images


def test_build_and_load_roundtrip(calib_images, tmp_path):
    out = tmp_path / "c"
    cal = build_calibration_set(calib_images, out, img_size=64, count=5, seed=3)
    assert cal.data.shape == (5, 3, 64, 64) and cal.data.dtype == np.float32
    man = json.loads((out / "manifest.json").read_text())
    assert man["count"] == 5 and man["input_size"] == [64, 64] and len(man["images"]) == 5
    assert man["sha256"] == cal.sha256 and man["sampling"] == "random" and man["seed"] == 3
    back = load_calibration_set(out, img_size=(64, 64))
    np.testing.assert_array_equal(back.data, cal.data)
    # Each row is exactly THE preprocessing of its image (one contract for every stage).
    x0, _ = preprocess(read_image(man["images"][0]), PreprocessConfig(input_size=(64, 64)))
    np.testing.assert_array_equal(back.data[0], x0)
    # Same seed, same pick; another seed, another pick.
    assert build_calibration_set(calib_images, tmp_path / "d", img_size=64, count=5, seed=3).images == cal.images
    assert build_calibration_set(calib_images, tmp_path / "e", img_size=64, count=5, seed=4).images != cal.images
    stats = calibration_stats(back)
    assert stats["count"] == 5 and 0 <= stats["padding_fraction"] < 1
    assert "5 images, 64x64" in format_stats(stats)


def test_the_array_is_hashed_and_written_without_a_copy_in_memory(calib_images, tmp_path, monkeypatch):
    """The .npy was built whole in a BytesIO to hash and write it: a second copy of the set (300 images
    at 416: 0.6 GB more at the peak). The sha256 is still the file's, and load checks it."""
    import hashlib

    from yolox_edge.quantize import calib

    def no_buffer(*a, **k):
        raise AssertionError("the calibration array was serialized in memory")

    monkeypatch.setattr(calib.io, "BytesIO", no_buffer)
    out = tmp_path / "c"
    cal = build_calibration_set(calib_images, out, img_size=64, count=5, seed=3)
    assert hashlib.sha256((out / "calib.npy").read_bytes()).hexdigest() == cal.sha256
    monkeypatch.undo()
    np.testing.assert_array_equal(load_calibration_set(out, img_size=64).data, cal.data)


def test_class_balanced_covers_rare_classes_first():
    import random

    labels = [{0}] * 20 + [{1}, {2}, {0, 3}] + [set()] * 5
    pick = _balanced_pick(labels, 4, random.Random(0))
    covered = set().union(*(labels[i] for i in pick))
    assert covered == {0, 1, 2, 3}  # four picks cover all four classes
    assert len(set(pick)) == 4
    # a rare class seen only beside a common one: its image covers the common one too, which then
    # took a second image before a third class had any
    labels = [{0, 1}] * 2 + [{1}] * 50 + [{2}] * 60
    pick = _balanced_pick(labels, 2, random.Random(0))[:2]
    assert set().union(*(labels[i] for i in pick)) == {0, 1, 2}


def test_class_balanced_needs_labels(calib_images):
    with pytest.raises(UserError, match=r"class-balanced sampling needs labels.*--sampling random "
                                        r"\(sampling='random' in Python\)"):
        select_images(calib_images, count=3, sampling="class-balanced")


def test_empty_folder_is_a_clear_error_and_writes_nothing(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    out = tmp_path / "out"
    with pytest.raises(UserError, match="no images found"):
        build_calibration_set(empty, out, img_size=64)
    assert not out.exists()


def test_unreadable_images_are_named_with_why_and_left_out(tmp_path):
    src = tmp_path / "imgs"
    write_images(src, 3)
    (src / "broken.jpg").write_bytes(b"not a jpeg at all")
    cal = build_calibration_set(src, tmp_path / "out", img_size=64, count=10)
    assert len(cal) == 3 and str(src / "broken.jpg") not in cal.images
    assert len(cal.skipped) == 1 and cal.skipped[0].startswith(f"{src / 'broken.jpg'}: unreadable image: not an image this "
                                                             "OpenCV decodes")


def test_hidden_folders_are_not_calibration_images(tmp_path):
    """A notebook's .ipynb_checkpoints copies were drawn into the set (and a broken one stopped it)."""
    src = tmp_path / "imgs"
    write_images(src, 3)
    write_images(src / ".ipynb_checkpoints", 2)
    (src / ".git").mkdir()
    (src / ".git" / "broken.jpg").write_bytes(b"not a jpeg")
    (src / "._img_00.jpg").write_bytes(b"macOS resource fork")
    cal = build_calibration_set(src, tmp_path / "c", img_size=64, count=10)
    assert sorted(cal.images) == sorted(str(p) for p in src.glob("img_*.jpg"))


def test_other_input_size_is_refused(tiny_calib):
    with pytest.raises(UserError, match=r"64x64 but the model takes 96x96 \(width x height\); "
                       r"rebuild it with 'calibrate --img-size 96', or quantize at its size with --img-size 64 "
                       r"\(img_size=64 in Python\)"):
        load_calibration_set(tiny_calib, img_size=96)


def test_load_takes_img_size_as_every_call_and_input_size_still_works(tiny_calib):
    """load_calibration_set(input_size=(H, W)) where build_calibration_set, export and quantize say
    img_size (S or (H, W)); the old name warns."""
    assert load_calibration_set(tiny_calib, img_size=64).size == load_calibration_set(tiny_calib, img_size=(64, 64)).size
    with pytest.warns(DeprecationWarning, match=r"load_calibration_set\(input_size=\) is deprecated; pass img_size="):
        assert len(load_calibration_set(tiny_calib, input_size=(64, 64))) == 8
    with pytest.warns(DeprecationWarning), pytest.raises(UserError, match="but the model takes 96x96"):
        load_calibration_set(tiny_calib, input_size=(96, 96))
    with pytest.raises(TypeError, match="input_size= and img_size="):
        load_calibration_set(tiny_calib, input_size=(64, 64), img_size=64)


@pytest.mark.parametrize("size", ["x", "416", 416.0, 0, True, (64,), (64.0, 64), (64, 64, 3)])
def test_a_value_that_is_no_size_is_refused_before_any_work(tiny_calib, calib_images, tmp_path, size):
    """img_size='x', 416.0 or (64,) went deep before failing (a ValueError or TypeError from
    unpacking it, after the set was read and hashed); now one line naming --img-size and img_size=."""
    says = re.escape(f"(img_size={size!r} in Python): ") + \
        r"(expected a size S or \(HEIGHT, WIDTH\) in whole pixels|the size must be a positive multiple of 32)"
    with pytest.raises(UserError, match=says):
        load_calibration_set(tiny_calib, img_size=size)
    with pytest.raises(UserError, match=says):
        build_calibration_set(calib_images, tmp_path / "c", img_size=size, count=2)
    assert not (tmp_path / "c").exists()


def test_rectangular_size_mismatch_is_written_width_x_height(tiny_calib):
    """(H, W) = (64, 96) is the flag's 96x64: the message must not print it as 64x96."""
    with pytest.raises(UserError, match=r"64x64 but the model takes 96x64 \(width x height\); "
                       r"rebuild it with 'calibrate --img-size 96x64', or quantize at its size with --img-size 64 "
                       r"\(img_size=64 in Python\)"):
        load_calibration_set(tiny_calib, img_size=(64, 96))


def test_rectangular_set_from_the_cli(calib_images, tmp_path, run_cli):
    """calibrate --img-size WxH letterboxes into an H x W canvas; the manifest keeps [H, W]."""
    code, out, err = run_cli("calibrate", "--data", calib_images, "--img-size", "96x64", "--count", "3",
                             "--out", tmp_path / "c")
    assert code == 0, err
    assert "3 images, 96x64 (WxH)" in out
    cal = load_calibration_set(tmp_path / "c", img_size=(64, 96))
    assert cal.data.shape == (3, 3, 64, 96) and tuple(cal.size) == (64, 96)
    assert json.loads((tmp_path / "c" / "manifest.json").read_text())["input_size"] == [64, 96]
    code, _, err = run_cli("calibrate", "--data", calib_images, "--img-size", "96x50", "--out", tmp_path / "d")
    assert code == 2 and "--img-size 96x50 (img_size=(50, 96) in Python)" in err and "nearest that is: 96x64" in err


def test_changed_array_fails_the_hash(calib_images, tmp_path):
    out = tmp_path / "c"
    build_calibration_set(calib_images, out, img_size=64, count=2)
    arr = np.load(out / "calib.npy")
    arr[0, 0, 0, 0] += 1
    np.save(out / "calib.npy", arr)
    with pytest.raises(UserError, match="does not match the sha256"):
        load_calibration_set(out)


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_non_finite_values_are_refused_even_with_a_matching_hash(tiny_calib, tmp_path, value):
    """A hand-made calib.npy with its sha256 put in the manifest passed every check."""
    import hashlib
    import shutil

    bad = tmp_path / "bad"
    shutil.copytree(tiny_calib, bad)
    arr = np.load(bad / "calib.npy")
    arr[2, 1, 5, 7] = value
    np.save(bad / "calib.npy", arr)
    man = json.loads((bad / "manifest.json").read_text())
    man["sha256"] = hashlib.sha256((bad / "calib.npy").read_bytes()).hexdigest()
    (bad / "manifest.json").write_text(json.dumps(man))
    with pytest.raises(UserError, match=re.escape(f"{bad / 'calib.npy'}: image 2 ({man['images'][2]}) holds NaN "
                                                  "or infinite values")):
        load_calibration_set(bad)


def _hand_made(tiny_calib, folder, write) -> Path:
    """A copy of the set whose calib.npy ``write(path, array)`` rewrote, its sha256 put in the manifest."""
    import hashlib

    shutil.copytree(tiny_calib, folder)
    write(folder / "calib.npy", np.load(folder / "calib.npy"))
    man = json.loads((folder / "manifest.json").read_text())
    man["sha256"] = hashlib.sha256((folder / "calib.npy").read_bytes()).hexdigest()
    (folder / "manifest.json").write_text(json.dumps(man))
    return folder


def test_the_array_loads_as_np_load_reads_it_and_odd_files_are_refused(tiny_calib, tmp_path):
    """load reads the .npy header itself and views the file's bytes (np.load of the bytes held the
    set twice in memory): the same values, writable, in either memory order; files np.load would
    refuse or misread are one line each."""
    ref = np.load(tiny_calib / "calib.npy")
    cal = load_calibration_set(tiny_calib)
    assert cal.data.dtype == np.float32 and cal.data.flags.writeable and np.array_equal(cal.data, ref)
    fortran = _hand_made(tiny_calib, tmp_path / "f", lambda p, a: np.save(p, np.asfortranarray(a)))
    assert np.array_equal(load_calibration_set(fortran).data, ref)
    v2 = _hand_made(tiny_calib, tmp_path / "v2", lambda p, a: p.write_bytes(_npy_bytes(a, version=(2, 0))))
    assert np.array_equal(load_calibration_set(v2).data, ref)

    def refused(name, write, message):
        folder = _hand_made(tiny_calib, tmp_path / name, write)
        with pytest.raises(UserError, match=re.escape(f"{folder / 'calib.npy'}: {message}")):
            load_calibration_set(folder)

    plain = "not a plain float32 .npy array; rebuild the calibration set"
    refused("objects", lambda p, a: np.save(p, np.array([a[0], None], dtype=object), allow_pickle=True),
            "expected float32 [N, 3, H, W], got object [2]")  # never unpickled
    refused("big_endian", lambda p, a: np.save(p, a.astype(">f4")), "expected float32 [N, 3, H, W], got >f4")
    refused("float64", lambda p, a: np.save(p, a.astype(np.float64)), "expected float32 [N, 3, H, W], got float64")
    refused("short", lambda p, a: p.write_bytes(_npy_bytes(a)[:-4]), plain)  # truncated, hash made to match
    refused("text", lambda p, a: p.write_text("calibration images"), plain)


def _npy_bytes(a: np.ndarray, version: tuple[int, int] | None = None) -> bytes:
    import io

    buf = io.BytesIO()
    np.lib.format.write_array(buf, a, version)
    return buf.getvalue()


def test_bad_size_and_missing_manifest(calib_images, tmp_path):
    with pytest.raises(UserError, match="multiple of 32"):
        build_calibration_set(calib_images, tmp_path / "x", img_size=50)
    with pytest.raises(UserError, match="no manifest.json"):
        load_calibration_set(tmp_path)
    with pytest.raises(UserError, match="calb: not found; check the path"):  # a typo, not a set without its file
        load_calibration_set(tmp_path / "calb")


def test_cli_calibrate(calib_images, tmp_path, run_cli):
    code, out, err = run_cli("calibrate", "--data", calib_images, "--img-size", "64", "--count", "3",
                             "--out", tmp_path / "c")
    assert code == 0, err
    assert "3 images, 64x64 (WxH)" in out
    code, out, err = run_cli("calibrate", "--data", calib_images, "--img-size", "64", "--count", "100",
                             "--out", tmp_path / "few")
    assert code == 0 and "8 images, fewer than --count 100" in out and "under 20 images" in out, err
    code, out, _ = run_cli("calibrate", "--show", tmp_path / "c")
    assert code == 0 and "3 images" in out
    before = (tmp_path / "c" / "calib.npy").read_bytes()  # INT8 exports record its sha256
    code, _, err = run_cli("calibrate", "--data", calib_images, "--img-size", "64", "--count", "2",
                           "--out", tmp_path / "c")
    assert code == 2 and "already holds a calibration set" in err and "--force" in err
    assert (tmp_path / "c" / "calib.npy").read_bytes() == before
    with pytest.raises(UserError, match=r"already holds a calibration set.*\(force=True in Python\)"):  # library too
        build_calibration_set(calib_images, tmp_path / "c", img_size=64, count=2)
    assert build_calibration_set(calib_images, tmp_path / "c", img_size=64, count=2, force=True).images
    # a web app's manifest.json is no set: --force wrote over it (and named the array calib-<hash>.npy)
    web = tmp_path / "web"
    web.mkdir()
    (web / "manifest.json").write_text('{"name": "my app", "icons": []}')
    for force in ([], ["--force"]):
        code, _, err = run_cli("calibrate", "--data", calib_images, "--img-size", "64", "--count", "2",
                               "--out", web, *force)
        assert code == 2 and "manifest.json: not a calibration set's manifest" in err, err
    assert (web / "manifest.json").read_text() == '{"name": "my app", "icons": []}' and len(list(web.iterdir())) == 1
    empty = tmp_path / "empty"
    empty.mkdir()
    code, _, err = run_cli("calibrate", "--data", empty, "--size", "64", "--out", tmp_path / "d")
    assert code == 2 and "no images found" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("flags", [("--data", "imgs"), ("--out", "o"), ("--img-size", "416"), ("--size", "64"),
                                   ("--count", "5"), ("--sampling", "random"), ("--seed", "1"), ("--split", "val"),
                                   ("--force",), ("--data", "imgs", "--out", "o", "--force")])
def test_show_refuses_build_flags(tiny_calib, tmp_path, run_cli, flags):
    """--show DIR --data X --out Y --force printed DIR's statistics and ignored the rest, unsaid."""
    code, out, err = run_cli("calibrate", "--show", tiny_calib, *flags)
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert f"--show {tiny_calib} only prints an existing set; it takes no build flags (got {flags[0]}" in err
    assert "drop --show to build a set" in err and out == ""
    code, out, err = run_cli("calibrate", "--show", tiny_calib, "--json", tmp_path / "s.json")  # --json goes with it
    assert code == 0 and "8 images" in out and (tmp_path / "s.json").is_file(), err


def _stop_at(monkeypatch, k: int) -> None:
    """The k-th rename or removal from now on raises KeyboardInterrupt instead: a stop (Ctrl-C,
    crash, power) after the first k-1 steps of a build's writes."""
    calls = [0]

    def stopping(real):
        def op(*args, **kwargs):
            calls[0] += 1
            if calls[0] == k:
                raise KeyboardInterrupt
            return real(*args, **kwargs)
        return op

    for name in ("replace", "rename", "unlink", "remove"):
        monkeypatch.setattr(os, name, stopping(getattr(os, name)))


def test_force_replacement_leaves_the_old_set_or_the_new_one_whole(calib_images, tmp_path, monkeypatch):
    """--force renamed the new calib.npy, then manifest.json, into place: a stop between the two
    left a set failing its sha256 check, and the old set was gone."""
    out = tmp_path / "c"
    have = build_calibration_set(calib_images, out, img_size=64, count=3, seed=0).sha256
    for seed in (1, 2, 3):  # calib.npy is replaced by calib-<hash>.npy, that by calib.npy, ...
        want = build_calibration_set(calib_images, tmp_path / f"ref{seed}", img_size=64, count=3, seed=seed).sha256
        assert want != have
        seen = []
        for k in range(1, 20):
            with monkeypatch.context() as m:
                _stop_at(m, k)
                try:
                    cal = build_calibration_set(calib_images, out, img_size=64, count=3, seed=seed, force=True)
                except KeyboardInterrupt:
                    cal = None
            if cal is not None:
                break
            seen.append(load_calibration_set(out).sha256)  # either set, whole: never a hash error
            assert seen[-1] in (have, want)
        assert cal is not None and seen[0] == have and seen[-1] == want, seen  # stopped before and after the switch
        assert load_calibration_set(out).sha256 == want
        # what stopped runs left is cleared: the set's two files, nothing else
        assert sorted(f.name for f in out.iterdir()) == sorted(["manifest.json", cal.array])
        assert load_calibration_set(out / "calib.npy").path == out  # --calib DIR/calib.npy, whatever the name
        have = want
    with pytest.raises(UserError, match="already holds a calibration set"):  # whatever the array is named
        build_calibration_set(calib_images, out, img_size=64, count=3, seed=4)


def test_a_stopped_build_takes_away_the_empty_folders_it_made(calib_images, tmp_path, monkeypatch):
    """A stop while writing the array left the new --out (and the folders above it) empty, as
    export and quantize no longer do. A folder that was there before stays, even empty."""
    with monkeypatch.context() as m:
        _stop_at(m, 1)  # the array's rename into place
        with pytest.raises(KeyboardInterrupt):
            build_calibration_set(calib_images, tmp_path / "new" / "deeper" / "c", img_size=64, count=3)
    assert not (tmp_path / "new").exists()
    (tmp_path / "mine").mkdir()
    with monkeypatch.context() as m:
        _stop_at(m, 1)
        with pytest.raises(KeyboardInterrupt):
            build_calibration_set(calib_images, tmp_path / "mine", img_size=64, count=3)
    assert (tmp_path / "mine").is_dir() and not any((tmp_path / "mine").iterdir())


@pytest.mark.skipif(os.name == "nt", reason="Windows cannot flush a folder")
def test_force_replacement_survives_a_power_loss_at_any_instant(calib_images, tmp_path, monkeypatch):
    """A rename or removal in a folder is sure to be on disk only once the folder is flushed
    (fsync); until then a power loss may keep any of them and lose others. Replaying every such
    outcome of the --force sequence: each leaves the old set or the new one. Without a flush
    between the steps, the manifest could name an array whose rename was lost, or the old array
    be gone under a manifest still naming it."""
    import itertools

    out = tmp_path / "c"
    old = build_calibration_set(calib_images, out, img_size=64, count=3, seed=0)
    folder = (out.stat().st_dev, out.stat().st_ino)
    ops: list[tuple[str, str]] = []  # ("put" | "drop", name) of the set's own files, ("sync", "") of the folder
    real_replace, real_unlink, real_fsync = os.replace, os.unlink, os.fsync

    def replace(src, dst, *a, **k):
        real_replace(src, dst, *a, **k)
        if Path(dst).parent == out:
            ops.append(("put", Path(dst).name))

    def unlink(path, *a, **k):
        real_unlink(path, *a, **k)
        if Path(path).parent == out and not Path(path).name.startswith("."):  # not a temp file
            ops.append(("drop", Path(path).name))

    def fsync(fd):
        real_fsync(fd)
        st = os.fstat(fd)
        if (st.st_dev, st.st_ino) == folder:
            ops.append(("sync", ""))

    with monkeypatch.context() as m:
        m.setattr(os, "replace", replace)
        m.setattr(os, "unlink", unlink)
        m.setattr(os, "fsync", fsync)
        new = build_calibration_set(calib_images, out, img_size=64, count=3, seed=1, force=True)
    assert new.array != old.array and ("put", "manifest.json") in ops

    def after(applied: list[tuple[str, str]]) -> str:
        files = {old.array: "old", "manifest.json": old.array}  # array name -> set; the manifest -> its array
        for op, name in applied:
            if op == "put":
                files[name] = new.array if name == "manifest.json" else "new"
            elif op == "drop":
                files.pop(name, None)
        named = files.get("manifest.json")
        return files.get(named, f"nothing: the manifest names {named}, which is not there")

    for crash in range(len(ops) + 1):  # the power goes after the first `crash` operations
        done = ops[:crash]
        synced = max((i + 1 for i, (op, _) in enumerate(done) if op == "sync"), default=0)
        pending = [o for o in done[synced:] if o[0] != "sync"]
        for kept in itertools.product((False, True), repeat=len(pending)):
            state = after(done[:synced] + [o for o, k in zip(pending, kept) if k])
            assert state in ("old", "new"), (ops[:crash], [o for o, k in zip(pending, kept) if k], state)


def test_cli_force_says_which_array_it_wrote(tiny_calib, calib_images, tmp_path, run_cli):
    import shutil

    out = tmp_path / "c"
    shutil.copytree(tiny_calib, out)
    code, text, err = run_cli("calibrate", "--data", calib_images, "--img-size", "64", "--count", "2",
                              "--out", out, "--force")
    array = json.loads((out / "manifest.json").read_text())["array"]
    assert code == 0 and array != "calib.npy" and f"wrote {out / array} and manifest.json" in text, err


def test_calibration_set_repr_is_short(tiny_calib) -> None:
    """A notebook cell ending in ``cal = build_calibration_set(...)``'s value printed every pixel."""
    from yolox_edge.quantize import load_calibration_set

    text = repr(load_calibration_set(tiny_calib))
    assert text.startswith("CalibrationSet(") and "sha256=" in text and len(text) < 1000


def _edit_manifest(src, dst, **fields):
    """A copy of the set ``src`` whose manifest has ``fields`` changed (None: removed)."""
    import shutil

    shutil.copytree(src, dst)
    man = json.loads((dst / "manifest.json").read_text())
    man.update(fields)
    (dst / "manifest.json").write_text(json.dumps({k: v for k, v in man.items() if v is not None}))
    return dst


@pytest.mark.parametrize("fields, message", [
    ({"array": 5}, "'array' should be a file name, not 5"),
    ({"array": "../calib.npy"}, "'array' must name a file in the same folder, not '../calib.npy'"),
    ({"seed": "abc"}, "'seed' should be an integer"),
    ({"class_counts": [1, 2]}, "'class_counts' should be a mapping"),
    ({"class_counts": {"a": "x"}}, "'class_counts' should map class names to image counts"),
    ({"images": "abc"}, "'images' should be a list"),
    ({"preprocess": "x"}, "'preprocess' should be a mapping"),
    ({"preprocess": {"input_size": 5}}, "'preprocess' does not describe the 64x64 array beside it"),
    ({"preprocess": {"input_size": [32, 32]}}, "'preprocess' does not describe the 64x64 array beside it"),
])
def test_damaged_manifest_is_one_clear_error(tiny_calib, tmp_path, fields, message):
    """Each of these raised a TypeError/ValueError traceback (or read a file outside the set)."""
    bad = _edit_manifest(tiny_calib, tmp_path / "bad", **fields)
    with pytest.raises(UserError, match=r"manifest\.json: " + re.escape(message)):
        load_calibration_set(bad)


def test_calib_path_may_name_the_array_or_manifest(tiny_calib):
    """--calib DIR/calib.npy was read as the manifest: 'not valid JSON'."""
    for p in (tiny_calib / "calib.npy", tiny_calib / "manifest.json"):
        cal = load_calibration_set(p, img_size=64)
        assert len(cal) == 8 and cal.path == tiny_calib


def test_folder_that_is_not_a_set_says_what_it_is(calib_images, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "best.pt").write_bytes(b"x")
    with pytest.raises(UserError, match="a training run folder, not a calibration set"):
        load_calibration_set(run)
    with pytest.raises(UserError, match=f"a folder of images, not a calibration set.*--data {calib_images}"):
        load_calibration_set(calib_images)
    # an image or a data spec given as --calib: 'not valid JSON; rebuild the calibration set'
    photo = next(calib_images.iterdir())
    (tmp_path / "data.yaml").write_text("format: yolo\n")
    for wrong in (photo, tmp_path / "data.yaml"):
        with pytest.raises(UserError, match=f"{wrong}: a file, not a calibration set; give the folder"):
            load_calibration_set(wrong)


def _voc_spec(root, calib_images, stems):
    """A one-class VOC spec over copies of the calibration images named ``stems``."""
    import shutil

    (root / "images").mkdir(parents=True)
    (root / "annotations").mkdir()
    for stem, img in zip(stems, sorted(calib_images.glob("*.jpg"))):
        shutil.copy(img, root / "images" / f"{stem}.jpg")
        (root / "annotations" / f"{stem}.xml").write_text(
            f"<annotation><filename>{stem}.jpg</filename><size><width>96</width><height>72</height></size>"
            "<object><name>cat</name><bndbox><xmin>5</xmin><ymin>5</ymin><xmax>40</xmax><ymax>40</ymax>"
            "</bndbox></object></annotation>")
    (root / "data.yaml").write_text("format: voc\nnames: [cat]\ntrain: {annotations: annotations, images: images}\n"
                                    "val: {annotations: annotations, images: images}\n")
    return root / "data.yaml"


def test_samples_the_spec_reader_skipped_are_said(calib_images, tmp_path, run_cli):
    """A VOC spec whose XML names a missing image: the reader skips that sample, and calibrate
    said only 'that is all the source has', as if the spec listed no more."""
    spec = _voc_spec(tmp_path / "voc", calib_images, ["a", "b", "c"])
    (tmp_path / "voc" / "images" / "b.jpg").unlink()
    cal = build_calibration_set(spec, tmp_path / "lib", img_size=64, count=10)
    assert len(cal) == 2 and len(cal.problems) == 1 and "b.jpg" in cal.problems[0]
    code, out, err = run_cli("calibrate", "--data", spec, "--img-size", "64", "--count", "10", "--out", tmp_path / "c")
    assert code == 0, err
    assert "note: 1 problem(s) reading" in out and "b.jpg" in out and f"'yolox-edge data check {spec}'" in out
    assert "that is all the source has (less the samples skipped)" in out


def _cut_short(path: Path) -> None:
    """A JPEG copy stopped part-way: read_image refuses it as truncated."""
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])


def test_an_unreadable_image_of_the_draw_is_skipped_with_why_and_another_takes_its_place(tmp_path, run_cli):
    """A JPEG cut short (read_image refuses it) or gone stopped calibrate with 'unreadable image(s)'
    and no reason, while training skips such files with a line: `pipeline` trained, then failed at INT8."""
    folder = tmp_path / "imgs"
    write_images(folder, 6)
    drawn, _, _, _ = select_images(folder, count=4, seed=0)
    _cut_short(drawn[0])
    cal = build_calibration_set(folder, tmp_path / "c", img_size=64, count=4, seed=0)
    assert len(cal) == 4 and str(drawn[0]) not in cal.images  # --count met: another image in its place
    assert [str(p) for p in drawn[1:]] == cal.images[:3]  # the rest of the draw as it was
    # training's words, whether or not this OpenCV decodes anything of it ('a JPEG file, but truncated
    # or damaged' where it decoded nothing)
    assert cal.skipped == [f"{drawn[0]}: truncated image: file ends before the image data does; re-copy or "
                           "re-export it"]
    assert json.loads((tmp_path / "c" / "manifest.json").read_text())["count"] == 4
    code, out, err = run_cli("calibrate", "--data", folder, "--img-size", "64", "--count", "4", "--out", tmp_path / "d")
    assert code == 0, err
    assert f"note: skipped {cal.skipped[0]}" in out
    assert "note: other images of the source took the place of the 1 skipped" in out
    # fewer readable images than --count: all of them, said to be fewer
    _cut_short(drawn[1])
    code, out, err = run_cli("calibrate", "--data", folder, "--img-size", "64", "--count", "6", "--out", tmp_path / "e")
    assert code == 0, err
    assert f"note: skipped {drawn[1]}: " in out and "took the place" not in out
    assert "note: 4 images, fewer than --count 6: that is all the source has (less the samples skipped)" in out


def test_an_image_a_coco_spec_lists_but_is_gone_is_skipped_too(tmp_path):
    from yolox_edge.data.synthetic import make_shapes_dataset

    spec = make_shapes_dataset(tmp_path / "shapes", n_train=5, n_val=1, size=(64, 64))
    drawn, _, _, _ = select_images(spec, count=3, seed=0)
    drawn[0].unlink()
    cal = build_calibration_set(spec, tmp_path / "c", img_size=64, count=3, seed=0)
    assert len(cal) == 3 and str(drawn[0]) not in cal.images
    assert cal.skipped == [f"{drawn[0]}: image not found; check the path"]
    assert sum(cal.class_counts.values()) >= 3  # counted over the images used (each holds a shape)


def test_a_source_with_no_readable_image_stops_saying_how_many(tmp_path):
    from yolox_edge.quantize.calib import preprocess_images

    folder = tmp_path / "imgs"
    write_images(folder, 2)
    for f in folder.glob("*.jpg"):
        _cut_short(f)
    with pytest.raises(UserError, match=r"none of the 2 image\(s\) of the calibration source could be read "
                                        r"\(first: .*\.jpg: .*truncated"):
        build_calibration_set(folder, tmp_path / "c", img_size=64, count=2)
    assert not (tmp_path / "c").exists()
    with pytest.raises(UserError, match=r"none of the 1 image\(s\).*gone\.jpg: image not found"):
        preprocess_images([tmp_path / "gone.jpg"], (64, 64))


def test_a_prefix_of_the_set_is_a_fair_subset(tmp_path):
    # --subset-size takes the set's first images: they must be a sample too, not the first paths.
    folder = tmp_path / "many"
    write_images(folder, 12, size=(24, 32))
    files, _, _, _ = select_images(folder, count=12, seed=0)
    assert sorted(files) == sorted(folder.glob("*.jpg")) and files != sorted(files)

    from yolox_edge.data.synthetic import make_shapes_dataset
    from yolox_edge.data.spec import read_split

    spec = make_shapes_dataset(tmp_path / "shapes", n_train=40, n_val=2, size=(64, 80))
    labels = {Path(s.image): set(int(c) for c in s.labels) for s in read_split(spec, "train").samples}
    classes = set().union(*labels.values())
    picked, _, _, _ = select_images(spec, count=30, sampling="class-balanced", seed=0)
    first = set().union(*(labels[p] for p in picked[:len(classes)]))
    assert first == classes  # the first len(classes) images already cover every class


def test_img_size_and_out_as_elsewhere_and_the_old_names_still_work(calib_images, tmp_path):
    """build_calibration_set(size=, out_dir=) where every other call (and calibrate --img-size) says
    img_size and out; the old names give the same set, with a DeprecationWarning."""
    new = build_calibration_set(calib_images, out=tmp_path / "a", img_size=(64, 96), count=2)
    assert new.size == (64, 96) and new.path == tmp_path / "a"
    with pytest.warns(DeprecationWarning, match=r"build_calibration_set\(size=\) is deprecated; pass img_size="):
        old = build_calibration_set(calib_images, tmp_path / "b", size=(64, 96), count=2)
    assert old.sha256 == new.sha256
    with pytest.warns(DeprecationWarning, match=r"\(out_dir=\) is deprecated; pass out="):
        assert build_calibration_set(calib_images, out_dir=tmp_path / "c", img_size=64, count=2).path == tmp_path / "c"


def test_cli_interrupt_says_which_set_the_folder_holds(calib_images, tmp_path, run_cli, monkeypatch):
    """A Ctrl-C printed 'interrupted' alone: after the manifest switch (while the statistics were
    computed) the earlier set was already replaced, and before it nothing said the earlier set stayed."""
    from yolox_edge.quantize import calib

    def stop(*args, **kwargs):
        raise KeyboardInterrupt

    out = tmp_path / "c"
    args = ("calibrate", "--data", calib_images, "--img-size", "64", "--count", "3", "--out", out)
    with monkeypatch.context() as m:  # before anything is written, no earlier set
        m.setattr(calib, "preprocess_images", stop)
        code, _, err = run_cli(*args)
    assert code == 130 and f"no set was written to {out}; run the same command again" in err, err
    assert run_cli(*args)[0] == 0
    first = load_calibration_set(out).sha256
    with monkeypatch.context() as m:  # before the switch: the earlier set stays
        m.setattr(calib, "preprocess_images", stop)
        code, _, err = run_cli(*args, "--seed", "1", "--force")
    assert code == 130 and f"{out} keeps its earlier set, untouched" in err, err
    assert load_calibration_set(out).sha256 == first
    with monkeypatch.context() as m:  # after the switch: the new set is in place, and said to be
        m.setattr(calib, "calibration_stats", stop)
        code, _, err = run_cli(*args, "--seed", "1", "--force")
    array = json.loads((out / "manifest.json").read_text())["array"]
    assert code == 130 and f"interrupted after the new set was written: {out} holds it, whole ({array}" in err, err
    assert f"calibrate --show {out}" in err and load_calibration_set(out).sha256 != first
    with monkeypatch.context() as m:  # the array renamed in, the manifest not: the unused array is named
        _stop_at(m, 2)
        code, _, err = run_cli(*args, "--seed", "2", "--force")
    spare = sorted(f.name for f in out.glob("*.npy") if f.name != array)
    assert code == 130 and spare and "keeps its earlier set, untouched" in err and spare[0] in err, err


def test_cli_interrupt_while_the_new_set_is_reported_says_it_was_written(calib_images, tmp_path, run_cli,
                                                                        monkeypatch):
    """A stop while --json was written or the statistics printed (the new set already in place)
    was a bare 'interrupted', read as 'nothing changed', as package says such a stop."""
    import yolox_edge.fileio as fileio
    from yolox_edge.quantize import calib

    def stop(*args, **kwargs):
        raise KeyboardInterrupt

    out = tmp_path / "c"
    args = ("calibrate", "--data", calib_images, "--img-size", "64", "--count", "3", "--out", out)
    for module, name in ((calib, "format_stats"), (fileio, "atomic_write_bytes")):  # calib keeps its own import
        with monkeypatch.context() as m:
            m.setattr(module, name, stop)
            code, _, err = run_cli(*args, "--force", "--json", tmp_path / "stats.json")
        assert code == 130 and f"interrupted after the new set was written: {out} holds it, whole" in err, (name, err)
        assert len(load_calibration_set(out)) == 3


def test_an_array_a_killed_build_left_alone_is_replaced_and_said(calib_images, tmp_path, run_cli, monkeypatch):
    """kill -9 between the array's rename and the manifest's left calib.npy alone in a new --out;
    the rerun was refused as 'already holds a calibration set' without --force."""
    out = tmp_path / "c"
    ref = build_calibration_set(calib_images, tmp_path / "ref", img_size=64, count=3)
    args = ("calibrate", "--data", calib_images, "--img-size", "64", "--count", "3", "--out", out)
    with monkeypatch.context() as m:  # a stop between the two renames says the rerun replaces the array
        _stop_at(m, 2)
        code, _, err = run_cli(*args)
    assert code == 130 and "only an array without its manifest.json (calib.npy): run the same command again, " \
        "which replaces it" in err, err
    shutil.rmtree(out)
    for name in ("calib.npy", "calib-0123456789ab.npy"):
        out.mkdir()
        (out / name).write_bytes((tmp_path / "ref" / "calib.npy").read_bytes()[:1000])  # what the kill left
        (out / ".manifest.json.x1y2.tmp").write_bytes(b"{")  # and a temp file of its write
        code, stdout, err = run_cli(*args)
        assert code == 0, err
        assert (f"note: replaced {name} in {out}: an array without its manifest.json, left by a calibrate run that "
                "was killed") in stdout
        assert load_calibration_set(out).sha256 == ref.sha256
        assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == ["calib.npy", "manifest.json"]
        shutil.rmtree(out)
    out.mkdir()  # beside a file of the user's it may be theirs: refused as before
    (out / "calib.npy").write_bytes(b"x")
    (out / "notes.txt").write_text("mine")
    code, _, err = run_cli(*args)
    assert code == 2 and "already holds a calibration set" in err and (out / "calib.npy").read_bytes() == b"x"
    code, stdout, err = run_cli(*args, "--force")
    assert code == 0 and "note: replaced calib.npy" in stdout, err
    assert run_cli(*args)[0] == 2  # a set with its manifest: refused as ever


def test_a_folders_gif_and_jfif_are_calibrated_on_and_the_rest_named(tmp_path, run_cli):
    """calibrate --data DIR listed IMAGE_SUFFIXES only: a folder's .gif/.jfif pictures, which this
    OpenCV decodes and predict DIR reads, were left out unsaid. Now they are drawn from, and those
    it cannot decode are named in one note (a folder of only those says them in its error)."""
    import cv2

    src = tmp_path / "imgs"
    jpg = write_images(src, 2)[0]
    (src / "sub").mkdir()
    (src / "sub" / "anim.gif").write_bytes(cv2.imencode(".gif", cv2.imread(str(jpg)))[1].tobytes())
    shutil.copy(jpg, src / "download.jfif")
    (src / "sub" / "scan.jxl").write_bytes(b"\xff\x0a" + bytes(40))  # no decoder here for JPEG XL
    files, _, _, problems = select_images(src, count=10)
    assert sorted(f.name for f in files) == ["anim.gif", "download.jfif", "img_00.jpg", "img_01.jpg"]
    note = "1 image this OpenCV cannot decode left out (sub/scan.jxl; .jxl): convert to JPEG or PNG"
    assert problems == [f"{src}: unreadable image: {note}"]
    code, out, err = run_cli("calibrate", "--data", src, "--img-size", "64", "--out", tmp_path / "c")
    assert code == 0 and f"note: {src}: unreadable image: {note}" in out and "data check" not in out, (out, err)
    only = tmp_path / "only"
    only.mkdir()
    shutil.move(src / "sub" / "scan.jxl", only)
    with pytest.raises(UserError, match=r"only: no images found .*; 1 image this OpenCV cannot decode left out "
                                        r"\(scan\.jxl; \.jxl\)"):
        select_images(only, count=3)


def test_a_folder_set_lists_its_images_by_absolute_path_and_refuses_split(tmp_path, run_cli, monkeypatch):
    """calibrate --data photos (a relative folder) recorded photos/img_00.jpg: from anywhere but the
    folder it ran in, the manifest's list named nothing. And --split, which a folder has none of,
    was taken and ignored."""
    write_images(tmp_path / "photos", 3)
    monkeypatch.chdir(tmp_path)
    code, out, err = run_cli("calibrate", "--data", "photos", "--img-size", "64", "--out", "c")
    assert code == 0, err
    images = json.loads((tmp_path / "c" / "manifest.json").read_text())["images"]
    assert sorted(images) == sorted(str(tmp_path / "photos" / f"img_0{i}.jpg") for i in range(3))
    code, out, err = run_cli("calibrate", "--data", "photos", "--split", "val", "--img-size", "64", "--out", "d")
    assert code == 2 and "--split val: photos is a folder of images, which has no splits" in err, err
    assert not (tmp_path / "d").exists()


def test_a_replacement_removes_only_the_array_it_replaced(calib_images, tmp_path):
    """Every calib*.npy but the new one was removed: a second calibrate into the same folder at the
    same time lost the array that its manifest, switched in a moment later, named."""
    out = tmp_path / "c"
    build_calibration_set(calib_images, out, img_size=64, count=3, seed=0)
    other = out / "calib-0123456789ab.npy"  # another run's, written, its manifest not yet switched in
    other.write_bytes((out / "calib.npy").read_bytes())
    cal = build_calibration_set(calib_images, out, img_size=64, count=3, seed=1, force=True)
    assert other.is_file() and not (out / "calib.npy").exists() and (out / cal.array).is_file()
