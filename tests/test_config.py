import re
from pathlib import Path

import pytest

from yolox_edge.config import Recipe, apply_overrides, check_recipe, load_recipe, recipe_from_dict
from yolox_edge.errors import UserError

RECIPES = Path(__file__).resolve().parents[1] / "yolox_edge" / "recipes"


def test_defaults_are_official():
    r = Recipe()
    assert r.train.basic_lr_per_img == pytest.approx(0.01 / 64)
    assert (r.train.momentum, r.train.weight_decay, r.train.nesterov) == (0.9, 5e-4, True)
    assert (r.train.warmup_epochs, r.train.min_lr_ratio, r.train.no_aug_epochs) == (5.0, 0.05, 15)
    assert r.train.ema_decay == 0.9998
    assert r.aug.mosaic_scale == (0.1, 2.0) and r.aug.mixup_prob == 1.0


@pytest.mark.parametrize("name", ["nano", "tiny", "s", "m", "l", "x", "darknet53"])
def test_every_recipe_loads(name):
    r = load_recipe(RECIPES / f"yolox_{name}.yaml")
    assert r.model.variant == name
    if name in ("nano", "tiny"):
        assert r.aug.mosaic_scale == (0.5, 1.5) and r.aug.mixup_prob == 0.0 and r.input_size == 416
        assert r.aug.mosaic_prob == (0.5 if name == "nano" else 1.0)
    else:
        assert r.aug.mosaic_scale == (0.1, 2.0) and r.aug.mixup_prob > 0 and r.input_size == 640


def test_finetune_recipe_loads():
    for p in RECIPES.glob("*.yaml"):
        load_recipe(p)


def test_unknown_key_is_named(tmp_path):
    p = tmp_path / "r.yaml"
    p.write_text("train: {epochs: 3, epoch: 4}\n")
    with pytest.raises(UserError, match=r"unknown key 'train.epoch'") as e:
        load_recipe(p)
    assert str(p) in str(e.value)
    p.write_text("trian: {epochs: 3}\n")
    with pytest.raises(UserError, match="unknown section 'trian'"):
        load_recipe(p)


def test_bad_types_are_errors(tmp_path):
    with pytest.raises(UserError, match="train.epochs: expected an integer"):
        recipe_from_dict({"train": {"epochs": "ten"}})
    with pytest.raises(UserError, match="aug.mosaic_scale: expected 2 values"):
        recipe_from_dict({"aug": {"mosaic_scale": [0.5]}})
    with pytest.raises(UserError, match="train.ema: expected true or false"):
        recipe_from_dict({"train": {"ema": 1}})
    r = recipe_from_dict({"train": {"warmup_epochs": 1, "random_size": [10, 20]}})
    assert isinstance(r.train.warmup_epochs, float) and r.train.random_size == (10, 20)


def test_set_overrides():
    r = apply_overrides(Recipe(), ["train.epochs=30", "aug.mosaic_scale=[0.5, 1.5]", "train.ema=false",
                                   "model.variant=nano", "train.random_size=null"])
    assert r.train.epochs == 30 and r.aug.mosaic_scale == (0.5, 1.5) and r.train.ema is False
    assert r.model.variant == "nano" and r.input_size == 416
    with pytest.raises(UserError, match="unknown key 'train.epoch'"):
        apply_overrides(Recipe(), ["train.epoch=3"])
    with pytest.raises(UserError, match="section.key=value"):
        apply_overrides(Recipe(), ["epochs"])
    with pytest.raises(UserError, match="key must be section.key"):
        apply_overrides(Recipe(), ["epochs=3"])


def test_round_trip_through_dict():
    r = apply_overrides(Recipe(), ["train.epochs=7", "aug.degrees=0"])
    r2 = recipe_from_dict(r.to_dict())
    assert r2 == r


def test_a_shipped_recipe_is_found_by_name_from_any_folder(tmp_path, monkeypatch) -> None:
    """The README's `--recipe recipes/yolox_nano.yaml` failed outside the checkout (and on any
    non-editable install: the recipes were not package data)."""
    from yolox_edge.config import find_recipe, load_recipe, packaged_recipes

    monkeypatch.chdir(tmp_path)
    assert {"yolox_nano", "yolox_tiny", "finetune_nano_cpu"} <= set(packaged_recipes())
    assert load_recipe("yolox_nano").model.variant == "nano"
    assert find_recipe("finetune_nano_cpu") == RECIPES / "finetune_nano_cpu.yaml"
    (tmp_path / "yolox_nano.yaml").write_text("model: {variant: tiny}\n")  # a file of the user's wins
    assert load_recipe("yolox_nano.yaml").model.variant == "tiny"
    for missing in ("mine/yolox_nano.yaml", "recipes/yolox_nano.yaml", "yolox_tiny.yaml"):
        # a path of the user's that is missing is never swapped for the shipped recipe silently
        with pytest.raises(UserError, match=r"recipe not found; the shipped one is --recipe yolox_"):
            load_recipe(missing)


@pytest.mark.parametrize("item, says", [
    ("train.batch=0", "train.batch=0: must be at least 1"),
    ("train.epochs=0", "train.epochs=0: must be at least 1"),
    ("train.eval_interval=0", "train.eval_interval=0: must be at least 1"),
    ("data.workers=-1", "data.workers=-1: must be at least 0"),
    ("train.ema_decay=1.5", "train.ema_decay=1.5: must be in (0, 1)"),
    ("train.threads=0", "train.threads=0: must be at least 1"),
    ("train.device=tpu", "choose auto, cpu, cuda or cuda:N"),
    ("train.random_size=[20, 10]", "1 <= lo <= hi"),
    ("aug.flip_prob=2", "aug.flip_prob must be a probability"),
    ("aug.mosaic_scale=[1.5, 0.5]", "aug.mosaic_scale must be [lo, hi]"),
    ("train.eval_nms=1.5", "train.eval_nms=1.5: must be in [0, 1]"),
])
def test_values_out_of_range_are_named_before_any_work(item, says):
    """Each was accepted and ended in a traceback (some after an epoch), or trained nothing."""
    r = apply_overrides(load_recipe("yolox_nano"), [item])
    with pytest.raises(UserError, match=re.escape(says)):
        check_recipe(r)


@pytest.mark.parametrize("name", ["yolox_nano", "yolox_tiny", "finetune_nano_cpu", "yolox_s"])
def test_shipped_recipes_pass_the_range_check(name):
    check_recipe(load_recipe(name))


def test_build_recipe_applies_the_train_flags_as_the_cli_does() -> None:
    """A notebook had to copy cli/train.py's order of load_recipe, input_size_overrides and --set items."""
    import yolox_edge
    from yolox_edge.config import build_recipe, load_recipe

    base = load_recipe("yolox_nano")
    r = yolox_edge.config.build_recipe(base, img_size=320, epochs=2, batch=8, device="cpu", freeze_backbone_epochs=1)
    assert (r.model.input_size, r.model.test_size, r.train.epochs, r.train.batch) == (320, 320, 2, 8)
    assert r.train.device == "cpu" and r.train.freeze_backbone_epochs == 1
    assert base.model.input_size == 416 and base.train.batch != 8  # the given Recipe is not changed
    # --img-size first, so an explicit override of the scaled multi-scale range still wins
    r = build_recipe("yolox_nano", img_size=320, overrides=["train.random_size=[5, 7]"])
    assert list(r.train.random_size) == [5, 7]
    with pytest.raises(UserError, match="train.batch"):
        build_recipe("yolox_nano", batch=0)
