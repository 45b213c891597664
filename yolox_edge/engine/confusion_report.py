"""``eval --confusion`` as text lines and as a heat map, from ``ConfusionCounter.summary``."""
from __future__ import annotations

import io
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from ..fileio import StagedFiles

MATRIX_CLASSES = 12  # the text matrix is printed up to this many classes (wider wraps in a terminal)


def confusion_lines(summary: dict, measured_on: str, matrix_classes: int = MATRIX_CLASSES) -> list[str]:
    """The report: the most confused pairs, per-class precision / recall / F1 at the summary's
    threshold (worst F1 first), the best-F1 line and, for at most ``matrix_classes`` classes,
    the matrix. ``measured_on`` names the data (the best threshold is this split's)."""
    conf, names = summary["conf"], summary["rows"][:-1]
    nms = f"the app's NMS {summary['nms']}, " if summary.get("nms") is not None else ""
    lines = [f"confusion at score >= {conf:.2f}, IoU {summary['iou']} ({nms}each box matched to the free object it "
             "overlaps most, of any class):"]
    if len(names) > 1:
        if summary["confused"]:
            lines.append("  most confused (true -> predicted, boxes):")
            width = max(len(f"{r['true']} -> {r['predicted']}") for r in summary["confused"])
            lines += [f"    {r['true'] + ' -> ' + r['predicted']:<{width}}  {r['count']}" for r in summary["confused"]]
        else:
            lines.append("  no box taken for another class")
    lines += _class_lines(summary)
    lines += best_f1_lines(summary, measured_on)
    if len(names) <= matrix_classes:
        lines += matrix_lines(summary)
    return lines


def _class_lines(summary: dict) -> list[str]:
    """Per class: labelled boxes, found (right class), missed (no box), false alarms (a box
    on no object), then P / R / F1 and the class's own best F1; classes neither labelled nor
    predicted are left out (80 COCO classes on a small split)."""
    rows = [r for r in summary["per_class"] if r["instances"] or r["predicted"]]
    width = max([5, *(len(r["class"]) for r in rows)])
    out = [f"  {'class':<{width}}  {'boxes':>5}  {'found':>5}  {'missed':>6}  {'false+':>6}  {'P':>5}  {'R':>5}  "
           f"{'F1':>5}  best F1 at score"]
    for r in sorted(rows, key=lambda r: (r["instances"] == 0, r["f1"] if r["f1"] is not None else 2.0)):
        best = f"{r['best_f1']:.2f} at {r['best_conf']:.2f}" if r["best_conf"] is not None else "-"
        out.append(f"  {r['class']:<{width}}  {r['instances']:>5}  {r['correct']:>5}  {r['missed']:>6}  "
                   f"{r['false_positives']:>6}  {_num(r['precision'])}  {_num(r['recall'])}  {_num(r['f1'])}  {best}")
    o = summary["overall"]
    out.append(f"  {'all':<{width}}  {o['instances']:>5}  {o['correct']:>5}  {'':>6}  {'':>6}  {_num(o['precision'])}  "
               f"{_num(o['recall'])}  {_num(o['f1'])}")
    left = len(summary["per_class"]) - len(rows)
    if left:
        # of this table only (the matrix keeps every class); "1 classes" read as a typo
        what = "1 class" if left == 1 else f"{left} classes"
        out.append(f"  ({what} neither labelled nor predicted here left out of this table)")
    return out


def best_f1_lines(summary: dict, measured_on: str) -> list[str]:
    """'best F1 0.71 at score 0.34 (app default 0.30: F1 0.69)', and that it is this split's."""
    b = summary["best"]
    if b["conf"] is None:
        return [f"  best F1: none (no box found its object at any score on {measured_on})"]
    app = ""
    if b.get("app_conf") is not None:
        app = f" (app default {b['app_conf']:.2f}: F1 {_num(b['f1_at_app_conf']).strip()})"
    return [f"  best F1 {b['f1']:.2f} at score {b['conf']:.2f}{app}, precision {b['precision']:.2f}, "
            f"recall {b['recall']:.2f}",
            f"  (measured on {measured_on}: a threshold tuned on one split flatters it; confirm on other images "
            "before shipping it as --conf or a bundle's threshold)"]


def matrix_lines(summary: dict) -> list[str]:
    """The whole matrix as a text table: rows true class (then background), columns predicted (then missed)."""
    m = np.asarray(summary["matrix"])
    rows, cols = summary["rows"], summary["columns"]
    cell = max(6, *(len(str(v)) for v in m.ravel()), *(min(len(c), 10) for c in cols))
    corner = "true \\ predicted"
    head = max(len(corner), *(len(r) for r in rows))
    out = [f"  {corner:<{head}}" + "".join(f"  {c[:10]:>{cell}}" for c in cols)]
    out += [f"  {r:<{head}}" + "".join(f"  {('' if i == j == len(rows) - 1 else str(v)):>{cell}}"
                                       for j, v in enumerate(row)) for i, (r, row) in enumerate(zip(rows, m))]
    return out


def _num(v: float | None) -> str:
    return f"{v:5.2f}" if v is not None else f"{'-':>5}"


def shown_classes(summary: dict) -> list[int]:
    """Indices of the classes the heat map shows: those labelled or predicted at the threshold
    (on a small split most of 80 COCO classes are neither, and only crowd the picture)."""
    m = np.asarray(summary["matrix"])
    c = m.shape[0] - 1
    return [k for k in range(c) if m[k].sum() or m[:, k].sum()]


def write_confusion_png(summary: dict, path: str | Path, title: str = "", files: StagedFiles | None = None) -> Path:
    """The matrix as a heat map, written atomically to ``path`` (``files``: staged there, renamed
    into place by its ``commit``): each row normalised (a true class's boxes, or the false alarms,
    as shares), counts in the cells while they fit, only the classes that occur, fonts sized to
    the class count so 80 classes stay readable."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..fileio import atomic_write_bytes

    m = np.asarray(summary["matrix"], np.float64)
    c = m.shape[0] - 1
    keep = shown_classes(summary)
    idx = [*keep, c]  # the background row and the missed column stay
    sub = m[np.ix_(idx, idx)]
    sums = sub.sum(1, keepdims=True)
    share = np.divide(sub, sums, out=np.zeros_like(sub), where=sums > 0)
    labels = [summary["rows"][k] for k in keep]
    n = len(idx)
    # Cells of at least 0.16 inch with a font about half that tall: 80 classes make a
    # 15-inch square whose names read at 100 %; a few classes get larger cells.
    cell = float(np.clip(8.0 / n, 0.16, 0.6))
    side = max(5.0, n * cell + 2.5)
    font = float(np.clip(cell * 72 * 0.55, 6.0, 10.0))
    fig, ax = plt.subplots(figsize=(side + 1.2, side))
    im = ax.imshow(share, cmap="Blues", vmin=0.0, vmax=1.0)
    ax.set_xticks(range(n), [*labels, "missed"], rotation=90, fontsize=font)
    ax.set_yticks(range(n), [*labels, "background"], fontsize=font)
    ax.set_xlabel("predicted", fontsize=font + 1)
    ax.set_ylabel("true", fontsize=font + 1)
    if n <= 30:  # counts in the cells: past that they would overlap
        for i in range(n):
            for j in range(n):
                if sub[i, j]:
                    ax.text(j, i, str(int(sub[i, j])), ha="center", va="center", fontsize=font * 0.8,
                            color="white" if share[i, j] > 0.5 else "black")
    ax.set_title(title or f"confusion at score >= {summary['conf']:.2f}, IoU {summary['iou']} (rows normalised)",
                 fontsize=font + 2)
    fig.colorbar(im, ax=ax, fraction=0.04, pad=0.02).ax.tick_params(labelsize=font)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    (files.write if files is not None else atomic_write_bytes)(path, lambda f: f.write(buf.getvalue()))
    return Path(path)
