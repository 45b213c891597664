"""Image arrays handed to Predictor: converted as image files are, or refused with a clear error."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from yolox_edge.errors import UserError
from yolox_edge.runtime import load_predictor
from yolox_edge.thresholds import APP_CONF, APP_MAX_DET, APP_NMS_IOU


@pytest.fixture(scope="module")
def pred(tiny_ckpt):
    return load_predictor(tiny_ckpt, conf=0.01)


@pytest.fixture(scope="module")
def img() -> np.ndarray:
    rng = np.random.default_rng(0)
    return cv2.GaussianBlur(rng.integers(0, 256, (48, 80, 3), dtype=np.uint8), (5, 5), 0)


def _same(a, b) -> None:
    assert len(a) > 0 and len(a) == len(b)
    np.testing.assert_allclose(a.boxes, b.boxes, atol=1e-4)
    np.testing.assert_allclose(a.scores, b.scores, atol=1e-5)


def test_16_bit_gray_and_bgra_arrays_give_what_their_8_bit_bgr_gives(pred, img) -> None:
    # uint16 used to be written into the uint8 canvas modulo 256: no detections, no error.
    _same(pred.predict(img.astype(np.uint16) * 257), pred.predict(img))
    gray = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
    want = pred.predict(cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR))
    _same(pred.predict(gray), want)
    _same(pred.predict(gray[:, :, None]), want)
    _same(pred.predict(np.dstack([img, np.full(img.shape[:2], 255, np.uint8)])), pred.predict(img))


@pytest.mark.parametrize("bad, words", [
    (np.zeros((48, 80, 3), np.float32), "dtype float32"),  # 0..1 or 0..255: cannot tell, so refused
    (np.zeros((0, 0, 3), np.uint8), "empty image"),
    (np.zeros((48, 80, 2), np.uint8), "shape (48, 80, 2)"),
    ("not an array but a str path that is missing", "image not found"),
])
def test_arrays_it_cannot_use_are_refused_by_name(pred, bad, words) -> None:
    with pytest.raises(UserError, match=words.replace("(", r"\(").replace(")", r"\)")):
        pred.predict(bad)


def test_a_folder_given_as_the_image_is_named_a_folder_not_missing(pred, tmp_path) -> None:
    """bench/demo --image DIR said 'image not found; check the path' of a path that is there."""
    with pytest.raises(UserError, match=f"{tmp_path}: a folder, not an image file"):
        pred.predict(tmp_path)


def test_a_one_pixel_strip_and_an_empty_batch(pred) -> None:
    det = pred.predict(np.full((1, 1200, 3), 128, np.uint8))  # resized height rounded to 0 before
    assert det.boxes.shape[1] == 4 and (det.boxes[:, 3] <= 1).all()
    assert pred.predict_images([]) == []


def test_a_bundle_brings_the_apps_thresholds(tiny_exports, tmp_path) -> None:
    """A bundle records the thresholds the app runs with; predicting from it used the library's."""
    from yolox_edge.bundle import package_bundle

    zip_path = tmp_path / "b.zip"
    package_bundle(tiny_exports["onnx"], target="onnx", out=zip_path, conf=0.5, iou=0.6, max_det=7)
    p = load_predictor(zip_path)
    assert (p.conf, p.iou, p.max_det) == (0.5, 0.6, 7)
    p = load_predictor(zip_path, conf=0.1, max_det=None)  # given values win; None means 'not given'
    assert (p.conf, p.iou, p.max_det) == (0.1, 0.6, 7)
    assert load_predictor(tiny_exports["onnx"]).conf == APP_CONF  # no bundle: the Predictor's default


def test_load_predictor_names_the_keywords_it_takes_and_refuses_a_typo(tiny_ckpt, tmp_path) -> None:
    """conf, iou, agnostic and max_det went through an untyped **kw: a misspelt one given None
    (max_dets=None) was dropped without a word, and any other reached Predictor() as a TypeError
    after the model had been opened."""
    import inspect

    from yolox_edge.data.preprocess import preprocess

    params = inspect.signature(load_predictor).parameters
    assert {"conf", "iou", "agnostic", "max_det", "preprocess_fn"} <= set(params)
    assert [p.name for p in params.values() if p.kind is p.VAR_KEYWORD] == []
    for typo, value in {"cnof": 0.3, "max_dets": None}.items():
        with pytest.raises(TypeError, match=rf"load_predictor\(\) got an unexpected keyword argument '{typo}'"):
            load_predictor(tmp_path / "missing.pt", **{typo: value})  # said before the model is looked for
    p = load_predictor(tiny_ckpt, conf=0.2, iou=0.5, agnostic=True, max_det=9)
    assert (p.conf, p.iou, p.agnostic, p.max_det) == (0.2, 0.5, True, 9)
    p = load_predictor(tiny_ckpt, defaults={"conf": 0.4, "max_det": 5}, max_det=6)  # given beats defaults
    assert (p.conf, p.iou, p.agnostic, p.max_det) == (0.4, APP_NMS_IOU, False, 6)
    seen = []

    def mine(image, cfg):
        seen.append(image.shape)
        return preprocess(image, cfg)

    load_predictor(tiny_ckpt, preprocess_fn=mine).predict(np.zeros((32, 48, 3), np.uint8))
    assert seen == [(32, 48, 3)]



def test_load_predictor_refuses_a_misspelt_key_of_defaults_before_the_model_is_opened(tiny_ckpt, tmp_path) -> None:
    """defaults={"nms": 0.5} was merged as it was and reached Predictor() after the load, as an
    unexpected keyword of a call the user never made; it is named at the call now, with the keys
    defaults takes: the keywords Predictor() takes beside the backend and info."""
    import inspect

    from yolox_edge.runtime.loader import DEFAULT_KEYS
    from yolox_edge.runtime.predictor import Predictor

    takes = [p.name for p in inspect.signature(Predictor).parameters.values() if p.kind is p.KEYWORD_ONLY]
    assert list(DEFAULT_KEYS) == takes
    with pytest.raises(TypeError, match=r"^load_predictor\(defaults=\): unknown key 'nms'; the keys it takes are "
                                        r"conf, iou, agnostic, max_det, preprocess_fn \(the NMS IoU is 'iou'"):
        load_predictor(tmp_path / "missing.pt", defaults={"nms": 0.5, "conf": 0.3})  # said before the model is looked for
    with pytest.raises(TypeError, match=r"unknown keys 'confidence', 'max_dets'; the keys it takes are conf, "):
        load_predictor(tmp_path / "missing.pt", defaults={"confidence": 0.3, "max_dets": None})
    p = load_predictor(tiny_ckpt, defaults={"iou": 0.5, "agnostic": True, "max_det": None})
    assert (p.conf, p.iou, p.agnostic, p.max_det) == (APP_CONF, 0.5, True, APP_MAX_DET)

def test_library_calls_get_the_range_checks_the_cli_has(pred, tiny_ckpt, tmp_path) -> None:
    from yolox_edge.export import export_model

    with pytest.raises(UserError, match="positive multiple of"):
        pred.set_input_size(0)  # accepted before: input (0, 0)
    with pytest.raises(UserError, match=r"--conf 5.0 \(conf=5.0 in Python\)"):  # an in-graph NMS that could never keep a box
        export_model(tiny_ckpt, format="onnx", out=tmp_path / "x", conf=5.0)
    assert not (tmp_path / "x").exists()
    from yolox_edge.models import create_model

    for n in (0, -3, 2.5, True):  # 0 built empty class convs that trained and exported silently
        with pytest.raises(UserError, match="num_classes must be a whole number"):
            create_model("test", num_classes=n)
    for t in (0, -1, 1.5):  # -1 reached torch.set_num_threads as a RuntimeError traceback
        with pytest.raises(UserError, match="threads must be a whole number"):
            load_predictor(tiny_ckpt, threads=t)
    # conf=30 (a percentage) kept nothing; max_det=1e3 stopped every predict in a TypeError
    for kw in ({"conf": 30}, {"iou": -0.1}, {"max_det": 0}, {"max_det": 1e3}, {"max_det": 10.5}):
        with pytest.raises(UserError, match="thresholds out of range"):
            load_predictor(tiny_ckpt, **kw)


def test_library_cli_and_bundle_share_the_apps_thresholds() -> None:
    """predict/demo/package flags and the library's Predictor once had 0.3 and 0.25: one set now."""
    import inspect

    from yolox_edge.bench import run_bench
    from yolox_edge.bundle import package_bundle
    from yolox_edge.cli import build_parser
    from yolox_edge.runtime.predictor import Predictor

    init = inspect.signature(Predictor.__init__).parameters
    assert (init["conf"].default, init["iou"].default, init["max_det"].default) == (APP_CONF, APP_NMS_IOU, APP_MAX_DET)
    assert inspect.signature(run_bench).parameters["conf"].default == APP_CONF
    assert inspect.signature(package_bundle).parameters["conf"].default == APP_CONF
    parser = build_parser()
    assert parser.parse_args(["demo"]).conf == APP_CONF
    pkg = parser.parse_args(["package", "x", "--target", "onnx", "--out", "b.zip"])
    assert (pkg.conf, pkg.nms) == (APP_CONF, APP_NMS_IOU)


def test_predict_images_reads_paths_and_refuses_one_image(pred, img, tmp_path) -> None:
    """predict_images([path]) was refused with 'expected an array ... or a path, got str'; a bare
    path was iterated letter by letter."""
    path = tmp_path / "a.png"
    cv2.imwrite(str(path), img)
    (by_path,), (by_array,) = pred.predict_images([path]), pred.predict_images([img])
    _same(by_path, by_array)
    for one in (str(path), img):
        with pytest.raises(UserError, match="predict_images takes a list of images, not one .*; for one image call "
                                            r"predict\(image\)"):
            pred.predict_images(one)


def test_img_size_0_is_refused_not_ignored(tiny_ckpt) -> None:
    """load_predictor(img_size=0) ran at the model's own size; 8 was refused."""
    with pytest.raises(UserError, match="tiny.pt: "):
        load_predictor(tiny_ckpt, img_size=0)


def test_a_video_file_read_as_live_is_named_as_a_file(tmp_path) -> None:
    """open_live on a missing or broken video file said to check the network and any user/password."""
    from yolox_edge.runtime.live_source import open_live

    with pytest.raises(UserError, match=r"missing\.mp4: no such file; check the path"):
        open_live(str(tmp_path / "missing.mp4"))
    (tmp_path / "notvideo.mp4").write_text("hello")
    with pytest.raises(UserError, match=r"notvideo\.mp4: cannot be read as a video \(OpenCV's FFmpeg could not open "
                                        r"it\); convert it to MP4"):
        open_live(str(tmp_path / "notvideo.mp4"))
