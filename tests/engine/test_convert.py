"""``engine.convert_checkpoint``: ``yolox-edge convert`` as a library call, with the CLI's result
and without leaving torch's thread count or random stream changed."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from yolox_edge.engine import convert_checkpoint, load_checkpoint, save_checkpoint
from yolox_edge.errors import UserError
from yolox_edge.models import create_model
from yolox_edge.quantize import build_calibration_set


@pytest.fixture
def teacher_and_calib(tmp_path, randomize_model):
    src = tmp_path / "t.pt"
    save_checkpoint(src, randomize_model(create_model("test_dw", num_classes=2), seed=1), class_names=["a", "b"])
    imgs = tmp_path / "imgs"
    imgs.mkdir()
    rng = np.random.default_rng(0)
    for i in range(4):
        cv2.imwrite(str(imgs / f"{i}.png"), cv2.GaussianBlur(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8), (9, 9), 0))
    build_calibration_set(imgs, tmp_path / "calib", img_size=64, count=4)
    return src, tmp_path / "calib"


def test_convert_checkpoint_equals_the_cli_and_restores_global_state(tmp_path, teacher_and_calib, run_cli) -> None:
    src, calib = teacher_and_calib
    threads = torch.get_num_threads()
    torch.manual_seed(5)
    expected = torch.rand(2)
    torch.manual_seed(5)
    res = convert_checkpoint(str(src), to="test_hswish", calib=calib, out=tmp_path / "lib.pt", steps=2, batch=4,
                             threads=1, progress=False)
    assert torch.get_num_threads() == threads  # the fit's thread count was the CLI's process-wide setting
    assert torch.equal(torch.rand(2), expected)  # the fit seeded torch's global generator
    assert res.path == tmp_path / "lib.pt" and res.variant == "test_hswish" and res.blocks
    assert res.to_dict()["source"]["from_variant"] == "test_dw"
    code, _, err = run_cli("convert", str(src), "--to", "test_hswish", "--calib", str(calib), "--out",
                           str(tmp_path / "cli.pt"), "--steps", "2", "--batch", "4", "--threads", "1")
    assert code == 0, err
    lib, cli = load_checkpoint(res.path), load_checkpoint(tmp_path / "cli.pt")
    assert lib["source"] == cli["source"]
    assert all(torch.equal(lib["model"][k], cli["model"][k]) for k in cli["model"])


def test_convert_checkpoint_refuses_an_existing_output(tmp_path, teacher_and_calib) -> None:
    src, calib = teacher_and_calib
    (tmp_path / "out.pt").write_bytes(b"keep")
    with pytest.raises(UserError, match="out.pt: a checkpoint is already there"):
        convert_checkpoint(src, to="test_hswish", calib=calib, out=tmp_path / "out.pt", steps=1, batch=4,
                           progress=False)
    assert (tmp_path / "out.pt").read_bytes() == b"keep"


def test_the_converted_checkpoint_keeps_the_teachers_category_ids(tmp_path, teacher_and_calib) -> None:
    src, calib = teacher_and_calib
    ckpt = load_checkpoint(src)
    teacher = create_model("test_dw", num_classes=2)
    teacher.load_state_dict(ckpt["model"])
    ids = save_checkpoint(tmp_path / "ids.pt", teacher, class_names=["a", "b"], category_ids=[7, 40])
    res = convert_checkpoint(ids, to="test_hswish", calib=calib, out=tmp_path / "out.pt", steps=1, batch=4,
                             progress=False)
    assert load_checkpoint(res.path)["category_ids"] == [7, 40]


@pytest.mark.parametrize("flag", [[], ["--no-flip"]], ids=["default", "no-flip"])
def test_convert_fits_on_the_mirrored_images_too_unless_no_flip(tmp_path, teacher_and_calib, run_cli, monkeypatch,
                                                                 flag) -> None:
    """By default the fit sees each calibration image and its mirror; ``--no-flip`` only the images
    (the checkpoint's source record says which)."""
    from yolox_edge.engine import reconstruct
    from yolox_edge.quantize.calib import load_calibration_set

    src, calib = teacher_and_calib
    seen = []
    real = reconstruct._capture_all_outputs

    def spy(teacher, names, images):
        seen.append(images.clone())
        return real(teacher, names, images)

    monkeypatch.setattr(reconstruct, "_capture_all_outputs", spy)
    code, _, err = run_cli("convert", str(src), "--to", "test_hswish", "--calib", str(calib), "--out",
                           str(tmp_path / "s.pt"), "--steps", "1", "--batch", "4", "--threads", "1", *flag)
    assert code == 0, err
    cal = torch.from_numpy(load_calibration_set(calib).data)
    (images,) = seen
    if flag:
        assert torch.equal(images, cal)
    else:
        assert torch.equal(images, torch.cat([cal, cal.flip(-1)]))
    assert load_checkpoint(tmp_path / "s.pt")["source"]["flip"] is not bool(flag)


@pytest.mark.parametrize("threads, pct, said", [(None, 63.0, True), (None, 20.0, False), (1, 90.0, False)],
                         ids=["busy", "quiet", "one-thread"])
def test_convert_says_when_other_work_took_its_cores(tmp_path, teacher_and_calib, monkeypatch, threads, pct,
                                                     said) -> None:
    """The load reading is injected (torch at 2 threads): busy -> one line to ``log``; quiet -> none;
    threads=1 -> none and nothing sampled (one thread waits for no other)."""
    from yolox_edge.bench import hostload

    src, calib = teacher_and_calib
    reads: list[str] = []
    monkeypatch.setattr(hostload, "sample", lambda *a, **k: reads.append("sample") or object())
    monkeypatch.setattr(hostload, "host_load", lambda start, end, **k: {"window_s": 3.0, "cpus": [0, 1],
                                                                         "other_pct": pct, "steal_pct": 0.0})
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    lines: list[str] = []
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        convert_checkpoint(src, to="test_hswish", calib=calib, out=tmp_path / "a.pt", steps=1, batch=4,
                           threads=threads, progress=False, log=lines.append)
        convert_checkpoint(src, to="test_hswish", calib=calib, out=tmp_path / "b.pt", steps=1, batch=4,
                           threads=threads, progress=False, log=None)  # not said: nothing measured either
    finally:
        torch.set_num_threads(before)
    if said:
        assert lines == ["note: other processes used 63% of the 2 cores while converting; beside other work torch's "
                         "threads wait for each other (the fit ran 5x slower at 2 threads and 1.5x at 1, measured "
                         "on 2 cores): try --threads 1 (threads=1 in Python) or OMP_WAIT_POLICY=PASSIVE in the "
                         "environment"]
    else:
        assert lines == []
    assert reads == ([] if threads == 1 else ["sample", "sample"])



def test_convert_size_and_batch_errors_say_what_convert_can_do(tmp_path, teacher_and_calib, run_cli) -> None:
    """A set of another size was told 'or quantize at its size with --img-size', which convert has
    not; --batch above the images said 'need at least 9 images' and neither --batch nor the mirrored
    copies, which count (4 images give 8 samples)."""
    src, calib = teacher_and_calib
    imgs = tmp_path / "imgs"
    build_calibration_set(imgs, tmp_path / "c96", img_size=96, count=4)
    code, _, err = run_cli("convert", src, "--to", "test_hswish", "--calib", tmp_path / "c96", "--out", tmp_path / "a.pt")
    assert code == 2 and "rebuild it with 'calibrate --img-size 64'" in err and "quantize at its size" not in err, err
    code, _, err = run_cli("convert", src, "--to", "test_hswish", "--calib", calib, "--out", tmp_path / "b.pt",
                           "--batch", "9", "--steps", "1")
    assert code == 2 and "--batch 9 (batch=9 in Python) is more than the 8 samples the calibration set gives (4 " \
                         "images, mirrored); lower --batch" in err, err
    code, _, err = run_cli("convert", src, "--to", "test_hswish", "--calib", calib, "--out", tmp_path / "c.pt",
                           "--batch", "8", "--steps", "1")
    assert code == 0, err  # 8 samples: enough
