"""The variant registry, parameter counts against the YOLOX README, and the official
``.pth`` import (key map + stem permutation) reproducing a model's outputs."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from yolox_edge.errors import UserError
from yolox_edge.models import count_gflops, count_params, create_model, get_variant, list_models, variant_counts
from yolox_edge.models.official import import_official, import_pth


def test_list_and_lookup() -> None:
    assert list_models() == ["nano", "nano_hswish", "tiny", "s", "m", "l", "x", "darknet53"]
    assert set(list_models(include_test=True)) - set(list_models()) == {"test", "test_dw", "test_hswish"}
    assert get_variant("yolox_nano").name == get_variant("YOLOX-Nano").name == "nano"
    assert get_variant("nano").input_size == 416 and get_variant("s").input_size == 640
    with pytest.raises(KeyError):
        get_variant("nope")
    with pytest.raises(UserError, match="unknown variant 'nope'; known: nano"):  # one line in the CLI
        get_variant("nope")


def test_an_unknown_variant_in_a_recipe_is_one_line(run_cli, tmp_path) -> None:
    from yolox_edge.data.synthetic import make_shapes_dataset

    spec = make_shapes_dataset(tmp_path / "d", n_train=2, n_val=1, size=(64, 64))
    recipe = Path(__file__).parents[2] / "yolox_edge" / "recipes" / "yolox_nano.yaml"
    code, _out, err = run_cli("train", "--recipe", recipe, "--data", spec, "--out", tmp_path / "run",
                              "--set", "model.variant=nanoo")
    assert code == 2 and "Traceback" not in err and "unknown variant 'nanoo'" in err, err


# Parameter counts of every variant are checked in test_blocks; GFLOPs of Nano/Tiny/S
# through the CLI in tests/cli/test_cli_models.py.


def test_count_gflops_hand_case() -> None:
    # One 3x3 conv 3->4 with bias on 8x8: 4*8*8 outputs x (27 + 1) MACs; x2 for FLOPs.
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1))
    assert count_gflops(net, img_size=8) == pytest.approx(2 * 4 * 64 * 28 / 1e9)
    assert count_gflops(net, img_size=(8, 8)) == count_gflops(net, img_size=8)
    assert count_gflops(net, img_size=(8, 12)) == pytest.approx(2 * 4 * 96 * 28 / 1e9)  # (h, w): non-square inputs
    # a LeakyReLU output is one op, as thop counts it (Darknet53: the README's 185.3 GFLOPs, not 185.07)
    leaky = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.LeakyReLU(0.1), torch.nn.SiLU())
    assert count_gflops(leaky, img_size=8) == pytest.approx(2 * 4 * 64 * 29 / 1e9)


def test_variant_counts() -> None:
    nano = variant_counts("nano", num_classes=80, input_hw=(416, 416))
    assert nano["params_m"] == pytest.approx(0.91, abs=0.01) and nano["gflops"] == pytest.approx(1.08, abs=0.01)
    assert variant_counts("no_such_variant", num_classes=80, input_hw=(416, 416)) is None


def test_num_classes_changes_only_class_convs() -> None:
    a, b = create_model("test", num_classes=80), create_model("test", num_classes=3)
    assert b.num_classes == 3
    hidden = b.head.cls_preds[0].in_channels
    assert count_params(a) - count_params(b) == 3 * (80 - 3) * (hidden + 1)


@pytest.mark.parametrize("name", ["test", "test_dw"])
def test_pth_import_reproduces_outputs(tmp_path, to_official_state, randomize_model, name: str) -> None:
    src = randomize_model(create_model(name, num_classes=5))
    path = tmp_path / "official.pth"
    # as the official trainer saves it: its AP values are numpy.float64 (COCOeval's stats), which a
    # weights_only load refused ('not a readable PyTorch checkpoint')
    torch.save({"model": to_official_state(src), "start_epoch": 3, "optimizer": {"state": {}, "param_groups": []},
                "best_ap": np.float64(31.2), "curr_ap": np.float64(30.9)}, path)

    model, names, folded = import_official(path, variant=name)
    assert not folded and model.num_classes == 5 and len(names) == 5
    x = torch.rand(1, 3, 64, 64) * 255
    with torch.no_grad():
        for a, b in zip(model(x), src(x)):
            torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_pth_import_rejects_other_variant(tmp_path, to_official_state) -> None:
    path = tmp_path / "official.pth"
    torch.save({"model": to_official_state(create_model("test"))}, path)
    # The message names the variant the weights fit (a Tiny .pth imported as the README's nano)
    with pytest.raises(UserError, match=r"official.pth.*its weights fit YOLOX-test: pass --variant test "
                                        r"\(variant='test' in Python\)$"):
        import_pth(path, "test_dw")
    state = to_official_state(create_model("test"))
    state["head.stems.0.conv.weight"] = state["head.stems.0.conv.weight"][:, :-1]  # fits no variant
    torch.save({"model": state}, path)
    with pytest.raises(UserError, match=r"pass the matching --variant \(variant= in Python\)$"):
        import_pth(path, "test")
    torch.save({"something": 1}, path)
    with pytest.raises(UserError, match="not an official YOLOX checkpoint"):
        import_pth(path, "test")


def test_hswish_variant_shares_nano_weights(randomize_model) -> None:
    nano, hs = get_variant("nano"), get_variant("nano_hswish")
    assert hs.shares_weights_with(nano) and not get_variant("tiny").shares_weights_with(nano)
    a, b = randomize_model(create_model("test_dw", num_classes=3)), create_model("test_hswish", num_classes=3)
    b.load_state_dict(a.state_dict())  # same tensors, so a SiLU checkpoint starts a hard-swish model
    acts = {type(m).__name__ for m in b.modules()} & {"SiLU", "Hardswish"}
    assert acts == {"Hardswish"}
    x = torch.rand(1, 3, 64, 64) * 255
    with torch.no_grad():
        assert not torch.allclose(a.eval()(x)[0], b.eval()(x)[0])  # the activation is really different


def test_import_official_refuses_a_variant_without_official_weights(tmp_path) -> None:
    with pytest.raises(UserError, match="no yolox_nano_hswish weights.*--variant nano.*yolox-edge convert"):
        import_official(tmp_path / "yolox_nano.onnx", variant="nano_hswish")


def test_import_official_checkpoint_is_the_cli_command(tmp_path, to_official_state, randomize_model, run_cli) -> None:
    """`import-official` as one library call (the CLI saved the checkpoint itself): the same weights
    and source record as the command writes, str or Path alike, an existing file kept without force."""
    from yolox_edge.engine import load_checkpoint
    from yolox_edge.models import import_official_checkpoint

    path = tmp_path / "official.pth"
    torch.save({"model": to_official_state(randomize_model(create_model("test", num_classes=4)))}, path)
    res = import_official_checkpoint(str(path), variant="yolox_test", out=tmp_path / "lib.pt")
    assert res.path == tmp_path / "lib.pt" and res.variant == "test" and len(res.class_names) == 4 and not res.bn_folded
    code, out, err = run_cli("import-official", str(path), "--variant", "yolox_test", "--out", str(tmp_path / "cli.pt"))
    assert code == 0 and "(4 classes)" in out, err
    lib, cli = load_checkpoint(res.path), load_checkpoint(tmp_path / "cli.pt")
    assert lib["source"] == cli["source"] and lib["class_names"] == cli["class_names"]
    assert all(torch.equal(lib["model"][k], cli["model"][k]) for k in cli["model"])
    with pytest.raises(UserError, match=r"lib.pt: a checkpoint is already there; choose another --out \(out= in Python\), or pass "
                                        r"--force \(force=True in Python\) to replace it"):
        import_official_checkpoint(path, variant="test", out=tmp_path / "lib.pt")
    assert import_official_checkpoint(path, variant="test", out=tmp_path / "lib.pt", force=True).path.is_file()


def test_import_official_stores_cocos_category_ids_for_the_80_classes(tmp_path, to_official_state) -> None:
    """The official weights' class i is COCO's i-th category id (1..90 with gaps): stored, so COCO
    results and predict --json name real ids; another class count has no known ids and stores none."""
    from yolox_edge.data.coco_names import COCO_CATEGORY_IDS, COCO_CLASSES
    from yolox_edge.engine import load_checkpoint
    from yolox_edge.models import import_official_checkpoint

    assert len(COCO_CATEGORY_IDS) == len(COCO_CLASSES) == 80 and COCO_CATEGORY_IDS == sorted(set(COCO_CATEGORY_IDS))
    assert (COCO_CATEGORY_IDS[0], COCO_CATEGORY_IDS[11], COCO_CATEGORY_IDS[-1]) == (1, 13, 90)  # 12 was never used
    for classes, want in ((80, COCO_CATEGORY_IDS), (4, None)):
        path = tmp_path / f"official{classes}.pth"
        torch.save({"model": to_official_state(create_model("test", num_classes=classes))}, path)
        res = import_official_checkpoint(path, variant="test", out=tmp_path / f"c{classes}.pt")
        assert res.category_ids == want and load_checkpoint(res.path).get("category_ids") == want
