"""Render a benchmark result: markdown table, CSV, and a PNG chart."""
from __future__ import annotations

import csv
import io
from pathlib import Path

from ..fileio import atomic_write_bytes


def _mb(n: int | None) -> str:
    return "" if n is None else f"{n / 2**20:.2f}"


def markdown_table(result: dict) -> str:
    """One line per row and thread count: p50/p90 ms model and end to end, ratio vs baseline."""
    rows = result["rows"]
    modes = result["config"]["modes"]
    base = {r["threads"]: r for r in rows if r["baseline"]}
    head = ["model", "threads"]
    for m in modes:
        head += [f"{m} p50 ms", f"{m} p90 ms", f"{m} img/s"]
    key = "e2e" if "e2e" in modes else "model"
    per = "frame" if result["config"].get("fps") else "img"
    head += [f"{key} speed-up vs baseline", f"{key} CPU ms/{per}", "size MB", "out bytes/img", "peak RSS MB", "AP"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [r["label"], str(r["threads"])]
        for m in modes:
            s = r["latency_ms"][m]
            cells += [f"{s['p50']:.2f}", f"{s['p90']:.2f}", f"{s['ips']:.1f}"]
        b = base.get(r["threads"])
        ratio = b["latency_ms"][key]["p50"] / r["latency_ms"][key]["p50"] if b else None
        cpu = (r.get("cpu_ms") or {}).get(key)  # absent in JSONs from before it was measured
        cells += ["" if ratio is None else f"{ratio:.2f}x", "" if cpu is None else f"{cpu:.1f}",
                  _mb(r["size_bytes"]), str(r["output_bytes_per_image"]),
                  "" if r["peak_rss_mb"] is None else f"{r['peak_rss_mb']:.0f}",
                  "" if r["ap"] is None else f"{r['ap']:.4f}"]
        lines.append("| " + " | ".join(cells) + " |")
    m = result["machine"]
    lines.append("")
    lines.append(f"Machine: {m['cpu']} ({m['arch']}, {m['logical_cores']} logical cores, ISA: {', '.join(m['isa'])}); "
                 f"{m['os']}; " + ", ".join(f"{k} {v}" for k, v in m["runtimes"].items()))
    c = result["config"]
    turn = ""
    if c.get("runs_per_turn"):  # JSONs from before turns lack these keys
        turn = (f" in turns (each row: wait for an idle process, {c['switch_in_calls']} untimed calls, "
                f"{c['runs_per_turn']} timed runs)")
    pace = (f" Runs paced at {c['fps']:g} frames/s: CPU ms/frame is the process's CPU time over each frame, "
            "runtime threads busy-waiting between frames included." if c.get("fps") else "")
    lines.append(f"{c['runs']} runs after {c['warmup']} warm-up, rows interleaved{turn}; input: {c['image']}.{pace}")
    for w in drift_warnings(result):
        lines += ["", w]
    return "\n".join(lines) + "\n"


DRIFT_WARN_PCT = 10.0


def drift_warnings(result: dict) -> list[str]:
    """A line for each row whose second half of runs was much slower or faster than its first."""
    out = []
    key = "e2e" if "e2e" in result["config"]["modes"] else "model"
    for r in result["rows"]:
        d = (r.get("drift_pct") or {}).get(key)
        if d is not None and abs(d) > DRIFT_WARN_PCT:
            out.append(f"Not steady: {r['label']} x{r['threads']} ran {abs(d):.0f}% {'slower' if d > 0 else 'faster'} "
                       f"({key} p50) in the second half of its runs than in the first. Heat or other load changed "
                       "during the run: close other apps, let the device cool (or pin cores with --cpus) and run again.")
    return out


def best_ratio(result: dict, mode: str = "e2e") -> dict | None:
    """The fastest non-baseline row against the baseline at the same thread count."""
    base = {r["threads"]: r for r in result["rows"] if r["baseline"]}
    best = None
    for r in result["rows"]:
        b = base.get(r["threads"])
        if r["baseline"] or b is None or mode not in r["latency_ms"]:
            continue
        ratio = b["latency_ms"][mode]["p50"] / r["latency_ms"][mode]["p50"]
        if best is None or ratio > best["ratio"]:
            best = {"label": r["label"], "threads": r["threads"], "ratio": round(ratio, 3)}
    return best


def write_csv(result: dict, path: str | Path) -> None:
    buf = io.StringIO()
    w = csv.writer(buf)
    cols = ["label", "artifact", "backend", "precision", "effective_precision", "threads", "mode",
            "min", "p50", "p90", "p99", "mean", "std", "ips", "n", "size_bytes", "output_bytes_per_image",
            "peak_rss_mb", "params_m", "gflops", "ap", "ap50", "cpu_ms"]
    w.writerow(cols)
    for r in result["rows"]:
        for mode, s in r["latency_ms"].items():
            w.writerow([r["label"], r["artifact"], r["backend"], r["precision"], r["effective_precision"], r["threads"],
                        mode, *(s[k] for k in ("min", "p50", "p90", "p99", "mean", "std", "ips", "n")),
                        r["size_bytes"], r["output_bytes_per_image"], r["peak_rss_mb"], r["params_m"], r["gflops"],
                        r["ap"], r["ap50"], (r.get("cpu_ms") or {}).get(mode)])
    atomic_write_bytes(path, lambda f: f.write(buf.getvalue().encode()))


def write_plot(result: dict, path: str | Path) -> None:
    """Latency vs AP (the paper's Figure 1 for this device) when AP is known, else a bar chart."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    key = "e2e" if "e2e" in result["config"]["modes"] else "model"
    rows = result["rows"]
    fig, ax = plt.subplots(figsize=(9, 5.5))
    if all(r["ap"] is not None for r in rows if not r["baseline"]) and any(r["ap"] is not None for r in rows):
        for t in sorted({r["threads"] for r in rows}):
            sel = [r for r in rows if r["threads"] == t and r["ap"] is not None]
            ax.scatter([r["latency_ms"][key]["p50"] for r in sel], [r["ap"] for r in sel], label=f"{t} thread(s)")
            for r in sel:
                ax.annotate(r["label"], (r["latency_ms"][key]["p50"], r["ap"]), fontsize=7, alpha=0.8)
        ax.set_xlabel(f"{key} latency p50 (ms)")
        ax.set_ylabel("COCO AP")
        ax.legend()
    else:
        labels = [f"{r['label']} x{r['threads']}" for r in rows]
        ax.barh(labels, [r["latency_ms"][key]["p50"] for r in rows])
        ax.set_xlabel(f"{key} latency p50 (ms)")
        ax.tick_params(axis="y", labelsize=7)
    ax.set_title(f"yolox_edge bench on {result['machine']['cpu']} ({result['machine']['arch']})")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    atomic_write_bytes(path, lambda f: f.write(buf.getvalue()))
