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


@pytest.mark.parametrize("text, why", [("", "the file is empty or only comments"),
                                       ("# epochs: 30, once\n", "the file is empty or only comments"),
                                       ("{}\n", "its sections are empty"),
                                       ("model:\ntrain: {}\n", "its sections are empty")])
def test_a_recipe_that_sets_nothing_is_refused_naming_the_file(tmp_path, text, why) -> None:
    """It trained the defaults (YOLOX-S, 300 epochs) without a word; the defaults have a name."""
    p = tmp_path / "mine.yaml"
    p.write_text(text)
    with pytest.raises(UserError) as e:
        load_recipe(p)
    assert str(e.value).startswith(f"{p}: the recipe sets nothing ({why}); ")
    assert "--recipe yolox_s" in str(e.value)
    assert load_recipe("yolox_s").model.variant == "s"  # what the message offers loads


@pytest.mark.parametrize("text, got", [("- train\n- model\n", "a list"), ("train.epochs=30\n", "the text"),
                                      ("30\n", "the value 30")])
def test_a_recipe_that_is_not_a_mapping_is_named(tmp_path, text, got) -> None:
    p = tmp_path / "mine.yaml"
    p.write_text(text)
    with pytest.raises(UserError, match=re.escape(f"{p}: a recipe is a mapping of sections (model, data, aug, "
                                                  f"train), e.g. 'train: {{epochs: 30}}', not {got}")):
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
    with pytest.raises(UserError, match=r"--set 'epochs' \(overrides=\['epochs'\] in Python\): .*section.key=value"):
        apply_overrides(Recipe(), ["epochs"])
    with pytest.raises(UserError, match=r"--set 'epochs=3' \(overrides=\['epochs=3'\] in Python\): key must be section.key"):
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
    with pytest.raises(UserError, match=re.escape("--batch 0 (batch=0 in Python): must be at least 1")):
        build_recipe("yolox_nano", batch=0)


@pytest.mark.parametrize("given, says", [
    ({"epochs": "x"}, "--epochs x (epochs='x' in Python): expected an integer, got 'x'"),
    ({"epochs": 2.5}, "--epochs 2.5 (epochs=2.5 in Python): expected an integer, got 2.5"),
    ({"epochs": 0}, "--epochs 0 (epochs=0 in Python): must be at least 1"),
    ({"batch": "eight"}, "--batch eight (batch='eight' in Python): expected an integer"),
    ({"freeze_backbone_epochs": -1}, "--freeze-backbone-epochs -1 (freeze_backbone_epochs=-1 in Python): "
                                     "must be at least 0"),
    ({"device": "gpu"}, "--device gpu (device='gpu' in Python): choose auto, cpu, cuda or cuda:N"),
    ({"img_size": "x"}, "--img-size x (img_size='x' in Python): expected a size S or (HEIGHT, WIDTH) in whole pixels"),
])
def test_build_recipe_names_the_keyword_given_not_set(given, says) -> None:
    """epochs= was applied as a --set item, so its message named '--set (overrides= in Python):
    train.epochs', a keyword the caller never used; img_size='x' was a ValueError from unpacking."""
    from yolox_edge.config import build_recipe

    with pytest.raises(UserError, match=re.escape(says)):
        build_recipe("yolox_nano", **given)


def test_build_recipe_still_reads_a_flag_value_as_set_does() -> None:
    from yolox_edge.config import build_recipe

    r = build_recipe("yolox_nano", epochs="30", batch=4, device="cuda:0", overrides=["train.epochs=9"])
    assert (r.train.epochs, r.train.batch, r.train.device) == (30, 4, "cuda:0")  # the flag after --set, as before
    with pytest.raises(UserError, match=re.escape("--set (overrides= in Python): train.epochs: expected an integer")):
        build_recipe("yolox_nano", overrides=["train.epochs=x"])  # a --set item is still named as one


def test_a_rectangular_size_is_height_width_in_the_recipe_and_round_trips(tmp_path) -> None:
    """model.input_size / test_size take S or [H, W] (YAML, --set); the pair survives to_dict (the
    recipe stored in last.pt) and comes back as a tuple."""
    p = tmp_path / "rect.yaml"
    p.write_text("model: {variant: nano, input_size: [320, 416]}\n")
    r = load_recipe(p)
    assert r.model.input_size == (320, 416) and r.input_size == (320, 416) and r.test_size == (320, 416)
    assert r.input_hw == r.test_hw == (320, 416)
    r = apply_overrides(load_recipe("yolox_nano"), ["model.input_size=[320,416]", "model.test_size=[256, 416]"])
    assert (r.input_hw, r.test_hw) == ((320, 416), (256, 416))
    check_recipe(r)
    d = r.to_dict()
    assert d["model"]["input_size"] == [320, 416]
    assert recipe_from_dict(d) == r
    assert load_recipe("yolox_nano").input_hw == (416, 416)  # an int is a square


@pytest.mark.parametrize("item, says", [
    ("model.input_size=[320, 416, 3]", "--set (overrides= in Python): model.input_size: expected a size S or "
                                       "[HEIGHT, WIDTH] in pixels (e.g. 416 or [320, 416]), got [320, 416, 3]"),
    ("model.input_size=wide", "expected a size S or [HEIGHT, WIDTH]"),
    ("model.test_size=[320.5, 416]", "expected a size S or [HEIGHT, WIDTH]"),
    ("model.input_size=[true, 416]", "expected a size S or [HEIGHT, WIDTH]"),
])
def test_a_size_of_the_wrong_shape_is_named(item, says) -> None:
    with pytest.raises(UserError, match=re.escape(says)):
        apply_overrides(Recipe(), [item])


@pytest.mark.parametrize("item, says", [
    ("model.input_size=[300, 416]", "model.input_size=[300, 416] (416x300, width x height) is not a multiple of 32 "
                                    "on each side (the largest stride); e.g. [288, 416]"),
    ("model.test_size=[320, 400]", "model.test_size=[320, 400] (400x320, width x height) is not a multiple of 32 "
                                   "on each side (the largest stride); e.g. [320, 416]"),
    ("model.input_size=[0, 416]", "model.input_size=[0, 416] (416x0, width x height): must be at least 32 on each "
                                  "side"),
    ("model.input_size=-32", "model.input_size=-32: must be at least 32"),
    ("model.input_size=150", "model.input_size=150 is not a multiple of 32 (the largest stride); e.g. 160"),
])
def test_a_size_off_the_32_grid_is_named_with_the_nearest_that_is_on_it(item, says) -> None:
    r = apply_overrides(load_recipe("yolox_nano"), [item])
    with pytest.raises(UserError, match=re.escape(says)):
        check_recipe(r)


def test_img_size_width_x_height_sets_the_pair_and_scales_random_size_by_the_long_side() -> None:
    from yolox_edge.config import build_recipe, input_size_overrides

    nano = load_recipe("yolox_nano")  # 416, random_size [10, 20]
    assert input_size_overrides(nano, (320, 416)) == ["model.input_size=[320, 416]", "model.test_size=[320, 416]",
                                                      "train.random_size=[10, 20]"]
    portrait = input_size_overrides(nano, (224, 160))
    assert portrait[-1] == "train.random_size=[5, 11]"  # its long side, as --img-size 224 scales it
    r = build_recipe("yolox_nano", img_size=(256, 416), epochs=1)
    assert (r.input_hw, r.test_hw, r.train.random_size) == ((256, 416), (256, 416), (10, 20))
    rect = build_recipe("yolox_nano", img_size=(320, 416))
    assert input_size_overrides(rect, 208)[-1] == "train.random_size=[5, 10]"  # from a rectangle back to a square
    with pytest.raises(UserError, match=re.escape("--img-size 416x300 (img_size=(300, 416) in Python): each side "
                                                  "(width and height) must be a "
                                                  "positive multiple of 32; the nearest that is: 416x288")):
        build_recipe("yolox_nano", img_size=(300, 416))


def test_machine_settings_are_split_from_the_rest_and_only_they_apply_on_resume() -> None:
    """What `train --resume` takes from its command: the machine's settings, in the order given."""
    from yolox_edge.config import apply_machine_settings, split_machine_items

    items = ["train.epochs=3", "data.workers=4", "train.device=cpu", "aug.flip_prob=0", "train.threads=1"]
    assert split_machine_items(items) == (["data.workers=4", "train.device=cpu", "train.threads=1"],
                                          ["train.epochs=3", "aug.flip_prob=0"])
    given = Recipe()
    r = apply_machine_settings(given, ["data.workers=4", "data.cache_images=true"])
    assert (r.data.workers, r.data.cache_images) == (4, True)
    assert given.to_dict() == Recipe().to_dict()  # a copy: a resumed run's stored recipe stays as it was
    with pytest.raises(UserError, match=r"--set 'train.seed=1' \(machine=\['train.seed=1'\] in Python\): not a setting "
                                        r"of the machine"):
        apply_machine_settings(Recipe(), ["train.seed=1"])
    with pytest.raises(UserError, match="data.workers: expected an integer"):
        apply_machine_settings(Recipe(), ["data.workers=many"])


@pytest.mark.parametrize("size", ["x", "416", 416.0, True, (64,), (64.0, 64), [320, 416, 3], 400, (320, 10)])
def test_train_and_pipeline_refuse_an_img_size_in_the_words_of_every_other_command(size) -> None:
    """check_img_size (train, pipeline) said 'expected a size S or [HEIGHT, WIDTH] in pixels (e.g.
    416 or [320, 416]), got ...' where eval, export, quantize and calibrate (errors.check_input_size)
    say 'expected a size S or (HEIGHT, WIDTH) in whole pixels': one check, one wording."""
    from yolox_edge.config import check_img_size
    from yolox_edge.errors import check_input_size

    with pytest.raises(UserError) as ours:
        check_img_size(size)
    with pytest.raises(UserError) as theirs:
        check_input_size(size, (8, 16, 32))
    assert str(ours.value) == str(theirs.value)
