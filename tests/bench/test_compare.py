"""bench.compare on a real bench result (``tiny_bench_json``) and hand-edited copies of it: a row
slowed by 30 %, a row removed, a runtime version changed, a busy or drifting run."""
from __future__ import annotations

import copy
import json
from pathlib import Path

import jsonschema
import pytest

import yolox_edge.bench as bench_pkg
from yolox_edge.bench import compare_reports, comparison_table
from yolox_edge.bench.compare import COMPARE_SCHEMA, read_report
from yolox_edge.bench.hostload import host_load_warning
from yolox_edge.bench.report import drift_warnings
from yolox_edge.errors import BadArgument, UserError

SCHEMA = json.loads((Path(bench_pkg.__file__).parent / "schema.json").read_text())
TINY, TINY2 = "tiny.pt [torch fp32]", "tiny2.pt [torch fp32]"


@pytest.fixture
def a(tiny_bench_json: Path) -> dict:
    report = json.loads(tiny_bench_json.read_text())
    jsonschema.validate(report, SCHEMA)  # what the edits below start from is a bench result as written
    return report


def _row(report: dict, label: str, threads: int) -> dict:
    return next(r for r in report["rows"] if r["label"] == label and r["threads"] == threads)


def test_a_run_against_itself_matches_every_row_and_mode(a: dict, tiny_bench_json: Path) -> None:
    cmp = compare_reports(tiny_bench_json, tiny_bench_json)
    assert [(r.label, r.threads, r.mode) for r in cmp.rows] == [
        (label, t, m) for label in (TINY, TINY2) for t in (1, 2) for m in ("model", "e2e")]
    assert all(r.change_pct == 0.0 and not r.beyond for r in cmp.rows)
    assert cmp.rows[0].p50_a == _row(a, TINY, 1)["latency_ms"]["model"]["p50"]
    assert cmp.only_a == cmp.only_b == [] and cmp.differences == []
    assert cmp.a == cmp.b == str(tiny_bench_json) and cmp.modes == ["model", "e2e"]
    assert cmp.rows[0].speedup_a is None  # no baseline row in either run: no speed-up columns
    table = comparison_table(cmp)
    assert "| model | threads | mode | A p50 ms | B p50 ms | change |\n" in table and "speed-up" not in table


def test_one_run_given_twice_says_so_above_the_table(a: dict, tiny_bench_json: Path, tmp_path: Path) -> None:
    cmp = compare_reports(tiny_bench_json, tiny_bench_json)
    assert cmp.same_run == "the same file" and cmp.within == 8
    # not "8 of 8 p50s within 15 %", which reads as two runs that agreed
    assert cmp.summary() == "8 of 8 p50s unchanged: A and B are the same run, not a repeat"
    table = comparison_table(cmp)
    assert table.startswith(f"A: {tiny_bench_json}\nB: {tiny_bench_json}\nA and B are the same run (the same file): "
                            "every p50 is compared with itself, so this shows nothing about whether the times repeat; "
                            "compare two separate runs\n\n| model |")
    assert table.count("same run") == 2  # the line above the table and the summary
    link = tmp_path / "link.json"
    try:
        link.symlink_to(tiny_bench_json)
    except OSError:  # no symlinks here (Windows without the privilege): a hard link is one file too
        link.hardlink_to(tiny_bench_json)
    assert compare_reports(tiny_bench_json, link).same_run == "the same file"
    copied = _write(tmp_path / "copy.json", tiny_bench_json.read_bytes())
    assert compare_reports(tiny_bench_json, copied).same_run == "identical contents"
    # the same data written another way (indented, as `jq .` leaves it), and loaded dicts, are one run too
    indented = _write(tmp_path / "indented.json", json.dumps(a, indent=2))
    assert compare_reports(tiny_bench_json, indented).same_run == "identical contents"
    assert compare_reports(a, copy.deepcopy(a)).same_run == "identical contents"
    assert compare_reports(a, indented).same_run == "identical contents"
    assert json.loads(json.dumps(compare_reports(a, a).to_dict()))["same_run"] == "identical contents"


def test_two_runs_are_not_the_same_run(a: dict, tiny_bench_json: Path, tmp_path: Path) -> None:
    b = copy.deepcopy(a)
    _row(b, TINY, 1)["latency_ms"]["e2e"]["p50"] *= 1.001  # one p50 apart: two runs, however close
    cmp = compare_reports(tiny_bench_json, _write(tmp_path / "b.json", json.dumps(b)))
    assert cmp.same_run is None and cmp.to_dict()["same_run"] is None
    assert "same run" not in comparison_table(cmp) and cmp.summary().startswith("8 of 8 p50s within 15 %; largest: ")


def test_a_row_slowed_by_30_percent_is_beyond_the_tolerance(a: dict) -> None:
    b = copy.deepcopy(a)
    slow = _row(b, TINY2, 2)["latency_ms"]["e2e"]
    slow["p50"] = round(slow["p50"] * 1.3, 3)
    cmp = compare_reports(a, b)
    assert (cmp.a, cmp.b) == ("A", "B")  # loaded reports have no path to name them by
    moved = [r for r in cmp.rows if r.beyond]
    assert [(r.label, r.threads, r.mode) for r in moved] == [(TINY2, 2, "e2e")]
    assert moved[0].change_pct == pytest.approx(30.0, abs=0.1) and moved[0].p50_b == slow["p50"]
    assert cmp.within == 7 and cmp.largest is moved[0]
    assert cmp.summary() == f"7 of 8 p50s within 15 %; largest: {TINY2} x2 e2e {moved[0].change_pct:+.1f} % (B slower)"
    assert cmp.slower_than(25) == moved and cmp.slower_than(31) == []
    table = comparison_table(cmp)
    assert f"| {TINY2} | 2 | e2e | " in table and f"**{moved[0].change_pct:+.1f} %** |" in table
    assert compare_reports(a, b, tolerance=35).within == 8
    # the other way: B faster by 30 % is beyond the tolerance too, and no regression
    fast = compare_reports(b, a)
    assert fast.within == 7 and fast.largest.change_pct == pytest.approx(-23.1, abs=0.1)
    assert "(B faster)" in fast.summary() and fast.slower_than(0) == []


def test_rows_in_one_run_only_are_named_and_the_rest_compared(a: dict) -> None:
    b = copy.deepcopy(a)
    b["rows"].remove(_row(b, TINY, 2))
    cmp = compare_reports(a, b)
    assert cmp.only_a == [(TINY, 2, "model"), (TINY, 2, "e2e")] and cmp.only_b == []
    assert len(cmp.rows) == 6 and cmp.summary().startswith("6 of 6 p50s within 15 %")
    assert f"Only in A: {TINY} x2.\n" in comparison_table(cmp)
    assert f"Only in B: {TINY} x2.\n" in comparison_table(compare_reports(b, a))
    del _row(b, TINY2, 1)["latency_ms"]["e2e"]  # a row that lacks one mode names it
    assert f"Only in A: {TINY} x2, {TINY2} x1 (e2e)." in comparison_table(compare_reports(a, b))


def test_each_run_speed_up_over_its_own_baseline_when_both_have_one(a: dict) -> None:
    for r in a["rows"]:  # tiny2.pt stands in for the official-style baseline
        r["baseline"] = r["label"] == TINY2
    b = copy.deepcopy(a)
    _row(b, TINY, 1)["latency_ms"]["e2e"]["p50"] *= 2
    cmp = compare_reports(a, b, mode="e2e")
    row = next(r for r in cmp.rows if (r.label, r.threads) == (TINY, 1))
    base_a, base_b = (_row(x, TINY2, 1)["latency_ms"]["e2e"]["p50"] for x in (a, b))
    assert row.speedup_a == pytest.approx(base_a / _row(a, TINY, 1)["latency_ms"]["e2e"]["p50"])
    assert row.speedup_b == pytest.approx(base_b / _row(b, TINY, 1)["latency_ms"]["e2e"]["p50"])
    assert row.speedup_b == pytest.approx(row.speedup_a / 2)
    assert "A speed-up vs baseline | B speed-up vs baseline |" in comparison_table(cmp)
    b["rows"].remove(_row(b, TINY2, 2))  # B has no 2-thread baseline: neither run's speed-up at 2 threads
    two = next(r for r in compare_reports(a, b).rows if (r.label, r.threads) == (TINY, 2))
    assert two.speedup_a is None and two.speedup_b is None


def test_what_differs_between_machines_and_settings_is_named(a: dict) -> None:
    b = copy.deepcopy(a)
    m, c = b["machine"], b["config"]
    ort = a["machine"]["runtimes"].get("onnxruntime", "1.31.0")
    a["machine"]["runtimes"]["onnxruntime"] = ort
    m["runtimes"]["onnxruntime"] = "99.1.0"
    m["runtimes"]["ncnn"] = m["runtimes"].pop("ncnn", "1.0.20261020")
    a["machine"]["runtimes"].pop("ncnn", None)
    m["cpu"], m["isa"] = "Cortex-A76 x4", [*a["machine"]["isa"], "i8mm"]
    a["machine"]["env"], m["env"] = {}, {"OMP_WAIT_POLICY": "PASSIVE"}
    c.update(runs=300, runs_per_turn=5, cpus=[4, 5, 6, 7])
    _row(b, TINY, 1)["input_size"] = [64, 96]
    lines = [d.line for d in compare_reports(a, b).differences]
    assert lines[0] == (f"different CPUs: {a['machine']['cpu']} (A) and Cortex-A76 x4 (B); comparing across machines: "
                        "a change is the machine's as much as the models'")
    assert "ISA flags: only B has i8mm" in lines
    assert f"onnxruntime {ort} -> 99.1.0" in lines and f"ncnn {m['runtimes']['ncnn']} in B only" in lines
    assert ("environment: OMP_WAIT_POLICY unset -> PASSIVE (it changes the kernels or threads a runtime uses)"
            in lines)
    assert f"cores the bench ran on: {_span(a['config']['cpus'])} -> 4-7" in lines
    assert "runs: 4 -> 300" in lines and f"runs per turn: {a['config']['runs_per_turn']} -> 5" in lines
    assert (f"model input size differs (width x height): {TINY} x1 64x64 -> 96x64: these rows' change is the size's "
            "as much as the run's") in lines
    table = comparison_table(compare_reports(a, b))
    assert "What differs between the runs:\n- different CPUs: " in table and "\n- runs: 4 -> 300\n" in table
    older = copy.deepcopy(b)  # a JSON from before env was recorded: unknown, not 'unset'
    del older["machine"]["env"]
    assert not any(d.what.startswith("env") for d in compare_reports(a, older).differences)


def _span(cpus: list[int]) -> str:
    from yolox_edge.bench.cores import cpu_span

    return cpu_span(cpus)


def test_each_run_keeps_its_own_busy_and_drift_flags_as_bench_words_them(a: dict) -> None:
    # Every drift zeroed first: the fixture's real run may have drifted under load, and more than one
    # drifting row makes bench word it "Machine not steady" instead of the one row's "Not steady".
    for r in a["rows"]:
        r["drift_pct"] = {m: 0.0 for m in r["drift_pct"]}
    b = copy.deepcopy(a)
    b["host_load"] = {"window_s": 3.0, "cpus": [0, 1], "other_pct": 40.0, "steal_pct": 0.0}
    _row(b, TINY, 1)["drift_pct"]["e2e"] = 30.0
    a["host_load"] = {"window_s": 3.0, "cpus": [0, 1], "other_pct": 1.0, "steal_pct": 0.0}
    cmp = compare_reports(a, b)
    assert cmp.flags_a == []
    assert cmp.flags_b == [host_load_warning(b["host_load"]), *drift_warnings(b)]  # bench's own lines, reused
    assert cmp.flags_b[0].startswith("Busy machine") and cmp.flags_b[1].startswith("Not steady")
    table = comparison_table(cmp)
    assert "\nRun B: Busy machine: " in table and "\nRun B: Not steady " in table and "Run A:" not in table


def test_mode_picks_the_timings_compared(a: dict) -> None:
    assert {r.mode for r in compare_reports(a, a, mode="e2e").rows} == {"e2e"}
    assert len(compare_reports(a, a, mode="model").rows) == 4
    b = copy.deepcopy(a)  # B timed the model alone (bench --mode model)
    b["config"]["modes"] = ["model"]
    for r in b["rows"]:
        del r["latency_ms"]["e2e"], r["drift_pct"]["e2e"], r["cpu_ms"]["e2e"]
    cmp = compare_reports(a, b)
    assert cmp.modes == ["model"] and len(cmp.rows) == 4 and cmp.only_a == []
    assert "modes timed: model, e2e -> model (compared: those both timed)" in [d.line for d in cmp.differences]
    with pytest.raises(UserError, match=r"^B: has no e2e timings \(it ran model\); compare with --mode both"):
        compare_reports(a, b, mode="e2e")
    a["config"]["modes"] = ["e2e"]
    with pytest.raises(UserError, match="no mode in common"):
        compare_reports(a, b)


def test_reports_with_no_row_in_common_are_an_error(a: dict) -> None:
    b = copy.deepcopy(a)
    for r in b["rows"]:  # other artifacts (rows naming the same artifact otherwise are matched: below)
        r["label"], r["artifact"] = r["label"].replace(".pt", "_int8"), r["artifact"].replace(".pt", "_int8")
    with pytest.raises(UserError) as e:
        compare_reports(a, b)
    assert str(e.value).startswith("A and B have no row in common (rows are matched by label, thread count and mode): "
                                   f"A has {TINY} x1, {TINY} x2, {TINY2} x1 and 1 more; "
                                   "B has tiny_int8 [torch fp32] x1")


def test_to_dict_is_json_with_the_gate(a: dict) -> None:
    b = copy.deepcopy(a)
    _row(b, TINY, 1)["latency_ms"]["model"]["p50"] *= 1.5
    d = json.loads(json.dumps(compare_reports(a, b).to_dict(fail_slower=10)))
    assert d["schema"] == COMPARE_SCHEMA and d["compared"] == 8 and d["within"] == 7
    assert d["largest"]["label"] == TINY and d["largest"]["change_pct"] == pytest.approx(50, abs=0.1)
    assert d["fail_slower"]["pct"] == 10 and [r["mode"] for r in d["fail_slower"]["rows"]] == ["model"]
    assert d["rows"][0]["p50_b"] == _row(b, TINY, 1)["latency_ms"]["model"]["p50"]
    assert "fail_slower" not in compare_reports(a, b).to_dict()


def test_bad_arguments_are_refused(a: dict) -> None:
    with pytest.raises(BadArgument, match=r"--tolerance -1 \(tolerance=-1 in Python\)"):
        compare_reports(a, a, tolerance=-1)
    with pytest.raises(BadArgument, match=r"--mode fast \(mode='fast' in Python\): must be one of e2e, model, both"):
        compare_reports(a, a, mode="fast")


def _write(path: Path, text: str | bytes) -> Path:
    (path.write_bytes if isinstance(text, bytes) else path.write_text)(text)
    return path


@pytest.mark.parametrize("content, message", [
    (None, "{p}: no such bench report (bench --json); check the path"),
    ("", "{p}: not valid JSON (Expecting value at line 1, column 1); give a file written by `yolox-edge bench --json`"),
    ("{'schema': 1}", "{p}: not valid JSON (Expecting property name enclosed in double quotes at line 1, column 2); "
                      "give a file written by `yolox-edge bench --json`"),
    (b"\x89PNG\r\n\x1a\n\xff\xfe",
     "{p}: not a JSON file (binary data); give a file written by `yolox-edge bench --json`"),
    ("[1, 2]", "{p}: not a bench report (the JSON is a list, not an object); give a file written by "
               "`yolox-edge bench --json`"),
    ('{"AP": 0.3}', "{p}: not a bench report (no \"schema\": 'yolox_edge.bench/1'); give a file written by "
                    "`yolox-edge bench --json`"),
    ('{"schema": "yolox_edge.eval/1"}', "{p}: not a bench report (schema 'yolox_edge.eval/1', expected "
                                        "'yolox_edge.bench/1'); give a file written by `yolox-edge bench --json`"),
    ('{"schema": "yolox_edge.bench/2"}', "{p}: a bench report of schema 'yolox_edge.bench/2', from another version "
                                         "of yolox_edge (this one reads 'yolox_edge.bench/1'); run the bench again "
                                         "with this version"),
])
def test_a_file_that_is_not_a_bench_report_is_one_message_naming_it(tmp_path: Path, content, message) -> None:
    p = tmp_path / "r.json"
    if content is not None:
        _write(p, content)
    with pytest.raises(UserError) as e:
        read_report(p)
    assert str(e.value) == message.format(p=p)
    with pytest.raises(UserError, match=f"^{p}: "):
        compare_reports(tmp_path / "r.json", tmp_path / "r.json")


def test_a_damaged_report_names_what_it_lacks(a: dict, tmp_path: Path) -> None:
    def refused(report: dict) -> str:
        with pytest.raises(UserError) as e:
            read_report(_write(tmp_path / "d.json", json.dumps(report)))
        return str(e.value)

    b = copy.deepcopy(a)
    del b["rows"][1]["latency_ms"]["e2e"]["p50"]
    assert refused(b) == (f"{tmp_path / 'd.json'}: a bench report without a p50 above 0 for e2e in row 2 ({TINY}); "
                          "give the file as bench wrote it")
    b["rows"][1]["latency_ms"]["e2e"]["p50"] = 0.0  # would divide by zero in every ratio
    assert "without a p50 above 0 for e2e in row 2" in refused(b)
    assert "without rows;" in refused({**a, "rows": []})
    assert "without its \"machine\" object;" in refused({k: v for k, v in a.items() if k != "machine"})
    assert "without a complete \"host_load\" (or null);" in refused({**a, "host_load": {"other_pct": 40}})
    assert "without its runtimes and environment as objects;" in refused({**a, "machine": {**a["machine"], "env": []}})
    assert "without its \"config\" and the modes it ran;" in refused({**a, "config": {**a["config"], "modes": "e2e"}})
    b = copy.deepcopy(a)
    b["rows"][0]["input_size"] = [64]
    assert f"without its drift and input size as bench writes them in row 1 ({TINY});" in refused(b)
    assert compare_reports(a, {**a, "host_load": None}).flags_b == drift_warnings(a)  # null: /proc/stat unreadable
    b = copy.deepcopy(a)
    b["rows"].append(copy.deepcopy(b["rows"][0]))
    assert refused(b) == (f"{tmp_path / 'd.json'}: two rows are '{TINY}' at 1 thread(s); bench writes one each: give "
                          "the file as bench wrote it")
    with pytest.raises(UserError, match="^B: a bench report without"):  # a loaded dict is checked as well
        compare_reports(a, {**a, "rows": [{"label": "x"}]})


def test_one_artifact_named_otherwise_in_the_other_run_is_matched_and_said(a: dict) -> None:
    """bench names a row by the shortest path telling its run's artifacts apart: `q/tiny.pt` beside
    another tiny.pt reads `q/tiny.pt [...]`, alone `tiny.pt [...]`; such rows were left unmatched."""
    long_label = "q/tiny.pt [torch fp32]"
    for r in a["rows"]:
        if r["label"] == TINY:
            r["label"], r["artifact"] = long_label, "q/tiny.pt"
    b = copy.deepcopy(a)
    for r in b["rows"]:
        if r["label"] == long_label:
            r["label"], r["artifact"] = TINY, "./q/tiny.pt"  # the same path, typed otherwise
    b["rows"] = [r for r in b["rows"] if r["label"] != TINY2]  # B benched it alone
    cmp = compare_reports(a, b)
    assert {r.label for r in cmp.rows} == {long_label} and len(cmp.rows) == 4
    assert {k[0] for k in cmp.only_a} == {TINY2} and cmp.only_b == []
    assert [d.line for d in cmp.differences if d.what == "row label"] == [
        f"row label: {TINY!r} in B is {long_label!r} in A (the same artifact; bench names rows by the shortest path "
        "that tells the artifacts of its run apart)"]
    for r in b["rows"]:  # another artifact under the same short name: not the same row
        r["artifact"] = "other/tiny.pt"
    with pytest.raises(UserError, match="no row in common"):
        compare_reports(a, b)


def test_a_row_under_a_label_a_names_another_artifact_is_paired_with_its_own_artifact(a: dict) -> None:
    """A benched tiny.pt and q/tiny.pt ('tiny.pt [...]', 'q/tiny.pt [...]'); B benched q/tiny.pt
    alone ('tiny.pt [...]'). Paired by label, B's q/tiny.pt was compared with A's tiny.pt (a
    change of another model) and A's q/tiny.pt listed as only in A."""
    long_label = "q/tiny.pt [torch fp32]"
    for r in a["rows"]:
        if r["label"] == TINY2:
            r["label"], r["artifact"] = long_label, "q/tiny.pt"
    b = copy.deepcopy(a)
    b["rows"] = [dict(r, label=TINY) for r in b["rows"] if r["label"] == long_label]  # as bench names it alone
    cmp = compare_reports(a, b)
    assert {r.label for r in cmp.rows} == {long_label} and {k[0] for k in cmp.only_a} == {TINY}
    for row in cmp.rows:  # each pair is one row's own timings
        want = next(r for r in a["rows"] if r["label"] == long_label and r["threads"] == row.threads)
        assert row.p50_a == row.p50_b == float(want["latency_ms"][row.mode]["p50"])
    assert [d.line for d in cmp.differences if d.what == "row label"] == [
        f"row label: {TINY!r} in B is {long_label!r} in A (the same artifact; bench names rows by the shortest path "
        "that tells the artifacts of its run apart)"]
    # B's tiny.pt times a file A never benched: kept apart from A's tiny.pt, and said
    b = copy.deepcopy(a)
    b["rows"] = [dict(r, artifact="elsewhere/tiny.pt") for r in b["rows"] if r["label"] == TINY]
    with pytest.raises(UserError, match="no row in common"):
        compare_reports(a, b)
