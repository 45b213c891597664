"""The Android app's native detection core, built with the system compiler and compared with the Python runtime.

The C++ core (android_demo/app/src/main/cpp/core) is built with CMake into a temporary
folder; its unit tests run, then its host driver is fed what the Python side produces
(images, metadata.json, graph outputs) and must give the same letterbox, input tensor,
settings and detections (same labels, boxes within 1 px).
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest

from yolox_edge.data.preprocess import PreprocessConfig, boxes_to_image, letterbox, preprocess, read_image
from yolox_edge.postprocess import filter_nms_numpy, postprocess_numpy

CPP = Path(__file__).resolve().parents[2] / "android_demo" / "app" / "src" / "main" / "cpp"


@pytest.fixture(scope="module")
def native(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Folder with the built yolox_core_tests and yolox_core_host binaries."""
    cxx = os.environ.get("CXX") or shutil.which("c++") or shutil.which("g++") or shutil.which("clang++")
    if not cxx:
        pytest.skip("no C++ compiler on this machine (c++/g++/clang++); the native core cannot be built")
    if not shutil.which("cmake"):
        pytest.skip("cmake not found; the native core is built with CMake")
    build = tmp_path_factory.mktemp("native_build")
    for cmd in (["cmake", "-S", str(CPP), "-B", str(build), "-DCMAKE_BUILD_TYPE=Release", f"-DCMAKE_CXX_COMPILER={cxx}"],
                ["cmake", "--build", str(build), "-j", "2"]):
        res = subprocess.run(cmd, capture_output=True, text=True)
        assert res.returncode == 0, f"{' '.join(cmd)} failed:\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}"
    return build


def host(native: Path, *args) -> str:
    res = subprocess.run([str(native / "yolox_core_host"), *map(str, args)], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    return res.stdout


def test_core_unit_tests(native: Path) -> None:
    res = subprocess.run([str(native / "yolox_core_tests")], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert "all core tests passed" in res.stdout


@pytest.mark.parametrize("img_wh,input_wh", [((768, 576), (416, 416)), ((2443, 424), (416, 416)), ((1, 1), (64, 64)),
                                               ((333, 1000), (640, 480)), ((416, 416), (416, 416)), ((37, 3000), (320, 320)),
                                               ((1200, 1), (416, 416)), ((2, 2400), (160, 96))])
def test_letterbox_geometry_matches_python(native: Path, img_wh, input_wh) -> None:
    """The resized size is the part of Python's canvas the image fills (read from the canvas, not
    recomputed: a 1200x1 strip keeps one row in Python, where the app's core gave it none)."""
    w, h = img_wh
    canvas, r = letterbox(np.full((h, w, 3), 255, np.uint8), (input_wh[1], input_wh[0]))
    filled = np.argwhere((canvas == 255).all(-1))
    ratio, rw, rh = host(native, "geometry", w, h, *input_wh).split()
    assert float(ratio) == r and (int(rh), int(rw)) == tuple(filled.max(0) + 1)


def _fill(native: Path, tmp: Path, img: np.ndarray, fmt: str, input_hw, order: str = "BGR") -> np.ndarray:
    h, w = img.shape[:2]
    (tmp / "px.u8").write_bytes(np.ascontiguousarray(img).tobytes())
    host(native, "fill", tmp / "px.u8", w, h, fmt, input_hw[1], input_hw[0], 114, order, tmp / "x.f32")
    return np.fromfile(tmp / "x.f32", np.float32).reshape(3, *input_hw)


@pytest.mark.parametrize("img_hw,input_hw", [((576, 768), (416, 416)), ((50, 31), (416, 416)), ((128, 96), (64, 64)),
                                             ((300, 200), (320, 256)), ((64, 64), (64, 64)), ((12, 1000), (96, 160)), ((31, 50), (416, 416)),
                                             ((1, 1200), (416, 416)), ((2400, 2), (96, 160))])
def test_input_fill_matches_python_preprocess(native: Path, tmp_path: Path, img_hw, input_hw) -> None:
    rng = np.random.default_rng(sum(img_hw))
    # Smooth gradients plus noise: both the interpolation and its rounding are exercised.
    yy, xx = np.mgrid[0:img_hw[0], 0:img_hw[1]]
    img = ((xx * 3 + yy * 5)[..., None] + rng.integers(0, 60, (*img_hw, 3))).astype(np.uint8)
    ref, _ = preprocess(img, PreprocessConfig(input_size=input_hw))
    got = _fill(native, tmp_path, img, "BGR", input_hw)
    diff = np.abs(got - ref)
    # Bit-exact with OpenCV here; one grey level is allowed for other OpenCV builds.
    assert diff.max() <= 1 and (diff > 0).mean() < 1e-3, (diff.max(), (diff > 0).mean())
    # The app hands over Android's RGBA bitmaps; RGB output order for RGB models.
    rgba = np.concatenate([img[..., ::-1], np.full((*img_hw, 1), 255, np.uint8)], -1)
    np.testing.assert_array_equal(_fill(native, tmp_path, rgba, "RGBA", input_hw), got)
    np.testing.assert_array_equal(_fill(native, tmp_path, img, "BGR", input_hw, "RGB"), got[::-1])


def test_semi_transparent_png_matches_python(native: Path, tmp_path: Path) -> None:
    """Android hands the app premultiplied colour (c * a / 255); OpenCV reads a PNG's colour as stored
    and drops alpha. The app un-premultiplies, so both sides see the same image again."""
    rng = np.random.default_rng(7)
    hw = (90, 120)
    yy, xx = np.mgrid[0:hw[0], 0:hw[1]]
    bgr = ((xx * 2 + yy)[..., None] + rng.integers(0, 60, (*hw, 3))).astype(np.uint8)
    alpha = rng.integers(64, 256, (*hw, 1)).astype(np.uint8)
    alpha[:30] = 255  # an opaque band: untouched either way
    cv2.imwrite(str(tmp_path / "t.png"), np.concatenate([bgr, alpha], -1))
    ref, _ = preprocess(read_image(tmp_path / "t.png"), PreprocessConfig(input_size=(64, 64)))
    # Skia's rounding of c * a / 255, as BitmapFactory stores a semi-transparent PNG.
    prod = bgr[..., ::-1].astype(np.int32) * alpha + 128
    rgba = np.concatenate([((prod + (prod >> 8)) >> 8).astype(np.uint8), alpha], -1)
    got = _fill(native, tmp_path, rgba, "RGBA_PREMUL", (64, 64))
    diff = np.abs(got - ref)
    # Un-premultiplying rounds twice: within 255 / (2 a) + 1 levels, 3 at alpha 64.
    assert diff.max() <= 3 and diff.mean() < 0.3, (diff.max(), diff.mean())
    assert np.abs(_fill(native, tmp_path, rgba, "RGBA", (64, 64)) - ref).max() > 50  # what the app saw before
    opaque = np.concatenate([bgr[..., ::-1], np.full((*hw, 1), 255, np.uint8)], -1)
    np.testing.assert_array_equal(_fill(native, tmp_path, opaque, "RGBA_PREMUL", (64, 64)),
                                  _fill(native, tmp_path, opaque, "RGBA", (64, 64)))


def _write_case(tmp: Path, kind: str, boxes: np.ndarray, scores: np.ndarray, labels: np.ndarray | None,
                image_wh, input_wh, conf: float, nms: float, max_det: int = 300, agnostic: bool = False) -> Path:
    boxes.astype(np.float32).tofile(tmp / "boxes.f32")
    scores.astype(np.float32).tofile(tmp / "scores.f32")
    case = {"kind": kind, "boxes": "boxes.f32", "scores": "scores.f32", "count": int(boxes.shape[0]),
            "image": list(image_wh), "input": list(input_wh), "conf": conf, "nms": nms, "max_det": max_det,
            "agnostic": agnostic}
    if kind == "topk":
        labels.astype(np.float32).tofile(tmp / "labels.f32")
        case["labels"] = "labels.f32"
    else:
        case["num_classes"] = int(scores.shape[1])
    (tmp / "case.json").write_text(json.dumps(case))
    return tmp / "case.json"


def _parse_dets(text: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rows = [line.split() for line in text.strip().splitlines()]
    labels = np.array([int(r[0]) for r in rows], np.int64)
    scores = np.array([float(r[1]) for r in rows], np.float32)
    boxes = np.array([[float(v) for v in r[2:]] for r in rows], np.float32).reshape(-1, 4)
    return boxes, scores, labels


def _assert_same(cpp, py, px: float = 1.0) -> None:
    boxes, scores, labels = cpp
    assert labels.tolist() == py.labels.tolist()
    np.testing.assert_allclose(scores, py.scores, atol=1e-5)
    assert np.abs(boxes - py.boxes).max(initial=0.0) <= px


@pytest.mark.parametrize("agnostic", [False, True])
def test_postprocess_matches_python_on_crowded_candidates(native: Path, tmp_path: Path, agnostic: bool) -> None:
    """Many overlapping boxes of few classes: thresholding, NMS order and clipping must agree exactly."""
    rng = np.random.default_rng(7)
    n, c, img_wh, in_wh = 400, 5, (640, 360), (416, 416)
    centers = rng.uniform(-20, 430, (n, 2))
    sizes = rng.uniform(5, 120, (n, 2))
    boxes = np.concatenate([centers - sizes / 2, centers + sizes / 2], 1).astype(np.float32)
    scores = rng.uniform(0, 1, (n, c)).astype(np.float32) ** 3
    r = min(in_wh[1] / img_wh[1], in_wh[0] / img_wh[0])
    py = postprocess_numpy(boxes[None], scores[None], conf=0.2, iou=0.45, agnostic=agnostic, max_det=50)[0]
    py.boxes = boxes_to_image(py.boxes, r, img_wh[::-1])
    case = _write_case(tmp_path, "decoded", boxes, scores, None, img_wh, in_wh, 0.2, 0.45, 50, agnostic)
    cpp = _parse_dets(host(native, "postprocess", case))
    assert len(py) > 10
    _assert_same(cpp, py, px=1e-3)


def _metadata_fields(meta: dict) -> dict:
    blobs = {o["name"]: o.get("blob", o["name"]) for o in meta["outputs"]}
    pp = meta.get("postprocess", {})
    return {"name": meta["model"], "precision": meta["precision"], "input_size": meta["input_size"],
            "pad_value": meta["preprocess"]["pad_value"], "channel_order": meta["preprocess"]["channel_order"],
            "output_kind": meta["graph"]["output_kind"], "input_name": meta["input"]["name"],
            "boxes_output": blobs["boxes"], "scores_output": blobs["scores"], "labels_output": blobs.get("labels", ""),
            "class_names": meta["class_names"], "files": meta["files"], "conf": pp.get("conf"), "nms": pp.get("nms"),
            "max_det": pp.get("max_det"), "agnostic": pp.get("agnostic")}


@pytest.fixture(scope="module")
def nano_topk_case(refdata: Path, nano_coco_ckpt: Path) -> dict:
    """dog.jpg through the official Nano (torch runtime): the C++-filled input, the graph outputs, Python's detections."""
    from yolox_edge.runtime import load_predictor

    pred = load_predictor(nano_coco_ckpt, conf=0.3, iou=0.45)
    img = read_image(refdata / "images" / "dog.jpg")
    return {"pred": pred, "img": img, "dets": pred.predict(img)}


@pytest.mark.refdata
@pytest.mark.parametrize("kind", ["decoded", "topk"])
def test_boxes_with_inf_or_nan_and_rows_with_a_nan_score_are_no_detections_as_in_python(native: Path, tmp_path: Path,
                                                                                       kind: str) -> None:
    """The core kept an inf box (clamped to a full-width phantom, the top score of the image) and a
    NaN one, and a row whose NaN score it skipped past; the SDK drops them all."""
    boxes = np.array([[0, 0, 100, 100], [2, 2, 100, 100], [0, 0, np.inf, 50], [300, 300, 350, np.nan],
                      [200, 10, 260, 60], [10, 300, 60, 380]], np.float32)
    scores = np.array([[0.9, 0.0], [0.8, 0.0], [0.95, 0.0], [0.0, 0.7], [0.85, np.nan], [0.0, 0.6]], np.float32)
    img_wh, in_wh = (640, 640), (416, 416)
    r = min(in_wh[1] / img_wh[1], in_wh[0] / img_wh[0])
    with np.errstate(invalid="ignore"):
        py = postprocess_numpy(boxes[None], scores[None], conf=0.3, iou=0.5)[0]
    py.boxes = boxes_to_image(py.boxes, r, img_wh[::-1])
    assert py.scores.tolist() == pytest.approx([0.9, 0.6])  # the inf, NaN and NaN-score rows dropped
    if kind == "topk":  # the graph's form: one score and label a row (the NaN-score row as NaN)
        best = np.where(np.isnan(scores).any(1), np.nan, scores.max(1))
        case = _write_case(tmp_path, "topk", boxes, best, scores.argmax(1), img_wh, in_wh, 0.3, 0.5)
    else:
        case = _write_case(tmp_path, "decoded", boxes, scores, None, img_wh, in_wh, 0.3, 0.5)
    _assert_same(_parse_dets(host(native, "postprocess", case)), py, px=1e-3)


def test_dog_detections_match_python_runtime(native: Path, tmp_path: Path, nano_topk_case: dict) -> None:
    """The app's whole host-side path: C++ letterbox fill -> model (Python runtime) -> C++ threshold/NMS/mapping."""
    import torch

    from yolox_edge.postprocess import select_topk

    pred, img, py = nano_topk_case["pred"], nano_topk_case["img"], nano_topk_case["dets"]
    h, w = img.shape[:2]
    in_hw = pred.info.preprocess.input_size
    x = _fill(native, tmp_path, img, "BGR", in_hw)  # the app's input tensor, not Python's
    out = pred.backend.infer(x[None])  # decoded boxes [1, N, 4] + scores [1, N, C]
    assert [d["name"] for d in py.to_list(names=pred.class_names)][:3] == ["dog", "bicycle", "car"]

    dense = _write_case(tmp_path, "decoded", out["boxes"][0], out["scores"][0], None, (w, h), in_hw[::-1], 0.3, 0.45)
    _assert_same(_parse_dets(host(native, "postprocess", dense)), py)

    # The same through a top-K graph's outputs (what ONNX/OpenVINO bundles hand back).
    tb, ts, tl = (t[0].numpy() for t in select_topk(torch.from_numpy(out["boxes"]), torch.from_numpy(out["scores"]), 100))
    topk = _write_case(tmp_path, "topk", tb, ts, tl, (w, h), in_hw[::-1], 0.3, 0.45)
    _assert_same(_parse_dets(host(native, "postprocess", topk)), py)
    py_topk = filter_nms_numpy(tb, ts, tl, conf=0.3, iou=0.45)
    assert py_topk.labels.tolist() == py.labels.tolist()


def test_metadata_reader_matches_python(native: Path, tmp_path: Path) -> None:
    """A real packaged bundle's metadata.json reads the same in C++ (settings, names, blobs, hashes)."""
    from yolox_edge.bundle import extract_bundle, package_bundle
    from yolox_edge.export.metadata import build_metadata, output_specs, write_metadata

    names = ["person", "bi\"cycle", "caf\u00e9 \u2615", "a\\b"]  # quotes, escapes and non-ASCII survive
    exp = tmp_path / "exp"
    exp.mkdir()
    for f in ("m.ncnn.param", "m.ncnn.bin"):
        (exp / f).write_bytes(os.urandom(100))
    meta = build_metadata(fmt="ncnn", model_file="m.ncnn.param", model_name="yolox_test", variant="test",
                          class_names=names, preprocess=PreprocessConfig(input_size=(96, 160)), strides=(8, 16, 32),
                          kind="decoded", topk=None, input_name="in0", batch=1,
                          outputs=output_specs("decoded", batch=1, num_anchors=315, num_classes=4, topk=None,
                                               blobs=["out0", "out1"]),
                          precision="int8", source_sha256=None)
    write_metadata(exp, meta, ["m.ncnn.param", "m.ncnn.bin"])
    package_bundle(exp, target="ncnn", out=tmp_path / "b.zip", conf=0.4, iou=0.5, max_det=20)
    folder, meta = extract_bundle(tmp_path / "b.zip", out=tmp_path / "x")
    got = json.loads(host(native, "metadata", folder / "metadata.json"))
    want = _metadata_fields(meta)
    for k in ("conf", "nms"):
        assert abs(got.pop(k) - want.pop(k)) < 1e-6
    assert got == want
    # Whitespace and key order do not matter to the reader.
    (tmp_path / "compact.json").write_text(json.dumps(dict(reversed(list(meta.items()))), separators=(",", ":")))
    assert json.loads(host(native, "metadata", tmp_path / "compact.json"))["class_names"] == names
    meta["graph"]["output_kind"] = "raw"
    (tmp_path / "raw.json").write_text(json.dumps(meta))
    res = subprocess.run([str(native / "yolox_core_host"), "metadata", tmp_path / "raw.json"], capture_output=True, text=True)
    assert res.returncode == 1 and "graph.output_kind" in res.stderr


@pytest.mark.slow
def test_app_path_on_an_ncnn_bundle(native: Path, tmp_path: Path) -> None:
    """What the JNI code does, step by step, on a real ncnn bundle: C++ reads metadata.json,
    fills the input; ncnn (the same library, through its Python bindings) runs the blobs the
    C++ side named with fp16 off; C++ thresholds, NMS and maps. Must equal `predict BUNDLE`."""
    import ncnn
    import torch

    from yolox_edge.bundle import extract_bundle, package_bundle
    from yolox_edge.engine.checkpoint import save_checkpoint
    from yolox_edge.export.api import export_model
    from yolox_edge.models import create_model
    from yolox_edge.runtime import load_predictor

    torch.manual_seed(0)
    model = create_model("test", num_classes=3)
    with torch.no_grad():  # confident objectness: many overlapping candidates for NMS to sort out
        for conv in model.head.obj_preds:
            conv.bias.fill_(4.0)
        for conv in model.head.cls_preds:
            conv.bias.uniform_(-1.0, 1.0)
    save_checkpoint(tmp_path / "tiny.pt", model, class_names=["a", "b", "c"])
    export_model(tmp_path / "tiny.pt", format="ncnn", out=tmp_path / "export")
    package_bundle(tmp_path / "export", target="ncnn", out=tmp_path / "tiny.zip", conf=0.35, iou=0.45)
    folder, _ = extract_bundle(tmp_path / "tiny.zip", out=tmp_path / "assets")
    cfg = json.loads(host(native, "metadata", folder / "metadata.json"))

    rng = np.random.default_rng(3)
    img = cv2.GaussianBlur(rng.integers(0, 256, (90, 150, 3)).astype(np.uint8), (9, 9), 3)
    h, w = img.shape[:2]
    x = _fill(native, tmp_path, img, "BGR", tuple(cfg["input_size"]))
    net = ncnn.Net()
    net.opt.use_fp16_storage = net.opt.use_fp16_packed = net.opt.use_fp16_arithmetic = False
    net.opt.use_bf16_storage = False
    files = list(cfg["files"])
    assert net.load_param(str(folder / next(f for f in files if f.endswith(".param")))) == 0
    assert net.load_model(str(folder / next(f for f in files if f.endswith(".bin")))) == 0
    ex = net.create_extractor()
    ex.input(cfg["input_name"], ncnn.Mat(np.ascontiguousarray(x)))
    outs = {}
    for role in ("boxes", "scores"):
        ret, mat = ex.extract(cfg[f"{role}_output"])
        assert ret == 0
        outs[role] = np.array(mat)
    assert cfg["output_kind"] == "decoded"
    case = _write_case(tmp_path, "decoded", outs["boxes"], outs["scores"], None, (w, h),
                       cfg["input_size"][::-1], cfg["conf"], cfg["nms"], cfg["max_det"], cfg["agnostic"])
    cpp = _parse_dets(host(native, "postprocess", case))

    cv2.imwrite(str(tmp_path / "img.png"), img)
    py = load_predictor(tmp_path / "tiny.zip", conf=cfg["conf"], iou=cfg["nms"], max_det=cfg["max_det"]).predict(
        tmp_path / "img.png")
    assert len(py) >= 3
    _assert_same(cpp, py, px=0.01)


# Edits of a bundle's metadata.json, and whether the app's reader takes them: Python's mirror of
# that reader (bundle/app_contract.py, what `verify` checks) must give the same verdict.
_APP_VERDICTS = [
    (lambda m: None, True),
    (lambda m: m["graph"].update(output_kind="raw"), False),
    (lambda m: m["preprocess"].update(mean=[0.0, 0.0, 0.0]), False),
    (lambda m: m["preprocess"].update(mean=None, std=None), True),  # null: no normalisation
    (lambda m: m["preprocess"].update(std=[1.0, 1.0, 1.0]), False),
    (lambda m: m["preprocess"].update(channel_order="GRAY"), False),
    (lambda m: m["preprocess"].update(channel_order="RGB"), True),
    (lambda m: m["preprocess"].update(letterbox="center"), False),
    (lambda m: m["preprocess"].update(letterbox=True), False),  # not the string top-left: refused by both
    (lambda m: m["preprocess"].update(letterbox=None), True),  # null is absent
    (lambda m: m["preprocess"].update(pad_value=114.5), False),
    (lambda m: m["preprocess"].update(value_range=[0.0, 1.0]), False),  # the app fed 0..255 anyway
    (lambda m: m["preprocess"].update(value_range=[0, 255.0]), True),
    (lambda m: m["preprocess"].update(value_range=None), True),
    (lambda m: m["preprocess"].update(value_range="0..255"), False),
    (lambda m: m["preprocess"].update(value_range=[True, 255]), False),
    (lambda m: m["preprocess"].update(layout="NHWC"), False),
    (lambda m: m["preprocess"].update(layout="NCHW"), True),
    (lambda m: m["preprocess"].pop("layout"), True),
    (lambda m: m["preprocess"].update(pad_value=114.0), True),
    (lambda m: m["preprocess"].update(pad_value=300), False),  # predict stopped with an OverflowError
    (lambda m: m["preprocess"].update(pad_value=-1), False),
    (lambda m: m["preprocess"].update(pad_value=255), True),
    (lambda m: m["graph"].update(box_format="cxcywh"), False),
    (lambda m: m["input"].update(name=7), False),
    (lambda m: m.update(outputs=[o for o in m["outputs"] if o["name"] != "scores"]), False),
    (lambda m: m.update(class_names=[]), False),
    (lambda m: m.update(precision=8), False),
    (lambda m: m.update(schema_version=True), False),
    (lambda m: m["postprocess"].update(max_det=2**31), False),
    (lambda m: m["postprocess"].update(max_det=2**31 - 1), True),
    (lambda m: m["postprocess"].update(agnostic=0), False),
    (lambda m: m.pop("postprocess"), True),
    (lambda m: m.update(category_ids=[7, 40]), True),  # an optional field the reader skips
]


@pytest.mark.parametrize("edit, app_takes", _APP_VERDICTS)
def test_verify_refuses_what_the_app_reader_refuses(native: Path, tmp_path: Path, edit, app_takes: bool) -> None:
    from yolox_edge.bundle import extract_bundle, package_bundle
    from yolox_edge.bundle.app_contract import check_app_reads
    from yolox_edge.errors import UserError
    from yolox_edge.export.metadata import build_metadata, output_specs, write_metadata

    exp = tmp_path / "exp"
    exp.mkdir()
    for f in ("m.ncnn.param", "m.ncnn.bin"):
        (exp / f).write_bytes(os.urandom(100))
    meta = build_metadata(fmt="ncnn", model_file="m.ncnn.param", model_name="yolox_test", variant="test",
                          class_names=["a", "b"], preprocess=PreprocessConfig(input_size=(64, 64)), strides=(8, 16, 32),
                          kind="topk", topk=10, input_name="in0", batch=1,
                          outputs=output_specs("topk", batch=1, num_anchors=84, num_classes=2, topk=10,
                                               blobs=["out0", "out1", "out2"]),
                          precision="fp32", source_sha256=None)
    write_metadata(exp, meta, ["m.ncnn.param", "m.ncnn.bin"])
    package_bundle(exp, target="ncnn", out=tmp_path / "b.zip")
    _, meta = extract_bundle(tmp_path / "b.zip", out=tmp_path / "x")
    edit(meta)
    (tmp_path / "edited.json").write_text(json.dumps(meta))
    res = subprocess.run([str(native / "yolox_core_host"), "metadata", tmp_path / "edited.json"],
                         capture_output=True, text=True)
    assert (res.returncode == 0) == app_takes, res.stderr
    try:
        check_app_reads(tmp_path / "b.zip", meta)
        said = None
    except UserError as e:
        said = str(e)
    assert (said is None) == app_takes, said
    if said is not None:  # the same field named: "metadata.json: FIELD: ..." from C++
        field = res.stderr.split("metadata.json: ", 1)[1].split(":", 1)[0]
        assert f"metadata.json {field} " in said, (res.stderr, said)
