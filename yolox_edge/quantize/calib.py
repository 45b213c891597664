"""Calibration sets for INT8: pick images, preprocess them with THE contract, cache them.

A calibration set on disk is a folder with two files:
  calib.npy      float32 [N, 3, H, W], exactly what the network sees (data/preprocess.py);
                 calib-<sha256[:12]>.npy when it replaced a set whose array was calib.npy
  manifest.json  format/version, input size, image list, sampling, seed, the array's name and
                 sha256, per-class image counts (when labels were known)
No pickle: ``np.load(allow_pickle=False)``. The sha256 travels into every INT8 artifact's
metadata so a model can be traced back to the exact images it was calibrated on.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import random
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..data.preprocess import (IMAGE_SUFFIXES, PreprocessConfig, left_out_note, list_images, preprocess, read_image,
                               scan_images)
from ..fileio import atomic_write_bytes, missing_folders, read_bytes_or_none, remove_empty_folders, run_checkpoint
from ..progress import deprecated_keywords, renamed
from ..errors import FORCE, OUT, BadArgument, UserError, check_input_size, flag_value, format_size, input_hw, require_out_folder

FORMAT = "yolox_edge.calibration"
VERSION = 1
ARRAY_NAME = "calib.npy"
MANIFEST_NAME = "manifest.json"
SAMPLINGS = ("random", "class-balanced")


@dataclass
class CalibrationSet:
    """Preprocessed calibration inputs and where they came from: ``data`` (float32 [N, 3, H, W]),
    ``images`` (their files), ``preprocess``, ``sampling`` and ``seed`` (how they were picked),
    ``source`` (the data spec and split, or folder), ``class_counts`` (images per class in the
    pick), ``sha256`` (of the array, as INT8 metadata records it), ``path`` (the set's folder),
    ``problems`` (what the data's reader skipped), ``array`` (the array's file name there), and of a
    build only (not saved): ``leftovers`` (a killed build's arrays it replaced) and ``skipped`` (the
    drawn images that could not be read, each with why; others took their places)."""

    data: np.ndarray = field(repr=False)  # float32 [N, 3, H, W]; left out of repr (a notebook printed it all)
    images: list[str] = field(repr=False)
    preprocess: PreprocessConfig
    sampling: str = "random"
    seed: int = 0
    source: str = ""
    class_counts: dict[str, int] = field(default_factory=dict)
    sha256: str = ""
    path: Path | None = None
    # What the data spec's reader skipped (images it lists but could not use); not saved
    problems: list[str] = field(default_factory=list, repr=False)
    array: str = ARRAY_NAME  # the array's file name in ``path`` (the manifest's 'array')
    # Arrays of an earlier build with no manifest naming them (a kill -9 between the two renames), which
    # this build replaced; not saved
    leftovers: list[str] = field(default_factory=list, repr=False)
    # The images of the draw that could not be read, each with why (another took its place); not saved
    skipped: list[str] = field(default_factory=list, repr=False)

    @property
    def size(self) -> tuple[int, int]:
        return tuple(self.data.shape[2:])

    def __len__(self) -> int:
        return int(self.data.shape[0])

    def describe(self) -> dict:
        """The short form that goes into INT8 metadata.json."""
        return {"sha256": self.sha256, "count": len(self), "input_size": list(self.size),
                "sampling": self.sampling, "seed": self.seed, "source": self.source}


def _list_folder(folder: Path) -> tuple[list[Path], list[str]]:
    """A plain folder's images (subfolders too), and a line naming those this OpenCV cannot
    decode (as a problem: ``CalibrationSet.problems``), read or named as ``predict DIR`` does."""
    from ..data.check import UNREADABLE, problem

    files, unread = scan_images(folder, recursive=True)
    note = left_out_note(folder, unread)
    if not files:
        raise UserError(f"{folder}: no images found (looked for {', '.join(sorted(IMAGE_SUFFIXES))}, and the "
                        f"formats this OpenCV decodes){'; ' + note if note else ''}; point --data at a folder of "
                        "images or a data spec YAML")
    return files, [problem(UNREADABLE, folder, note)] if note else []


def _is_spec(path: Path) -> bool:
    return path.suffix.lower() in (".yaml", ".yml") or (path.is_dir() and (path / "data.yaml").is_file())


def _balanced_pick(labels: list[set[int]], count: int, rng: random.Random) -> list[int]:
    """Round-robin over classes, rarest first, so every class appears before any repeats.

    Each round takes, for each class still under-covered, one not-yet-picked image that
    contains it; images with no boxes fill what is left at random.
    """
    by_class: dict[int, list[int]] = {}
    for i, labs in enumerate(labels):
        for c in labs:
            by_class.setdefault(c, []).append(i)
    for idx in by_class.values():
        rng.shuffle(idx)
    order = sorted(by_class, key=lambda c: (len(by_class[c]), c))
    picked: list[int] = []
    taken: set[int] = set()
    covered = {c: 0 for c in by_class}
    # each class's first image not taken yet: a scan from the start for every pick was quadratic
    # (build_calibration_set orders a whole split, 118k COCO images, to have replacements ready)
    nxt = {c: 0 for c in by_class}
    while len(picked) < count:
        progress = False
        level = dict(covered)  # a class an earlier pick of this round covered waits for the next round
        for c in sorted(order, key=lambda c: (covered[c], len(by_class[c]), c)):
            if len(picked) >= count:
                break
            if covered[c] > level[c]:  # else a rare class's image (with a common one) gave the common one a second
                continue               # image before a third class had any
            pool, k = by_class[c], nxt[c]
            while k < len(pool) and pool[k] in taken:
                k += 1
            nxt[c] = k
            if k == len(pool):
                continue
            cand = pool[k]
            picked.append(cand)
            taken.add(cand)
            for c2 in labels[cand]:
                covered[c2] += 1
            progress = True
        if not progress:
            break
    rest = [i for i in range(len(labels)) if i not in taken]
    rng.shuffle(rest)
    picked += rest[:count - len(picked)]
    return picked


def _draw(source: str | Path, count: int, sampling: str, seed: int,
          split: str) -> tuple[list, list[set[int]] | None, list[str] | None, str, list[str], list[int]]:
    """The source's images in the order calibration takes them: (files, labels or None, class names
    or None, description of the source, the reader's problems, indices into files).

    The first ``count`` indices are the draw (seeded); the rest follow in an order drawn from the
    same generator after it: the images that take the place of any of the draw that cannot be
    read. The draw itself is what it was before replacements existed, so a seed still gives the
    same set when every image reads."""
    if sampling not in SAMPLINGS:
        raise UserError(f"unknown sampling {sampling!r}; use one of {', '.join(SAMPLINGS)}")
    if count < 1:
        raise BadArgument(f"{flag_value('--count', 'count', count)}: must be at least 1")
    src = Path(source)
    if not src.exists():
        raise UserError(f"{src}: not found; pass a data spec YAML or a folder of images")
    rng = random.Random(seed)
    if _is_spec(src):
        from ..data.spec import read_split

        sp = read_split(src, split)
        if not sp.samples:
            raise UserError(f"{src}: split {split!r} has no images; calibrate on a split with images")
        files = [s.image for s in sp.samples]
        labels = [set(int(c) for c in s.labels) for s in sp.samples]
        names, problems = sp.names, list(sp.problems)
        desc = f"{src}:{split}"
    else:
        if not src.is_dir():
            raise UserError(f"{src}: neither a data spec YAML nor a folder of images")
        (files, problems), labels, names, desc = _list_folder(src), None, None, str(src)
        if sampling == "class-balanced":
            raise UserError(f"{src}: class-balanced sampling needs labels; pass a data spec YAML "
                            f"or use {flag_value('--sampling', 'sampling', 'random')}")
    count = min(count, len(files))
    if sampling == "class-balanced":
        # a longer balanced pick begins with the shorter one: the rounds run the same until count
        idx = _balanced_pick(labels, len(files), rng)
    else:
        idx = rng.sample(range(len(files)), count)
        drawn = set(idx)
        rest = [i for i in range(len(files)) if i not in drawn]
        rng.shuffle(rest)
        idx += rest
    # Kept in the order drawn (seeded, so stable): --subset-size takes the set's first images, and
    # a prefix of a random draw is random, of a balanced pick balanced; sorted by path it was neither.
    return files, labels, names, desc, problems, idx


def _class_counts(labels: list[set[int]] | None, names: list[str] | None, idx: list[int]) -> dict[str, int]:
    """Images per class name among ``idx`` (empty without labels)."""
    counts: dict[str, int] = {}
    if labels is not None:
        for i in idx:
            for c in labels[i]:
                counts[names[c]] = counts.get(names[c], 0) + 1
    return counts


def select_images(source: str | Path, *, count: int, sampling: str = "random", seed: int = 0,
                  split: str = "train") -> tuple[list[Path], dict[str, int], str, list[str]]:
    """Choose calibration images from a data spec split or a plain image folder.

    Returns (image paths, images per class name for the chosen ones, description of the source,
    the problems the data spec's reader met: samples it skipped, e.g. a listed image not found;
    for a folder, the line naming the images this OpenCV cannot decode, left out). The images are
    not read here: ``build_calibration_set`` takes another in the place of one that cannot be.
    """
    files, labels, names, desc, problems, order = _draw(source, count, sampling, seed, split)
    idx = order[:min(count, len(files))]
    return [Path(files[i]) for i in idx], _class_counts(labels, names, idx), desc, problems


def preprocess_images(files: list[Path], size: tuple[int, int], count: int | None = None,
                      skipped: list[str] | None = None) -> tuple[np.ndarray, list[int]]:
    """Read and preprocess ``files`` in order until ``count`` (default: all of them) are read; returns
    the array and the indices of the files in it.

    A file that cannot be read (missing, undecodable, a JPEG cut short) is skipped, as training
    skips it, and named with its reason in ``skipped``; the next file takes its place. A UserError
    only when none could be read: there is nothing to calibrate on."""
    cfg = PreprocessConfig(input_size=size)
    want = len(files) if count is None else min(count, len(files))
    out = np.empty((want, 3, size[0], size[1]), np.float32)
    used: list[int] = []
    reasons: list[str] = []
    for k, f in enumerate(files):
        if len(used) == want:
            break
        try:
            out[len(used)] = preprocess(read_image(f), cfg)[0]
        except UserError as e:  # its message names the file and why (not found, truncated, ...)
            reasons.append(str(e))
            continue
        used.append(k)
    if skipped is not None:
        skipped.extend(reasons)
    if not used:
        raise UserError(f"none of the {len(reasons)} image(s) of the calibration source could be read (first: "
                        f"{reasons[0]}); restore or replace them, and run again")
    return out[:len(used)], used


class _HashSink:
    """A write-only file that hashes what is written to it (np.save hands it the array in chunks)."""

    def __init__(self) -> None:
        self.sha = hashlib.sha256()

    def write(self, data: bytes) -> int:
        self.sha.update(data)
        return len(data)


def _npy_sha256(arr: np.ndarray) -> str:
    """The sha256 of the .npy file ``np.save`` writes for ``arr``, without the file in memory: as bytes
    it doubled a build's peak (300 images at 416: 1.3 GB for a 0.6 GB set)."""
    sink = _HashSink()
    np.save(sink, arr, allow_pickle=False)  # type: ignore[arg-type]
    return sink.sha.hexdigest()


# The array names build_calibration_set gives: the only files it removes from a set's folder.
_OWN_ARRAY = re.compile(r"calib(-[0-9a-f]{12})?\.npy")


# atomic_write_bytes's temp files for a set's two files (fileio.temp_beside): ours, never the user's
_OWN_TEMP = re.compile(r"\.(calib(-[0-9a-f]{12})?\.npy|manifest\.json)\..+\.tmp")


def leftover_arrays(out: Path) -> tuple[list[str], bool]:
    """The arrays in ``out`` that no manifest names (a build killed between the array's rename and
    the manifest's, or one whose manifest was deleted), and whether they are all the folder holds
    (besides the temp files of a killed write): then the folder holds no set of the user's, and a
    build replaces them without ``force``."""
    if not out.is_dir() or (out / MANIFEST_NAME).exists():
        return [], False
    names = [e.name for e in os.scandir(out)]
    arrays = sorted(n for n in names if _OWN_ARRAY.fullmatch(n) and (out / n).is_file())
    alone = bool(arrays) and all(n in arrays or _OWN_TEMP.fullmatch(n) for n in names)
    return arrays, alone


def is_calibration_manifest(path: Path) -> bool:
    """Whether ``path`` is a calibration set's manifest.json (its ``format``), readable or not as a set."""
    try:
        man = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(man, dict) and man.get("format") == FORMAT


def _live_array(out: Path) -> object:
    """What the manifest in ``out`` gives as its array's name; None when there is no readable manifest."""
    try:
        return json.loads((out / MANIFEST_NAME).read_text()).get("array", ARRAY_NAME)
    except (OSError, ValueError, AttributeError):  # no manifest, not JSON, not a mapping
        return None


def _replace_set(out: Path, arr: np.ndarray, digest: str, manifest: dict, leftovers: list[str] = ()) -> str:
    """Write the array and ``manifest`` (its 'array' added) into ``out``, replacing the set there;
    returns the array's name.

    The new array never takes the old one's name: it is written beside it, then the manifest is
    switched to it in one rename, then the old array is removed. A stop at any instant leaves the
    old set or the new one whole (and at most an unused array, removed by the next build). Only
    array names this function gives are removed: a hand-named array is the user's file. The
    folder is flushed after each of the two renames: a power loss may otherwise keep a later
    step and lose an earlier one (the manifest naming an array whose rename was lost, or the old
    array removed under a manifest that still names it), as file systems do not promise their order.

    Removed after the switch: the array the old manifest named and ``leftovers`` (those a killed
    build left, found at the start), no other: every array of the name pattern went, and a second
    calibrate into the same folder at the same time lost the array its manifest then named.
    """
    live = _live_array(out)
    name = ARRAY_NAME if live != ARRAY_NAME else f"calib-{digest[:12]}.npy"
    atomic_write_bytes(out / name, lambda f: np.save(f, arr, allow_pickle=False))  # the bytes _npy_sha256 hashed
    text = json.dumps({**manifest, "array": name}, indent=1).encode()
    # the switch from old set to new
    atomic_write_bytes(out / MANIFEST_NAME, lambda f: f.write(text))
    for old in dict.fromkeys([live, *leftovers]):
        if isinstance(old, str) and old != name and _OWN_ARRAY.fullmatch(old):
            try:
                (out / old).unlink()
            except OSError:  # gone already, or not removable: the new set is complete either way
                pass
    return name


def manifest_bytes(out: Path) -> bytes | None:
    """The manifest.json in ``out`` as it is now; None when there is none."""
    return read_bytes_or_none(out / MANIFEST_NAME)


def stopped_note(out: Path, before: bytes | None) -> str:
    """What a build stopped by Ctrl-C or SIGTERM left in ``out``, whose manifest was ``before``:
    the earlier set, the new one (the stop came after the manifest switch) or none.

    'interrupted' alone read as 'nothing changed', also when the new set had replaced the earlier
    one (a stop while its statistics were computed), and said nothing of the earlier set."""
    now = manifest_bytes(out)
    live = _live_array(out) if now is not None else None
    # an array the stop left unused: the next build into out removes it
    spare = sorted(f.name for f in out.glob("calib*.npy") if _OWN_ARRAY.fullmatch(f.name) and f.name != live) \
        if out.is_dir() else []
    tail = (f" ({', '.join(spare)} beside it is unused: the next 'calibrate --force' into {out} removes it, or "
            "delete it)" if spare else "")
    if now is not None and now != before:
        return (f"calibrate: interrupted after the new set was written: {out} holds it, whole ({live} and "
                f"manifest.json); 'yolox-edge calibrate --show {out}' prints its statistics{tail}")
    if before is not None:
        return (f"calibrate: interrupted: {out} keeps its earlier set, untouched; run the same command again to "
                f"replace it{tail}")
    if spare:  # the array came, its manifest not: without one the folder is refused as holding a set
        again = ("run the same command again, which replaces it" if leftover_arrays(out)[1] else
                 "delete it, then run the same command again")  # beside the user's files it is not taken for a leftover
        return (f"calibrate: interrupted: no set was written to {out}, only an array without its manifest.json "
                f"({', '.join(spare)}): {again}")
    return f"calibrate: interrupted: no set was written to {out}; run the same command again"


# The earlier names: img_size as every other call and calibrate --img-size; out as Trainer,
# run_quantize and the README; data as calibrate --data and every other call.
@deprecated_keywords(size=renamed("img_size"), out_dir=renamed("out"), source=renamed("data"))
def build_calibration_set(data: str | Path, out: str | Path, *, img_size: int | tuple[int, int] = 416,
                          count: int = 100, sampling: str = "random", seed: int = 0,
                          split: str = "train", force: bool = False) -> CalibrationSet:
    """Select, preprocess and cache a calibration set of ``data`` (as ``calibrate --data``) in the
    folder ``out``; returns it (``path`` set).

    Everything is computed in memory first; the array then the manifest are written
    atomically, so an interrupted run never leaves a manifest describing a partial array.
    ``img_size`` is the network input: an int, or (H, W). A set already in ``out`` is replaced only with ``force``: INT8 exports record the
    sha256 of the set they were calibrated on, and keep it reproducible. Replacing it keeps
    the old set whole until the new one is (``_replace_set``). ``size=``, ``out_dir=`` and ``source=``
    are the deprecated names of ``img_size``, ``out`` and ``data``.
    """
    source = data
    check_input_size(img_size, (32,))
    hw = input_hw(img_size)
    out = require_out_folder(out)  # before the images are read and preprocessed
    leftovers, alone = leftover_arrays(out)
    manifest_path = out / MANIFEST_NAME
    if manifest_path.is_file() and not is_calibration_manifest(manifest_path):
        # a web app's or a dataset's manifest.json: not a set to replace, even with force
        raise UserError(f"{manifest_path}: not a calibration set's manifest (no format {FORMAT!r}), and the set would "
                        f"be written over it; choose another {OUT}")
    # an array alone, without its manifest, is what a killed build left, not a set: replaced
    if (manifest_path.is_file() or (out / ARRAY_NAME).is_file() and not alone) and not force:
        raise UserError(f"{out}: already holds a calibration set; choose another {OUT}, or pass {FORCE} to "
                        "replace it")
    all_files, labels, names, desc, problems, order = _draw(source, count, sampling, seed, split)
    skipped: list[str] = []
    # an image that cannot be read is skipped with its reason, the next of the draw's order in its place
    data, used = preprocess_images([Path(all_files[i]) for i in order], hw, count, skipped)
    idx = [order[k] for k in used]
    files, class_counts = [Path(all_files[i]) for i in idx], _class_counts(labels, names, idx)
    data = np.ascontiguousarray(data, np.float32)
    digest = _npy_sha256(data)
    # absolute: a path relative to the folder calibrate ran in names nothing from anywhere else
    cal = CalibrationSet(data, [os.path.abspath(f) for f in files], PreprocessConfig(input_size=hw), sampling, seed,
                         desc, class_counts, digest, out, problems, skipped=skipped)
    manifest = {"format": FORMAT, "version": VERSION, "input_size": list(hw), "count": len(files),
                "sha256": digest, "sampling": sampling, "seed": seed, "source": desc,
                "preprocess": cal.preprocess.to_dict(), "images": cal.images, "class_counts": class_counts}
    cal.leftovers = leftovers
    made = missing_folders(out)  # taken away again, empty, if the writing stops (as export and quantize)
    try:
        cal.array = _replace_set(out, data, digest, manifest, leftovers)
    except BaseException:
        remove_empty_folders(made)
        raise
    return cal


def size_mismatch(where, have: tuple[int, int], want: tuple[int, int], *, other_size: bool = True) -> UserError:
    """The error for a calibration set of another size than the model's input, with both ways out
    (``other_size=False``: the one, for a command that runs at the model's own size, as convert).
    ``have`` and ``want`` are (H, W); the message writes width x height, as the flags take them."""
    size = have[0] if have[0] == have[1] else tuple(have)  # as img_size= takes it
    at_its_size = flag_value("--img-size", "img_size", size, format_size(have))
    return UserError(f"{where}: calibration set is {have[1]}x{have[0]} but the model takes {want[1]}x{want[0]} "
                     f"(width x height); rebuild it with 'calibrate --img-size {format_size(want)}'"
                     + (f", or quantize at its size with {at_its_size}" if other_size else ""))


def _manifest_path(d: Path) -> Path:
    """The manifest a --calib path means, or a UserError saying what the path is instead."""
    # The array itself: its folder is the set. calib.npy is taken for the set's folder even when
    # a replaced set's array has another name, so a --calib DIR/calib.npy keeps working.
    if d.suffix.lower() == ".npy" and (d.is_file() or d.name == ARRAY_NAME and (d.parent / MANIFEST_NAME).is_file()):
        d = d.parent
    mpath = d / MANIFEST_NAME if d.is_dir() else d
    build = "build one with 'yolox-edge calibrate --data SPEC|DIR --img-size S --out DIR'"
    if mpath.is_file() and mpath.suffix.lower() != ".json":  # an image or a data.yaml: 'not valid JSON; rebuild'
        raise UserError(f"{d}: a file, not a calibration set; give the folder 'yolox-edge calibrate' made (its "
                        f"{MANIFEST_NAME} and {ARRAY_NAME}), or {build}")
    if mpath.is_file():
        return mpath
    if d.is_dir() and run_checkpoint(d) is not None:
        raise UserError(f"{d}: a training run folder, not a calibration set (no {MANIFEST_NAME}); {build}")
    if d.is_dir() and list_images(d):
        raise UserError(f"{d}: a folder of images, not a calibration set (no {MANIFEST_NAME}); build one from it "
                        f"with 'yolox-edge calibrate --data {d} --img-size S --out DIR'")
    if not d.exists():  # a typo in --calib: "no manifest.json" read as a set that lost its file
        raise UserError(f"{d}: not found; check the path (a calibration set is a folder 'yolox-edge calibrate' "
                        "made), or build one with 'yolox-edge calibrate --data SPEC|DIR --img-size S --out DIR'")
    raise UserError(f"{d}: no {MANIFEST_NAME}; {build}")


# What each manifest field is when build_calibration_set wrote it: a damaged or hand-edited
# manifest is refused in one line here, not met later as a TypeError.
_FIELD_TYPES = {"array": (str, "a file name"), "sha256": (str, "a hex string"), "seed": (int, "an integer"),
                "sampling": (str, "a string"), "source": (str, "a string"), "images": (list, "a list"),
                "class_counts": (dict, "a mapping"), "preprocess": (dict, "a mapping")}


def _check_manifest(man: dict, mpath: Path) -> None:
    """UserError naming the first field of ``man`` that a calibration manifest cannot hold."""
    fix = "rebuild the calibration set with 'yolox-edge calibrate'"
    for key, (kind, what) in _FIELD_TYPES.items():
        v = man.get(key)
        if key in man and (not isinstance(v, kind) or isinstance(v, bool)):
            raise UserError(f"{mpath}: '{key}' should be {what}, not {v!r:.40}; {fix}")
    name = man.get("array", ARRAY_NAME)
    if name in ("", ".", "..") or Path(name).name != name:  # a file beside the manifest, never elsewhere
        raise UserError(f"{mpath}: 'array' must name a file in the same folder, not {name!r:.60}; {fix}")
    if not all(isinstance(n, int) and not isinstance(n, bool) for n in man.get("class_counts", {}).values()):
        raise UserError(f"{mpath}: 'class_counts' should map class names to image counts; {fix}")


def _preprocess(man: dict, mpath: Path, hw: tuple[int, int]) -> PreprocessConfig:
    """The manifest's preprocessing, which must state the array's own size."""
    try:
        pre = PreprocessConfig.from_dict(man.get("preprocess", {"input_size": list(hw)}))
        same = tuple(pre.input_size) == hw
    except (TypeError, ValueError):
        same = False
    if not same:
        raise UserError(f"{mpath}: 'preprocess' does not describe the {hw[1]}x{hw[0]} array beside it; "
                        "rebuild the calibration set with 'yolox-edge calibrate'")
    return pre


def _check_finite(data: np.ndarray, apath: Path, images: list) -> None:
    """UserError naming the first image of ``data`` holding NaN or infinity: calibrate writes pixels
    0..255, and a non-finite value (a hand-made array) would poison every activation range."""
    # one image at a time: a whole-array mask is another quarter of a set that can be 600 MB
    bad = next((k for k, x in enumerate(data) if not np.isfinite(x).all()), None)
    if bad is not None:
        name = f" ({images[bad]})" if bad < len(images) and isinstance(images[bad], str) else ""
        raise UserError(f"{apath}: image {bad}{name} holds NaN or infinite values, not pixels 0..255; "
                        "rebuild the calibration set with 'yolox-edge calibrate'")


def _read_whole(path: Path) -> bytearray:
    """The file's bytes in one writable buffer (the array will be a view on it)."""
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        blob = bytearray(size)
        got = f.readinto(blob)
    return blob if got == size else blob[:got]  # shrank while read: the sha256 check then says so


def _npy_view(blob: bytearray, apath: Path) -> np.ndarray:
    """The float32 [N, 3, H, W] array of a .npy file's bytes, as a view on them: ``np.load`` of the
    bytes made a second copy, so loading a set took twice its size (793 MiB for a 396 MiB set of 200
    images at 416). The header is read as ``np.load`` reads it, without pickle; UserError otherwise."""
    not_npy = UserError(f"{apath}: not a plain float32 .npy array; rebuild the calibration set")
    head = io.BytesIO(bytes(memoryview(blob)[:1 << 17]))  # a header is at most 64 KiB (version 1)
    try:
        version = np.lib.format.read_magic(head)
        read = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}.get(version)
        if read is None:
            raise not_npy
        shape, fortran, dtype = read(head)
    except ValueError:
        raise not_npy from None
    if dtype != np.float32 or len(shape) != 4 or shape[1] != 3 or shape[0] < 1:
        raise UserError(f"{apath}: expected float32 [N, 3, H, W], got {dtype} {list(shape)}")
    count = int(np.prod(shape))
    if len(blob) - head.tell() < count * dtype.itemsize:
        raise not_npy  # shorter than its header says
    flat = np.frombuffer(blob, dtype=dtype, count=count, offset=head.tell())
    return flat.reshape(shape, order="F" if fortran else "C")


# The earlier names: input_size=(H, W), img_size as every other call (an int is a square); path=,
# calib as run_quantize, quantize_checkpoint and convert_checkpoint name the set.
@deprecated_keywords(input_size=renamed("img_size"), path=renamed("calib"))
def load_calibration_set(calib: str | Path, *, img_size: int | tuple[int, int] | None = None,
                         other_size: bool = True) -> CalibrationSet:
    """Load a cached set, check its hash, and (when given) that it matches the model's input size
    ``img_size`` (S, or (H, W)). ``calib`` is the set's folder (its manifest.json or calib.npy are
    taken for it too). ``other_size=False``: a caller that cannot run at the set's size (convert), whose
    size error then offers only a rebuilt set. ``input_size=`` and ``path=`` are the deprecated names
    of ``img_size`` and ``calib``."""
    path = calib
    if img_size is not None:  # before reading the set: 'x' or 416.0 was a ValueError after hashing it
        check_input_size(img_size, (32,))
    mpath = _manifest_path(Path(path))
    d = mpath.parent
    try:
        man = json.loads(mpath.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise UserError(f"{mpath}: not valid JSON; rebuild the calibration set") from None
    if not isinstance(man, dict) or man.get("format") != FORMAT:
        raise UserError(f"{mpath}: not a yolox_edge calibration manifest; rebuild with 'yolox-edge calibrate'")
    _check_manifest(man, mpath)
    apath = d / man.get("array", ARRAY_NAME)
    if not apath.is_file():
        raise UserError(f"{apath}: calibration array missing; rebuild with 'yolox-edge calibrate'")
    blob = _read_whole(apath)
    if hashlib.sha256(blob).hexdigest() != man.get("sha256"):
        raise UserError(f"{apath}: does not match the sha256 in {mpath} (changed or half-written); "
                        "rebuild with 'yolox-edge calibrate'")
    data = _npy_view(blob, apath)
    _check_finite(data, apath, man.get("images", []))
    hw = tuple(data.shape[2:])
    if img_size is not None and input_hw(img_size) != hw:
        raise size_mismatch(d, hw, input_hw(img_size), other_size=other_size)
    return CalibrationSet(data, list(man.get("images", [])), _preprocess(man, mpath, hw),
                          man.get("sampling", "random"), man.get("seed", 0), man.get("source", ""),
                          dict(man.get("class_counts", {})), man["sha256"], d, array=apath.name)


def calibration_stats(cal: CalibrationSet) -> dict:
    """Numbers worth a glance before quantizing: per-channel value stats, padding share, classes."""
    x = cal.data
    pad = float(np.mean(np.all(x == cal.preprocess.pad_value, axis=1)))
    per_ch = {ch: {"mean": float(x[:, i].mean()), "std": float(x[:, i].std()),
                   "min": float(x[:, i].min()), "max": float(x[:, i].max())}
              for i, ch in enumerate(cal.preprocess.channel_order)}
    return {"count": len(cal), "input_size": list(cal.size), "sha256": cal.sha256, "sampling": cal.sampling,
            "seed": cal.seed, "source": cal.source, "padding_fraction": round(pad, 4), "channels": per_ch,
            "classes_covered": len(cal.class_counts), "class_counts": cal.class_counts}


def format_stats(stats: dict) -> str:
    """Human-readable summary of ``calibration_stats``."""
    lines = [f"calibration set: {stats['count']} image{'s' if stats['count'] != 1 else ''}, {stats['input_size'][1]}x{stats['input_size'][0]} (WxH), "
             f"sampling {stats['sampling']} (seed {stats['seed']}) from {stats['source']}",
             f"  sha256 {stats['sha256'][:16]}...  padding {100 * stats['padding_fraction']:.1f}% of pixels"]
    for ch, s in stats["channels"].items():
        lines.append(f"  {ch}: mean {s['mean']:.1f} std {s['std']:.1f} min {s['min']:.0f} max {s['max']:.0f}")
    if stats["class_counts"]:
        cc = sorted(stats["class_counts"].items(), key=lambda kv: kv[1])
        lines.append(f"  classes covered: {stats['classes_covered']}; rarest: "
                     + ", ".join(f"{k} {v}" for k, v in cc[:5]) + "; most: "
                     + ", ".join(f"{k} {v}" for k, v in reversed(cc[-3:])))  # the most first
    return "\n".join(lines)
