"""The preprocessing contract: top-left letterbox with pad 114, BGR 0..255 CHW float32,
boxes_to_image inverting the letterbox, and read_image errors naming the file."""
from __future__ import annotations

import re
import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest

from yolox_edge.data.preprocess import (PreprocessConfig, boxes_to_image, letterbox, list_images, preprocess,
                                        read_image)
from yolox_edge.errors import UserError


def test_letterbox_top_left_pad_114() -> None:
    img = np.full((100, 200, 3), 7, np.uint8)
    canvas, r = letterbox(img, (64, 64))
    assert r == pytest.approx(0.32)
    assert canvas.shape == (64, 64, 3) and canvas.dtype == np.uint8
    assert (canvas[:32, :64] == 7).all()  # the image: top-left, 200*0.32 = 64 wide, 32 high
    assert (canvas[32:] == 114).all()  # the padding: below it
    tall = np.full((200, 100, 3), 7, np.uint8)
    canvas, r = letterbox(tall, (64, 96))  # non-square input: limited by height
    assert r == pytest.approx(0.32) and (canvas[:, :32] == 7).all() and (canvas[:, 32:] == 114).all()


def test_preprocess_layout_and_values() -> None:
    img = np.zeros((16, 32, 3), np.uint8)
    img[..., 0], img[..., 1], img[..., 2] = 10, 20, 250  # B, G, R
    x, r = preprocess(img, PreprocessConfig(input_size=(64, 64)))
    assert x.shape == (3, 64, 64) and x.dtype == np.float32 and x.flags["C_CONTIGUOUS"]
    assert r == 2.0
    assert x[:, 0, 0].tolist() == [10.0, 20.0, 250.0]  # BGR kept, 0..255, no mean/std
    assert x[:, 63, 63].tolist() == [114.0] * 3
    x_rgb, _ = preprocess(img, PreprocessConfig(input_size=(64, 64), channel_order="RGB"))
    assert x_rgb[:, 0, 0].tolist() == [250.0, 20.0, 10.0]
    norm = PreprocessConfig(input_size=(64, 64), mean=(10.0, 20.0, 30.0), std=(2.0, 2.0, 2.0))
    assert preprocess(img, norm)[0][:, 0, 0].tolist() == [0.0, 0.0, 110.0]
    with pytest.raises(ValueError):
        preprocess(np.zeros((8, 8), np.uint8))


@pytest.mark.parametrize("order", ["BGR", "RGB"])
def test_preprocess_equals_plain_transpose(order) -> None:
    img = np.random.default_rng(0).integers(0, 256, (37, 53, 3), dtype=np.uint8)
    x, _ = preprocess(img, PreprocessConfig(input_size=(64, 96), channel_order=order))
    canvas, _ = letterbox(img, (64, 96))
    if order == "RGB":
        canvas = canvas[..., ::-1]
    np.testing.assert_array_equal(x, canvas.transpose(2, 0, 1).astype(np.float32))


def test_preprocess_config_round_trip() -> None:
    cfg = PreprocessConfig(input_size=(320, 416), mean=(1.0, 2.0, 3.0), std=(4.0, 5.0, 6.0))
    d = cfg.to_dict()
    assert d["input_size"] == [320, 416] and d["pad_value"] == 114 and d["channel_order"] == "BGR"
    assert PreprocessConfig.from_dict(d) == cfg
    assert PreprocessConfig.from_dict({**PreprocessConfig().to_dict(), "future_key": 1}) == PreprocessConfig()


@pytest.mark.parametrize("hw,input_hw", [((300, 500), (416, 416)), ((500, 300), (416, 416)),
                                          ((123, 457), (64, 96))])
def test_boxes_to_image_inverts_letterbox_mapping(hw, input_hw) -> None:
    rng = np.random.default_rng(0)
    h, w = hw
    xy = rng.uniform(0, [w * 0.6, h * 0.6], (20, 2))
    boxes = np.concatenate([xy, xy + rng.uniform(1, [w * 0.4, h * 0.4], (20, 2))], 1).astype(np.float32)
    _, r = letterbox(np.zeros((h, w, 3), np.uint8), input_hw)
    back = boxes_to_image(boxes * r, r, (h, w))
    assert np.abs(back - boxes).max() < 1.0


@pytest.mark.parametrize("hw,input_hw", [((120, 200), (416, 416)), ((200, 120), (416, 416)),
                                          ((90, 150), (320, 480))])
def test_letterbox_round_trip_on_image_content(hw, input_hw) -> None:
    """A white rectangle found in the letterboxed image maps back onto itself to < 1 px."""
    h, w = hw
    img = np.full((h, w, 3), 40, np.uint8)
    box = np.array([w * 0.2, h * 0.3, w * 0.7, h * 0.8]).round()
    img[int(box[1]):int(box[3]), int(box[0]):int(box[2])] = 255
    x, r = preprocess(img, PreprocessConfig(input_size=input_hw))
    ys, xs = np.nonzero(x[0] > (40 + 255) / 2)
    found = np.array([[xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]], np.float32)
    back = boxes_to_image(found, r, (h, w))[0]
    assert np.abs(back - box).max() < 1.0, (back, box)


def test_boxes_to_image_clips() -> None:
    out = boxes_to_image(np.array([[-10, -5, 500, 300]], np.float32), 0.5, (100, 200))
    assert out.tolist() == [[0, 0, 200, 100]]


def test_boxes_to_image_clips_a_box_past_float32_without_a_warning() -> None:
    """An undertrained model's box (exp of a large raw output) near float32's maximum overflowed in the
    division and printed numpy's RuntimeWarning in the middle of `pipeline --epochs 2`'s benchmark;
    the clip right after makes it the image's edge either way."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = boxes_to_image(np.array([[1, 2, 3e38, 3e38]], np.float32), 0.25, (100, 200))
    assert out.tolist() == [[4, 8, 200, 100]]


def test_recursive_listing_skips_hidden_folders_and_files(tmp_path) -> None:
    """.ipynb_checkpoints and .git copies were sampled as calibration images."""
    for rel in ("a.jpg", "sub/b.png", ".hidden.jpg", ".ipynb_checkpoints/a-checkpoint.jpg",
                "sub/.git/objects/c.jpg", "sub/.cache/d.jpg"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"x")
    found = list_images(tmp_path, recursive=True)
    assert found == [tmp_path / "a.jpg", tmp_path / "sub" / "b.png"]
    # a hidden folder given as the source itself is searched: only what is below it is skipped
    assert list_images(tmp_path / "sub" / ".cache", recursive=True) == [tmp_path / "sub" / ".cache" / "d.jpg"]


def test_read_image(tmp_path) -> None:
    img = np.zeros((10, 20, 3), np.uint8)
    img[..., 2] = 255  # red in BGR
    p = tmp_path / "red.png"
    cv2.imwrite(str(p), img)
    got = read_image(p)
    assert got.shape == (10, 20, 3) and got[0, 0].tolist() == [0, 0, 255]
    gray = tmp_path / "gray.png"
    cv2.imwrite(str(gray), np.zeros((5, 5), np.uint8))
    assert read_image(gray).shape == (5, 5, 3)


@pytest.mark.parametrize("content", [None, b"", b"this is not an image"])
def test_read_image_errors_name_the_file(tmp_path, content) -> None:
    p = tmp_path / "bad.jpg"
    if content is not None:
        p.write_bytes(content)
    with pytest.raises(UserError, match="bad.jpg"):
        read_image(p)


@pytest.mark.parametrize("suffix, fmt", [(".jpg", "JPEG"), (".png", "PNG"), (".webp", "WebP")])
def test_an_image_cut_short_is_named_truncated_not_an_unknown_format(tmp_path, suffix, fmt) -> None:
    """A JPEG cut at 3,000 bytes was 'not a readable image (expected JPEG, PNG, ...)': it is a JPEG.
    A JPEG or PNG whose end is missing is called cut short in training's words (calibrate said 'a
    JPEG file, but truncated or damaged' where training skipped the same file as 'truncated image:
    file ends before ...'); a WebP, whose end has no marker, is a WebP that does not decode."""
    from yolox_edge.data import check

    full = tmp_path / f"full{suffix}"
    rng = np.random.default_rng(0)
    cv2.imwrite(str(full), rng.integers(0, 255, (200, 300, 3), np.uint8))
    cut = tmp_path / f"broken{suffix}"
    for keep in (40, len(full.read_bytes()) // 2):  # the header itself cut (nothing decodes), or mid-way
        cut.write_bytes(full.read_bytes()[:keep])
        with pytest.raises(UserError) as predict_says:
            read_image(cut)
        with pytest.raises(check.BadSample) as training_says:
            check.load_image(cut)
        assert str(predict_says.value) == str(training_says.value)
        if fmt == "WebP":
            assert re.fullmatch(rf".*broken\{suffix}: unreadable image: a {fmt} file, but truncated or damaged "
                                ".*re-copy.*", str(predict_says.value)), predict_says.value
        else:
            assert str(predict_says.value) == check.problem(check.TRUNCATED, cut, check.CUT_SHORT)
            assert str(predict_says.value).endswith(": truncated image: file ends before the image data does; "
                                                    "re-copy or re-export it")
    other = tmp_path / "notes.jpg"
    other.write_bytes(b"this is not an image at all")
    # not only the five formats of the old words: AVIF, GIF, ... are read where this OpenCV decodes them
    with pytest.raises(UserError, match=r"notes\.jpg: unreadable image: not an image this OpenCV decodes \(JPEG, PNG, "
                       r"BMP, WebP and TIFF, and AVIF, GIF and others where its build has the decoder\); convert it "
                       r"to JPEG or PNG"):
        read_image(other)


def test_read_image_refuses_what_training_refuses_in_its_words(tmp_path, monkeypatch) -> None:
    """read_image (predict, eval, calibrate) and training's load_image disagreed: a PNG without its
    IEND chunk that a decoder accepts was read by predict and skipped by training as truncated, and
    a file that does not decode was 'FILE: not an image ...' in predict but 'FILE: unreadable image:
    not an image ...' in training. One rule (check.read_problem), one wording; a whole PNG with
    bytes after its IEND chunk is whole for both (training called it truncated)."""
    from yolox_edge.data import check

    rng = np.random.default_rng(0)
    whole = cv2.imencode(".png", rng.integers(0, 255, (60, 80, 3), np.uint8))[1].tobytes()
    p = tmp_path / "shot.png"

    def both(path: Path) -> tuple[str, str]:
        with pytest.raises(UserError) as predict_says:
            read_image(path)
        with pytest.raises(check.BadSample) as training_says:
            check.load_image(path)
        return str(predict_says.value), str(training_says.value)

    for data in (whole + b"appended by an app " * 20, whole + bytes(5000)):  # after IEND: whole
        p.write_bytes(data)
        assert read_image(p).shape == check.load_image(p).shape == (60, 80, 3)
        assert check.check_image_file(p) == (80, 60)
    for bad, kind in ((b"", check.UNREADABLE), (b"not an image", check.UNREADABLE), (whole[:100], check.TRUNCATED)):
        p.write_bytes(bad)
        said = both(p)
        assert said[0] == said[1] and said[0].startswith(f"{p}: {kind}: "), said
    # a PNG without its IEND chunk (a copy stopped after the image data) that a decoder accepts
    p.write_bytes(whole[:-12])
    monkeypatch.setattr(cv2, "imdecode", lambda data, flags: np.full((60, 80, 3), 128, np.uint8))
    assert both(p) == (check.problem(check.TRUNCATED, p, check.CUT_SHORT),) * 2
    p.write_bytes(whole)
    assert read_image(p).shape == (60, 80, 3)


def test_a_jpeg_cut_off_after_its_header_is_refused_as_truncated(tmp_path, monkeypatch) -> None:
    """A decoder that fills a cut JPEG with grey rows (libjpeg's file source does: cv2.imread here;
    cv2.imdecode on some OpenCV builds) let predict run on them; data check refused the file by its
    end marker. A phone's motion photo (a video after the JPEG's end) and a cut file whose EXIF
    thumbnail ends in the same two bytes are told apart by the file's segments."""
    from yolox_edge.data.check import jpeg_cut_short

    rng = np.random.default_rng(0)
    img = cv2.GaussianBlur(rng.integers(0, 256, (240, 320, 3)).astype(np.uint8), (5, 5), 2)
    cut, motion = tmp_path / "cut.jpg", tmp_path / "PXL_MP.jpg"
    # OpenCV 5.1's imdecode refuses a cut JPEG already: decode as a build that does not
    monkeypatch.setattr(cv2, "imdecode", lambda data, flags: np.full((240, 320, 3), 128, np.uint8))
    for flags in ([], [cv2.IMWRITE_JPEG_PROGRESSIVE, 1], [cv2.IMWRITE_JPEG_RST_INTERVAL, 2]):
        whole = cv2.imencode(".jpg", img, flags)[1].tobytes()
        for keep in (400, len(whole) * 6 // 10, len(whole) - 2):  # just after the header, mid-way, all but the marker
            cut.write_bytes(whole[:keep])
            with pytest.raises(UserError, match=r"cut\.jpg: truncated image: file ends before the image data does; "
                                                r"re-copy or re-export it"):
                read_image(cut)
        motion.write_bytes(whole + b"\x00\x00\x00\x18ftypmp42" + rng.integers(0, 256, 20000, np.uint8).tobytes())
        assert read_image(motion).shape == (240, 320, 3)
        cut.write_bytes(whole + bytes(3000))  # zero padding after the marker: whole
        assert read_image(cut).shape == (240, 320, 3)
        # an APP1 segment holding the two bytes of an end marker (an EXIF thumbnail's), then the image, cut
        app1 = b"\xff\xe1" + (2 + 6).to_bytes(2, "big") + b"\xff\xd9abcd"
        thumb = whole[:2] + app1 + whole[2:]
        assert not jpeg_cut_short(thumb) and jpeg_cut_short(thumb[: len(thumb) - 5000])
    assert not jpeg_cut_short(b"\xff\xd8" + b"\x00" * 10)  # no segment structure: left to the decoder
