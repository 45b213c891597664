"""``yolox-edge bench-compare A.json B.json``: the table and lines, --tolerance, --mode, --json,
the --fail-slower gate's exit 1, and every bad input as one line and exit 2."""
from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

TINY = "tiny.pt [torch fp32]"


@pytest.fixture
def pair(tiny_bench_json: Path, tmp_path: Path) -> tuple[Path, Path]:
    """A real bench result, and a copy with tiny.pt's 1-thread e2e p50 30 % slower and onnxruntime newer."""
    a = json.loads(tiny_bench_json.read_text())
    b = copy.deepcopy(a)
    row = next(r for r in b["rows"] if r["label"] == TINY and r["threads"] == 1)
    row["latency_ms"]["e2e"]["p50"] = round(row["latency_ms"]["e2e"]["p50"] * 1.3, 3)
    a["machine"]["runtimes"]["onnxruntime"], b["machine"]["runtimes"]["onnxruntime"] = "1.31.0", "1.32.0"
    (tmp_path / "a.json").write_text(json.dumps(a))
    (tmp_path / "b.json").write_text(json.dumps(b))
    return tmp_path / "a.json", tmp_path / "b.json"


def one_line_error(result: tuple[int, str, str], *names: str) -> str:
    code, _out, err = result
    assert code == 2, (code, err)
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith("yolox-edge bench-compare: error: "), lines[0]
    for name in names:
        assert name in lines[0], (name, lines[0])
    return lines[0]


def test_prints_the_table_summary_and_differences_and_exits_0(run_cli, pair) -> None:
    a, b = pair
    code, out, err = run_cli("bench-compare", a, b)
    assert code == 0, err
    assert out.startswith(f"A: {a}\nB: {b}\n\n| model | threads | mode | A p50 ms | B p50 ms | change |\n")
    assert f"| {TINY} | 1 | e2e | " in out and "**+30.0 %** |" in out
    assert f"\n7 of 8 p50s within 15 %; largest: {TINY} x1 e2e +30.0 % (B slower).\n" in out
    assert "What differs between the runs:\n- onnxruntime 1.31.0 -> 1.32.0\n" in out
    code, out, _ = run_cli("bench-compare", a, b, "--tolerance", "35")
    assert code == 0 and "8 of 8 p50s within 35 %" in out and "**" not in out


def test_mode_limits_the_rows(run_cli, pair) -> None:
    code, out, err = run_cli("bench-compare", *pair, "--mode", "model")
    assert code == 0, err
    assert "| e2e |" not in out and out.count(" | model | ") == 4 and "4 of 4 p50s within 15 %" in out


def test_fail_slower_is_a_regression_gate(run_cli, pair) -> None:
    a, b = pair
    code, out, err = run_cli("bench-compare", a, b, "--fail-slower", "20")
    assert code == 1, err
    assert out.rstrip().endswith(f"--fail-slower 20: 1 row(s) of B more than 20 % slower than in A: {TINY} x1 e2e "
                                 "+30.0 %; exit 1")
    code, out, _ = run_cli("bench-compare", a, b, "--fail-slower", "31")
    assert code == 0 and "No row of B is more than 31 % slower than in A (--fail-slower)." in out
    code, _, _ = run_cli("bench-compare", b, a, "--fail-slower", "0")  # B faster: no regression
    assert code == 0
    code, out, _ = run_cli("bench-compare", "--help")
    assert code == 0 and "regression gate for CI" in " ".join(out.split())


def test_one_run_given_twice_is_named_and_no_gate_passes_on_it(run_cli, pair, tmp_path) -> None:
    a, _ = pair
    code, out, err = run_cli("bench-compare", a, a)
    assert code == 0, err
    assert out.startswith(f"A: {a}\nB: {a}\nA and B are the same run (the same file): every p50 is compared with "
                          "itself, so this shows nothing about whether the times repeat; compare two separate runs\n\n")
    assert "8 of 8 p50s unchanged: A and B are the same run, not a repeat." in out
    code, out, err = run_cli("bench-compare", a, a, "--json")
    assert code == 0 and json.loads(out)["same_run"] == "the same file" and "same run" in err
    # a regression gate fed one run twice would pass whatever the times: exit 2, as for no row in common
    line = one_line_error(run_cli("bench-compare", a, a, "--fail-slower", "10", "--json", tmp_path / "c.json"))
    assert line.endswith(f"{a} is both A and B: --fail-slower 10 would pass whatever the times; give the reference "
                         "run as A and the new run as B")
    assert not (tmp_path / "c.json").exists()
    copied = tmp_path / "copy.json"
    copied.write_bytes(a.read_bytes())
    line = one_line_error(run_cli("bench-compare", a, copied, "--fail-slower", "0"), str(a), str(copied))
    assert f"{a} and {copied} are the same run (identical contents): --fail-slower 0 would pass" in line


def test_json_as_on_every_command(run_cli, pair, tmp_path) -> None:
    code, out, err = run_cli("bench-compare", *pair, "--json", "--fail-slower", "20")
    assert code == 1
    d = json.loads(out)  # stdout holds the JSON alone, the report moved to stderr
    assert d["schema"] == "yolox_edge.bench_compare/1" and d["within"] == 7 and len(d["fail_slower"]["rows"]) == 1
    assert d["same_run"] is None
    assert "p50s within 15 %" in err
    code, out, _ = run_cli("bench-compare", *pair, "--json", tmp_path / "cmp.json")
    assert code == 0 and "p50s within 15 %" in out
    assert json.loads((tmp_path / "cmp.json").read_text())["compared"] == 8
    one_line_error(run_cli("bench-compare", *pair, "--json", tmp_path / "cmp.md"), "cmp.md")


def test_every_bad_input_is_one_line_naming_the_file(run_cli, pair, tmp_path) -> None:
    a, _ = pair
    line = one_line_error(run_cli("bench-compare", a, tmp_path / "missing.json"), str(tmp_path / "missing.json"))
    assert line.endswith("no such bench report (bench --json); check the path")
    (tmp_path / "text.json").write_text("not json")
    line = one_line_error(run_cli("bench-compare", tmp_path / "text.json", a), str(tmp_path / "text.json"))
    assert "not valid JSON" in line and "yolox-edge bench --json" in line
    (tmp_path / "eval.json").write_text('{"AP": 0.31, "AP50": 0.5}')
    line = one_line_error(run_cli("bench-compare", a, tmp_path / "eval.json"), str(tmp_path / "eval.json"))
    assert "not a bench report (no \"schema\"" in line
    (tmp_path / "other.json").write_text('{"schema": "yolox_edge.eval/1"}')
    one_line_error(run_cli("bench-compare", a, tmp_path / "other.json"), "schema 'yolox_edge.eval/1'")
    one_line_error(run_cli("bench-compare", a, tmp_path), str(tmp_path), "is not a file")
    one_line_error(run_cli("bench-compare", a), "required: B.json")  # one report is an argparse error


def test_reports_with_no_row_in_common_exit_2(run_cli, pair, tmp_path) -> None:
    a, b = pair
    other = json.loads(b.read_text())
    for r in other["rows"]:
        r["threads"] += 4
    (tmp_path / "x4.json").write_text(json.dumps(other))
    line = one_line_error(run_cli("bench-compare", a, tmp_path / "x4.json", "--fail-slower", "10"), str(a),
                          str(tmp_path / "x4.json"))
    assert "have no row in common" in line and f"B has {TINY} x5" in line
