"""yolox-edge bench: latency of artifacts x thread counts, model-only and end to end."""
from __future__ import annotations

import os
import sys
from pathlib import Path

from ..errors import UserError
from . import PRECISION_HINTS, add_no_progress
from .argtypes import file_named, img_size, int_list, non_negative, positive, positive_float
from .jsonout import add_json_option, check_json_target, refuse_own_file, report_stream, write_json


PLOT_FORMATS = (".png", ".jpg", ".svg", ".pdf")  # matplotlib writes each; the file's suffix picks it


def _cpus(s: str) -> list[int] | str:
    """'big' / 'little' (resolved on the machine by the bench) or a comma list of core numbers."""
    import argparse

    from ..bench.cores import resolve_cpus

    if s.strip().lower() in ("big", "little"):
        return s.strip().lower()
    try:  # one parser of core lists: the library's (a comma list needs no look at the machine)
        return resolve_cpus(s)
    except UserError:
        raise argparse.ArgumentTypeError(f"expected core numbers (e.g. 4,5,6,7), 'big' or 'little', not {s!r}") from None


def _hints(s: str) -> list[str]:
    import argparse

    hints = [v.strip() for v in s.split(",") if v.strip()]
    bad = [h for h in hints if h not in PRECISION_HINTS]
    if bad or not hints:
        raise argparse.ArgumentTypeError(f"precision hints are {', '.join(PRECISION_HINTS)} (comma list), not {s!r}")
    return list(dict.fromkeys(hints))  # f32,f32 is one row per artifact, as --threads 1,1 is


def add_parser(sub) -> None:
    p = sub.add_parser("bench", help="measure latency of models (every backend, precision, thread count)")
    p.add_argument("artifacts", nargs="+", help="checkpoints, exported models, folders or bundles")
    p.add_argument("--threads", type=int_list(1), default=[1, 2], help="comma list, default 1,2")
    p.add_argument("--warmup", type=non_negative, default=10, help="untimed calls per row and mode first (default 10)")
    p.add_argument("--runs", type=positive, default=100, help="timed runs per row and mode (default 100)")
    p.add_argument("--runs-per-turn", type=positive, default=10,
                   help="timed runs a row makes in a row before the next row's turn (default 10; 1: alternate "
                        "every call)")
    p.add_argument("--fps", type=positive_float, default=None,
                   help="pace each row's runs at this frame rate (a camera app) and report CPU ms per frame, "
                        "runtime threads busy-waiting between frames included")
    p.add_argument("--img-size", type=img_size, default=None, metavar="S|WxH",
                   help="input size for artifacts that take any (checkpoints, dynamic exports); static exports "
                        "keep theirs, and a row is compared with the baseline only at the baseline's size")
    p.add_argument("--image", default=None, help="image to run on (default: a generated 640x480 scene)")
    p.add_argument("--mode", choices=["e2e", "model", "both"], default="both",
                   help="e2e: image in memory to detections; model: the graph alone; default both")
    p.add_argument("--baseline", default=None,
                   help="raw-output ONNX (e.g. the official yolox_nano.onnx) for the official-style baseline row")
    p.add_argument("--data", default=None, help="data spec: also measure AP (val split) for the latency/AP chart")
    p.add_argument("--cpus", type=_cpus, default=None,
                   help="pin to these cores: numbers (e.g. 4,5,6,7), 'big' (all but the slowest core cluster, "
                        "from cpufreq) or 'little'")
    p.add_argument("--powersave", type=int, choices=[0, 1, 2], default=None,
                   help="ncnn CPU policy: 0 all cores, 1 little cores, 2 big cores")
    p.add_argument("--precision-hint", type=_hints, default=None,
                   help="comma list of f32, bf16, f16: a row per hint for each OpenVINO artifact (f32, bf16, f16) "
                        "and ncnn artifact (f32, f16); default f32. On bf16/fp16 CPUs (Xeon AMX/AVX512-BF16, ARMv8.2+) "
                        "this measures what the runtime would do by default")
    p.add_argument("--no-rss", action="store_true", help="skip the peak-RSS subprocess per artifact")
    add_json_option(p, "the full result (schema yolox_edge.bench/1)")
    p.add_argument("--csv", dest="csv_out", type=file_named(".csv"), default=None, metavar="FILE.csv",
                   help="write one line per row and mode here")
    p.add_argument("--md", dest="md_out", type=file_named(".md"), default=None, metavar="FILE.md",
                   help="write the printed table here")
    p.add_argument("--plot", dest="plot_out", default=None,
                   help="chart file (.png, .jpg, .svg or .pdf): bars, or latency vs AP with --data")
    add_no_progress(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from ..bench import best_by_variant, best_ratio, markdown_table, run_bench, write_csv, write_plot
    from ..bench.report import headline_mode, oversubscription_note
    from ..bench.runner import check_core_choice
    from ..fileio import StagedFiles, require_writable

    if args.plot_out and Path(args.plot_out).suffix.lower() not in PLOT_FORMATS:
        raise UserError(f"--plot {args.plot_out}: name the chart {', '.join('NAME' + s for s in PLOT_FORMATS)}")
    check_json_target(args, reads=(*args.artifacts, args.baseline, args.image), data=args.data)
    for what, flag, path in (("CSV", "--csv", args.csv_out), ("table", "--md", args.md_out),
                             ("plot", "--plot", args.plot_out)):
        if path:  # results are written at the end: refuse a bad path before minutes of timing
            # an input under a report's name (--plot dog.png --image dog.png): replaced, rc 0
            refuse_own_file(path, (*args.artifacts, args.baseline, args.image, args.data), flag=flag,
                            what=f"the {what}")
            require_writable(path, what)
    check_core_choice(args.cpus, args.powersave)  # before the note below, which would be moot
    cpus = args.cpus
    if isinstance(cpus, str):  # 'big' / 'little': resolved here, so the note below can count them
        from ..bench.cores import resolve_cpus
        cpus = resolve_cpus(cpus)
    allowed = sorted(os.sched_getaffinity(0))
    # Cores this process may not use are the pinning's error to report, not a thread count's.
    note = oversubscription_note(args.threads, cpus or allowed) if set(cpus or allowed) <= set(allowed) else ""
    if note:  # before the runs: an oversubscribed row can take minutes with the bar at 0 %
        print(f"note: {note}", file=sys.stderr)
    res = run_bench(args.artifacts, threads=args.threads, warmup=args.warmup, runs=args.runs, image=args.image,
                    mode=args.mode, baseline=args.baseline, img_size=args.img_size, data=args.data,
                    rss=not args.no_rss, cpus=cpus, powersave=args.powersave,
                    precision_hints=args.precision_hint, runs_per_turn=args.runs_per_turn, fps=args.fps,
                    progress=not args.no_progress)
    table = markdown_table(res)
    # The run's files are renamed into place together at the end: a stop between two of them left
    # this run's JSON beside an earlier run's plot, with nothing saying which was which.
    with StagedFiles() as files:
        write_json(res, args.json_out, files)
        out = report_stream(args)
        print(table, file=out)
        mode = headline_mode(res)  # the speed-up column's mode: --mode model has one too
        best = best_ratio(res, mode=mode)
        if best:
            print(f"best {'end-to-end' if mode == 'e2e' else 'model-only'} speed-up vs the official-style baseline: "
                  f"{best['ratio']:.2f}x "
                  f"({best['label']}, {best['threads']} thread(s))", file=out)
            per = best_by_variant(res, mode=mode)
            if len(per) > 1:  # several models: the overall best may be another model's than the one asked about
                print("best per model: " + "; ".join(f"{v} {b['ratio']:.2f}x ({b['label']}, {b['threads']} "
                                                     "thread(s))" for v, b in per.items()), file=out)
        if args.csv_out:
            write_csv(res, args.csv_out, files=files)
        if args.md_out:
            files.write(Path(args.md_out), lambda f: f.write(table.encode()))
        if args.plot_out:
            write_plot(res, args.plot_out, files=files)
    return 0
