"""Label-free activation conversion (engine/reconstruct.py) and its CLI, on the tiny depthwise variants."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from yolox_edge.engine.reconstruct import blocks_in_order, convert_activation
from yolox_edge.errors import UserError
from yolox_edge.models import create_model


def _images(n: int, size: int = 64, seed: int = 0) -> torch.Tensor:
    """Smooth random images in the network's input range (0..255 floats, like the preprocessing)."""
    rng = np.random.default_rng(seed)
    imgs = [cv2.GaussianBlur(rng.integers(0, 256, (size, size, 3), dtype=np.uint8), (9, 9), 0) for _ in range(n)]
    return torch.from_numpy(np.stack(imgs).transpose(0, 3, 1, 2).astype(np.float32).copy())


@pytest.fixture(scope="module")
def teacher(randomize_model):
    return randomize_model(create_model("test_dw", num_classes=3), seed=3)


def _raw_error(a, b, x) -> float:
    with torch.no_grad():
        ya, yb = a(x), b(x)
    return sum(float(((p - q) ** 2).mean()) for p, q in zip(ya, yb)) / sum(float(q.var()) for q in yb)


def test_blocks_cover_the_model_once_in_forward_order(teacher):
    names = blocks_in_order(teacher, "block")
    assert len(names) == len(set(names))
    assert names[0].startswith("backbone.") and names[-1].startswith("head.")
    assert not any(a.startswith(b + ".") for a in names for b in names if a != b)  # no block inside another
    params = {n for n, _ in teacher.named_parameters()}
    covered = {n for n in params if any(n.startswith(b + ".") for b in names)}
    assert covered == params  # every weight belongs to exactly one block
    units = blocks_in_order(teacher, "unit")
    assert len(units) > len(names)


def test_teacher_outputs_cached_in_one_pass_equal_the_per_block_capture(teacher):
    from yolox_edge.engine.reconstruct import _capture, _capture_all_outputs

    x = _images(6)
    names = blocks_in_order(teacher, "block")
    mods = dict(teacher.named_modules())
    full = _capture_all_outputs(teacher, names, x, chunk=4)
    assert set(full) == set(names)
    for n in names:
        ref = _capture(teacher, mods[n], x, output=True)
        assert full[n].dtype == torch.float32 and torch.equal(full[n], ref), n
    need = sum(v.numel() for v in full.values()) * 4  # bytes in fp32
    half = _capture_all_outputs(teacher, names, x, budget=need // 2 + 1, chunk=4)
    assert half[names[0]].dtype == torch.float16
    assert torch.allclose(half[names[-1]].float(), full[names[-1]], rtol=1e-3, atol=1e-2)
    assert _capture_all_outputs(teacher, names, x, budget=need // 4) is None  # too big: per-block capture


@pytest.mark.parametrize("granularity", ["block", "unit"])
def test_conversion_moves_the_student_towards_the_teacher(teacher, granularity):
    x = _images(16)
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    swapped = create_model("test_hswish", num_classes=3).eval()
    swapped.load_state_dict(teacher.state_dict())
    student, results = convert_activation(teacher, "test_hswish", x, granularity=granularity, steps=40, lr=1e-3,
                                          batch=4, progress=False)
    assert student.variant == "test_hswish"
    assert all(r.nmse_after <= r.nmse_before for r in results)
    assert any(r.nmse_after < 0.9 * r.nmse_before for r in results)
    held_out = _images(8, seed=1)  # images the conversion never saw
    assert _raw_error(student, teacher, held_out) < 0.8 * _raw_error(swapped, teacher, held_out)
    assert not any(p.requires_grad for p in student.parameters())
    assert all(torch.equal(before[k], v) for k, v in teacher.state_dict().items())  # teacher untouched


def test_conversion_refuses_what_it_cannot_do(teacher):
    x = _images(8)
    with pytest.raises(UserError, match="nothing to convert"):
        convert_activation(teacher, "test_dw", x, progress=False)
    with pytest.raises(UserError, match="tensors"):
        convert_activation(teacher, "test", x, progress=False)
    with pytest.raises(UserError, match=r"--batch 5 \(batch=5 in Python\) is more than the 4 samples"):
        convert_activation(teacher, "test_hswish", x[:2], batch=5, progress=False)  # 2 images, mirrored: 4


def test_convert_cli_writes_a_checkpoint_of_the_target_variant(tmp_path, teacher, run_cli):
    from yolox_edge.engine.checkpoint import load_checkpoint, load_model, save_checkpoint
    from yolox_edge.quantize.calib import build_calibration_set

    from yolox_edge.data.preprocess import PreprocessConfig

    src = tmp_path / "t.pt"  # a non-default pad value: the converted checkpoint must keep the teacher's
    save_checkpoint(src, teacher, class_names=["a", "b", "c"],
                    preprocess=PreprocessConfig(input_size=(64, 64), pad_value=0))
    img_dir = tmp_path / "imgs"
    img_dir.mkdir()
    for i, im in enumerate(_images(8).numpy().transpose(0, 2, 3, 1).astype(np.uint8)):
        cv2.imwrite(str(img_dir / f"{i}.png"), im)
    build_calibration_set(img_dir, tmp_path / "calib", img_size=64, count=8)
    out = tmp_path / "s.pt"
    code, stdout, _ = run_cli("convert", str(src), "--to", "test_hswish", "--calib", str(tmp_path / "calib"),
                              "--out", str(out), "--steps", "3", "--batch", "4", "--log", str(tmp_path / "log.json"))
    assert code == 0 and "test_hswish" in stdout
    model, ckpt = load_model(out)
    assert model.variant == "test_hswish" and ckpt["class_names"] == ["a", "b", "c"]
    assert load_checkpoint(out)["source"]["from_variant"] == "test_dw"
    assert ckpt["preprocess"] == load_checkpoint(src)["preprocess"]  # the teacher's preprocessing travels on
    assert (tmp_path / "log.json").is_file()
    # bad input: exit 2, one message naming the file, and no output written
    code, _, err = run_cli("convert", str(src), "--to", "test_hswish", "--calib", str(tmp_path / "imgs"),
                           "--out", str(tmp_path / "bad.pt"))
    assert code == 2 and "imgs" in err and not (tmp_path / "bad.pt").exists()
    code, _, err = run_cli("convert", str(src), "--to", "tiny", "--calib", str(tmp_path / "calib"),
                           "--out", str(tmp_path / "bad.pt"))
    assert code == 2 and "tensors" in err and "t.pt" in err


def test_convert_stopped_says_whether_out_holds_the_new_or_the_earlier_checkpoint(tmp_path, teacher, run_cli,
                                                                                  monkeypatch):
    """A Ctrl-C or SIGTERM said only 'interrupted': nothing told whether minutes of fitting were saved
    (a stop while the errors printed came after the checkpoint was in place) or an earlier one stayed."""
    import yolox_edge.cli.convert as cli_convert
    import yolox_edge.engine.reconstruct as reconstruct
    from yolox_edge.engine.checkpoint import load_model, save_checkpoint
    from yolox_edge.quantize.calib import build_calibration_set

    def stop(*a, **k):
        raise KeyboardInterrupt

    src = tmp_path / "t.pt"
    save_checkpoint(src, teacher, class_names=["a", "b", "c"])
    img_dir = tmp_path / "imgs"
    img_dir.mkdir()
    for i, im in enumerate(_images(8).numpy().transpose(0, 2, 3, 1).astype(np.uint8)):
        cv2.imwrite(str(img_dir / f"{i}.png"), im)
    build_calibration_set(img_dir, tmp_path / "calib", img_size=64, count=8)
    out, log = tmp_path / "s.pt", tmp_path / "log.json"
    args = ("convert", src, "--to", "test_hswish", "--calib", tmp_path / "calib", "--out", out, "--steps", "2",
            "--batch", "4", "--log", log)
    with monkeypatch.context() as m:  # while fitting: nothing was there, nothing is
        m.setattr(reconstruct, "convert_activation", stop)
        code, _, err = run_cli(*args)
    assert code == 130 and f"convert: interrupted: no checkpoint was written to {out}; convert keeps nothing " \
                           "to resume from: run the same command again" in err, err
    assert err.rstrip().endswith("yolox-edge convert: interrupted") and not out.exists() and not log.exists()
    assert run_cli(*args)[0] == 0
    earlier = out.read_bytes()
    with monkeypatch.context() as m:  # while fitting again, with --force: the earlier checkpoint stays
        m.setattr(reconstruct, "convert_activation", stop)
        code, _, err = run_cli(*args, "--force", "--seed", "1")
    assert code == 130 and f"{out} keeps its earlier checkpoint, untouched" in err, err
    assert out.read_bytes() == earlier
    log.unlink()
    with monkeypatch.context() as m:  # after the save, while its errors print: the new one is in place
        m.setattr(cli_convert, "fmean", stop)
        code, _, err = run_cli(*args, "--force", "--seed", "1")
    assert code == 130 and (f"convert: interrupted after the checkpoint was written: {out} holds the new one, "
                            f"whole; {log} was not written") in err, err
    assert out.read_bytes() != earlier and load_model(out)[0].variant == "test_hswish" and not log.exists()


def test_convert_log_must_be_a_json_name(run_cli, tmp_path) -> None:
    """`convert --log v4.pt` turned a checkpoint into JSON; `--out` needed --force, `--log` did not."""
    (tmp_path / "v4.pt").write_bytes(b"weights")
    code, _, err = run_cli("convert", tmp_path / "a.pt", "--to", "nano_hswish", "--calib", tmp_path,
                           "--out", tmp_path / "hs.pt", "--log", tmp_path / "v4.pt")
    assert code == 2 and "ending in .json" in err and (tmp_path / "v4.pt").read_bytes() == b"weights"
