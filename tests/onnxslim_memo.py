"""Test-session memo of ``onnxslim.slim`` (imported by basename from conftest).

Every ONNX, OpenVINO and INT8 export simplifies its traced graph with onnxslim: ~1.5 s per call
on the tiny test models (the Nano topology), ~95 calls in the suite, many of them the same
graph (the same checkpoint exported again under options that change what is done after
the slim: another format, quantization options, a test's own stop). The slim is a pure
function of the serialized graph, so the memo keys on those bytes (the call's keywords too)
and hands each caller its own copy of the first result. The trace before it and everything
after it still run for real in every test.
"""
from __future__ import annotations

import hashlib
from collections.abc import Callable

ENV = "YOLOX_EDGE_TEST_SLIM_MEMO"  # "0": the session runs onnxslim unmemoized


def enabled() -> bool:
    """Whether the session memoizes (not turned off through ``ENV``)."""
    import os

    return os.environ.get(ENV, "1") != "0"


def memoize(real: Callable) -> Callable:
    """``real`` (onnxslim.slim) with the result of a ModelProto call kept per graph and keywords;
    ``cached.hits`` / ``cached.misses`` count the calls."""
    import onnx

    memo: dict[tuple, bytes] = {}

    def cached(model, *args, **kwargs):
        if args or not isinstance(model, onnx.ModelProto):
            return real(model, *args, **kwargs)  # a path or an output file: not what export_onnx calls
        key = (hashlib.sha256(model.SerializeToString(deterministic=True)).hexdigest(),
               tuple(sorted((k, repr(v)) for k, v in kwargs.items())))
        if key in memo:
            cached.hits += 1
        else:
            cached.misses += 1
            out = real(model, **kwargs)
            if not isinstance(out, onnx.ModelProto):
                return out
            memo[key] = out.SerializeToString()
        copy = onnx.ModelProto()
        copy.ParseFromString(memo[key])
        return copy

    cached.hits = cached.misses = 0
    return cached


def install(monkeypatch) -> Callable | None:
    """Put the memo in place of ``onnxslim.slim``; None without onnxslim."""
    try:
        import onnxslim
    except ImportError:
        return None
    cached = memoize(onnxslim.slim)
    monkeypatch.setattr(onnxslim, "slim", cached)
    return cached
