"""Compare two ``bench --json`` results: which p50s moved beyond run-to-run noise, each run's
speed-up over its own baseline, and what differs between the two machines or configurations
that a reader must know before trusting a change (another CPU, runtime version, pinning, ...).

Before and after a change on one device, two devices, or two consecutive runs (the project's
own repeat check: every p50 of the same row within 15 %, docs/PERFORMANCE.md section 10).
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

from ..errors import BadArgument, UserError, flag_value, require_file
from .cores import cpu_span
from .hostload import host_load_warning
from .report import drift_warnings, md_cell, speedups
from .runner import MODES, SCHEMA

COMPARE_SCHEMA = "yolox_edge.bench_compare/1"
DEFAULT_TOLERANCE = 15.0  # %: two consecutive runs on a quiet machine stay within it (PERFORMANCE.md, section 10)
MODE_ORDER = ("model", "e2e")  # as bench orders them
WHAT_TO_GIVE = "give a file written by `yolox-edge bench --json`"


@dataclass(frozen=True)
class RowChange:
    """One row and mode timed in both runs. ``change_pct`` is B against A in % of A (+: B slower);
    ``speedup_a``/``speedup_b`` are each run's p50 speed-up over its
    own baseline row at the same thread count, given only when both runs have one."""

    label: str
    threads: int
    mode: str
    p50_a: float
    p50_b: float
    change_pct: float
    beyond: bool
    speedup_a: float | None = None
    speedup_b: float | None = None
    input_size_a: list[int] | None = None
    input_size_b: list[int] | None = None

    @property
    def name(self) -> str:
        return f"{self.label} x{self.threads} {self.mode}"


@dataclass(frozen=True)
class Difference:
    """Something recorded differently in the two runs' ``machine`` or ``config``: ``what``, the two
    values as recorded, and the sentence the report prints."""

    what: str
    a: object
    b: object
    line: str


@dataclass(frozen=True)
class BenchComparison:
    """What ``compare_reports`` found. ``a`` and ``b`` name the runs (their paths, or "A" and "B").
    ``same_run`` says why A and B are one run, every p50 compared with itself ("the same file",
    "identical contents"), or is None for two runs."""

    a: str
    b: str
    tolerance: float
    modes: list[str]
    rows: list[RowChange]
    only_a: list[tuple[str, int, str]] = field(default_factory=list)  # (label, threads, mode)
    only_b: list[tuple[str, int, str]] = field(default_factory=list)
    differences: list[Difference] = field(default_factory=list)
    flags_a: list[str] = field(default_factory=list)  # each run's own "Busy machine" / "Not steady" lines
    flags_b: list[str] = field(default_factory=list)
    same_run: str | None = None

    @property
    def within(self) -> int:
        """How many compared p50s changed by at most the tolerance."""
        return sum(not r.beyond for r in self.rows)

    @property
    def largest(self) -> RowChange | None:
        """The row whose p50 moved most, either way."""
        return max(self.rows, key=lambda r: abs(r.change_pct), default=None)

    def slower_than(self, pct: float) -> list[RowChange]:
        """The rows where B's p50 is more than ``pct`` % above A's (a regression gate's failures)."""
        return [r for r in self.rows if r.change_pct > pct]

    def summary(self) -> str:
        """'43 of 44 p50s within 15 %; largest: LABEL x1 e2e +23.4 % (B slower)'; for one run given
        twice, '44 of 44 p50s unchanged: ...', as "within" would read as two runs that agreed."""
        if self.same_run:
            return f"{len(self.rows)} of {len(self.rows)} p50s unchanged: A and B are the same run, not a repeat"
        line = f"{self.within} of {len(self.rows)} p50s within {self.tolerance:g} %"
        big = self.largest
        if big is not None:
            way = "B slower" if big.change_pct > 0 else "B faster" if big.change_pct < 0 else "unchanged"
            line += f"; largest: {big.name} {big.change_pct:+.1f} % ({way})"
        return line

    def to_dict(self, *, fail_slower: float | None = None) -> dict:
        """The comparison as JSON-able data (``bench-compare --json``); ``fail_slower`` adds the
        gate's threshold and the rows beyond it."""
        big = self.largest
        out = {"schema": COMPARE_SCHEMA, "a": self.a, "b": self.b, "same_run": self.same_run,
               "tolerance_pct": self.tolerance,
               "modes": self.modes, "compared": len(self.rows), "within": self.within,
               "largest": None if big is None else {"label": big.label, "threads": big.threads, "mode": big.mode,
                                                    "change_pct": big.change_pct},
               "rows": [asdict(r) for r in self.rows],
               "only_a": [{"label": la, "threads": t, "mode": m} for la, t, m in self.only_a],
               "only_b": [{"label": la, "threads": t, "mode": m} for la, t, m in self.only_b],
               "differences": [asdict(d) for d in self.differences],
               "flags": {"a": self.flags_a, "b": self.flags_b}}
        if fail_slower is not None:
            out["fail_slower"] = {"pct": fail_slower,
                                  "rows": [{"label": r.label, "threads": r.threads, "mode": r.mode,
                                            "change_pct": r.change_pct} for r in self.slower_than(fail_slower)]}
        return out


def read_report(path: str | Path) -> dict:
    """A ``bench --json`` file, checked to be one: a UserError naming the file otherwise."""
    p = require_file(path, "bench report (bench --json)")
    try:
        data = json.loads(p.read_text(encoding="utf-8-sig"))
    except UnicodeDecodeError:
        raise UserError(f"{p}: not a JSON file (binary data); {WHAT_TO_GIVE}") from None
    except json.JSONDecodeError as e:
        raise UserError(f"{p}: not valid JSON ({e.msg} at line {e.lineno}, column {e.colno}); {WHAT_TO_GIVE}") from None
    check_report(data, str(p))
    return data


def check_report(report: object, name: str) -> None:
    """UserError unless ``report`` is a bench result of the schema this version reads, with what a
    comparison reads (a hand-edited file may lack it)."""
    if not isinstance(report, dict):
        raise UserError(f"{name}: not a bench report (the JSON is a {type(report).__name__}, not an object); "
                        f"{WHAT_TO_GIVE}")
    schema = report.get("schema")
    if schema is None:
        raise UserError(f"{name}: not a bench report (no \"schema\": {SCHEMA!r}); {WHAT_TO_GIVE}")
    if schema != SCHEMA:
        if isinstance(schema, str) and schema.startswith(SCHEMA.split("/")[0] + "/"):
            raise UserError(f"{name}: a bench report of schema {schema!r}, from another version of yolox_edge "
                            f"(this one reads {SCHEMA!r}); run the bench again with this version")
        raise UserError(f"{name}: not a bench report (schema {schema!r}, expected {SCHEMA!r}); {WHAT_TO_GIVE}")
    problem = _missing(report)
    if problem:
        raise UserError(f"{name}: a bench report without {problem}; give the file as bench wrote it")
    seen = set()
    for r in report["rows"]:
        key = (r["label"], r["threads"])
        if key in seen:  # bench names each row apart (display_names): two alike cannot be matched
            raise UserError(f"{name}: two rows are {r['label']!r} at {r['threads']} thread(s); bench writes one "
                            "each: give the file as bench wrote it")
        seen.add(key)


def _missing(report: dict) -> str:
    """What of the bench schema a comparison reads is absent or of the wrong type ('' if none)."""
    if not isinstance(report.get("machine"), dict):
        return "its \"machine\" object"
    modes = report["config"].get("modes") if isinstance(report.get("config"), dict) else None
    if not (isinstance(modes, list) and all(isinstance(m, str) for m in modes)):
        return "its \"config\" and the modes it ran"
    m, load = report["machine"], report.get("host_load")
    if not all(isinstance(m.get(k, {}), dict) for k in ("runtimes", "env")):
        return "its runtimes and environment as objects"
    if load is not None and not (isinstance(load, dict) and isinstance(load.get("cpus"), list) and all(
            isinstance(load.get(k), (int, float)) for k in ("window_s", "other_pct", "steal_pct"))):
        return "a complete \"host_load\" (or null)"
    if not isinstance(report.get("rows"), list) or not report["rows"]:
        return "rows"
    for i, r in enumerate(report["rows"]):
        if not (isinstance(r, dict) and isinstance(r.get("label"), str) and isinstance(r.get("threads"), int)
                and isinstance(r.get("baseline"), bool) and isinstance(r.get("latency_ms"), dict)):
            return f"a label, thread count, baseline flag and latencies in row {i + 1}"
        for mode, stats in r["latency_ms"].items():
            # a p50 of 0 would divide by zero in every ratio; a real one is at least a microsecond
            if not (isinstance(stats, dict) and isinstance(stats.get("p50"), (int, float)) and stats["p50"] > 0):
                return f"a p50 above 0 for {mode} in row {i + 1} ({r['label']})"
        size = r.get("input_size")
        if not isinstance(r.get("drift_pct", {}), dict) or not (
                size is None or (isinstance(size, list) and len(size) == 2 and all(isinstance(v, int) for v in size))):
            return f"its drift and input size as bench writes them in row {i + 1} ({r['label']})"
    return ""


def compare_reports(a: dict | str | Path, b: dict | str | Path, *, tolerance: float = DEFAULT_TOLERANCE,
                    mode: str = "both") -> BenchComparison:
    """Compare bench result ``b`` with ``a`` (loaded dicts or paths of ``bench --json`` files).

    Rows are matched by label, thread count and mode; a p50 is beyond ``tolerance`` (%) when B
    differs from A by more than that share of A, either way. ``mode`` is ``e2e``, ``model`` or
    ``both`` (every mode both runs timed). Raises UserError for a file that is not a bench
    report, a mode one run did not time, and two reports with no row in common.
    """
    if mode not in MODES:
        raise BadArgument(f"{flag_value('--mode', 'mode', mode)}: must be one of {', '.join(MODES)}")
    if not (isinstance(tolerance, (int, float)) and math.isfinite(tolerance) and tolerance >= 0):
        raise BadArgument(f"{flag_value('--tolerance', 'tolerance', tolerance)}: must be a percentage of at least 0")
    ra, name_a = _load(a, "A")
    rb, name_b = _load(b, "B")
    same = _same_run(a, b, ra, rb)
    rb, renamed_rows = _aligned(ra, rb)
    modes = _modes(ra, rb, name_a, name_b, mode)
    keyed_a, keyed_b = _keyed(ra, modes), _keyed(rb, modes)
    common = [k for k in keyed_a if k in keyed_b]
    if not common:
        # Exit 2, not an empty table: two reports with nothing in common are the wrong pair of
        # files, and a --fail-slower gate must not pass because nothing was compared.
        raise UserError(f"{name_a} and {name_b} have no row in common (rows are matched by label, thread count and "
                        f"mode): A has {_few(keyed_a)}; B has {_few(keyed_b)}; compare two runs of the same models "
                        "and thread counts")
    ratios_a, ratios_b = _speedups(ra, modes), _speedups(rb, modes)
    rows = []
    for k in common:
        (ra_row, sa), (rb_row, sb) = keyed_a[k], keyed_b[k]
        change = (sb - sa) / sa * 100
        # each run's speed-up only when both have one: one alone has nothing to be read against
        both = ratios_a.get(k) is not None and ratios_b.get(k) is not None
        rows.append(RowChange(k[0], k[1], k[2], sa, sb, round(change, 2), abs(change) > tolerance,
                              ratios_a[k] if both else None, ratios_b[k] if both else None,
                              ra_row.get("input_size"), rb_row.get("input_size")))
    return BenchComparison(name_a, name_b, float(tolerance), modes, rows,
                           only_a=[k for k in keyed_a if k not in keyed_b],
                           only_b=[k for k in keyed_b if k not in keyed_a],
                           differences=renamed_rows + differences(ra, rb, rows, all_modes=mode == "both"),
                           flags_a=run_flags(ra), flags_b=run_flags(rb), same_run=same)


def _row_source(label: str, artifact: object) -> tuple[str, str] | None:
    """(the artifact's path, normalised; the label's "[backend precision]" part), or None for a row
    without both."""
    if not isinstance(artifact, str) or not label.endswith("]") or " [" not in label:
        return None
    return os.path.normpath(artifact), label[label.rindex(" ["):]


def _aligned(ra: dict, rb: dict) -> tuple[dict, list[Difference]]:
    """``rb`` with its row labels made to pair rows by what they time: a B row timing the same
    artifact (its path as typed) in the same backend and precision as exactly one A label takes
    that label; a B row under an A label that times another artifact there is kept apart. A
    Difference names each. bench names a row by the shortest path that tells its artifacts apart,
    so the same ``int8/ncnn`` reads ``ncnn [...]`` in a run that benched no other ``ncnn`` folder,
    and ``tiny.pt [...]`` in B may be ``q/tiny.pt`` where A's ``tiny.pt [...]`` is another file:
    paired by label alone, a change was measured against the wrong model."""
    source_a: dict[str, tuple[str, str] | None] = {}
    labels_by_source: dict[tuple[str, str], set[str]] = {}
    for r in ra["rows"]:
        src = source_a[r["label"]] = _row_source(r["label"], r.get("artifact"))
        if src is not None:
            labels_by_source.setdefault(src, set()).add(r["label"])
    rename: dict[str, str] = {}
    notes: list[Difference] = []
    for r in rb["rows"]:
        label = r["label"]
        src = _row_source(label, r.get("artifact"))
        if src is None or label in rename:
            continue
        same = labels_by_source.get(src, set())
        if len(same) == 1 and label not in same:
            rename[label] = next(iter(same))
            notes.append(Difference("row label", rename[label], label,
                                    f"row label: {label!r} in B is {rename[label]!r} in A (the same artifact; bench "
                                    "names rows by the shortest path that tells the artifacts of its run apart)"))
        elif not same and source_a.get(label) is not None:  # A's row of this label times another file
            rename[label] = f"{label} ({src[0]} in B)"
            notes.append(Difference("row label", source_a[label][0], src[0],
                                    f"row label: {label!r} times {source_a[label][0]} in A and {src[0]} in B: "
                                    "another artifact, not compared"))
    final = [rename.get(r["label"], r["label"]) for r in rb["rows"]]
    if not rename or len(set(zip(final, (r["threads"] for r in rb["rows"])))) != len(final):
        return rb, []  # two B rows onto one A row: leave them as bench named them
    return dict(rb, rows=[dict(r, label=f) for r, f in zip(rb["rows"], final)]), notes


def _same_run(a: dict | str | Path, b: dict | str | Path, ra: dict, rb: dict) -> str | None:
    """Why ``a`` and ``b`` (as given, and as loaded: ``ra``, ``rb``) are one run: "the same file"
    (one path twice, or two names of one file), "identical contents" (a copy: the same bytes, or
    the same data), or None. Two real runs never time every row alike, so such a comparison
    shows nothing about whether the times repeat."""
    if not isinstance(a, dict) and not isinstance(b, dict):
        if os.path.samefile(a, b):  # both exist: read_report checked them
            return "the same file"
        if Path(a).read_bytes() == Path(b).read_bytes():  # also a copy holding NaN, which != itself
            return "identical contents"
    return "identical contents" if ra == rb else None


def _load(source: dict | str | Path, default_name: str) -> tuple[dict, str]:
    if isinstance(source, dict):
        check_report(source, default_name)
        return source, default_name
    return read_report(source), str(source)


def _modes(ra: dict, rb: dict, name_a: str, name_b: str, mode: str) -> list[str]:
    wanted = MODE_ORDER if mode == "both" else (mode,)
    for report, name in ((ra, name_a), (rb, name_b)):
        if mode != "both" and mode not in report["config"]["modes"]:
            raise UserError(f"{name}: has no {mode} timings (it ran {', '.join(report['config']['modes'])}); "
                            f"compare with {flag_value('--mode', 'mode', 'both')}")
    modes = [m for m in wanted if m in ra["config"]["modes"] and m in rb["config"]["modes"]]
    if not modes:
        raise UserError(f"{name_a} timed {', '.join(ra['config']['modes'])} only and {name_b} "
                        f"{', '.join(rb['config']['modes'])}: no mode in common to compare; bench both with "
                        "--mode both (or the same --mode)")
    return modes


def _keyed(report: dict, modes: list[str]) -> dict[tuple[str, int, str], tuple[dict, float]]:
    """(label, threads, mode) -> (row, p50), in the report's row order, modes as bench orders them."""
    return {(r["label"], r["threads"], m): (r, float(r["latency_ms"][m]["p50"]))
            for r in report["rows"] for m in modes if m in r["latency_ms"]}


def _speedups(report: dict, modes: list[str]) -> dict[tuple[str, int, str], float | None]:
    """Each row's speed-up over the run's baseline at its thread count, by the bench's own rule
    (report.speedups: none at another input size than the baseline's)."""
    out = {}
    for m in modes:
        for r, s in zip(report["rows"], speedups(report, m)):
            out[(r["label"], r["threads"], m)] = s
    return out


def _few(keyed: dict, n: int = 3) -> str:
    names = list(dict.fromkeys(f"{label} x{t}" for label, t, _ in keyed))
    return ", ".join(names[:n]) + (f" and {len(names) - n} more" if len(names) > n else "")


def run_flags(report: dict) -> list[str]:
    """The run's own warnings, as bench prints them under its table: busy cores, drift."""
    busy = host_load_warning(report.get("host_load"))  # absent in JSONs from before it was measured
    return ([busy] if busy else []) + drift_warnings(report)


def _size(s: list[int] | None) -> str:
    return "?" if not s else f"{s[1]}x{s[0]}"  # recorded (H, W); people read width x height


def _text(v: object) -> str:
    if v is None:
        return "none"
    if isinstance(v, list):
        return cpu_span(v) if v and all(isinstance(x, int) for x in v) else ", ".join(map(str, v)) or "none"
    return str(v)


def differences(ra: dict, rb: dict, rows: Sequence[RowChange] = (), *, all_modes: bool = True) -> list[Difference]:
    """What the two runs recorded differently that bears on their times: the machine (CPU, arch,
    cores, ISA flags, OS, runtime versions, environment knobs), the bench's settings (warm-up,
    runs, turns, pacing, image, thresholds, cores, ncnn policy) and the input size of compared
    rows. A key one run lacks (a JSON from before it was recorded) is not compared."""
    ma, mb, ca, cb = ra["machine"], rb["machine"], ra["config"], rb["config"]
    out: list[Difference] = []

    def add(what: str, a: object, b: object, line: str | None = None) -> None:
        out.append(Difference(what, a, b, line or f"{what}: {_text(a)} -> {_text(b)}"))

    if ma.get("cpu") != mb.get("cpu"):
        add("cpu", ma.get("cpu"), mb.get("cpu"), f"different CPUs: {ma.get('cpu')} (A) and {mb.get('cpu')} (B); "
            "comparing across machines: a change is the machine's as much as the models'")
    elif ma.get("cores") != mb.get("cores") and "cores" in ma and "cores" in mb:
        add("core clusters", ma["cores"], mb["cores"])
    for key, what in (("arch", "arch"), ("logical_cores", "logical cores"), ("os", "OS"), ("python", "Python")):
        if key in ma and key in mb and ma[key] != mb[key]:
            add(what, ma[key], mb[key])
    if isinstance(ma.get("isa"), list) and isinstance(mb.get("isa"), list) and ma["isa"] != mb["isa"]:
        gone = [f for f in ma["isa"] if f not in mb["isa"]]
        new = [f for f in mb["isa"] if f not in ma["isa"]]
        parts = ([f"only A has {', '.join(gone)}"] if gone else []) + ([f"only B has {', '.join(new)}"] if new else [])
        add("isa", ma["isa"], mb["isa"], "ISA flags: " + "; ".join(parts))
    va, vb = ma.get("runtimes") or {}, mb.get("runtimes") or {}
    for rt in dict.fromkeys([*va, *vb]):
        if va.get(rt) != vb.get(rt):
            line = (f"{rt} {va[rt]} -> {vb[rt]}" if rt in va and rt in vb
                    else f"{rt} {va[rt]} in A only" if rt in va else f"{rt} {vb[rt]} in B only")
            add(f"runtime {rt}", va.get(rt), vb.get(rt), line)
    if "env" in ma and "env" in mb:  # absent in JSONs from before it was recorded: unknown, not empty
        ea, eb = ma["env"] or {}, mb["env"] or {}
        for k in dict.fromkeys([*ea, *eb]):
            if ea.get(k) != eb.get(k):
                add(f"env {k}", ea.get(k), eb.get(k), f"environment: {k} {ea.get(k, 'unset')} -> {eb.get(k, 'unset')} "
                    "(it changes the kernels or threads a runtime uses)")
    for key, what in (("cpus", "cores the bench ran on"), ("ncnn_powersave", "ncnn --powersave"),
                      ("warmup", "warm-up calls"), ("runs", "runs"), ("runs_per_turn", "runs per turn"),
                      ("fps", "paced at (frames/s)"), ("image", "input image"), ("conf", "conf"), ("iou", "NMS IoU"),
                      ("precision_hints", "precision hints")):
        if key in ca and key in cb and ca[key] != cb[key]:
            line = None
            if key in ("conf", "iou"):
                line = f"{what}: {ca[key]} -> {cb[key]} (end-to-end times include the postprocess it sets)"
            add(what, ca[key], cb[key], line)
    if all_modes and ca["modes"] != cb["modes"]:
        add("modes", ca["modes"], cb["modes"], f"modes timed: {', '.join(ca['modes'])} -> {', '.join(cb['modes'])} "
            "(compared: those both timed)")
    sized = list(dict.fromkeys(f"{r.label} x{r.threads} {_size(r.input_size_a)} -> {_size(r.input_size_b)}"
                               for r in rows if r.input_size_a and r.input_size_b and r.input_size_a != r.input_size_b))
    if sized:
        add("input size", None, None, f"model input size differs (width x height): {'; '.join(sized)}: these rows' "
            "change is the size's as much as the run's")
    return out


def _cell(x: float | None, fmt: str) -> str:
    return "" if x is None else format(x, fmt)


def comparison_table(cmp: BenchComparison) -> str:
    """The comparison as bench prints its results: a markdown table of the rows both runs timed,
    then the summary, the rows in one run only, what differs between the runs and each run's
    own warnings."""
    head = ["model", "threads", "mode", "A p50 ms", "B p50 ms", "change", "A speed-up vs baseline",
            "B speed-up vs baseline"]
    table = []
    for r in cmp.rows:
        change = f"{r.change_pct:+.1f} %"
        table.append([md_cell(r.label), str(r.threads), r.mode, f"{r.p50_a:.2f}", f"{r.p50_b:.2f}",
                      f"**{change}**" if r.beyond else change,  # beyond the tolerance: bold, in a PR comment too
                      _cell(r.speedup_a, ".2f") + ("x" if r.speedup_a is not None else ""),
                      _cell(r.speedup_b, ".2f") + ("x" if r.speedup_b is not None else "")])
    keep = [i for i in range(len(head)) if any(row[i] for row in table)]  # no speed-ups: no such columns
    lines = [f"A: {cmp.a}", f"B: {cmp.b}"]
    if cmp.same_run:
        lines.append(_same_run_line(cmp))
    lines += ["", "| " + " | ".join(head[i] for i in keep) + " |", "|" + "---|" * len(keep)]
    lines += ["| " + " | ".join(row[i] or "-" for i in keep) + " |" for row in table]
    lines += ["", f"Change: B's p50 against A's, in % of A's (+: B slower); bold: more than {cmp.tolerance:g} % either "
                  "way.", cmp.summary() + "."]
    for which, only in (("A", cmp.only_a), ("B", cmp.only_b)):
        if only:
            lines.append(f"Only in {which}: {_grouped(only, cmp.modes)}.")
    if cmp.differences:
        lines += ["What differs between the runs:"] + [f"- {d.line}" for d in cmp.differences]
    for which, flags in (("A", cmp.flags_a), ("B", cmp.flags_b)):
        lines += [f"Run {which}: {w}" for w in flags]
    return "\n".join(lines) + "\n"


def _same_run_line(cmp: BenchComparison) -> str:
    """The line printed above the table when A and B are one run."""
    return (f"A and B are the same run ({cmp.same_run}): every p50 is compared with itself, so this shows nothing "
            "about whether the times repeat; compare two separate runs")


def _grouped(keys: list[tuple[str, int, str]], modes: list[str]) -> str:
    """'LABEL x1, LABEL x2 (e2e)': a row's modes named only when it lacks some of those compared."""
    by: dict[tuple[str, int], list[str]] = {}
    for label, t, m in keys:
        by.setdefault((label, t), []).append(m)
    return ", ".join(f"{label} x{t}" + ("" if len(ms) == len(modes) else f" ({', '.join(ms)})")
                     for (label, t), ms in by.items())
