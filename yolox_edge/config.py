"""Training configuration: typed dataclasses, strict YAML recipes, ``--set`` overrides.

A recipe YAML has up to four sections, ``model``, ``data``, ``aug`` and ``train``, and
lists only what differs from the defaults below (the official YOLOX-S-and-up values).
Unknown sections or keys are errors naming the key and the file; values are checked
against the field types.
"""
from __future__ import annotations

import dataclasses
import math
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .data.transforms import AugConfig
from .errors import UserError, check_input_size, flag_value, format_size, in_python, input_hw, nearest_on_grid, read_yaml
from .progress import deprecated_keywords
from .thresholds import EVAL_CONF, EVAL_NMS_IOU

AugCfg = AugConfig  # the data engineer's dataclass is the recipe's aug section; both names import

# What `from yolox_edge.config import *` and dir() offer: the recipe and its calls, not the
# helpers this module imports (UserError, format_size, ...). One name of the aug section's class.
__all__ = ["AugConfig", "DataCfg", "MACHINE_KEYS", "ModelCfg", "RECIPES_DIR", "Recipe", "SECTIONS", "SIZE_STEP", "Size",
           "TrainCfg", "apply_machine_settings", "apply_overrides", "build_recipe", "check_recipe", "find_recipe",
           "input_size_overrides", "load_recipe", "packaged_recipes", "recipe_diff", "recipe_from_checkpoint",
           "recipe_from_dict", "split_machine_items"]

Size = int | tuple[int, int]  # a recipe's input size: S (square) or [H, W], the contract's order
SIZE_STEP = 32  # the largest stride of every variant: each side must be a multiple of it


@dataclass
class ModelCfg:
    """Which network, and at what input size (S, or [H, W]) it is trained and evaluated."""

    variant: str = "s"
    input_size: Size | None = None  # None: the variant's own size (640 for S, 416 for Nano)
    test_size: Size | None = None   # None: input_size


@dataclass
class DataCfg:
    """Which splits of the data spec to use, and how to load them."""

    train_split: str = "train"
    val_split: str = "val"
    workers: int = 2
    repeat: int = 1             # passes over the training split per epoch (tiny datasets)
    cache_images: bool = False  # decode + fit every training image once (small datasets, few cores)


@dataclass
class TrainCfg:
    """Optimiser, schedule, EMA, evaluation and the rest of the official training recipe."""

    epochs: int = 300
    batch: int = 64
    basic_lr_per_img: float = 0.01 / 64  # lr = basic_lr_per_img * batch
    warmup_epochs: float = 5.0
    warmup_lr_start: float = 0.0
    min_lr_ratio: float = 0.05
    no_aug_epochs: int = 15               # clamped for short runs (schedule.clamp_no_aug_epochs)
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 5e-4
    ema: bool = True
    ema_decay: float = 0.9998
    eval_interval: int = 10
    multiscale_range: int = 5             # long side input/32 +- range (x32), aspect kept; 0 disables
    random_size: tuple[int, int] | None = None  # explicit (lo, hi), units of 32 of the long side; overrides range
    multiscale_interval: int = 10         # iterations between size changes
    freeze_backbone_epochs: int = 0
    freeze_bn: bool = False               # keep every BN in eval mode (tiny datasets)
    freeze_stem: bool = False             # keep the stem conv fixed (fine-tuning imported weights)
    bn_reestimate_batches: int = 8        # for bn_folded (imported ONNX) checkpoints
    seed: int = 0
    device: str = "auto"                  # auto | cpu | cuda | cuda:N
    amp: bool = True                      # mixed precision, CUDA only
    eval_conf: float = EVAL_CONF
    eval_nms: float = EVAL_NMS_IOU
    threads: int | None = None            # torch CPU threads, OpenCV's too with data.workers 0 (None: as they are)


@dataclass
class Recipe:
    model: ModelCfg = field(default_factory=ModelCfg)
    data: DataCfg = field(default_factory=DataCfg)
    aug: AugConfig = field(default_factory=AugConfig)
    train: TrainCfg = field(default_factory=TrainCfg)

    def to_dict(self) -> dict:
        """Plain dict (tuples as lists) for checkpoints and logs."""
        return _plain(dataclasses.asdict(self))

    @property
    def input_size(self) -> Size:
        """The training size as the recipe gives it: S, or (H, W); the variant's own if unset."""
        from .models import get_variant
        return self.model.input_size or get_variant(self.model.variant).input_size

    @property
    def test_size(self) -> Size:
        """The evaluation (and checkpoint) size: S, or (H, W); the training size if unset."""
        return self.model.test_size or self.input_size

    @property
    def input_hw(self) -> tuple[int, int]:
        """The training size as (H, W)."""
        return input_hw(self.input_size)

    @property
    def test_hw(self) -> tuple[int, int]:
        """The evaluation size as (H, W): what checkpoints record as ``preprocess.input_size``."""
        return input_hw(self.test_size)


SECTIONS = {"model": ModelCfg, "data": DataCfg, "aug": AugConfig, "train": TrainCfg}


def _plain(x: Any) -> Any:
    if isinstance(x, dict):
        return {k: _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    return x


def _coerce(value: Any, hint: Any, where: str) -> Any:
    """Check ``value`` against a type hint; ints become floats and lists tuples where typed so."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(hint)
        if value is None and type(None) in args:
            return None
        if set(args) - {type(None)} == set(typing.get_args(Size)):
            return _coerce_size(value, where)
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _coerce(value, a, where)
            except UserError as e:
                errors.append(str(e))
        raise UserError(errors[0] if errors else f"{where}: bad value {value!r}")
    if origin is tuple:
        args = typing.get_args(hint)
        if not isinstance(value, (list, tuple)):
            raise UserError(f"{where}: expected a list like [a, b], got {value!r}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(v, args[0], where) for v in value)
        if len(value) != len(args):
            raise UserError(f"{where}: expected {len(args)} values, got {len(value)}")
        return tuple(_coerce(v, a, where) for v, a in zip(value, args))
    if hint is bool:
        if not isinstance(value, bool):
            raise UserError(f"{where}: expected true or false, got {value!r}")
        return value
    if hint is float:
        if isinstance(value, str):
            # YAML 1.1 (PyYAML) reads 1e-3, without a dot, as a string: the usual way to write a lr
            value = _scientific(value)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise UserError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise UserError(f"{where}: expected an integer, got {value!r}")
        return value
    if hint is str:
        if not isinstance(value, str):
            raise UserError(f"{where}: expected a string, got {value!r}")
        return value
    return value  # Any / untyped: accept as is


def _coerce_size(value: Any, where: str) -> Size:
    """An input size: S, or [H, W] (a tuple); either member's own message would name only half
    of what is allowed ("expected an integer" for [320, 416, 3])."""
    if isinstance(value, (list, tuple)) and len(value) == 2 and \
            all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        return int(value[0]), int(value[1])
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise UserError(f"{where}: expected a size S or [HEIGHT, WIDTH] in pixels (e.g. 416 or [320, 416]), "
                    f"got {value!r}")


def _hints(cls) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _apply(section_obj: Any, section: str, values: dict, source: str) -> None:
    hints = _hints(type(section_obj))
    for key, val in values.items():
        if key not in hints:
            raise UserError(f"{source}: unknown key '{section}.{key}'; known keys in '{section}': "
                            f"{', '.join(hints)}")
        setattr(section_obj, key, _coerce(val, hints[key], f"{source}: {section}.{key}"))


@deprecated_keywords("source")  # recipe_from_dict(d, "my.yaml"), the earlier form
def recipe_from_dict(d: dict | None, *, source: str = "recipe") -> Recipe:
    """Build a Recipe from a nested mapping, strictly (unknown keys are errors); ``source`` names it in them."""
    recipe = Recipe()
    if d is None:
        return recipe
    if not isinstance(d, dict):
        raise UserError(f"{source}: a recipe is a mapping of sections ({', '.join(SECTIONS)}), e.g. "
                        f"'train: {{epochs: 30}}', not {_yaml_kind(d)}")
    for section, values in d.items():
        if section not in SECTIONS:
            raise UserError(f"{source}: unknown section '{section}'; known: {', '.join(SECTIONS)}")
        if values is None:
            continue
        if not isinstance(values, dict):
            raise UserError(f"{source}: section '{section}' must be a mapping of key: value")
        _apply(getattr(recipe, section), section, values, source)
    return recipe


def _yaml_kind(value: Any) -> str:
    """What a YAML document holds instead of a mapping, for a message: 'a list', 'the text 'abc''."""
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return f"the text {value[:40]!r}"
    return f"the value {value!r}"


def _scientific(text: str) -> float | str:
    """``text`` as a float when it is a finite number in e-notation (``1e-3``, ``2E+4``), else as it was."""
    if re.fullmatch(r"[+-]?(\d+\.?\d*|\.\d+)[eE][+-]?\d+", text.strip()):
        v = float(text)
        if math.isfinite(v):
            return v
    return text


_AT_LEAST = {  # key -> smallest value that trains (types were checked when the recipe was read)
    "data.workers": 0, "data.repeat": 1, "train.epochs": 1, "train.batch": 1, "train.eval_interval": 1,
    "train.multiscale_interval": 1, "train.no_aug_epochs": 0, "train.warmup_epochs": 0,
    "train.warmup_lr_start": 0, "train.weight_decay": 0, "train.multiscale_range": 0,
    "train.freeze_backbone_epochs": 0, "train.bn_reestimate_batches": 0,
}
_UNIT = ("train.min_lr_ratio", "train.momentum", "train.eval_conf", "train.eval_nms")


SEED_MAX = 2**31 - 1  # numpy takes 0..2**32-1; each torchrun process seeds train.seed + its rank


def check_recipe(recipe: Recipe) -> None:
    """UserError naming the first value out of its range, before any work: a recipe or ``--set``
    value of the right type but the wrong range (batch 0, eval_interval 0, epochs 0, a reversed
    random_size) otherwise ended in a traceback, some only after an epoch of training."""
    def value(key: str) -> Any:
        section, name = key.split(".")
        return getattr(getattr(recipe, section), name)

    try:  # AugConfig checks itself when built; values set one by one skipped that
        AugConfig(**dataclasses.asdict(recipe.aug))
    except ValueError as e:
        raise UserError(f"{e}; fix the recipe or --set value") from None
    for key in _AT_LEAST:
        problem = _range_problem(key, value(key))
        if problem:
            raise UserError(f"{key}={value(key)}: {problem}")
    for key in _UNIT:
        if not 0 <= value(key) <= 1:
            raise UserError(f"{key}={value(key)}: must be in [0, 1]")
    t = recipe.train
    if not t.basic_lr_per_img > 0:
        raise UserError(f"train.basic_lr_per_img={t.basic_lr_per_img}: must be above 0")
    if not 0 < t.ema_decay < 1:
        raise UserError(f"train.ema_decay={t.ema_decay}: must be in (0, 1), e.g. 0.9998")
    if not 0 <= t.seed <= SEED_MAX:  # numpy's range, less the ranks added to it under torchrun
        raise UserError(f"train.seed={t.seed}: must be in [0, {SEED_MAX}]")
    if t.threads is not None and t.threads < 1:
        raise UserError(f"train.threads={t.threads}: must be at least 1 (or null for torch's default)")
    problem = _range_problem("train.device", t.device)
    if problem:
        raise UserError(f"train.device={t.device!r}: {problem}")
    if t.random_size is not None and not 1 <= t.random_size[0] <= t.random_size[1]:
        raise UserError(f"train.random_size={list(t.random_size)}: must be [lo, hi] with 1 <= lo <= hi "
                        "(units of 32 px, of the long side)")
    for key in ("input_size", "test_size"):
        check_size(getattr(recipe.model, key), f"model.{key}")


def _range_problem(key: str, value: Any) -> str | None:
    """What is wrong with ``value`` (of the right type) for ``key`` among ``_AT_LEAST`` and
    ``train.device``, or None: one rule for a recipe's value and for the flag that sets it."""
    lo = _AT_LEAST.get(key)
    if lo is not None and value < lo:
        return f"must be at least {lo}"
    if key == "train.device" and not (value in ("auto", "cpu", "cuda") or
                                      (value.startswith("cuda:") and value[5:].isdigit())):
        return "choose auto, cpu, cuda or cuda:N"
    return None


def check_size(size: Size | None, what: str) -> None:
    """UserError unless each side of ``size`` (S, or (H, W); None passes) is a positive multiple
    of 32, naming ``what`` and the nearest size that is."""
    near = None if size is None else nearest_on_grid(size, SIZE_STEP)
    if near is None:
        return
    h, w = input_hw(size)
    shown = str(h) if isinstance(size, int) else f"[{h}, {w}] ({format_size((h, w))}, width x height)"
    sides = "" if isinstance(size, int) else " on each side"
    if min(h, w) < SIZE_STEP:
        raise UserError(f"{what}={shown}: must be at least {SIZE_STEP}{sides} (a multiple of {SIZE_STEP})")
    fix = str(near[0]) if isinstance(size, int) else str(list(near))
    raise UserError(f"{what}={shown} is not a multiple of {SIZE_STEP}{sides} (the largest stride); e.g. {fix}")


RECIPES_DIR = Path(__file__).parent / "recipes"  # shipped with the package, so any install has them


def packaged_recipes() -> list[str]:
    """Names of the recipes shipped in ``yolox_edge/recipes`` (``--recipe NAME``)."""
    return sorted(p.stem for p in RECIPES_DIR.glob("*.yaml"))


def find_recipe(path: str | Path) -> Path:
    """A recipe YAML path, or a packaged recipe's bare name (``yolox_nano``). A path that is not
    there is an error, never a shipped recipe of the same name: the user's edited copy may be
    elsewhere, and training on the stock one without a word would be worse than stopping."""
    p = Path(path)
    if p.is_file():
        return p
    packaged = RECIPES_DIR / f"{p.name}.yaml"
    if str(path) == p.name and not p.suffix and packaged.is_file():
        return packaged
    hint = f"; the shipped one is --recipe {p.stem}" if (RECIPES_DIR / f"{p.stem}.yaml").is_file() else ""
    raise UserError(f"{p}: recipe not found{hint}; give a YAML file or a shipped recipe's name: "
                    f"{', '.join(packaged_recipes())}")


def load_recipe(path: str | Path) -> Recipe:
    """Read a recipe (a YAML path or a packaged recipe's name) strictly; one that sets nothing is
    a UserError too (see ``_check_not_empty``)."""
    p = find_recipe(path)
    d = read_yaml(p)
    rec = recipe_from_dict(d, source=str(p))
    _check_not_empty(d, p)
    return rec


def _check_not_empty(d: Any, path: Path) -> None:
    """UserError for a recipe file that sets no value (empty, comments only, ``{}``, sections
    with nothing under them). It trained the defaults (YOLOX-S, 300 epochs, batch 64) without a
    word: a user who names a recipe means it to change something, and the file saved empty or
    the wrong one given is far likelier than a wish for the defaults, which ``yolox_s`` names."""
    if d is None or (isinstance(d, dict) and not any(d.values())):
        why = "the file is empty or only comments" if d is None else "its sections are empty"
        raise UserError(f"{path}: the recipe sets nothing ({why}); write in it the values that differ from "
                        f"the defaults ({', '.join(SECTIONS)} sections, e.g. 'train: {{epochs: 30}}'), or "
                        "for the defaults themselves (YOLOX-S) give the shipped recipe: --recipe yolox_s")


def _yaml_value(raw: str) -> Any:
    """A ``--set`` value as YAML reads it (30, 0.5, true, [0.5, 1.5]); a string YAML cannot parse as is."""
    try:
        return yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError:
        return raw


def apply_flag(recipe: Recipe, key: str, value: Any, flag: str, keyword: str) -> None:
    """Set ``key`` of ``recipe`` to the value of a flag standing for it (``--epochs`` for
    ``train.epochs``; a string is read as a ``--set`` value is, so ``epochs="30"`` still works),
    checked for type and range here. The UserError names what the caller gave,
    ``--epochs x (epochs='x' in Python): expected an integer``: a library call that passed
    ``epochs=`` was told about ``--set (overrides= in Python)``, which it never used."""
    where = flag_value(flag, keyword, value)
    section, name = key.split(".")
    obj = getattr(recipe, section)
    hint = _hints(type(obj))[name]
    parsed = _coerce(_yaml_value(value) if isinstance(value, str) and hint is not str else value, hint, where)
    problem = _range_problem(key, parsed)
    if problem:
        raise UserError(f"{where}: {problem}")
    setattr(obj, name, parsed)


@deprecated_keywords("keyword")  # apply_overrides(recipe, items, "machine"), the earlier form
def apply_overrides(recipe: Recipe, overrides: list[str] | None, *, keyword: str = "overrides") -> Recipe:
    """Apply ``section.key=value`` strings (value parsed as YAML: 30, 0.5, true, [0.5, 1.5]).
    ``keyword``: the argument of the library call that took them, which messages name beside --set."""
    for item in overrides or []:
        named = flag_value("--set", keyword, [item], repr(item))
        if "=" not in item:
            raise UserError(f"{named}: expected section.key=value, e.g. train.epochs=30")
        key, raw = item.split("=", 1)
        parts = key.strip().split(".")
        if len(parts) != 2 or parts[0] not in SECTIONS:
            raise UserError(f"{named}: key must be section.key with section one of {', '.join(SECTIONS)}")
        value = _yaml_value(raw)
        _apply(getattr(recipe, parts[0]), parts[0], {parts[1]: value}, in_python("--set", f"{keyword}="))
    return recipe


MACHINE_KEYS = ("data.workers", "data.cache_images", "train.threads", "train.device")
"""Recipe keys that describe the machine a run trains on, not what it trains: ``--resume`` takes
them from its command (``--set KEY=VALUE``, ``--device``). Workers and the image cache change
nothing in what is trained (the same batches bit for bit); another thread count or device gives
the same batches and schedule, with the float rounding that machine has."""


def split_machine_items(items: list[str] | None) -> tuple[list[str], list[str]]:
    """``--set`` items as (those of ``MACHINE_KEYS``, the rest), each in the given order."""
    machine, rest = [], []
    for item in items or []:
        (machine if item.split("=", 1)[0].strip() in MACHINE_KEYS else rest).append(item)
    return machine, rest


def apply_machine_settings(recipe: Recipe, items: list[str] | None) -> Recipe:
    """A copy of ``recipe`` with the ``--set`` items of ``MACHINE_KEYS`` applied (as ``apply_overrides``;
    ``recipe`` itself is left as it is: a resumed run keeps its stored one); UserError for any other key."""
    machine, rest = split_machine_items(items)
    if rest:
        raise UserError(f"{flag_value('--set', 'machine', [rest[0]], repr(rest[0]))}: not a setting of the machine "
                        f"({', '.join(MACHINE_KEYS)}); a resumed run trains with its own recipe")
    return apply_overrides(recipe_from_dict(recipe.to_dict(), source="recipe"), machine, keyword="machine")


def size_item(size: Size) -> str:
    """A size as a ``--set`` value: ``416``, or ``[320, 416]`` ([H, W]) for a rectangle."""
    h, w = input_hw(size)
    return str(h) if h == w else f"[{h}, {w}]"


def input_size_overrides(recipe: Recipe, size: Size) -> list[str]:
    """``--set`` items for ``--img-size S`` or ``WxH`` (``size`` S or (H, W); train and pipeline
    alike): train around the size, evaluate and export at it. A recipe's explicit multi-scale
    range (``train.random_size``, units of 32 of the long side, chosen for its own size, e.g.
    Nano's 320-640 at 416) is scaled with the long side."""
    sets = [f"model.input_size={size_item(size)}", f"model.test_size={size_item(size)}"]
    rs = recipe.train.random_size
    if rs is not None:
        k = max(input_hw(size)) / max(recipe.input_hw)
        sets.append(f"train.random_size=[{max(1, round(rs[0] * k))}, {max(1, round(rs[1] * k))}]")
    return sets


def check_img_size(size: Size | None) -> None:
    """UserError naming ``--img-size`` (train, pipeline) unless ``size`` is S or (H, W) with each
    side a positive multiple of 32 (``img_size="x"`` was a ValueError from unpacking it): the
    check, and the words, of every other command's ``--img-size`` (``errors.check_input_size``)."""
    if size is not None:
        check_input_size(size, (SIZE_STEP,))


# build_recipe's keywords that each set one recipe value: keyword -> (train's flag, the key)
TRAIN_FLAGS = {"epochs": ("--epochs", "train.epochs"), "batch": ("--batch", "train.batch"),
               "freeze_backbone_epochs": ("--freeze-backbone-epochs", "train.freeze_backbone_epochs"),
               "device": ("--device", "train.device")}


def build_recipe(recipe: Recipe | str | Path, *, img_size: Size | None = None, epochs: int | None = None,
                 batch: int | None = None, device: str | None = None, freeze_backbone_epochs: int | None = None,
                 overrides: list[str] | None = None) -> Recipe:
    """The recipe ``yolox-edge train`` runs: a shipped recipe's name, a YAML path or a Recipe (copied,
    not changed), with its flags applied as ``--set`` items, for ``Trainer(build_recipe(...), ...)``.

    ``img_size`` (S, or (H, W) for ``--img-size WxH``) comes first (train around it, evaluate and
    export at it; a recipe's ``train.random_size`` scaled with it), so an explicit ``overrides``
    item still wins, then ``overrides``; then
    ``epochs``, ``batch``, ``freeze_backbone_epochs`` and ``device``. Values are checked as
    ``--set`` values are: a UserError naming the keyword (``--epochs x (epochs='x' in Python)``),
    or the ``--set`` item or recipe key."""
    check_img_size(img_size)
    rec = recipe_from_dict(recipe.to_dict(), source="recipe") if isinstance(recipe, Recipe) else load_recipe(recipe)
    sets = input_size_overrides(rec, img_size) if img_size else []
    apply_overrides(rec, sets + list(overrides or []))
    given = {"epochs": epochs, "batch": batch, "freeze_backbone_epochs": freeze_backbone_epochs,
             "device": device or None}  # device="" meant the recipe's, as the CLI's unset --device
    for keyword, value in given.items():
        if value is not None:
            apply_flag(rec, TRAIN_FLAGS[keyword][1], value, TRAIN_FLAGS[keyword][0], keyword)
    check_recipe(rec)  # a bad value fails here, before a Trainer reads any data
    return rec


def recipe_diff(given: Recipe, run: Recipe) -> list[tuple[str, Any, Any]]:
    """(dotted key, given value, run value) for every recipe value that differs."""
    out: list[tuple[str, Any, Any]] = []

    def walk(a: Any, b: Any, prefix: str) -> None:
        if isinstance(a, dict) and isinstance(b, dict):
            for k in sorted(set(a) | set(b)):
                walk(a.get(k), b.get(k), f"{prefix}.{k}" if prefix else k)
        elif a != b:
            out.append((prefix, a, b))

    walk(given.to_dict(), run.to_dict(), "")
    return out


def recipe_from_checkpoint(d: dict) -> Recipe:
    """The recipe a checkpoint was trained with (stored by ``Recipe.to_dict``)."""
    return recipe_from_dict(d, source="checkpoint recipe")
