"""Latency benchmark: every artifact x every thread count, model-only and end to end,
rows taking turns so a drifting machine does not favour one of them (see schedule.py)."""
from __future__ import annotations

import os
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..progress import deprecated_keywords, progress_bar, renamed
from ..thresholds import APP_CONF, APP_NMS_IOU, EVAL_CONF, EVAL_MAX_DET, EVAL_NMS_IOU
from ..data.preprocess import read_image
from ..errors import BadArgument, UserError, flag_value, format_size, in_python, input_hw
from ..runtime.loader import open_model, set_input_size_of
from ..threads import torch_threads
from ..runtime.ncnn_backend import PRECISION_HINTS as NCNN_HINTS
from ..runtime.openvino_backend import PRECISION_HINTS as OV_HINTS
from ..runtime.predictor import Predictor
from ..subprocesses import default_sigchld
from .cores import cpu_span, oversubscribed, resolve_cpus
from .hostload import host_load, sample as cpu_sample
from .machine import describe_machine
from .schedule import RUNS_PER_TURN, SETTLE_MAX_S, SWITCH_IN_CALLS, settle, turn_sizes
from .stats import drift_pct, latency_stats

SCHEMA = "yolox_edge.bench/1"
MODES = ("e2e", "model", "both")


@dataclass
class Row:
    """One benchmarked configuration: an artifact (or the baseline) at a thread count."""

    label: str
    artifact: str
    threads: int
    predictor: Predictor
    baseline: bool = False
    ap_skipped: str = ""  # why --data left this row's AP empty
    hint: str | None = None  # the precision hint it was opened with (None: the runtime's default, f32)
    timings: dict[str, list[float]] = field(default_factory=lambda: {"model": [], "e2e": []})
    cpu: dict[str, list[float]] = field(default_factory=lambda: {"model": [], "e2e": []})  # process CPU s per run

    @property
    def backend(self):
        return self.predictor.backend

    def pin_threads(self) -> None:
        # torch's and OpenCV's thread counts are process-wide, so set them before each timed call:
        # OpenCV's pool (every core) resized the e2e rows' images, a "1 thread" row's on two cores
        if self.backend.name == "torch":
            import torch
            torch.set_num_threads(self.threads)
        import cv2
        if cv2.getNumThreads() != self.threads:
            cv2.setNumThreads(self.threads)


def artifact_files(path: Path, info_files: list[str] | None = None) -> list[Path]:
    """The files that make up an artifact (what an app would ship), for its size on disk."""
    from ..export.metadata import METADATA_FILE, peek_metadata

    folder = path if path.is_dir() else path.parent
    meta = peek_metadata(folder)  # read once (the runtime has already validated it)
    listed = meta.get("files") if meta is not None else None
    # An export's folder, its metadata.json or any file of it (its .bin given, not its .xml: the size
    # was the .bin's alone): the files its metadata.json names, only those (a quantize --report
    # folder also holds FP32 reference exports under fp32/).
    if meta is not None and (path.is_dir() or path.name == METADATA_FILE
                             or isinstance(listed, dict) and path.name in listed):
        return [folder / f for f in sorted(listed or {}) if (folder / f).is_file()]
    if path.is_dir():
        return [p for p in sorted(path.rglob("*")) if p.is_file() and p.name != METADATA_FILE]
    if info_files:
        return [path.parent / f for f in info_files if (path.parent / f).is_file()]
    partner = {".xml": ".bin", ".param": ".bin"}.get(path.suffix)
    files = [path]
    if partner and path.with_suffix(partner).is_file():
        files.append(path.with_suffix(partner))
    return files


def model_counts(info) -> tuple[float | None, float | None]:
    """Params (M) and GFLOPs of the artifact's variant at its input size, when known: from its
    metadata.json, else counted on the variant where torch is installed, else unknown."""
    counts = (info.extra.get("metadata") or {}).get("counts")
    if not counts and info.extra.get("variant"):
        try:
            from ..models import variant_counts
        except ImportError:  # a device install (runtimes only): no torch to build the model with
            return None, None
        counts = variant_counts(info.extra["variant"], num_classes=len(info.class_names),
                                input_hw=info.preprocess.input_size)
    return (counts["params_m"], counts["gflops"]) if counts else (None, None)


def display_names(artifacts: list[str]) -> list[str]:
    """Each artifact's folder or file name, or the path as given where two names would clash
    (q2/openvino and q3/openvino must not both read 'openvino')."""
    # metadata.json names its folder's export: the folder's name reads as the others do
    names = [Path(a).parent.name if Path(a).name == "metadata.json" else Path(a).name for a in artifacts]
    return [a if names.count(n) > 1 else n for a, n in zip(artifacts, names)]


def _label(name: str, info, backend, hint: str | None = None) -> str:
    prec = getattr(backend, "effective_precision", None) or info.precision
    # A CPU without the asked type runs f32: say so, or two rows would read the same.
    asked = f" ({hint} asked)" if hint and getattr(backend, "precision", hint) != hint else ""
    return f"{name} [{backend.name} {prec}{asked}]"


HINTED = {"openvino": OV_HINTS, "ncnn": NCNN_HINTS}  # backends that take a precision hint


def _hints_for(backend_name: str, hints: list[str] | None, artifact: str) -> list[str | None]:
    """The precision hints an artifact gets a row for: each of ``hints`` its backend takes."""
    if not hints or backend_name not in HINTED:
        return [None]
    usable = [h for h in hints if h in HINTED[backend_name]]
    if not usable:
        raise UserError(f"{artifact}: {backend_name} takes the precision hints {', '.join(HINTED[backend_name])}, "
                        f"not {', '.join(hints)}; add one of those to {in_python('--precision-hint', 'precision_hints=')}")
    return usable


def build_rows(artifacts: list[str], threads: list[int], *, baseline: str | None, conf: float,
               iou: float, precision_hints: list[str] | None = None) -> list[Row]:
    rows = []
    for a, name in zip(artifacts, display_names([str(a) for a in artifacts])):
        for t in threads:
            opened = open_model(a, threads=t)  # f32: both hinted runtimes' default
            for h in _hints_for(opened[0].name, precision_hints, str(a)):
                backend, info = opened if h in (None, "f32") else open_model(a, threads=t, precision_hint=h)
                pred = Predictor(backend, info, conf=conf, iou=iou)
                rows.append(Row(_label(name, info, backend, h), str(a), t, pred, hint=h))
    if set(precision_hints or ()) - {"f32"} and not any(r.backend.name in HINTED for r in rows):
        # every row ran its runtime's default while the JSON recorded the hints as asked
        given = flag_value("--precision-hint", "precision_hints", list(precision_hints), ",".join(precision_hints))
        raise UserError(f"{given}: no artifact here takes a precision hint (OpenVINO IRs and ncnn exports do); drop it")
    if baseline:
        from .baseline import baseline_predictor
        names = rows[0].predictor.class_names if rows else None
        for t in threads:
            pred = baseline_predictor(baseline, threads=t, class_names=names, conf=conf, iou=iou)
            rows.append(Row("official-style baseline [onnxruntime fp32, numpy decode+NMS]", str(baseline), t,
                            pred, baseline=True))
    return rows


MODEL_SUFFIXES = (".onnx", ".xml", ".param", ".bin", ".json")


def _export_of(path: Path) -> Path:
    """What an artifact argument names: an export folder for the folder, its metadata.json or
    a model file in it (one export given two ways is one row), else the file itself."""
    p = path.resolve()
    if p.is_file() and p.suffix in MODEL_SUFFIXES and (p.parent / "metadata.json").is_file():
        return p.parent
    return p


def _set_input_size(rows: list[Row], size: int | tuple[int, int]) -> None:
    """``--img-size`` for the rows that take any size; a static export keeps its own (the
    table states each row's size), and the baseline is the official model at its size."""
    ours = [r for r in rows if not r.baseline]
    takes = [r for r in ours if r.predictor.static_input_size() in (None, input_hw(size))]
    if ours and not takes:
        named = ", ".join(f"{r.artifact} ({r.predictor.static_input_size()[1]}x{r.predictor.static_input_size()[0]})"
                          for r in {r.artifact: r for r in ours}.values())
        raise UserError(f"{flag_value('--img-size', 'img_size', size, format_size(size))}: every artifact is a static "
                        f"export at its own size: {named}; "
                        f"--img-size applies to checkpoints and dynamic exports (export --img-size {format_size(size)} "
                        "for a static one at that size)")
    for r in takes:
        set_input_size_of(r.predictor, size, r.artifact)


def _time_once(row: Row, mode: str, img: np.ndarray, x: np.ndarray) -> float:
    row.pin_threads()
    t0 = time.perf_counter()
    if mode == "model":
        row.backend.infer(x)
    else:
        row.predictor.predict_images([img])
    return time.perf_counter() - t0


@deprecated_keywords(artifacts=renamed("models"))  # its earlier name; the models, as every other call names one
def run_bench(models: str | Path | list[str | Path], *, threads: int | tuple[int, ...] | list[int] = (1, 2),
              warmup: int = 10, runs: int = 100,
              image: str | Path | None = None, mode: str = "both", baseline: str | Path | None = None,
              img_size: int | tuple[int, int] | None = None, conf: float = APP_CONF, iou: float = APP_NMS_IOU,
              data: str | Path | None = None, rss: bool = True,
              cpus: list[int] | str | None = None, powersave: int | None = None, progress: bool = True,
              precision_hints: list[str] | None = None, runs_per_turn: int = RUNS_PER_TURN,
              fps: float | None = None) -> dict:
    """Benchmark ``models`` (checkpoints, exports, bundles: one or a list); returns the result dict
    (schema ``yolox_edge.bench/1``). ``artifacts=`` is the deprecated name of ``models``.

    Rows take turns: in each round every row waits for an idle process, makes
    ``SWITCH_IN_CALLS`` untimed calls, then ``runs_per_turn`` timed runs (modes alternating),
    until each has ``runs``; ``runs_per_turn=1`` alternates rows call by call.
    ``fps`` paces a turn's runs at that frame rate, as a camera app calls the model; each
    run's process CPU time then covers its whole frame (runtime threads busy-waiting
    between frames included), which is what it costs in battery and heat.
    ``cpus`` pins the process to those cores (e.g. the big cores of a phone SoC), or names them:
    'big' (all but the slowest cluster), 'little' (the slowest cluster);
    ``powersave`` is ncnn's CPU policy (0 all cores, 1 little, 2 big), process-wide;
    ``precision_hints`` (e.g. ``["f32", "bf16"]``) gives each OpenVINO/ncnn artifact a row per
    hint its runtime takes (default: f32 only).
    """
    artifacts = [models] if isinstance(models, (str, Path)) else models  # one model, not its characters
    if isinstance(threads, int):
        threads = [threads]
    threads = list(dict.fromkeys(threads))  # '1,1' or one artifact named twice would give twin rows
    unique: dict[Path, str | Path] = {}
    for a in artifacts:
        unique.setdefault(_export_of(Path(a)), a)
    artifacts = list(unique.values())
    if not artifacts and baseline is None:  # nothing to time: a result of NaN means
        raise BadArgument("models: give one or more models to bench (checkpoints, exports, bundles), or a "
                          "baseline")
    if mode not in MODES:
        raise BadArgument(f"mode {mode!r}: must be one of {', '.join(MODES)}")
    turns = turn_sizes(runs, runs_per_turn)
    if fps is not None and fps <= 0:
        raise BadArgument(f"fps {fps}: must be positive (frames per second to pace the runs at), or None")
    period = 1.0 / fps if fps else 0.0
    if not threads or min(threads) < 1:
        raise BadArgument(f"threads {threads}: give one or more thread counts of at least 1")
    check_core_choice(cpus, powersave)
    if isinstance(cpus, str):  # 'big', 'little' or '4,5,6,7'
        cpus = resolve_cpus(cpus)
    split = None
    if data:  # a bad data spec fails now, not after minutes of timing
        from ..data.spec import read_split

        split = read_split(data, "val")
    with _pinned(cpus):
        modes = ["model", "e2e"] if mode == "both" else [mode]
        if image:
            img = read_image(image)
        else:
            from ..data.synthetic import synthetic_scene
            img = synthetic_scene()
        rows = build_rows(artifacts, threads, baseline=baseline, conf=conf, iou=iou, precision_hints=precision_hints)
        # ncnn's policy also sets OpenMP's thread count, which torch shares: it is given back first
        with _threads_kept(), _ncnn_powersave(powersave):
            if split is not None:  # AP is scored after the timing: a mismatch must not wait for it
                from ..engine.evaluator import require_same_class_count
                for r in rows:
                    if r.baseline and len(r.predictor.class_names) != len(split.names):
                        # The official 80-class model beside a fine-tune is the usual latency pair:
                        # timed as asked, its AP left empty (it cannot be scored on these classes).
                        r.ap_skipped = (f"{len(r.predictor.class_names)} classes, {data} has {len(split.names)}; "
                                        "the --raw export of a model trained on this data would be scored")
                        continue
                    require_same_class_count(r.predictor, split, r.artifact, str(data))
            if img_size:
                _set_input_size(rows, img_size)
            # What each backend takes: float CHW, or uint8 pixels where it converts them in-graph.
            inputs = [r.predictor.make_input(img)[0][None] for r in rows]

            for r, x in zip(rows, inputs):  # warm-up, row by row (caches, lazy compilation)
                for m in modes:
                    for _ in range(warmup):
                        _time_once(r, m, img, x)
            order = [(i, m) for i in range(len(rows)) for m in modes]
            before = cpu_sample()
            settled = _take_turns(rows, inputs, img, modes, turns, period, progress)
            load = host_load(before, cpu_sample())
            aps = _accuracy(rows, split, progress) if split is not None else {}
            peak = _peak_rss(rows, warmup, image) if rss else {}
            cores = sorted(os.sched_getaffinity(0))
            results = [_row_result(r, x, modes, aps.get(r.label, {}), peak.get(_rss_key(r)), cores)
                       for r, x in zip(rows, inputs)]
        return {"schema": SCHEMA, "machine": describe_machine(),
                "config": {"warmup": warmup, "runs": runs, "modes": modes, "threads": list(threads),
                           "image": str(image) if image else "generated scene 640x480", "conf": conf, "iou": iou, "interleaved": True,
                           "runs_per_turn": min(runs_per_turn, runs), "switch_in_calls": SWITCH_IN_CALLS,
                           "settle_max_ms": SETTLE_MAX_S * 1e3,
                           "settle_mean_ms": round(float(np.mean(settled)) * 1e3, 2), "fps": fps,
                           "cpus": cores, "ncnn_powersave": powersave,
                           "precision_hints": precision_hints,
                           "order": [f"{rows[i].label} x{rows[i].threads} {m}" for i, m in order]},
                "host_load": load, "rows": results}


@contextmanager
def _threads_kept():
    """Put torch's and OpenCV's process-wide thread counts back after the rows pinned theirs (a
    notebook's torch ran on the last row's count after a bench)."""
    import cv2

    before = cv2.getNumThreads()
    try:
        if sys.modules.get("torch") is None:  # never imported here (a device install has no torch at all)
            yield
        else:
            with torch_threads():
                yield
    finally:
        cv2.setNumThreads(before)


def _take_turns(rows: list[Row], inputs: list[np.ndarray], img: np.ndarray, modes: list[str], turns: list[int],
                period: float, progress: bool) -> list[float]:
    """The timed runs, into each row's ``timings`` and ``cpu``; returns the settle waits (s).

    Each round gives every row a turn: wait until the previous row's runtime threads have
    stopped spinning, make untimed switch-in calls, then ``n`` timed runs per mode.
    """
    settled: list[float] = []
    # a context: closed (its last line written) before a Ctrl-C's stop line, as progress_bar says
    with progress_bar(total=sum(turns) * len(rows) * len(modes), desc="bench", unit="run",
                      disable=not progress) as bar:
        for n in turns:  # one round: a turn for every row
            for r, x in zip(rows, inputs):
                settled.append(settle())
                r.pin_threads()
                for _ in range(SWITCH_IN_CALLS):
                    r.backend.infer(x)
                for _ in range(n):
                    for m in modes:
                        c0, t0 = time.process_time(), time.perf_counter()
                        r.timings[m].append(_time_once(r, m, img, x))
                        if period:  # the rest of the frame: the next camera frame is not there yet
                            time.sleep(max(0.0, t0 + period - time.perf_counter()))
                        r.cpu[m].append(time.process_time() - c0)
                bar.update(n * len(modes))
    return settled


def _row_result(r: Row, x: np.ndarray, modes: list[str], ap: dict, peak_rss_mb: float | None,
                cores: list[int]) -> dict:
    """One row of the result: its latency statistics and what it is (size, outputs, counts, AP).

    ``cores`` are the cores the bench ran on: a row with more threads than those is flagged
    ``oversubscribed`` (its threads took turns on the cores), so a reader of the JSON alone can
    drop it without re-deriving the rule from ``config``."""
    out = r.backend.infer(x)
    info = r.predictor.info
    params, gflops = model_counts(info)
    files = artifact_files(Path(r.artifact), info.extra.get("files"))
    return {
        "label": r.label, "artifact": r.artifact, "backend": r.backend.name, "baseline": r.baseline,
        "precision": info.precision,
        "effective_precision": getattr(r.backend, "effective_precision", None) or info.precision,
        "precision_hint": r.hint,
        "output_kind": info.output_kind, "threads": r.threads, "oversubscribed": oversubscribed(r.threads, cores),
        "input_size": list(info.preprocess.input_size),
        "latency_ms": {m: latency_stats(r.timings[m]) for m in modes},
        "drift_pct": {m: drift_pct(r.timings[m]) for m in modes},
        "cpu_ms": {m: round(float(np.median(r.cpu[m])) * 1e3, 3) for m in modes},
        "size_bytes": int(sum(f.stat().st_size for f in files)),
        "output_bytes_per_image": int(sum(np.asarray(v).nbytes for v in out.values()) // x.shape[0]),
        "peak_rss_mb": peak_rss_mb, "params_m": params, "gflops": gflops,
        "variant": None if r.baseline else info.extra.get("variant"),  # best_by_variant groups rows by it
        "ap": ap.get("AP"), "ap50": ap.get("AP50"), **({"ap_skipped": r.ap_skipped} if r.ap_skipped else {}),
    }


def _thread_ids() -> list[int]:
    """This process's threads (Linux: /proc/self/task), or [0] (the calling thread) elsewhere."""
    try:
        return [int(t) for t in os.listdir("/proc/self/task")]
    except OSError:
        return [0]


def _set_affinity(tid: int, cpus) -> None:
    try:
        os.sched_setaffinity(tid, cpus)
    except ProcessLookupError:  # the thread ended meanwhile
        pass


@contextmanager
def _pinned(cpus: list[int] | None):
    """Pin every thread of this process to ``cpus`` for the block, then give each the cores it had.

    sched_setaffinity sets one thread: the runtimes' pools that already ran (a notebook's torch)
    kept every core, and the threads started inside the block stayed pinned after it."""
    if not cpus:
        yield
        return
    before = {}
    for tid in _thread_ids():
        try:
            before[tid] = os.sched_getaffinity(tid)
        except ProcessLookupError:  # the thread ended meanwhile
            pass
    mine = os.sched_getaffinity(0)
    try:
        os.sched_setaffinity(0, set(cpus))
    except (OSError, ValueError) as e:
        raise UserError(f"{flag_value('--cpus', 'cpus', cpus, cpu_span(cpus))}: cannot pin to these cores ({e}); "
                        f"this process may use {cpu_span(mine)}") from None
    try:
        for tid in before:
            _set_affinity(tid, set(cpus))
        yield
    finally:
        for tid in _thread_ids():  # a thread started in the block had the pinned mask: this thread's before it
            _set_affinity(tid, before.get(tid, mine))
        os.sched_setaffinity(0, mine)


@contextmanager
def _ncnn_powersave(policy: int | None):
    """ncnn's CPU policy (process-wide) for the block, then the one it had."""
    if policy is None:
        yield
        return
    import ncnn

    before = ncnn.get_cpu_powersave()
    ncnn.set_cpu_powersave(int(policy))
    try:
        yield
    finally:
        ncnn.set_cpu_powersave(before)


def check_core_choice(cpus: list[int] | str | None, powersave: int | None) -> None:
    """UserError when both ``cpus`` and ``powersave`` choose the cores."""
    if cpus and powersave is not None:
        # ncnn.set_cpu_powersave sets its own core mask on the calling thread and ncnn's workers:
        # measured on 2 cores, --cpus 0 --powersave 2 ran on cores 0-1, the pin silently undone
        raise UserError(f"{in_python('--cpus and --powersave', 'cpus= and powersave=')} both choose cores (ncnn's "
                        "--powersave replaces the --cpus pinning); give one: --cpus for every runtime, --powersave for "
                        "ncnn's own policy")


def _accuracy(rows: list[Row], split, progress: bool) -> dict[str, dict]:
    from ..engine.evaluator import evaluate

    out: dict[str, dict] = {}
    for r in rows:
        if r.label in out or r.ap_skipped:  # one per artifact and precision, not per thread count
            continue
        p = r.predictor
        ev = Predictor(p.backend, p.info, conf=EVAL_CONF, iou=EVAL_NMS_IOU, max_det=EVAL_MAX_DET)
        r.pin_threads()
        out[r.label] = evaluate(ev, split, progress=progress)
    return out


def _rss_key(r: Row) -> tuple:
    """What a row's peak RSS depends on besides its thread count: the artifact as the row runs it
    (precision hint, input size), or the baseline."""
    return r.artifact, r.baseline, r.hint, tuple(r.predictor.info.preprocess.input_size)


def _peak_rss(rows: list[Row], warmup: int, image: str | Path | None = None) -> dict[tuple, float]:
    """Peak resident memory of each artifact as its rows run it (precision hint, input size: an
    ``--img-size`` row read the default size's figure, a bf16 row the f32 compile's; on ``image``,
    the rows' own: a 12 MP photo takes some 80 MiB more than the generated scene), measured alone
    in a fresh process at the first of its rows' thread counts."""
    import json
    import subprocess
    import sys

    out: dict[tuple, float] = {}
    for r in rows:
        key = _rss_key(r)
        if key in out:
            continue
        cmd = [sys.executable, "-m", "yolox_edge.bench.rss", r.artifact, str(max(r.threads, 1)), str(max(warmup, 3))]
        cmd += ["--image", str(image)] if image else []
        if r.baseline:
            cmd.append("--baseline")
        else:
            h, w = key[3]
            cmd += ["--img-size", f"{w}x{h}"] + (["--precision-hint", r.hint] if r.hint else [])
        with default_sigchld():
            res = subprocess.run(cmd, capture_output=True, text=True)
        if res.returncode == 0 and res.stdout.strip():
            out[key] = json.loads(res.stdout.strip().splitlines()[-1])["peak_rss_mb"]
    return out
