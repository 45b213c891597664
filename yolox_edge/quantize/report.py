"""FP32 vs INT8 per format on a data spec: AP, AP50 and size on disk, as one table.

Every number comes from the runtime the user would deploy (onnxruntime, OpenVINO with
the f32 hint, ncnn with fp16 off), through the shared Predictor and COCO evaluator.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..thresholds import EVAL_CONF, EVAL_MAX_DET, EVAL_NMS_IOU
from ..fileio import atomic_write_bytes, mib

PRECISION_HINT = "f32"  # every AP here: OpenVINO and ncnn asked for f32 (accuracy, not speed)


@dataclass
class ReportRow:
    format: str
    fp32_ap: float
    int8_ap: float
    fp32_ap50: float
    int8_ap50: float
    fp32_bytes: int
    int8_bytes: int
    fp32_dir: str
    int8_dir: str
    # {"class", "instances", "fp32_ap", "int8_ap"} per class with ground truth (empty: not measured)
    per_class: list[dict] = field(default_factory=list)

    @property
    def drop(self) -> float:
        return self.fp32_ap - self.int8_ap

    @property
    def size_ratio(self) -> float:
        return self.int8_bytes / max(self.fp32_bytes, 1)


def model_bytes(directory: str | Path) -> int:
    """Bytes of an artifact's model files (those metadata.json lists; metadata itself excluded)."""
    from ..export.metadata import read_metadata

    meta = read_metadata(directory, verify=False)
    return sum((Path(directory) / f).stat().st_size for f in meta["files"])


def evaluate_artifact(directory: str | Path, data: str | Path, split: str = "val", *, threads: int | None = None,
                      progress: bool = True, desc: str = "eval") -> dict:
    """COCO AP of an exported artifact folder (f32 inference hints: accuracy, not speed), with
    the ``backend`` that ran it; ``desc`` names its progress bar."""
    from ..data.spec import read_split
    from ..engine.evaluator import evaluate
    from ..export.metadata import read_metadata
    from ..runtime import load_predictor

    meta = read_metadata(directory)
    pred = load_predictor(Path(directory) / meta["model_file"], threads=threads, precision_hint=PRECISION_HINT,
                          conf=EVAL_CONF, iou=EVAL_NMS_IOU, max_det=EVAL_MAX_DET)
    res = evaluate(pred, read_split(data, split), progress=progress, desc=desc)
    return {**res, "backend": pred.backend.name}


def compare(fmt: str, fp32_dir: str | Path, int8_dir: str | Path, data: str | Path, split: str = "val", *,
            int8: dict | None = None, progress: bool = True, threads: int | None = None) -> ReportRow:
    """Evaluate one FP32/INT8 pair of the same format (``int8``: the INT8 export's result when
    already measured on this split, as after QAT) at ``threads`` runtime threads."""
    # --report evaluates every format twice: bars say which one is running (a log shows them all)
    a = evaluate_artifact(fp32_dir, data, split, progress=progress, desc=f"eval {fmt} FP32", threads=threads)
    b = int8 if int8 is not None else evaluate_artifact(int8_dir, data, split, progress=progress,
                                                        desc=f"eval {fmt} INT8", threads=threads)
    return ReportRow(fmt, a["AP"], b["AP"], a["AP50"], b["AP50"], model_bytes(fp32_dir), model_bytes(int8_dir),
                     str(fp32_dir), str(int8_dir), class_drops(a.get("per_class"), b.get("per_class")))


def class_drops(fp32: list[dict] | None, int8: list[dict] | None) -> list[dict]:
    """Per class with ground truth: FP32 and INT8 AP side by side (empty when either side lacks
    per-class figures, as a QAT score recorded before they existed)."""
    if not fp32 or not int8 or len(fp32) != len(int8):
        return []
    return [{"class": a["class"], "instances": a["instances"], "fp32_ap": a["AP"], "int8_ap": b["AP"]}
            for a, b in zip(fp32, int8) if a["AP"] >= 0 and b["AP"] >= 0]


def worst_classes_line(row: ReportRow, count: int = 5) -> str:
    """The classes INT8 costs most AP in one format ('' with fewer than two classes): INT8 error
    is rarely spread evenly, and a class the app depends on may lose far more than the mean."""
    if len(row.per_class) < 2:
        return ""
    worst = sorted(row.per_class, key=lambda c: c["int8_ap"] - c["fp32_ap"])[:count]
    return (f"{row.format}: " + ", ".join(
        f"{c['class']} {100 * (c['fp32_ap'] - c['int8_ap']):+.2f} ({c['instances']} box{'es' if c['instances'] != 1 else ''})"
        for c in worst))


def format_table(rows: list[ReportRow], title: str = "") -> str:
    """Markdown table of a report."""
    head = ("| format | FP32 AP | INT8 AP | drop | FP32 AP50 | INT8 AP50 | FP32 size | INT8 size | size ratio |\n"
            "|---|---|---|---|---|---|---|---|---|")
    lines = [title] if title else []
    lines.append(head)
    for r in rows:
        lines.append(f"| {r.format} | {100 * r.fp32_ap:.2f} | {100 * r.int8_ap:.2f} | {100 * r.drop:+.2f} | "
                     f"{100 * r.fp32_ap50:.2f} | {100 * r.int8_ap50:.2f} | {mib(r.fp32_bytes):.2f} MiB | "
                     f"{mib(r.int8_bytes):.2f} MiB | {100 * r.size_ratio:.2f}% |")
    worst = [line for line in map(worst_classes_line, rows) if line]
    if worst:
        lines += ["", "AP drop per class, largest first (AP points, as 'drop' above; every class in report.json):", *worst]
    return "\n".join(lines)


def write_report(rows: list[ReportRow], path: str | Path, **extra) -> None:
    """Save the rows (plus context such as the data spec) as JSON, atomically."""
    doc = {**extra, "rows": [{**asdict(r), "drop": r.drop, "size_ratio": r.size_ratio} for r in rows]}
    atomic_write_bytes(path, lambda f: f.write(json.dumps(doc, indent=2).encode()))
