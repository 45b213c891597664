"""What ``yolox-edge quantize`` runs: (QAT) -> INT8 per format -> optional FP32-vs-INT8 report."""
from __future__ import annotations

import json
import platform
import sys
from pathlib import Path
from typing import Callable

from ..errors import FORCE, OUT, UserError, check_input_size, in_python, input_hw, require_out_folder, require_utf8_path
from ..fileio import stops_held
from ..export.api import DEFAULT_NMS_CONF, DEFAULT_NMS_IOU, output_plan
from ..progress import deprecated_keywords, line_sink, renamed
from ..threads import busy_cpu_line, busy_watch, check_threads, cpu_load_since, cpu_threads, torch_thread_count
from .accuracy import ACCURACY_CONTROL, QAT_DATA_ADVICE, check_val_images, needs_data, summary_lines
from .calib import load_calibration_set
from .nncf_quiet import quiet_nncf
from .ptq import (FORMATS, QuantizeOptions, QuantizeResult, check_bias_correction, check_keep_float, check_options,
                  int8_stem, quantize_detector)
from .qat_eval import SPLIT, ap_summary, has_val_split, record_exported_eval, score_export
from .staging import REPORT_PHASE, StagedOutput


# The earlier forms: run_quantize(model, calib, formats, out), verbose=, and nms_iou=/nms_conf= (the
# names of --nms and --conf everywhere else).
@deprecated_keywords("calib", "formats", "out", verbose=lambda v: {"progress": bool(v), "log": print if v else None},
                     nms_iou=renamed("iou"), nms_conf=renamed("conf"))
def run_quantize(model: str | Path, *, calib: str | Path, formats: str | list[str], out: str | Path,
                 preset: str = "mixed",
                 fast_bias_correction: bool = True, subset_size: int = 300, topk: int | None = None,
                 accuracy_control: bool = False, max_drop: float = 0.005, data: str | Path | None = None,
                 qat: bool = False, epochs: int = 1, lr: float | None = None, batch: int = 8,
                 report: bool = False, keep_float: int = 4, nncf_keep_float: int = 2,
                 iou: float = DEFAULT_NMS_IOU,
                 conf: float = DEFAULT_NMS_CONF, progress: bool = True, log: Callable[[str], None] | None = print,
                 force: bool = False, img_size: int | tuple[int, int] | None = None,
                 silu: str = "exact", threads: int | None = None) -> dict[str, QuantizeResult]:
    """INT8-convert ``model`` into each format; returns format -> result (and says each step to ``log``).

    ``progress=False`` turns off the progress bars (this library's and NNCF's); ``log`` receives
    the lines (None: none). If the run stops, the note on what it kept goes to ``log``, to stderr
    when ``log`` is ``print`` (beside the traceback). ``verbose=False`` is the deprecated spelling of
    ``progress=False, log=None``; ``calib``, ``formats`` and ``out`` were positional and ``iou``/``conf``
    (the in-graph NMS, as ``export_model``'s) were ``nms_iou``/``nms_conf``: those forms still work,
    with a DeprecationWarning.

    An export already in a format's folder is refused unless ``force``; with it, that export
    and the report files an earlier ``report=True`` run left in ``out`` are replaced once every
    new export is ready (staging.py: a run that stops before leaves ``out`` as it was). After
    QAT, each export is scored on ``data``'s val split (metadata ``quantization.qat.exported_eval``).
    ``img_size`` makes the INT8 graphs (and the calibration set they need) that size instead of the
    checkpoint's, as ``export --img-size`` does for FP32. ``silu="rational"`` writes the OpenVINO
    export's SiLUs as the rational approximation (export/silu_rational.py; the other formats keep SiLU).
    ``threads`` sets torch's and OpenCV's CPU threads for the run (calibration statistics, the conv scan, QAT,
    the graphs) and the runtimes' for its evaluations (the report, QAT's, the accuracy control's
    scoring); None leaves each library's choice (every core: on a machine busy with other work,
    1 can be many times faster). NNCF's own OpenVINO compiles and onnxruntime sessions (its
    statistics, its accuracy-control candidates) stay at every core: NNCF makes a new Core or
    session for each and takes no compile settings, and a Core's properties reach only the
    compiles made through it. The process's CPU affinity (``taskset -c``) bounds them too.
    """
    from ..engine.checkpoint import load_model
    from ..export.api import check_silu

    if (report or accuracy_control or qat) and not data:
        raise UserError(needs_data(report=report, accuracy_control=accuracy_control, qat=qat))
    formats = list(dict.fromkeys([formats] if isinstance(formats, str) else formats))  # "onnx" is one format
    out = Path(out)
    for f in formats:
        if f not in FORMATS:
            raise UserError(f"unknown format {f!r}; choose from {', '.join(FORMATS)}")
    check_silu(formats, silu)
    check_bias_correction(formats, fast_bias_correction)
    # each format's own refusals, now: in the format loop they came after the formats before it
    # (accuracy control, a whole QAT) had run, and all of it was thrown away
    if accuracy_control and "ncnn" in formats:
        raise UserError(f"{ACCURACY_CONTROL} works through NNCF (openvino, onnx); the ncnn writer has no such loop: "
                        "quantize ncnn in a run of its own without it")
    for f in formats:
        output_plan(f, "fp32", topk, False, False)
    check_options(QuantizeOptions(preset=preset, subset_size=subset_size, max_drop=max_drop))
    check_threads(threads)
    detector, ckpt = load_model(model)
    check_keep_float(detector, formats, keep_float=keep_float, nncf_keep_float=nncf_keep_float)
    if img_size is not None:
        check_input_size(img_size, detector.strides)
        ckpt = {**ckpt, "preprocess": {**ckpt["preprocess"], "input_size": list(input_hw(img_size))}}
    say = line_sink(log)
    if data and (report or accuracy_control):  # found now, not after minutes of quantization
        from ..data.spec import read_split_for
        from ..engine.evaluator import model_data_notes

        val = read_split_for(data, "val", len(ckpt["class_names"]), "give the data spec the model was trained on")
        if accuracy_control:
            check_val_images(len(val.samples), data)
        if not qat:  # run_qat says them of the same spec's train split (the same names and ids), first thing
            for note in model_data_notes(ckpt["class_names"], ckpt.get("category_ids"), val):
                say(note)
    if data and qat:  # run_qat reads it first thing, but inside the staged run: a bad spec was two lines
        from ..data.spec import read_split_for

        read_split_for(data, "train", len(ckpt["class_names"]), QAT_DATA_ADVICE)
    cal = load_calibration_set(calib, img_size=tuple(ckpt["preprocess"]["input_size"]))
    require_utf8_path(out, f"{OUT} folder")  # the INT8 graphs are written by onnx, OpenVINO and ncnn
    _refuse_earlier(formats, out, force, ckpt["variant"], report)
    h, w = cal.size  # written width x height, as --img-size takes it and calibrate prints it
    say(f"calibration set: {len(cal)} image{'s' if len(cal) != 1 else ''} {w}x{h} (sha256 {cal.sha256[:12]}...)")
    stage = StagedOutput(out)
    try:
        with stage, quiet_nncf(bars=progress), cpu_threads(threads):  # OpenCV's pool too (QAT's images, scoring)
            for line in stage.swept:
                say(line)
            load_start = busy_watch()
            staged, scores = _quantize_formats(
                detector, ckpt, Path(model), cal, formats, stage, say, data=data, qat=qat, epochs=epochs, lr=lr,
                batch=batch, subset_size=subset_size, progress=progress, threads=threads,
                options=dict(preset=preset, fast_bias_correction=fast_bias_correction, subset_size=subset_size,
                             topk=topk, accuracy_control=accuracy_control, data=data, max_drop=max_drop,
                             keep_float=keep_float, nncf_keep_float=nncf_keep_float, iou=iou,
                             conf=conf, silu=silu, threads=threads))
            busy = busy_cpu_note(cpu_load_since(load_start), torch_thread_count())
            if busy:
                say(busy)
            stage.phase = "moving the exports into place"
            # Ctrl-C held off from the removal of the earlier exports to the last new one in place:
            # a stop in between left neither (and a note saying the earlier ones were untouched)
            with stops_held():
                if force:  # only now: a run that stops before this point leaves the earlier export as it was
                    _clear_earlier(formats, out)
                results = stage.commit(staged, format_dirs(formats, out))
        say(f"INT8 in place: {', '.join(str(r.directory) for r in results.values())}")
        note = onnx_runtime_note(formats)
        if note:
            say(note)
        if scores:
            for line in ap_summary(next(iter(results.values())).metadata["quantization"]["qat"], scores,
                                   format_dirs(formats, out)):
                say(line)
        if report:
            stage.phase = REPORT_PHASE
            with cpu_threads(threads):
                _report(model, results, data, out, topk, say, iou, conf, scores, img_size, progress,
                        threads)
    except BaseException as e:
        note = stage.stopped_note(e, qat=qat)
        if note is None:
            pass
        elif log is print:
            print(note, file=sys.stderr)
        else:
            say(note)
        raise
    return results


def busy_cpu_note(load: dict | None, threads: int) -> str | None:
    """The line after the formats' work when other processes took more than ``BUSY_CPU_PCT`` of
    the cores torch's ``threads`` threads ran on (``load``: ``bench.hostload.host_load``'s
    reading), else None. Beside a CPU-bound process at 2 threads on 2 cores the conv scan ran
    30-80x slower (3.3 s per conv against 0.04 s, measured on a 2-core VM): its threads wait for
    each other by spinning, and each step waits for the one whose core the other process holds."""
    return busy_cpu_line(load, threads, during="while quantizing",
                         measured="the conv scan ran 30-80x slower, measured on 2 cores",
                         fix=in_python("--threads 1", "threads=1"))


def onnx_runtime_note(formats: list[str], machine: str | None = None) -> str | None:
    """The line after an ONNX INT8 export on an x86 machine: onnxruntime's CPU kernels run NNCF's
    Q/DQ graph as float convolutions between quantize pairs, slower than the FP32 export (measured on
    two x86 VMs, docs/PERFORMANCE.md section 5), which a user running it there would not expect.
    None for other formats and on ARM (unmeasured there: bench says)."""
    machine = (machine or platform.machine()).lower()
    if "onnx" not in formats or machine not in ("x86_64", "amd64", "i686", "x86"):
        return None
    return ("note: onnxruntime on x86 CPUs ran NNCF's ONNX INT8 slower than the FP32 ONNX (Nano at 416: about 27 "
            "against 15 ms, docs/PERFORMANCE.md section 5); on x86 ship the OpenVINO INT8 or the FP32 ONNX, and "
            "keep the ONNX INT8 for runtimes that compile Q/DQ graphs (TensorRT, NPU delegates); "
            "measure yours with yolox-edge bench")


def _quantize_formats(detector, ckpt: dict, model: Path, cal, formats: list[str], stage: StagedOutput, say, *,
                      data: str | None, qat: bool, epochs: int, lr: float | None, batch: int, subset_size: int,
                      progress: bool, threads: int | None, options: dict) -> tuple[dict[str, QuantizeResult], dict[str, dict]]:
    """(QAT, then) INT8 export of each format into the staging folder; after QAT, each export is
    scored on the val split (returns results and those scores, format -> record)."""
    method = "ptq"
    qat_info = None
    bias_correction = True
    if qat:
        from .qat import run_qat

        stage.phase = "QAT fine-tuning"
        detector, qat_info = run_qat(detector, ckpt, cal, data, epochs=epochs, lr=lr, batch=batch,
                                     subset_size=subset_size, keep_float=options["nncf_keep_float"],
                                     work_dir=stage.dir, progress=progress, log=say, preset=options["preset"],
                                     threads=threads)
        # Fine-tuned weights were trained under quantization from NNCF's bias-corrected start:
        # a second correction towards their float outputs undoes part of what QAT learned
        # (measured ~1 AP per format before the ranges were frozen). Epoch 0 kept = PTQ's weights,
        # so the exports are PTQ's and say so (the QAT attempt stays in metadata 'qat').
        bias_correction = qat_info["kept_epoch"] == 0
        method = "ptq" if bias_correction else "qat"
    score = qat and has_val_split(data)
    if qat and not score:
        say(f"QAT: {data} has no '{SPLIT}' split: neither the QAT epochs nor the exports were scored")
    results: dict[str, QuantizeResult] = {}
    scores: dict[str, dict] = {}
    for fmt, target in format_dirs(formats, stage.out).items():
        # The NNCF formats keep float the convs QAT fine-tuned in float (ncnn's own INT8 writer
        # chooses its --ncnn-keep-float convs by its own arithmetic).
        float_convs = qat_info["float_convs"] if method == "qat" and fmt != "ncnn" else None
        silu = options["silu"] if fmt == "openvino" else "exact"  # the rewrite is OpenVINO's alone
        opts = QuantizeOptions(**{**options, "silu": silu}, method=method, qat=qat_info,
                               bias_correction=bias_correction, float_convs=float_convs, log=say,
                               progress=progress)
        stage.phase = f"the {fmt} INT8 export"
        say(f"[{fmt}] INT8 ({method}) -> {target}")
        res = quantize_detector(detector, ckpt, model, cal, fmt, stage.dir / fmt, opts)
        say(f"[{fmt}] made {', '.join(p.name for p in res.files)} (moved into place once every format is done)")
        for line in summary_lines(res.metadata["quantization"].get("accuracy_control")):
            say(f"[{fmt}] {line}")
        if score:
            # The figure that describes the export (QAT's own is the fake-quantized torch model's).
            stage.phase = f"scoring the {fmt} export"
            say(f"[{fmt}] scoring the export on {data}:{SPLIT}, the split QAT scored its epochs on")
            scores[fmt] = score_export(res.directory, data, progress=progress, desc=f"eval {fmt} INT8",
                                       threads=threads)
            record_exported_eval(res, scores[fmt])
        results[fmt] = res
    return results, scores


REPORT_FILES = ("report.md", "report.json")
REPORT_TITLE = "FP32 vs INT8"  # report.md's first words: how a run knows its own


def _refuse_earlier(formats: list[str], out: Path, force: bool, variant: str, report: bool = False) -> None:
    """UserError, before any work, when a format's folder holds an export, or a file of the name
    its INT8 model takes, or (``report``) an earlier report or FP32 reference, and ``force`` is off;
    or a metadata.json or report file that is no quantize run's, whatever ``force``."""
    from ..export.api import model_file_names, refuse_earlier_export, refuse_files_in_the_way

    require_out_folder(out)
    for fmt, target in format_dirs(formats, out).items():
        refuse_earlier_export(target, force)  # a foreign metadata.json even with force
        refuse_files_in_the_way(target, model_file_names(fmt, int8_stem(variant)), force)
        if report:
            refuse_earlier_export(out / "fp32" / fmt, force)
    for name in REPORT_FILES:  # the user's own notes of that name: never written over (nor removed: _clear_earlier)
        if report and (out / name).is_file() and not _is_own_report(out / name):
            raise UserError(f"{out / name}: not a report of 'yolox-edge quantize', and this run would write over "
                            f"it; move it, or choose another {OUT}")
    if not force:
        other = _other_layout(formats, out)
        if other:
            raise UserError(f"{out}: holds {other} of an earlier quantize run with "
                            f"{'several formats' if len(formats) == 1 else 'one format'}; choose another {OUT}, "
                            f"or pass {FORCE} to write into it anyway")
        earlier = [name for name in REPORT_FILES if report and (out / name).is_file()]
        if earlier:
            raise UserError(f"{out}: holds {', '.join(earlier)} of an earlier quantize --report run; choose another "
                            f"{OUT}, or pass {FORCE} to replace them")


def _is_own_report(path: Path) -> bool:
    """Whether ``path`` (report.md or report.json in --out) is what ``_report`` writes."""
    try:
        if path.suffix == ".json":
            doc = json.loads(path.read_text(encoding="utf-8"))
            return isinstance(doc, dict) and isinstance(doc.get("rows"), list) and "method" in doc
        return path.read_text(encoding="utf-8").startswith(REPORT_TITLE)
    except (OSError, ValueError):
        return False


def _other_layout(formats: list[str], out: Path) -> str:
    """What an earlier run into ``out`` with the other folder layout left (one format writes into
    ``out`` itself, several into ``out/<format>``), which a new run would sit beside; '' if none."""
    from ..export.metadata import METADATA_FILE

    if len(formats) > 1:
        return "an export (its metadata.json)" if (out / METADATA_FILE).is_file() else ""
    left = [f"{f}/" for f in FORMATS if (out / f / METADATA_FILE).is_file()]
    left += [name for name in REPORT_FILES if (out / name).is_file() and _is_own_report(out / name)]
    return "the exports and report " + ", ".join(left) if left else ""


def _clear_earlier(formats: list[str], out: Path) -> None:
    """Remove (``--force``) the earlier INT8 export in each format's folder, and with it what an
    earlier report run left in ``out`` (its FP32 references and report files would otherwise sit
    beside a model they do not describe)."""
    from ..export.api import clear_earlier_export

    for fmt, target in format_dirs(formats, out).items():
        clear_earlier_export(target, True)
        clear_earlier_export(out / "fp32" / fmt, True)
    for name in REPORT_FILES:  # a foreign one was refused before the run
        if (out / name).is_file() and _is_own_report(out / name):
            (out / name).unlink()


def format_dirs(formats: list[str], out: Path) -> dict[str, Path]:
    """Where each format's INT8 export goes: ``out`` itself for one format, ``out/<format>`` for several."""
    return {f: out / f if len(formats) > 1 else out for f in formats}


def _report(model, results: dict[str, QuantizeResult], data: str, out: Path, topk, say, iou: float,
            conf: float, scores: dict[str, dict], img_size: int | tuple[int, int] | None, progress: bool,
            threads: int | None) -> None:
    from ..fileio import atomic_write_bytes
    from ..export.api import export_model
    from .report import compare, format_table, write_report

    rows = []
    for fmt, res in results.items():
        fp32_dir = out / "fp32" / fmt
        say(f"[{fmt}] FP32 reference export -> {fp32_dir}")
        # force: the report's own reference (a stale one is replaced, as before export_model refused)
        export_model(model, format=fmt, out=fp32_dir, topk=topk, iou=iou, conf=conf, img_size=img_size,
                     force=True)
        rows.append(compare(fmt, fp32_dir, res.directory, data, int8=scores.get(fmt),  # QAT scored it already
                            progress=progress, threads=threads))
    method = next(iter(results.values())).metadata["quantization"]["method"]
    table = format_table(rows, title=f"{REPORT_TITLE} ({method}) on {data}:val")
    # The reference is the model as trained (exact SiLU): what shipping the INT8 graph costs.
    # With --silu rational that cost includes the approximation, so the report says so.
    rational = [f for f, r in results.items() if r.metadata.get("graph", {}).get("silu") == "rational"]
    if rational:
        table += (f"\n\n{', '.join(rational)}: the INT8 graph computes SiLU by the rational approximation "
                  "(--silu rational); its FP32 reference keeps exact SiLU, so the drop includes the approximation's")
    say(table)
    write_report(rows, out / "report.json", model=str(model), data=str(data), method=method,
                 rational_silu=rational)
    atomic_write_bytes(out / "report.md", lambda f: f.write((table + "\n").encode()))
    say(f"report -> {out / 'report.md'}, {out / 'report.json'}")
