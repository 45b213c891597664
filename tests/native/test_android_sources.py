"""The Android app's Kotlin sources, checked on the host where no Android SDK builds the app.

Two checks that need no SDK: every Kotlin file parses (tree-sitter's Kotlin grammar; skipped
when it is not installed), and each ``external fun`` of the Kotlin side has the JNI function of
the same name and types in the C++ side (a mismatch builds, then fails on the phone at the first
call with an UnsatisfiedLinkError).
"""
from __future__ import annotations

import re
from pathlib import Path

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
