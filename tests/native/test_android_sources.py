"""The Android app's Kotlin sources, checked on the host where no Android SDK builds the app.

Checks that need no SDK: every Kotlin file parses (tree-sitter's Kotlin grammar; skipped
when it is not installed), and each ``external fun`` of the Kotlin side has the JNI function of
the same name and types in the C++ side (a mismatch builds, then fails on the phone at the first
call with an UnsatisfiedLinkError). A third reads the photo loader's EXIF orientation matrices
and checks them against OpenCV's upright picture.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

APP = Path(__file__).resolve().parents[2] / "android_demo" / "app" / "src" / "main"
KOTLIN = sorted([*APP.parent.parent.parent.rglob("*.kt"), *APP.parent.parent.parent.rglob("*.kts")])
JNI = APP / "cpp" / "jni" / "yolox_jni.cpp"

# Kotlin parameter and return types -> the JNI C type of a static native method's argument
JNI_TYPES = {"Long": "jlong", "Int": "jint", "Float": "jfloat", "Boolean": "jboolean", "String": "jstring",
             "FloatArray": "jfloatArray", "IntArray": "jintArray", "Array<String>": "jobjectArray", "Unit": "void"}


def kotlin_externals() -> dict[str, tuple[str, list[str], str]]:
    """``external fun`` name -> (JNI class prefix, JNI parameter types, JNI return type)."""
    found = {}
    for f in KOTLIN:
        text = f.read_text()
        if "external fun" not in text:
            continue
        package = re.search(r"^package\s+([\w.]+)", text, re.M).group(1)
        cls = re.search(r"^class\s+(\w+)", text, re.M).group(1)  # @JvmStatic in the companion: the class's
        for m in re.finditer(r"external fun (\w+)\(([^)]*)\)(?:\s*:\s*([\w<>]+))?", text):
            params = [p.split(":")[1].strip() for p in m.group(2).split(",") if p.strip()]
            found[m.group(1)] = ("Java_" + package.replace(".", "_") + "_" + cls,
                                 [JNI_TYPES.get(p, "jobject") for p in params], JNI_TYPES[m.group(3) or "Unit"])
    return found


def jni_exports() -> dict[str, tuple[str, list[str]]]:
    """JNI function name -> (return type, parameter types after JNIEnv* and jclass)."""
    text = JNI.read_text()
    out = {}
    for m in re.finditer(r"JNIEXPORT\s+(\w+)\s+JNICALL\s+(\w+)\s*\(([^)]*)\)", text):
        params = [p.split()[0] for p in " ".join(m.group(3).split()).split(",")]
        assert params[:2] == ["JNIEnv*", "jclass"], f"{m.group(2)}: a static native method takes (JNIEnv*, jclass, ...)"
        out[m.group(2)] = (m.group(1), params[2:])
    return out


def test_each_external_fun_has_its_jni_function_with_the_same_types() -> None:
    kotlin, cpp = kotlin_externals(), jni_exports()
    assert len(kotlin) >= 6, kotlin  # the detector's create/destroy/names/settings/describe/detect
    for name, (prefix, params, ret) in kotlin.items():
        symbol = f"{prefix}_{name}"
        assert symbol in cpp, f"{name}: no {symbol} in {JNI.name}"
        assert cpp[symbol] == (ret, params), f"{symbol}: {cpp[symbol]} in C++, {(ret, params)} from Kotlin"
    assert len(cpp) == len(kotlin), f"JNI functions no Kotlin declares: {set(cpp) - {p + '_' + n for n, (p, _, _) in kotlin.items()}}"


def test_the_kotlin_sources_parse() -> None:
    tsk = pytest.importorskip("tree_sitter_kotlin")
    from tree_sitter import Language, Parser

    parser = Parser(Language(tsk.language()))
    assert KOTLIN, "no Kotlin sources found"
    for f in KOTLIN:
        root = parser.parse(f.read_bytes()).root_node
        bad = []

        def walk(node) -> None:
            if node.type == "ERROR" or node.is_missing:
                bad.append(f"line {node.start_point[0] + 1}: {node.text[:60]!r}")
            for child in node.children:
                walk(child)

        walk(root)
        assert not root.has_error, f"{f}: Kotlin syntax error(s): {'; '.join(bad) or 'see tree-sitter'}"


def _kotlin_orientation_matrices() -> dict[str, np.ndarray]:
    """ImageLoading.orientationMatrix's branches as 3x3 matrices, by EXIF constant name, built
    with android.graphics.Matrix's rules: setX replaces the matrix, postX multiplies after it;
    setRotate(d) turns clockwise on screen (y down)."""
    src = (APP / "java" / "com" / "yoloxedge" / "demo" / "ImageLoading.kt").read_text()
    body = src[src.index("fun orientationMatrix"):]
    out = {}
    for name, calls in re.findall(r"ExifInterface\.ORIENTATION_(\w+) -> Matrix\(\)\.apply \{ ([^}]*) \}", body):
        m = np.eye(3)
        for op, args in re.findall(r"(setScale|setRotate|postScale|postRotate)\(([^)]*)\)", calls):
            a = [float(v.strip().rstrip("f")) for v in args.split(",")]
            if op.endswith("Scale"):
                t = np.diag([a[0], a[1], 1.0])
            else:
                r = np.deg2rad(a[0])
                t = np.array([[np.cos(r), -np.sin(r), 0], [np.sin(r), np.cos(r), 0], [0, 0, 1]])
            m = t if op.startswith("set") else t @ m
        out[name] = m
    return out


@pytest.mark.parametrize("orientation", range(1, 9))
def test_the_app_makes_a_photo_upright_as_opencv_does_for_each_exif_orientation(orientation, tmp_path) -> None:
    """The app applied EXIF rotations (3, 6, 8) only: a mirrored (2, 4) or transposed (5, 7)
    photo reached the model mirrored or sideways, where the SDK (OpenCV, which applies all
    eight) saw it upright. Here the app's matrix, applied as Bitmap.createBitmap does (the
    mapped bounds moved to the origin), puts a 40x20 photo's top-left block where OpenCV puts
    it, in a picture of the same size."""
    import cv2
    from PIL import Image

    names = {2: "FLIP_HORIZONTAL", 3: "ROTATE_180", 4: "FLIP_VERTICAL", 5: "TRANSPOSE", 6: "ROTATE_90",
             7: "TRANSVERSE", 8: "ROTATE_270"}
    matrices = _kotlin_orientation_matrices()
    assert set(matrices) == set(names.values()), sorted(matrices)
    w, h = 40, 20
    stored = np.zeros((h, w, 3), np.uint8)
    stored[0:6, 0:10] = 255  # a block at the top-left of the stored pixels
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = tmp_path / f"o{orientation}.jpg"
    Image.fromarray(stored).save(path, exif=exif.tobytes(), quality=95)
    upright = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    ys, xs = np.nonzero(upright > 128)
    want_centre = (xs.mean() + 0.5, ys.mean() + 0.5)

    m = matrices.get(names.get(orientation), np.eye(3))
    corners = m @ np.array([[0, w, w, 0], [0, 0, h, h], [1, 1, 1, 1]], float)
    left, top = corners[0].min(), corners[1].min()
    size = (round(corners[1].max() - top), round(corners[0].max() - left))
    cx, cy, _ = m @ np.array([5.0, 3.0, 1.0])  # the block's centre in stored pixels
    assert size == upright.shape, (size, upright.shape)
    assert abs(cx - left - want_centre[0]) < 1.0 and abs(cy - top - want_centre[1]) < 1.0, \
        ((cx - left, cy - top), want_centre)
