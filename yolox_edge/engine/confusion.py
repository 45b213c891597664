"""Confusion matrix and F1 by score threshold, fed image by image from an evaluation.

Definition (``eval --confusion``). A model's boxes scoring at least the threshold are matched
to one image's labelled boxes greedily, highest score first: each takes the still unmatched
labelled box it overlaps most, if that IoU is at least 0.5, whatever the two classes (so a cat
called a dog is a cat -> dog confusion, not a miss plus a false alarm). Then, in the matrix,

* row = the true class, column = the predicted class: a matched box adds 1 to its cell;
* row ``background``: a predicted box that matched no labelled box (a false positive; a second
  box on an object already taken is one too);
* column ``missed``: a labelled box that no predicted box matched (a false negative).

Labelled boxes flagged crowd (COCO ``iscrowd``, which is also what pycocotools ignores) are
never missed, and a predicted box matching no other box but lying at least half inside a crowd
region of its predicted class is left out, not counted as background (as COCO's AP leaves it out:
a crowd region hides only its own category's boxes, so a car box on a crowd of people is a car
false positive).

Precision of a class = its diagonal cell / its column (every box predicted as it), recall =
diagonal / its labelled boxes, F1 their harmonic mean; "overall" counts every class together.
As greedy matching by score never revisits a match, the boxes above a higher threshold match
exactly as they did at a lower one: one matching of every box serves every threshold, which is
how ``best_f1`` sweeps thresholds without predicting again.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..postprocess import Detections, box_iou_numpy, filter_nms_numpy
from ..progress import deprecated_keywords

MATCH_IOU = 0.5
BACKGROUND = -1  # a prediction's true class when it matched no labelled box
IGNORED = -2  # ... when it lies on a crowd region instead: in no count
# The thresholds the F1 sweep tries: the steps a user would write in --conf (0.01 .. 0.99).
SWEEP = np.round(np.arange(1, 100) / 100, 2)


def match_image(boxes: np.ndarray, scores: np.ndarray, gt_boxes: np.ndarray, gt_labels: np.ndarray,
                crowd: np.ndarray | None = None, iou: float = MATCH_IOU, *,
                labels: np.ndarray | None = None) -> np.ndarray:
    """The true class each predicted box (xyxy, in the labels' pixels) matched: a class index,
    ``BACKGROUND`` or ``IGNORED`` (see the module's definition); in the boxes' own order.

    ``labels``: the boxes' predicted classes, so that a crowd region hides only boxes of its own
    class (None: any box, the earlier rule)."""
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    gt_boxes = np.asarray(gt_boxes, np.float32).reshape(-1, 4)
    gt_labels = np.asarray(gt_labels, np.int64).reshape(-1)
    crowd = np.zeros(len(gt_labels), bool) if crowd is None else np.asarray(crowd, bool).reshape(-1)
    out = np.full(len(boxes), BACKGROUND, np.int64)
    if not len(boxes):
        return out
    real_boxes, real_labels = gt_boxes[~crowd], gt_labels[~crowd]
    ious = box_iou_numpy(boxes, real_boxes) if len(real_boxes) else np.zeros((len(boxes), 0))
    inside_crowd = np.zeros(len(boxes), bool)
    if crowd.any():
        inside = _fraction_inside(boxes, gt_boxes[crowd]) >= iou
        if labels is not None:
            inside &= np.asarray(labels, np.int64).reshape(-1, 1) == gt_labels[crowd][None, :]
        inside_crowd = inside.any(1)
    taken = np.zeros(len(real_boxes), bool)
    for i in np.argsort(-np.asarray(scores), kind="stable"):
        cand = np.where(taken, -1.0, ious[i])
        j = int(cand.argmax()) if len(cand) else -1
        if j >= 0 and cand[j] >= iou:
            taken[j] = True
            out[i] = real_labels[j]
        elif inside_crowd[i]:
            out[i] = IGNORED
    return out


def _fraction_inside(boxes: np.ndarray, regions: np.ndarray) -> np.ndarray:
    """[len(boxes), len(regions)]: the share of each box's area inside each region (COCO's
    overlap with a crowd region, which may hold many objects and so many boxes)."""
    lt = np.maximum(boxes[:, None, :2], regions[None, :, :2])
    rb = np.minimum(boxes[:, None, 2:], regions[None, :, 2:])
    inter = np.clip(rb - lt, 0, None).prod(-1)
    area = (boxes[:, 2:] - boxes[:, :2]).clip(0).prod(-1)
    return inter / np.maximum(area[:, None], 1e-9)


class ConfusionCounter:
    """One evaluation's matches, collected image by image; the matrix, precision, recall and
    F1 at any score threshold from them.

    Pass it as ``evaluate(..., on_image=counter)``. The evaluation keeps low-score boxes (for
    AP) after its own NMS; ``nms``/``agnostic``/``max_det`` redo the app's NMS on them first (a
    bundle's or ``Predictor``'s, None: none), so the counts are nearly those of the boxes an app
    shows: the app's NMS on boxes the evaluation's NMS (IoU 0.65) already thinned, which in a
    chain of overlapping boxes may remove one that a single NMS at the app's IoU keeps (as
    ``predict`` on a graph with its own NMS, README). Nothing below ``min_conf`` (the evaluation's
    own score threshold) was kept, so the sweep starts there.
    """

    def __init__(self, num_classes: int, *, nms: float | None = None, agnostic: bool = False,
                 max_det: int | None = None, iou: float = MATCH_IOU, min_conf: float = 0.0) -> None:
        self.num_classes, self.iou, self.min_conf = num_classes, iou, min_conf
        self.nms, self.agnostic, self.max_det = nms, agnostic, max_det
        self.instances = np.zeros(num_classes, np.int64)  # labelled boxes per class, crowd left out
        self.images = 0
        self._parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self._joined: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

    def __call__(self, sample: Any, image: np.ndarray, det: Detections) -> None:
        """``evaluate``'s ``on_image`` hook: one image's sample (its labels) and detections."""
        self.add(det, sample.boxes, sample.labels, crowd=sample.crowd)

    # Each option below was positional: deprecated_keywords keeps that form working, with a warning.
    @deprecated_keywords("crowd")
    def add(self, det: Detections, gt_boxes: np.ndarray, gt_labels: np.ndarray, *,
            crowd: np.ndarray | None = None) -> None:
        """One image: its detections and its labelled boxes (xyxy, same pixels), crowd flags."""
        if self.nms is not None and len(det):
            det = filter_nms_numpy(det.boxes, det.scores, det.labels, conf=0.0, iou=self.nms,
                                   agnostic=self.agnostic, max_det=self.max_det or len(det))
        gt_labels = np.asarray(gt_labels, np.int64).reshape(-1)
        real = gt_labels if crowd is None else gt_labels[~np.asarray(crowd, bool).reshape(-1)]
        self.instances += np.bincount(real, minlength=self.num_classes)[:self.num_classes]
        true = match_image(det.boxes, det.scores, gt_boxes, gt_labels, crowd, self.iou, labels=det.labels)
        keep = true != IGNORED
        self._parts.append((np.asarray(det.scores, np.float32)[keep], np.asarray(det.labels, np.int64)[keep],
                            true[keep]))
        self._joined = None
        self.images += 1

    def _all(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every counted box's (score, predicted class, true class), highest score first."""
        if self._joined is None:
            parts = self._parts or [(np.zeros(0, np.float32), np.zeros(0, np.int64), np.zeros(0, np.int64))]
            scores, pred, true = (np.concatenate(a) for a in zip(*parts))
            order = np.argsort(-scores, kind="stable")
            self._joined = scores[order], pred[order], true[order]
        return self._joined

    def matrix(self, conf: float) -> np.ndarray:
        """The (C + 1) x (C + 1) counts at score >= ``conf``: rows true class then background,
        columns predicted class then missed (the background/missed corner stays 0)."""
        c = self.num_classes
        scores, pred, true = self._all()
        sel = scores >= np.float32(conf)  # in float32, as the Predictor keeps a box at exactly its conf
        m = np.zeros((c + 1, c + 1), np.int64)
        np.add.at(m, (np.where(true[sel] >= 0, true[sel], c), pred[sel]), 1)
        m[:c, c] = self.instances - m[:c, :c].sum(1)
        return m

    @deprecated_keywords("cls")
    def counts(self, conf: float | np.ndarray, *, cls: int | None = None) -> tuple[np.ndarray, np.ndarray, int]:
        """(correct, predicted, labelled) boxes at score >= each ``conf``, of class ``cls`` or of all."""
        scores, pred, true = self._all()
        if cls is not None:
            mine = pred == cls
            scores, pred, true = scores[mine], pred[mine], true[mine]
        hits = np.concatenate([[0], np.cumsum(pred == true)])
        n = np.searchsorted(-scores, -np.asarray(conf, np.float32), side="right")  # boxes >= conf, in float32
        return hits[n], n, int(self.instances.sum() if cls is None else self.instances[cls])

    @deprecated_keywords("cls")
    def scores_at(self, conf: float, *, cls: int | None = None) -> dict:
        """Precision, recall and F1 at score >= ``conf`` (None where undefined: nothing
        predicted, or nothing labelled), with the counts they come from."""
        correct, predicted, labelled = (int(v) for v in self.counts(conf, cls=cls))
        return {"correct": correct, "predicted": predicted, "instances": labelled,
                "precision": correct / predicted if predicted else None,
                "recall": correct / labelled if labelled else None, "f1": _f1(correct, predicted, labelled)}

    def _sweep(self) -> np.ndarray:
        """The thresholds of ``SWEEP`` the evaluation kept boxes for (from ``min_conf``)."""
        return SWEEP[SWEEP >= self.min_conf - 1e-9]

    @deprecated_keywords("cls")
    def best_f1(self, *, cls: int | None = None) -> tuple[float | None, float | None]:
        """(best F1, its score threshold) over ``SWEEP`` (0.01 steps from ``min_conf``); where
        several thresholds tie, the middle one, the least tuned to this one split. (None, None)
        when nothing is labelled, or no box is ever right."""
        grid = self._sweep()
        correct, predicted, labelled = self.counts(grid, cls=cls)
        if not labelled or not len(grid) or not correct.max():
            return None, None
        f1 = 2 * correct / (predicted + labelled)
        best = np.flatnonzero(f1 >= f1.max() - 1e-12)
        return float(f1.max()), float(grid[best[len(best) // 2]])

    def f1_curve(self) -> dict[str, list[float]]:
        """Overall F1 at each threshold of the sweep (for a plot or a closer look)."""
        grid = self._sweep()
        correct, predicted, labelled = self.counts(grid)
        return {"conf": grid.tolist(), "f1": [round(float(_f1(a, b, labelled) or 0.0), 4)
                                             for a, b in zip(correct, predicted)]}

    @deprecated_keywords("app_conf", "top", "category_ids")
    def summary(self, names: list[str], conf: float, *, app_conf: float | None = None, top: int = 10,
                category_ids: list[int] | None = None) -> dict:
        """Everything ``eval --confusion`` reports, JSON-ready: the matrix at ``conf`` with its
        row and column names, the ``top`` most confused class pairs, per-class and overall
        precision / recall / F1 with each one's best-F1 threshold, and the overall best
        threshold with the F1 at ``app_conf`` (the app's default) beside it. ``category_ids``
        (the data's, one per class: COCO) puts each class's ``category_id`` in its per-class row
        after the name, as eval's own per-class rows have it."""
        m = self.matrix(conf)
        c = self.num_classes
        off = [(int(m[i, j]), i, j) for i in range(c) for j in range(c) if i != j and m[i, j]]
        off.sort(key=lambda t: (-t[0], t[1], t[2]))
        per_class = []
        for k, name in enumerate(names):
            f1, at = self.best_f1(cls=k)
            ids = {"category_id": int(category_ids[k])} if category_ids is not None else {}
            per_class.append({"class": name, **ids, **_rounded(self.scores_at(conf, cls=k)),
                              "false_positives": int(m[c, k]), "missed": int(m[k, c]), "best_f1": _round(f1),
                              "best_conf": at})
        f1, at = self.best_f1()
        best = {"f1": _round(f1), "conf": at}
        if at is not None:
            best.update({k: v for k, v in _rounded(self.scores_at(at)).items() if k in ("precision", "recall")})
        if app_conf is not None:
            best.update({"app_conf": app_conf, "f1_at_app_conf": _round(self.scores_at(app_conf)["f1"])})
        return {"conf": conf, "iou": self.iou, "nms": self.nms, "images": self.images,
                "rows": [*names, "background"], "columns": [*names, "missed"], "matrix": m.tolist(),
                "confused": [{"true": names[i], "predicted": names[j], "count": n} for n, i, j in off[:top]],
                "per_class": per_class, "overall": _rounded(self.scores_at(conf)), "best": best,
                "f1_curve": self.f1_curve()}


def _f1(correct: int, predicted: int, labelled: int) -> float | None:
    # 2PR / (P + R) written with counts: defined whenever anything is labelled or predicted
    return 2 * correct / (predicted + labelled) if predicted + labelled else None


def _round(v: float | None) -> float | None:
    return None if v is None or math.isnan(v) else round(float(v), 4)


def _rounded(d: dict) -> dict:
    return {k: _round(v) if isinstance(v, float) else v for k, v in d.items()}
