"""Render a benchmark result: markdown table, CSV, and a PNG chart."""
from __future__ import annotations

import csv
import io
import statistics
from pathlib import Path

from ..fileio import StagedFiles, atomic_write_bytes, mib
from ..progress import deprecated_keywords
from .cores import cpu_span, oversubscribed
from .hostload import host_load_warning


def md_cell(text: str) -> str:
    """``text`` for a markdown table cell: a '|' in a path ('v1|v2/m.pt') split the row."""
    return text.replace("|", "\\|")


def _mb(n: int | None) -> str:
    return "" if n is None else f"{mib(n):.2f}"


def headline_mode(result: dict) -> str:
    """The mode the speed-up column, drift lines and chart report: end to end when measured."""
    return "e2e" if "e2e" in result["config"]["modes"] else "model"


def speedups(result: dict, key: str) -> list[float | None]:
    """Each row's p50 speed-up over the baseline row at its thread count (None: no baseline,
    or the row runs at another input size than the baseline, where a ratio would mislead)."""
    base = {r["threads"]: r for r in result["rows"] if r["baseline"]}
    out: list[float | None] = []
    for r in result["rows"]:
        b = base.get(r["threads"])
        ok = b is not None and key in r["latency_ms"] and key in b["latency_ms"] and _same_size(r, b)
        out.append(b["latency_ms"][key]["p50"] / r["latency_ms"][key]["p50"] if ok else None)
    return out


def _same_size(r: dict, b: dict) -> bool:
    return r.get("input_size") is None or b.get("input_size") is None or r["input_size"] == b["input_size"]


def input_sizes_line(result: dict) -> str:
    """The model input size(s) of the rows, with the rows at each when they differ."""
    by: dict[str, list[str]] = {}
    for r in result["rows"]:
        if r.get("input_size"):  # absent in JSONs from before it was recorded
            h, w = r["input_size"]
            name = "baseline" if r["baseline"] else r["label"]
            by.setdefault(f"{w}x{h}", [])
            if name not in by[f"{w}x{h}"]:
                by[f"{w}x{h}"].append(name)
    if len(by) <= 1:
        return f"Model input {next(iter(by))} (width x height), every row." if by else ""
    return ("Model input sizes differ (width x height): " + "; ".join(f"{k}: {', '.join(v)}" for k, v in by.items())
            + ". A row is compared with the baseline only at the baseline's size.")


def _num(x: float | None, digits: int) -> str:
    """A table cell: the number to ``digits`` places, or empty where it was not measured."""
    return "" if x is None else f"{x:.{digits}f}"


def markdown_table(result: dict) -> str:
    """One line per row and thread count: p50/p90 ms model and end to end, ratio vs baseline."""
    rows = result["rows"]
    modes = result["config"]["modes"]
    head = ["model", "threads"]
    for m in modes:
        head += [f"{m} p50 ms", f"{m} p90 ms", f"{m} img/s"]
    key = headline_mode(result)
    per = "frame" if result["config"].get("fps") else "img"
    head += [f"{key} speed-up vs baseline", f"{key} CPU ms/{per}", "size MiB", "params M", "GFLOPs", "out bytes/img",
             "peak RSS MiB", "AP"]
    table = []
    for r, ratio in zip(rows, speedups(result, key)):
        cells = [md_cell(r["label"]), str(r["threads"])]
        for m in modes:
            s = r["latency_ms"][m]
            cells += [f"{s['p50']:.2f}", f"{s['p90']:.2f}", f"{s['ips']:.1f}"]
        cpu = (r.get("cpu_ms") or {}).get(key)  # absent in JSONs from before it was measured
        cells += ["" if ratio is None else f"{ratio:.2f}x", _num(cpu, 1),
                  _mb(r["size_bytes"]), _num(r.get("params_m"), 3), _num(r.get("gflops"), 2),
                  str(r["output_bytes_per_image"]), _num(r["peak_rss_mb"], 0), _num(r["ap"], 4)]
        table.append(cells)
    # A column nothing measured (AP without --data, RSS with --no-rss, a ratio without a baseline)
    # is left out; a cell one row lacks reads "-" (a blank looked like a rendering fault).
    keep = [i for i in range(len(head)) if any(row[i] for row in table)]
    lines = ["| " + " | ".join(head[i] for i in keep) + " |", "|" + "---|" * len(keep)]
    lines += ["| " + " | ".join(row[i] or "-" for i in keep) + " |" for row in table]
    m = result["machine"]
    lines.append("")
    cores = f"; cores {m['cores']}" if m.get("cores") and m["cores"] != m["cpu"] else ""
    lines.append(f"Machine: {m['cpu']} ({m['arch']}, {m['logical_cores']} logical cores{cores}, ISA: "
                 f"{', '.join(m['isa'])}); {m['os']}; " + ", ".join(f"{k} {v}" for k, v in m["runtimes"].items()))
    if m.get("env"):  # absent in JSONs from before it was recorded
        lines.append("Environment: " + ", ".join(f"{k}={v}" for k, v in m["env"].items())
                     + " (these change the kernels or threads the runtimes use).")
    c = result["config"]
    turn = ""
    if c.get("runs_per_turn"):  # JSONs from before turns lack these keys
        turn = (f" in turns (each row: wait for an idle process, {c['switch_in_calls']} untimed calls, "
                f"{c['runs_per_turn']} timed run{'s' if c['runs_per_turn'] != 1 else ''})")
    pace = (f" Runs paced at {c['fps']:g} frames/s: CPU ms/frame is the process's CPU time over each frame, "
            "runtime threads busy-waiting between frames included." if c.get("fps") else "")
    if c.get("fps"):
        slow = [f"{r['label']} x{r['threads']}" for r in rows if r["latency_ms"][key]["p50"] > 1000 / c["fps"]]
        if slow:
            pace += (f" Slower than a frame ({1000 / c['fps']:.1f} ms) at p50, so not keeping up with "
                     f"{c['fps']:g} frames/s: {', '.join(slow)}.")
    lines.append(f"{c['runs']} runs after {c['warmup']} warm-up, rows interleaved{turn}; input: {c['image']}; "
                 f"img/s = 1000 / mean ms.{pace}")
    sizes = input_sizes_line(result)
    if sizes:
        lines.append(sizes)
    load = result.get("host_load")  # absent in JSONs from before it was measured
    if load:
        secs = f"{load['window_s']:.0f}" if load["window_s"] >= 10 else f"{load['window_s']:.2g}"
        span = f"core{'s' if len(load['cpus']) != 1 else ''} {cpu_span(load['cpus'])}"
        lines.append(f"Other load on {span} over the {secs} s of timed runs: {load['other_pct']:.1f}% other "
                     f"processes, {load['steal_pct']:.1f}% stolen by the hypervisor.")
    skipped = next((r for r in rows if r.get("ap_skipped")), None)
    if skipped:
        lines += ["", f"Official-style baseline ({Path(skipped['artifact']).name}): AP not scored, "
                      f"{skipped['ap_skipped']}."]
    amx = amx_hint(result)
    if amx:
        lines += ["", amx]
    if c.get("ncnn_powersave") is not None and not any(r["backend"] == "ncnn" for r in rows):
        lines += ["", f"--powersave {c['ncnn_powersave']} is ncnn's CPU policy: no ncnn row here, so it changed "
                  "nothing."]
    over = oversubscription_note(c.get("threads") or [], c.get("cpus") or [])
    if over:
        lines += ["", over[0].upper() + over[1:] + "."]
    busy = host_load_warning(load)
    for w in ([busy] if busy else []) + drift_warnings(result):
        lines += ["", w]
    return "\n".join(lines) + "\n"


def amx_hint(result: dict) -> str:
    """A note when OpenVINO rows ran on a CPU with AMX ('' otherwise). AMX pulls two ways: on the
    AMX Xeon VM measured, it made bf16 the fastest way to run Nano and Tiny, and INT8 slower."""
    m = result["machine"]
    if "amx_int8" not in m.get("isa", []):
        return ""
    ov = [r for r in result["rows"] if r["backend"] == "openvino"]
    if not ov:
        return ""
    env = m.get("env") or {}
    bf16 = any("bf16 inference" in r["precision"] for r in ov)
    if "ONEDNN_MAX_CPU_ISA" in env or "DNNL_MAX_CPU_ISA" in env:
        if not bf16:
            return ""
        return ("The ISA cap in the environment keeps OpenVINO off AMX, so its bf16 rows ran without AMX's bf16 "
                "tiles: 1.8-3.8x slower than with them for Nano and Tiny on an AMX Xeon VM.")
    try_bf16 = "" if bf16 else " add --precision-hint f32,bf16, and"
    return ("This CPU has AMX, which OpenVINO uses for bf16 and INT8 convolutions. On an AMX Xeon VM the FP32 "
            "IRs ran fastest in bf16 (Nano 13.5 ms against 19.4 in f32 and 18.2 for its INT8 IR; Tiny about 2x "
            "faster than f32), while the INT8 IRs ran 15-25 % faster with ONEDNN_MAX_CPU_ISA=AVX512_CORE_FP16 in "
            f"the environment, which makes bf16 1.8-3.8x slower. To compare on this CPU,{try_bf16} run again "
            "with that variable (README, \"Where Nano's CPU time goes\").")


def oversubscription_note(threads: list[int], cpus: list[int]) -> str:
    """A sentence when a thread count is above the cores the bench may run on ('' otherwise)."""
    over = [t for t in threads if oversubscribed(t, cpus)]
    if not over:
        return ""
    n = len(cpus)
    return (f"rows at {', '.join(map(str, over))} threads run on "
            f"{n} core{'s' if n != 1 else ''} ({cpu_span(cpus)}): their threads take turns on the cores, which "
            f"measures oversubscription, not the model at that many threads; use at most {n} (or pin more "
            "cores with --cpus)")


DRIFT_WARN_PCT = 10.0
# The settings whose pairs of runs repeated within 15 % every time on the 2-core VMs (README).
STEADY_RUNS, STEADY_RUNS_PER_TURN = 300, 5


def drift_warnings(result: dict) -> list[str]:
    """Lines for drift between the first and second half of the runs: one for the machine when
    (nearly) every row moved the same way, as when a VM's host slows down mid-run, then one for
    each row that moved by more than the rest did."""
    key = headline_mode(result)
    drifts = [(r, (r.get("drift_pct") or {}).get(key)) for r in result["rows"]]
    known = [d for _, d in drifts if d is not None]
    out, common = [], 0.0
    if len(known) >= 3:
        mid = float(statistics.median(known))
        same_way = sum(1 for d in known if d * mid > 0) >= 0.8 * len(known)
        if abs(mid) > DRIFT_WARN_PCT and same_way:
            common = mid
            out.append(f"Machine not steady: nearly every row ran {_pct(mid)}% {_way(mid)} ({key} p50, median "
                       "over rows) in the second half of its runs than in the first: the machine's speed changed "
                       "during the run (heat, other load, a VM's host). Rows take turns, so their ratios suffer "
                       "less than their times; the times may not repeat: let it cool or settle, run again.")
    moved = [(f"{r['label']} x{r['threads']}", d - common) for r, d in drifts
             if d is not None and abs(d - common) > DRIFT_WARN_PCT]
    if moved:  # one line for all such rows: a drifting run names many
        rows = "; ".join(f"{name} {_pct(d)}{' points' if common else '%'} {_way(d)}" for name, d in moved)
        if common:
            out.append(f"Not steady beyond the machine's {common:+.0f}% ({key} p50, second half of a row's runs "
                       f"against the first): {rows}. These rows changed more than the machine's speed; run again "
                       "before trusting them.")
        else:
            out.append(f"Not steady ({key} p50, second half of a row's runs against the first): {rows}. Heat or "
                       "other load changed during the run: close other apps, let the device cool (or pin cores "
                       "with --cpus) and run again.")
    cfg = result.get("config") or {}
    if out and (cfg.get("runs", 0) < STEADY_RUNS or cfg.get("runs_per_turn", 0) > STEADY_RUNS_PER_TURN):
        # Host phases of tens of seconds hit whichever rows have their turns then; more, shorter
        # turns spread every row over more of them (README: the pairs of runs measured).
        out.append(f"For times that repeat on such a machine, spread each row over more turns: --runs {STEADY_RUNS} "
                   f"--runs-per-turn {STEADY_RUNS_PER_TURN}.")
    return out


def _pct(v: float) -> str:
    """|v| rounded, with a decimal where rounding would show the threshold itself (10.4 is not '10')."""
    return f"{abs(v):.1f}" if round(abs(v)) <= DRIFT_WARN_PCT else f"{abs(v):.0f}"


def _way(pct: float) -> str:
    return "slower" if pct > 0 else "faster"


@deprecated_keywords("mode")  # best_ratio(result, "model"), the earlier form
def best_ratio(result: dict, *, mode: str = "e2e") -> dict | None:
    """The fastest non-baseline row against the baseline at the same thread count; rows with
    more threads than cores only when there is no other (their baseline is oversubscribed too,
    and its slowdown, not the row's speed, made a 9x headline out of a 1.5x row)."""
    rows = [(r, ratio) for r, ratio in zip(result["rows"], speedups(result, mode))
            if not r["baseline"] and ratio is not None]
    fair = [(r, ratio) for r, ratio in rows if not r.get("oversubscribed")]
    best = None
    for r, ratio in fair or rows:
        if best is None or ratio > best["ratio"]:
            # unrounded: rounding here and again when printed ("1.535" -> 1.53x) contradicted the table's 1.54x
            best = {"label": r["label"], "threads": r["threads"], "ratio": ratio}
    return best


@deprecated_keywords("mode")  # best_by_variant(result, "model"), the earlier form
def best_by_variant(result: dict, *, mode: str = "e2e") -> dict[str, dict]:
    """``best_ratio`` within each model variant the rows carry (``variant``, from metadata), in
    the order the rows first name them: a run of several models (the SiLU Nano beside
    ``nano_hswish``, Nano beside Tiny) has one best row per model, which the overall best hides.
    Rows of unknown variant (results from before it was recorded) are left out."""
    variants = list(dict.fromkeys(r.get("variant") for r in result["rows"] if not r["baseline"] and r.get("variant")))
    out = {}
    for v in variants:
        rows = [r for r in result["rows"] if r["baseline"] or r.get("variant") == v]
        best = best_ratio({**result, "rows": rows}, mode=mode)
        if best is not None:
            out[v] = best
    return out


@deprecated_keywords("files")  # write_csv(result, path, files), the earlier form
def write_csv(result: dict, path: str | Path, *, files: StagedFiles | None = None) -> None:
    """One CSV row per bench row and timing mode (``model``, ``e2e``): latency statistics in ms,
    sizes, AP and CPU time, as ``bench --csv`` writes it. ``files``: staged there, renamed into
    place with the run's other outputs by its ``commit``."""
    buf = io.StringIO()
    w = csv.writer(buf)
    cols = ["label", "artifact", "backend", "precision", "effective_precision", "threads", "mode",
            "min", "p50", "p90", "p99", "mean", "std", "ips", "n", "size_bytes", "output_bytes_per_image",
            "peak_rss_mb", "params_m", "gflops", "ap", "ap50", "cpu_ms", "oversubscribed"]
    w.writerow(cols)
    for r in result["rows"]:
        for mode, s in r["latency_ms"].items():
            w.writerow([r["label"], r["artifact"], r["backend"], r["precision"], r["effective_precision"], r["threads"],
                        mode, *(s[k] for k in ("min", "p50", "p90", "p99", "mean", "std", "ips", "n")),
                        r["size_bytes"], r["output_bytes_per_image"], r["peak_rss_mb"], r["params_m"], r["gflops"],
                        r["ap"], r["ap50"], (r.get("cpu_ms") or {}).get(mode), r.get("oversubscribed")])
    (files.write if files is not None else atomic_write_bytes)(path, lambda f: f.write(buf.getvalue().encode()))


@deprecated_keywords("files")  # write_plot(result, path, files), the earlier form
def write_plot(result: dict, path: str | Path, *, files: StagedFiles | None = None) -> None:
    """Latency vs AP (the paper's Figure 1 for this device) when AP is known, else a bar chart.
    ``files``: as for ``write_csv``."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    key = headline_mode(result)
    rows = result["rows"]
    fig, ax = plt.subplots(figsize=(9, max(4.0, 0.3 * len(rows) + 1.5)))
    if all(r["ap"] is not None for r in rows if not r["baseline"]) and any(r["ap"] is not None for r in rows):
        _scatter(fig, ax, result, key)  # lays itself out before it places the labels
    else:
        _bars(ax, result, key)
        ax.set_title(_title(result))
        fig.tight_layout()
    buf = io.BytesIO()
    fmt = Path(path).suffix.lower().lstrip(".") or "png"
    fig.savefig(buf, format=fmt, dpi=110, bbox_inches="tight")  # long row labels stay whole
    plt.close(fig)
    (files.write if files is not None else atomic_write_bytes)(path, lambda f: f.write(buf.getvalue()))


def chart_labels(result: dict) -> list[str]:
    """Each row's chart label, 'LABEL xT', with its input size when the rows' sizes differ."""
    sizes = {tuple(r["input_size"]) for r in result["rows"] if r.get("input_size")}
    out = []
    for r in result["rows"]:
        size = f" @{r['input_size'][1]}x{r['input_size'][0]}" if len(sizes) > 1 and r.get("input_size") else ""
        out.append(f"{r['label']} x{r['threads']}{size}")
    return out


def _title(result: dict) -> str:
    return f"yolox_edge bench on {result['machine']['cpu']} ({result['machine']['arch']})"


# One colour per runtime, grey for the baseline: rows of one runtime read as a group.
BACKEND_COLORS = {"torch": "tab:red", "onnxruntime": "tab:blue", "openvino": "tab:purple", "ncnn": "tab:green"}


def _bars(ax, result: dict, key: str) -> None:
    """p50 bars in table order, a whisker to p90, each labelled with its ms and speed-up."""
    rows = result["rows"]
    p50 = [r["latency_ms"][key]["p50"] for r in rows]
    p90 = [r["latency_ms"][key]["p90"] for r in rows]
    colors = ["tab:gray" if r["baseline"] else BACKEND_COLORS.get(r["backend"], "tab:orange") for r in rows]
    y = list(range(len(rows)))
    ax.barh(y, p50, color=colors, xerr=[[0] * len(rows), [b - a for a, b in zip(p50, p90)]],
            error_kw={"capsize": 2, "elinewidth": 0.8, "alpha": 0.7})
    ax.set_yticks(y, chart_labels(result), fontsize=7)
    ax.invert_yaxis()  # first row on top, as in the table
    for i, (r, ratio) in enumerate(zip(rows, speedups(result, key))):
        text = f"{p50[i]:.1f} ms" + (f"  {ratio:.2f}x" if ratio is not None and not r["baseline"] else "")
        ax.text(p90[i], i, "  " + text, va="center", fontsize=7)
    if max(p90) > 20 * min(p50):  # one very slow row would leave the others as slivers
        ax.set_xscale("log")
        ax.set_xlim(min(p50) / 2, max(p90) * 4)  # room for the labels right of the longest whisker
    else:
        ax.set_xlim(0, max(p90) * 1.3)
    ax.set_xlabel(f"{key} latency ms (bar p50, whisker to p90; Nx = speed-up vs the baseline at the same threads)")
    seen = {r["backend"] if not r["baseline"] else "baseline" for r in rows}
    handles = [_patch(c, n) for n, c in [*BACKEND_COLORS.items(), ("baseline", "tab:gray")] if n in seen]
    ax.legend(handles=handles, fontsize=7, loc="best")


THREAD_MARKERS = "os^Dv<>p"  # one marker shape per thread count, in increasing order


def _scatter(fig, ax, result: dict, key: str) -> None:
    """Latency vs AP: colour = runtime, marker = threads, the baseline a dashed line per thread count."""
    rows = result["rows"]
    threads = sorted({r["threads"] for r in rows})
    points = [r for r in rows if r["ap"] is not None]
    for r in points:
        ax.scatter(r["latency_ms"][key]["p50"], r["ap"], s=36, zorder=3,
                   color="tab:gray" if r["baseline"] else BACKEND_COLORS.get(r["backend"], "tab:orange"),
                   marker=THREAD_MARKERS[threads.index(r["threads"]) % len(THREAD_MARKERS)])
    for i, t in enumerate(threads):  # the baseline's latency as a line too (its AP needs --data on its classes)
        for r in rows:
            if r["baseline"] and r["threads"] == t:
                ax.axvline(r["latency_ms"][key]["p50"], color="tab:gray", lw=0.9, ls=("--", ":", "-.")[i % 3])
    ax.set_xlabel(f"{key} latency p50 (ms)")
    ax.set_ylabel("COCO AP")
    ax.margins(x=0.25, y=0.15)  # room for the labels at the edges
    # ...but not below zero: every AP 0 (a fresh model) drew an axis from -0.06, a latency one from -20 ms
    ax.set_xlim(left=max(0.0, ax.get_xlim()[0]))
    ax.set_ylim(bottom=max(0.0, ax.get_ylim()[0]))
    handles = [_patch(c, n) for n, c in BACKEND_COLORS.items()
               if any(r["backend"] == n and not r["baseline"] for r in points)]
    handles += [_marker(THREAD_MARKERS[i % len(THREAD_MARKERS)], f"{t} thread{'s' if t != 1 else ''}")
                for i, t in enumerate(threads)]
    sizes = {tuple(r["input_size"]) for r in rows if r.get("input_size")}
    for i, t in enumerate(threads):  # its input size too when the rows' sizes differ, as every point's label
        base = next((r for r in rows if r["baseline"] and r["threads"] == t), None)
        if base is not None:
            at = (f" @{base['input_size'][1]}x{base['input_size'][0]}" if len(sizes) > 1 and base.get("input_size")
                  else "")
            handles.append(_line(("--", ":", "-.")[i % 3], f"official-style baseline x{t}{at}"))
    ax.legend(handles=handles, fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))  # beside, not over, labels
    first = points[0]["label"].split(" ")[0] + " " if points else ""
    common = first if first and all(r["label"].startswith(first) for r in points) else ""
    # One model in every row: its name once, in the title, keeps the labels short.
    ax.set_title(f"{common.strip()}: {_title(result)}" if common else _title(result))
    fig.tight_layout()  # the final axes size first: labels are placed in pixels
    ax.autoscale_view()
    labels = dict(zip(map(id, rows), chart_labels(result)))
    texts = [labels[id(r)][len(common):] for r in points]
    placed, crossed = _place_labels(fig, ax, [(t, r["latency_ms"][key]["p50"], r["ap"]) for t, r in zip(texts, points)])
    if crossed:  # points too close for their names (e.g. every AP 0): numbers at the points, the names in a key
        for ann in placed:
            ann.remove()
        _place_labels(fig, ax, [(str(i), r["latency_ms"][key]["p50"], r["ap"]) for i, r in enumerate(points, 1)])
        _key_below(fig, ax, [f"{i:>2}  {t}" for i, t in enumerate(texts, 1)])


def _key_below(fig, ax, lines: list[str]) -> None:
    """The numbered labels' key, under the axes and their x label (savefig's tight box takes it in)."""
    renderer = fig.canvas.get_renderer()
    below = ax.get_tightbbox(renderer).transformed(fig.transFigure.inverted())
    left = ax.get_position().x0
    fig.text(left, below.y0 - 0.01, "\n".join(lines), va="top", ha="left", fontsize=7, family="monospace")


def _place_labels(fig, ax, items: list[tuple[str, float, float]]) -> tuple[list, int]:
    """Label each point where its text covers no other label or point (nearby points in
    the chart otherwise print over each other): tries offsets around the point, nearest
    first, and draws a thin leader to a label set further away. Returns the annotations
    and how many of them cover another label or point or needed a leader."""
    from matplotlib.transforms import Bbox

    offsets = [(6, 4), (6, -11), (-6, 4), (-6, -11), (6, 16), (6, -23), (-6, 16), (-6, -23),
               (6, 28), (6, -35), (-6, 28), (-6, -35), (6, 40), (6, -47), (-6, 40), (-6, -47)]
    renderer = fig.canvas.get_renderer()
    to_px = ax.transData.transform
    marks = [Bbox.from_extents(*(to_px((x, y)) - 5), *(to_px((x, y)) + 5)) for _, x, y in items]
    taken, placed, crossed = list(marks), [], 0
    inside = ax.get_window_extent(renderer)
    for text, x, y in sorted(items, key=lambda it: (-it[2], it[1])):  # top to bottom
        best = None
        for dx, dy in offsets:
            ann = ax.annotate(text, (x, y), xytext=(dx, dy), textcoords="offset points", fontsize=7,
                              ha="left" if dx > 0 else "right")
            box = ann.get_window_extent(renderer).expanded(1.02, 1.1)
            ann.remove()
            # Outside the axes is worse than any overlap (it lands on the tick labels); then fewest overlaps.
            cost = (not (inside.contains(box.x0, box.y0) and inside.contains(box.x1, box.y1)),
                    sum(box.overlaps(b) for b in taken))
            if best is None or cost < best[0]:
                best = (cost, dx, dy, box)
            if cost == (False, 0):
                break
        cost, dx, dy, box = best
        far = (dx, dy) not in offsets[:2]  # a label away from its point gets a leader line to it
        crossed += cost != (False, 0) or far  # leaders cross other labels and read as the wrong point's
        placed.append(ax.annotate(text, (x, y), xytext=(dx, dy), textcoords="offset points", fontsize=7,
                                  ha="left" if dx > 0 else "right",
                                  arrowprops={"arrowstyle": "-", "lw": 0.5, "color": "0.6"} if far else None))
        taken.append(box)
    return placed, crossed


def _marker(marker: str, label: str):
    from matplotlib.lines import Line2D

    return Line2D([], [], color="black", marker=marker, linestyle="none", label=label)


def _line(style: str, label: str):
    from matplotlib.lines import Line2D

    return Line2D([], [], color="tab:gray", linestyle=style, label=label)


def _patch(color: str, label: str):
    from matplotlib.patches import Patch

    return Patch(color=color, label=label)
