"""``yolox-edge models --json``: Nano, Tiny and S within 1% of the YOLOX README figures."""
from __future__ import annotations

import json

import pytest

# YOLOX README: params (M), GFLOPs at the variant's input size (416 Nano/Tiny, 640 S).
README = {"nano": (0.91, 1.08, 416), "tiny": (5.06, 6.45, 416), "s": (9.0, 26.8, 640)}


def test_models_json_matches_official(run_cli) -> None:
    code, out, err = run_cli("models", "--json", "--variant", "nano", "--variant", "tiny", "--variant", "s")
    assert code == 0, err
    rows = {r["name"]: r for r in json.loads(out)}
    assert set(rows) == set(README)
    for name, (params_m, gflops, size) in README.items():
        r = rows[name]
        assert r["input_size"] == size
        assert r["params_m"] == pytest.approx(params_m, rel=0.01), name
        assert r["gflops"] == pytest.approx(gflops, rel=0.01), name
        assert (r["official_params_m"], r["official_gflops"]) == (params_m, gflops)


def test_models_table_and_unknown_variant(run_cli) -> None:
    code, out, _ = run_cli("models", "--variant", "yolox_nano")
    assert code == 0 and "nano" in out and "0.91" in out
    code, out, err = run_cli("models", "--variant", "nope")
    assert code == 2 and "nope" in err and "Traceback" not in err


def test_official_figures_only_beside_the_80_class_head(run_cli) -> None:
    code, out, err = run_cli("models", "--json", "--variant", "nano", "--num-classes", "1")
    assert code == 0, err
    (row,) = json.loads(out)
    assert row["params_m"] < 0.91 and row["official_params_m"] is None and row["official_gflops"] is None
    code, out, _ = run_cli("models", "--variant", "nano", "--num-classes", "1")
    assert code == 0 and "0.91 " not in out and "omitted at --num-classes 1" in out
