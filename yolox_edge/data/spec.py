"""The data spec: a YAML file naming a dataset's format, classes and splits.

    format: coco            # coco | voc | yolo
    names: [...]            # optional for coco (from categories, sorted by id)
    train: {annotations: annotations/instances_train2017.json, images: train2017}
    val:   {annotations: annotations/instances_val2017.json, images: val2017}

Paths are relative to the YAML file. voc: {annotations: DIR, images: DIR, list: FILE};
yolo: {images: DIR, labels: DIR}. An Ultralytics data.yaml (``path``, ``train: images/train``,
``names`` as a list or ``{0: name}``, ``nc``) is read as the yolo spec it describes. Readers
live in one module per format and register in ``READERS``; every reader returns a ``Split``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ..errors import UserError, read_yaml
from .sample import Sample

FORMATS = ("coco", "voc", "yolo")


@dataclass
class Split:
    """A split read from disk: samples, class names and the problems met while reading.

    ``category_ids``: the dataset's own id of each class index (a COCO json's category ids in
    sorted order, so class i is ``category_ids[i]``); None for formats without ids (voc, yolo)."""

    samples: list[Sample]
    names: list[str]
    problems: list[str] = field(default_factory=list)
    coco_gt: dict | None = None  # COCO-format ground truth (the json for coco, built otherwise)
    # the samples' width/height were read from the image files' headers (yolo), not from annotations
    sizes_from_files: bool = False
    category_ids: list[int] | None = None


@dataclass
class DataSpec:
    path: Path
    format: str
    names: list[str] | None
    splits: dict[str, dict]

    def require_split(self, split: str) -> dict:
        """The split's entry, or a UserError naming the splits the spec has."""
        if split not in self.splits:
            raise UserError(f"{self.path}: has no split {split!r} (has: {', '.join(self.splits) or 'none'})")
        return self.splits[split]

    def split_paths(self, split: str) -> dict[str, Path]:
        entry = self.require_split(split)
        bad = next((k for k, v in entry.items() if not isinstance(v, str) or not v.strip()), None)
        if bad is not None:  # `annotations:` left empty, `images: 5`: say so, not a TypeError
            raise UserError(f"{self.path}: split {split!r} key {bad!r} must be a path, not {entry[bad]!r}")
        return {k: (self.path.parent / v) for k, v in entry.items()}


def _spec_paths(data: str | Path) -> list[Path]:
    """Every path a data spec's splits name (annotations, images, labels, lists); none for a
    ``data`` that is no readable spec (a folder of images)."""
    try:
        spec = load_spec(data)
        return [p for name in spec.splits for p in spec.split_paths(name).values() if p is not None]
    except (UserError, OSError, ValueError, TypeError, AttributeError):
        return []


def refuse_data_file(target: str | Path, data: str | Path, flag: str) -> None:
    """UserError when ``target`` is one of the data spec's own files (a split's annotation json):
    the results, ground truth or report written there would replace the user's labels. A ``data``
    that is no readable spec (a folder of images) names no such file: nothing is refused."""
    here = Path(target).resolve()
    for p in _spec_paths(data):
        if Path(p).resolve() == here:
            raise UserError(f"{target}: {flag} names a file of the data spec {data} (its labels); writing there "
                            "would replace them: choose another file name")


def refuse_data_folder(target: str | Path, data: str | Path, flag: str) -> None:
    """UserError when the folder ``target`` is, or lies inside, a folder of the data spec's (a
    split's images or labels): pictures written there became images of the split (eval --save-dir
    into images/val added background images to every later evaluation). A ``data`` that is no
    readable spec names no such folder: nothing is refused."""
    here = Path(target).resolve()
    for p in _spec_paths(data):
        folder = Path(p).resolve()
        if folder.is_dir() and here.is_relative_to(folder):
            raise UserError(f"{target}: {flag} lies in {p}, a folder of the data spec {data}; files written there "
                            "would become part of the dataset: choose a folder outside it")


READERS: dict[str, Callable[["DataSpec", str], Split]] = {}


def split_entries(spec: DataSpec, split: str, required: tuple[str, ...], optional: tuple[str, ...],
                  needs: str) -> dict[str, Path]:
    """The split's paths, or a UserError when a required key is missing (``needs`` says what
    the split must give) or an unknown key is present."""
    paths = spec.split_paths(split)
    if any(paths.get(k) is None for k in required):
        raise UserError(f"{spec.path}: {spec.format} split {split!r} needs {needs}")
    extra = set(paths) - set(required) - set(optional)
    if extra:
        raise UserError(f"{spec.path}: {spec.format} split {split!r} has unknown key(s) {', '.join(sorted(extra))}; "
                        f"allowed: {', '.join(sorted((*required, *optional)))}")
    return paths


def check_split_folders(spec: DataSpec, split: str, folders: dict[str, Path], list_path: Path | None,
                        optional: tuple[str, ...] = ()) -> None:
    """Each named folder (but the optional ones) and the list file must exist; the error names
    the path, the spec and the split."""
    for what, folder in folders.items():
        if what not in optional and not folder.is_dir():
            raise UserError(f"{folder}: {what} folder not found (named by {spec.path}, split {split!r})")
    if list_path is not None and not list_path.is_file():
        raise UserError(f"{list_path}: list file not found (named by {spec.path}, split {split!r})")


def load_spec(path: str | Path) -> DataSpec:
    """Parse and validate a data spec YAML."""
    p = Path(path)
    if p.is_dir() and (p / "data.yaml").is_file():
        p = p / "data.yaml"
    if p.is_dir():  # 'not found' sent the user looking for a path that is there
        raise UserError(f"{p}: a folder without a data.yaml; pass the data spec (a YAML file, see README, "
                        "'Data spec')")
    if not p.is_file():
        raise UserError(f"{p}: data spec not found; pass a YAML file (see README, 'Data spec')")
    d = read_yaml(p)
    if not isinstance(d, dict):
        raise UserError(f"{p}: a data spec is a YAML mapping with format/train/val keys")
    if _is_ultralytics(d):
        d = _from_ultralytics(p, d)
    fmt = d.get("format")
    if fmt not in FORMATS:
        raise UserError(f"{p}: format must be one of {', '.join(FORMATS)} (got {fmt!r})")
    unknown = set(d) - {"format", "names", "train", "val", "test"}
    if unknown:
        raise UserError(f"{p}: unknown key(s) {', '.join(sorted(unknown))}; allowed: format, names, train, val, test")
    splits = {k: d[k] for k in ("train", "val", "test") if d.get(k) is not None}
    for k, v in splits.items():
        if not isinstance(v, dict):
            raise UserError(f"{p}: split {k!r} must be a mapping like {{annotations: ..., images: ...}}")
    names = d.get("names")
    if names is not None and not (isinstance(names, list) and all(isinstance(n, str) for n in names)):
        raise UserError(f"{p}: names must be a list of strings")
    dupes = sorted({n for n in names or [] if names.count(n) > 1})
    if dupes:
        # The readers map a name to one index: the other one would never be trained.
        raise UserError(f"{p}: class name(s) {', '.join(map(repr, dupes))} listed more than once in names; "
                        "give each class once")
    return DataSpec(p, fmt, names, splits)


def _is_ultralytics(d: dict) -> bool:
    """An Ultralytics-style data.yaml: splits given as folder strings (and often ``path``, ``nc``,
    ``names`` as a dict), no ``format`` or ``format: yolo``."""
    if d.get("format", "yolo") != "yolo":
        return False
    return "path" in d or any(isinstance(d.get(k), (str, list)) for k in ("train", "val", "test"))


def _from_ultralytics(p: Path, d: dict) -> dict:
    """The same dataset as our yolo spec: ``{images: DIR}`` per split (labels found by the usual
    images -> labels rule), ``names`` as a list. ``path`` is relative to the YAML file here
    (Ultralytics resolves a relative one against its own datasets folder)."""
    unknown = set(d) - {"format", "path", "train", "val", "test", "names", "nc", "download", "roboflow"}
    if unknown:
        raise UserError(f"{p}: unknown key(s) {', '.join(sorted(unknown))} for a detection dataset; allowed: "
                        f"path, train, val, test, names, nc (download and a Roboflow export's roboflow block are "
                        f"ignored: nothing is fetched)")
    rel = Path(str(d.get("path") or "."))  # split paths stay relative to the YAML file, like ours
    root = p.parent / rel
    if not root.is_dir():
        raise UserError(f"{root}: dataset folder not found ('path' in {p}; here a relative path is relative to "
                        f"the YAML file, not to a datasets folder)")
    out: dict = {"format": "yolo", "names": _names_list(p, d.get("names"))}
    for k in ("train", "val", "test"):
        v = d.get(k)
        if v is None or isinstance(v, dict):
            out[k] = v
        elif isinstance(v, str) and not v.lower().endswith(".txt"):
            # A Roboflow export puts data.yaml at its root and names '../train/images'; Ultralytics
            # then reads 'train/images' below the root, and so does this (other paths as given)
            if v.startswith("../") and not (root / v).exists() and (root / v[3:]).exists():
                v = v[3:]
            if k == "test" and not (root / v).exists() and not (root / v.removeprefix("../")).exists():
                # Roboflow names test: ../test/images in every export, with a test set or not, and
                # Ultralytics reads test only when asked: a split of no folder is no split here either
                out[k] = None
                continue
            out[k] = {"images": str(rel / v)}
        else:
            raise UserError(f"{p}: split {k!r} is {v!r}; give one images folder (a list of folders or a .txt list "
                            f"of image paths is not read), or write {k}: {{images: DIR, labels: DIR}}, adding list: FILE.txt to "
                            f"train on only the images a .txt names (their file names, looked up in DIR)")
    nc = d.get("nc")
    if nc is not None and (not isinstance(nc, int) or isinstance(nc, bool)):
        raise UserError(f"{p}: nc is {nc!r}; it must be a whole number, the count of names (or leave it out)")
    if nc is not None and out["names"] is not None and nc != len(out["names"]):
        raise UserError(f"{p}: nc is {nc} but names has {len(out['names'])} entries; make them agree")
    return out


def _names_list(p: Path, names: object) -> list[str] | None:
    """``names`` as a list; Ultralytics also writes ``{0: person, 1: bicycle}``."""
    if not isinstance(names, dict):
        return names  # a list (or None) is checked with every other spec
    # JSON-converted files quote the keys: '0': person
    names = {int(k) if isinstance(k, str) and k.isdigit() else k: v for k, v in names.items()}
    if set(names) != set(range(len(names))):
        raise UserError(f"{p}: names as a mapping needs the keys 0..{len(names) - 1} "
                        f"(got {', '.join(map(str, names))})")
    return [names[i] for i in range(len(names))]


def read_split(spec: DataSpec | str | Path, split: str = "val") -> Split:
    """Read one split of a dataset through its format's reader."""
    if not isinstance(spec, DataSpec):
        spec = load_spec(spec)
    _ensure_readers()
    if spec.format not in READERS:
        raise UserError(f"{spec.path}: the {spec.format} reader is not available in this version")
    return READERS[spec.format](spec, split)


def read_split_for(spec: DataSpec | str | Path, split: str, num_classes: int, advice: str) -> Split:
    """``read_split``, or a UserError when the split's class count is not the model's ``num_classes``."""
    s = read_split(spec, split)
    if len(s.names) != num_classes:
        raise UserError(f"{spec}: {len(s.names)} classes, the model has {num_classes}; {advice}")
    return s


def _ensure_readers() -> None:
    # Readers register themselves on import; import them lazily to keep start-up cheap.
    __import__(f"{__package__}.coco")
    for mod in ("voc", "yolo"):
        try:
            __import__(f"{__package__}.{mod}")
        except ModuleNotFoundError as e:
            if e.name != f"{__package__}.{mod}":
                raise
