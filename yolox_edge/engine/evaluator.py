"""COCO-style AP of any Predictor on a dataset split (pycocotools)."""
from __future__ import annotations

import contextlib
import copy
import io
import itertools
import time
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import numpy as np

from ..data.preprocess import read_image
from ..data.sample import Sample
from ..data.spec import Split, read_split, refuse_data_file, refuse_data_folder
from ..errors import UserError, in_python
from ..fileio import StagedFiles, atomic_write_bytes, require_writable
from ..postprocess import Detections
from ..progress import deprecated_keywords, first_few, line_sink, progress_bar, renamed
from ..thresholds import APP_CONF, EVAL_CONF, EVAL_MAX_DET, EVAL_NMS_IOU, check_thresholds

if TYPE_CHECKING:
    from ..runtime.predictor import Predictor

STAT_NAMES = ("AP", "AP50", "AP75", "APs", "APm", "APl")


def coco_gt_from_split(split: Split, area_taken: list[str] | None = None, *,
                       sizes: dict[int, tuple[int, int]] | None = None) -> dict:
    """COCO ground-truth dict for a split; class index i is category id i + 1 when built.

    ``area_taken``: a list that receives the COCO json's annotations scored with w * h for an
    ``area`` it lacks or gives as no usable number (``_scorable_gt``), as ``'annotation ID'``.
    ``sizes``: image id -> (width, height) of the decoded file, where the json gives no size or
    another one: which boxes lie wholly outside the image (left out, as training leaves them out)
    is judged by the file, as training judges it."""
    if split.coco_gt is not None:
        known = {s.image_id: (s.width, s.height) for s in split.samples}
        return _scorable_gt(split.coco_gt, {**known, **(sizes or {})}, area_taken)
    images, anns = [], []
    for s in split.samples:
        images.append({"id": s.image_id, "file_name": s.image.name, "width": s.width, "height": s.height})
        for b, c, crowd in zip(s.boxes, s.labels, s.crowd):
            w, h = float(b[2] - b[0]), float(b[3] - b[1])
            anns.append({"id": len(anns) + 1, "image_id": s.image_id, "category_id": int(c) + 1,
                         "bbox": [float(b[0]), float(b[1]), w, h], "area": w * h, "iscrowd": int(crowd)})
    cats = [{"id": i + 1, "name": n} for i, n in enumerate(split.names)]
    return {"images": images, "annotations": anns, "categories": cats}


def usable_area(area: object) -> bool:
    """Whether a COCO annotation's ``area`` is one pycocotools can sort into APs/APm/APl: a finite
    number of at least 0. A NaN compared false with every range (the box counted in each of them);
    a negative one fell outside even 'all' (the box ignored, as a crowd box is)."""
    return (isinstance(area, (int, float)) and not isinstance(area, bool) and bool(np.isfinite(area))
            and area >= 0)


def _scorable_gt(gt: dict, sizes: dict[int, tuple[int, int]] | None = None,
                 area_taken: list[str] | None = None) -> dict:
    """A COCO json as pycocotools can score it: the annotations the reader skipped (bad bbox,
    no image_id/category_id) or dropped (a bbox with a zero or negative side, a category not in
    ``categories``), and those training drops (``check.clean_boxes``: not a number, or wholly outside
    the image of ``sizes``, image id -> (width, height), 0 where unknown) left out, as no detection
    could match them; a missing ``area``, or one that is not a ``usable_area`` (NaN, infinite, negative), taken as
    w * h (each named in ``area_taken`` when given, as ``'annotation ID'``), a missing ``iscrowd`` as 0 and missing ids
    numbered (pycocotools raised KeyError on each: COCO files written by other tools often lack them).
    An image id listed twice keeps its first entry, the one the reader kept (the same entry again,
    or another file given that id): the file ``eval --coco-gt`` writes listed the repeat as a second
    image, which other COCO tools refuse.

    A box partly outside is scored as the json gives it, not clipped as training clips it: the
    COCO tools score that box, and eval's AP stays theirs."""
    from ..data.check import clean_boxes
    from ..data.coco import bad_annotation, flat_sides

    images, seen = [], set()
    for im in gt.get("images", []):
        key = im.get("id") if isinstance(im, dict) else None
        if key is not None and key in seen:
            continue
        seen.add(key)
        images.append(im)
    cats = {c.get("id") for c in gt.get("categories", []) if isinstance(c, dict)}
    anns = [dict(a) for a in gt.get("annotations", []) if bad_annotation(a) is None and not flat_sides(*a["bbox"][2:])
            and a["category_id"] in cats]
    by_image: dict[int, list[int]] = {}
    for i, a in enumerate(anns):
        by_image.setdefault(a["image_id"], []).append(i)
    dropped: set[int] = set()
    for image_id, idx in by_image.items():
        w, h = (sizes or {}).get(image_id, (0, 0))
        boxes = np.array([[x, y, x + bw, y + bh] for x, y, bw, bh in (anns[i]["bbox"] for i in idx)], np.float64)
        # clean_boxes is the rule training drops by; the labels carry each box's index through it
        _, kept, _ = clean_boxes(boxes, np.arange(len(idx)), w, h, "")
        dropped.update(set(idx) - {idx[k] for k in kept.tolist()})
    anns = [a for i, a in enumerate(anns) if i not in dropped]
    for a in anns:
        w, h = a["bbox"][2], a["bbox"][3]
        # a NaN area is taken as missing: pycocotools compared it to every area range and counted the
        # box in none of APs/APm/APl's exclusions (NaN < lo is false), and JSON has no NaN to write;
        # a negative one as missing too, as pycocotools left that box out of every range, 'all' too
        if not usable_area(a.get("area")):
            a["area"] = float(w) * float(h)
            if area_taken is not None:
                area_taken.append(f"annotation {a['id']}" if a.get("id") is not None
                                  else f"an annotation of image {a['image_id']}")
        a.setdefault("iscrowd", 0)
    if len({a.get("id") for a in anns}) != len(anns) or any("id" not in a for a in anns):
        for i, a in enumerate(anns):
            a["id"] = i + 1
    return {**gt, "images": images, "annotations": anns}


def coco_results(image_id: int, det: Detections, cat_ids: list[int]) -> list[dict]:
    """One image's detections as COCO results (``{image_id, category_id, bbox [x, y, w, h], score}``,
    what pycocotools' ``loadRes`` and the COCO server take); class index i is ``cat_ids[i]``."""
    out = []
    for b, s, c in zip(det.boxes, det.scores, det.labels):
        out.append({"image_id": int(image_id), "category_id": int(cat_ids[int(c)]),
                    "bbox": [float(b[0]), float(b[1]), float(b[2] - b[0]), float(b[3] - b[1])],
                    "score": float(s)})
    return out


def coco_ap(gt: dict, results: list[dict], img_ids: list[int] | None = None) -> dict[str, float]:
    """Run COCOeval (bbox) quietly; returns AP, AP50, AP75, APs, APm, APl. ``img_ids``: score
    only these images (the ones that could be read), not the ground truth of the others."""
    return coco_scores(gt, results, img_ids)[0]


def coco_scores(gt: dict, results: list[dict], img_ids: list[int] | None = None) -> tuple[dict[str, float], list[dict]]:
    """``coco_ap``'s stats, and per category (in id order, as class indices map to them) its
    name, ground-truth instances, detections (boxes predicted for it in the scored images) and
    AP / AP50 over all areas at 100 detections per image (-1 where the category has no instance
    in the scored images, as pycocotools writes it)."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    cats = sorted(gt["categories"], key=lambda c: c["id"])
    scored = set(img_ids) if img_ids is not None else {im["id"] for im in gt["images"]}
    counts = {c["id"]: 0 for c in cats}
    for a in gt["annotations"]:
        if a["image_id"] in scored and not a.get("iscrowd") and a["category_id"] in counts:
            counts[a["category_id"]] += 1
    found = {c["id"]: 0 for c in cats}
    for r in results:
        if r["image_id"] in scored and r["category_id"] in found:
            found[r["category_id"]] += 1
    per_class = [{"class": c["name"], "instances": counts[c["id"]], "detections": found[c["id"]], "AP": -1.0,
                  "AP50": -1.0} for c in cats]
    if not results:  # pycocotools' loadRes refuses an empty list; its stats would be these
        for row in per_class:
            row["AP"] = row["AP50"] = 0.0 if row["instances"] else -1.0
        return _stats_without_detections(gt, scored, set(counts)), per_class
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO()
        coco.dataset = {k: gt[k] for k in ("images", "annotations", "categories")}
        coco.createIndex()
        # loadRes adds area, id, iscrowd and a segmentation to each dict it gets: copies, so the
        # caller's list stays the plain results (evaluate(results=) hands it to a file)
        dt = coco.loadRes([dict(r) for r in results])
        ev = COCOeval(coco, dt, "bbox")
        if img_ids is not None:
            ev.params.imgIds = sorted(set(img_ids))
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    # precision[T iou, R recall, K category, A area, M max dets]; -1 marks "nothing to score"
    precision = ev.eval["precision"][:, :, :, 0, -1]
    for k, row in enumerate(per_class):
        for key, p in (("AP", precision[:, :, k]), ("AP50", precision[0, :, k])):
            valid = p[p > -1]
            row[key] = round(float(valid.mean()), 6) if valid.size else -1.0
    return {k: float(v) for k, v in zip(STAT_NAMES, ev.stats[:6])}, per_class


# COCOeval's area ranges (inclusive), in STAT_NAMES order: AP, AP50 and AP75 over all areas.
_AREA_RANGES = ((0, 1e10),) * 3 + ((0, 32 ** 2), (32 ** 2, 96 ** 2), (96 ** 2, 1e10))


def _stats_without_detections(gt: dict, scored: set, cat_ids: set) -> dict[str, float]:
    """COCOeval's six stats when nothing was detected: 0 where the area range holds a (non-crowd)
    instance to miss, -1 (nothing to score) where it holds none."""
    areas = [a["area"] for a in gt["annotations"]
             if a["image_id"] in scored and not a.get("iscrowd") and a["category_id"] in cat_ids]
    return {k: 0.0 if any(lo <= x <= hi for x in areas) else -1.0 for k, (lo, hi) in zip(STAT_NAMES, _AREA_RANGES)}


def per_class_lines(per_class: list[dict]) -> list[str]:
    """The per-class rows as ``eval`` prints them: one line per class, worst AP first (where a
    model needs more data or labels), classes without instances last. A class neither labelled
    nor predicted in the split is left out, with one line counting them (48 of COCO's 80 on a small
    val split), as ``eval --confusion`` does; a row without 'detections' (a record written before
    it) is kept."""
    shown = [r for r in per_class if r["instances"] or r.get("detections", 1)]
    width = max([5, *(len(r["class"]) for r in shown)])
    rows = sorted(shown, key=lambda r: (r["AP"] < 0, r["AP"]))
    lines = [f"  {'class':<{width}}  {'AP':>6}  {'AP50':>6}  instances"]
    for r in rows:
        ap, ap50 = (f"{r[k]:6.4f}" if r[k] >= 0 else f"{'-':>6}" for k in ("AP", "AP50"))
        lines.append(f"  {r['class']:<{width}}  {ap}  {ap50}  {r['instances']}")
    left = len(per_class) - len(shown)
    if left:  # of this table only: --json keeps every class
        what = "1 class" if left == 1 else f"{left} classes"
        lines.append(f"  ({what} neither labelled nor predicted here left out of this table)")
    return lines


def evaluation_record(model: str | Path, predictor, data: str | Path, split: str, result: dict) -> dict:
    """What ``yolox-edge eval --json`` writes: the result with what was measured (a bundle's card
    checks runtime, precision and input size against its own model)."""
    return {"model": str(model), "backend": predictor.backend.name, "precision": predictor.info.precision,
            "data": str(data), "split": split, "input_size": list(predictor.info.preprocess.input_size), **result}


def require_same_class_count(predictor, split: Split, model: str = "the model", data: str = "the dataset") -> None:
    """UserError naming both when the model and the data count their classes differently
    (callers that know the paths pass them: check before minutes of work)."""
    if len(predictor.class_names) != len(split.names):
        raise UserError(f"{model}: has {len(predictor.class_names)} classes, but {data} has {len(split.names)}; "
                        "evaluate a model trained on this dataset")


def class_names_note(model_names: list[str], data_names: list[str], pairs: str = "AP") -> str:
    """A note when the model's class names are not the data's ('' when they match): AP pairs
    classes by position, so a reordered or renamed list can make it meaningless. ``pairs`` says
    what pairs them: "AP" (scored: eval, ``quantize --report``) or a step that trains on the
    data ("QAT"), whose note says class i is fine-tuned on the data's i-th."""
    if list(model_names) == list(data_names):
        return ""
    so = "it may mean nothing" if pairs == "AP" else "the model's class i is fine-tuned on the data's i-th"
    return (f"note: the model's classes ({first_few(list(model_names), 4)}) are not the data's "
            f"({first_few(list(data_names), 4)}); "
            f"{pairs} pairs them by position, so {so}")


def category_ids_note(model_ids: list[int] | None, data_ids: list[int] | None, pairs: str = "AP") -> str:
    """A note when the model's category ids are not the data's ('' when they match, or when either
    has none: voc/yolo data, a model trained on it): a model trained on another id mapping of the
    same class count is scored by position, class i against the data's i-th id. ``pairs`` as for
    ``class_names_note``."""
    if model_ids is None or data_ids is None or list(model_ids) == list(data_ids):
        return ""
    so = "its AP may mean nothing" if pairs == "AP" else "its class i is fine-tuned on another class"
    return (f"note: the model's category ids ({first_few([str(i) for i in model_ids], 6)}) are not the data's "
            f"({first_few([str(i) for i in data_ids], 6)}); "
            f"{pairs} pairs classes by position (class i with the data's i-th id in sorted order), so if the model "
            f"was trained on another id mapping {so}")


def model_data_notes(model_names: list[str], model_ids: list[int] | None, data: Split, pairs: str = "AP") -> list[str]:
    """``class_names_note`` and ``category_ids_note`` of a model against the split ``data``, those
    that say something: eval's notes, and those of the steps that check only the class count (QAT,
    ``quantize --report``). ``pairs``: what pairs the classes ("AP", "QAT"), as for ``class_names_note``."""
    notes = (class_names_note(model_names, data.names, pairs),
             category_ids_note(model_ids, data.category_ids, pairs))
    return [n for n in notes if n]


@deprecated_keywords(batch_size=renamed("batch"))  # its earlier name; --batch, as evaluate_model's
def evaluate(predictor: Predictor, split: Split | str | Path, *, batch: int = 8, progress: bool = True,
             conf: float | None = EVAL_CONF, iou: float | None = EVAL_NMS_IOU,
             max_det: int | None = EVAL_MAX_DET, agnostic: bool | None = False, desc: str = "eval",
             on_image: Callable[[Sample, np.ndarray, Detections], None] | None = None,
             results: list[dict] | None = None, ground_truth: dict | None = None,
             area_taken: list[str] | None = None) -> dict:
    """Predict every image of ``split`` (a Split, or a data spec path: its val split) and score it;
    unreadable images are counted, not fatal.

    COCO AP is taken at YOLOX's evaluation thresholds (``thresholds.EVAL_*``), whatever the
    predictor was made with (an app's conf 0.3 cut AP by a third), class-aware as YOLOX scores
    (``agnostic=False``: a predictor made class-agnostic, or a bundle saying so, changed the AP);
    ``conf``/``iou``/``max_det``/``agnostic`` set others, None keeps the
    predictor's. ``class_names_match`` in the result is False when
    the model's names differ from the data's (AP pairs classes by index); ``per_class`` lists each
    class's AP, AP50 and instances (``coco_scores``). ``desc`` names the progress bar.
    ``on_image(sample, image, detections)`` is called for each image read (detections at the
    evaluation thresholds, in the image's pixels), e.g. to draw them, or a
    ``confusion.ConfusionCounter`` to count them into a confusion matrix.

    ``results``: a list that receives the detections scored, in COCO results format
    (``coco_results``): image and category ids of the json for COCO data; otherwise those of the
    ground truth built for the split (``coco_gt_from_split``): image_id the sample's number in the
    split as read (1, 2, ...), category_id the class index + 1. The per-class rows carry
    ``category_id`` when the data has ids (COCO).

    ``ground_truth``: a dict that receives the ground truth scored, ``coco_gt_from_split``'s for
    the images read (an unreadable one's boxes are not scored, so not in it): pycocotools on it
    and ``results`` gives this AP.

    ``area_taken``: a list that receives the COCO json's annotations whose ``area`` was missing or
    not a usable number (NaN, infinite, negative) and was scored as w * h (``coco_gt_from_split``),
    for a note: that area decides which of APs, APm and APl count the box. ``batch_size=`` is the
    deprecated name of ``batch``."""
    data = "the dataset"
    if not isinstance(split, Split):
        data = str(split)  # named in a class-count error
        split = read_split(split, "val")
    require_same_class_count(predictor, split, data=data)
    predictor = copy.copy(predictor)  # the caller's keeps its thresholds
    for name, value in (("conf", conf), ("iou", iou), ("max_det", max_det), ("agnostic", agnostic)):
        if value is not None:
            setattr(predictor, name, value)
    # Which of a COCO json's boxes lie wholly outside their image (left out, as training leaves them
    # out) is judged by the decoded file, as training judges it: where the json gives an image no
    # size, or one the file does not have (a box inside the file was dropped by the json's size),
    # the ground truth is built again once the files are decoded.
    taken: list[str] = []
    gt = coco_gt_from_split(split, taken)
    cat_ids = sorted(c["id"] for c in gt["categories"])
    decoded: dict[int, tuple[int, int]] = {}
    results = [] if results is None else results
    first = len(results)  # a list given may hold results already: count only this split's
    skipped = 0
    scored: list[int] = []
    t0 = time.perf_counter()
    # a context: closed (its last line written) before a Ctrl-C's stop line, as progress_bar says
    with progress_bar(total=len(split.samples), desc=desc, unit="img", disable=not progress, leave=False) as bar:
        for i in range(0, len(split.samples), batch):
            chunk, images = [], []
            for s in split.samples[i:i + batch]:
                try:
                    images.append(read_image(s.image))
                    chunk.append(s)
                except UserError:
                    skipped += 1
            if images:
                for s, im, det in zip(chunk, images, predictor.predict_images(images)):
                    results.extend(coco_results(s.image_id, det, cat_ids))
                    scored.append(s.image_id)
                    if split.coco_gt is not None and (im.shape[1], im.shape[0]) != (s.width, s.height):
                        decoded[s.image_id] = (im.shape[1], im.shape[0])
                    if on_image is not None:
                        on_image(s, im, det)
            bar.update(len(split.samples[i:i + batch]))
    if decoded:
        taken = []
        gt = coco_gt_from_split(split, taken, sizes=decoded)
    if area_taken is not None:
        area_taken.extend(taken)
    # Only the images read are scored: one that could not be read (or that the split left
    # out) would otherwise count its ground truth as misses.
    stats, per_class = coco_scores(gt, results[first:], scored)
    if ground_truth is not None:
        read = set(scored)
        ground_truth.update({**gt, "images": [im for im in gt["images"] if im["id"] in read],
                             "annotations": [a for a in gt["annotations"] if a["image_id"] in read]})
    for row, name in zip(per_class, split.names):  # the spec's names (it may rename the json's), as predict shows
        row["class"] = name
    if split.category_ids is not None:  # the json's id beside the name, where the data has ids
        per_class = [{"class": row["class"], "category_id": int(i), **row} for row, i in zip(per_class, cat_ids)]
    return {**stats, "per_class": per_class, "images": len(split.samples) - skipped, "skipped": skipped,
            "class_names_match": list(predictor.class_names) == list(split.names),
            "detections": len(results) - first, "seconds": round(time.perf_counter() - t0, 3)}


# The earlier forms: evaluate_model(model, data, split), note= and batch_size= (eval --batch).
@deprecated_keywords("data", "split", note=renamed("log"), batch_size=renamed("batch"))
def evaluate_model(model: str | Path, *, data: str | Path, split: str = "val",
                   img_size: int | tuple[int, int] | None = None,
                   batch: int = 8, threads: int | None = None, precision_hint: str | None = None,
                   conf: float = EVAL_CONF, iou: float = EVAL_NMS_IOU, max_det: int = EVAL_MAX_DET,
                   progress: bool = True, log: Callable[[str], None] | None = print,
                   save_dir: str | Path | None = None, save_conf: float = APP_CONF,
                   confusion: bool = False, confusion_conf: float | None = None,
                   confusion_png: str | Path | None = None, coco_results: str | Path | None = None,
                   coco_gt: str | Path | None = None, files: StagedFiles | None = None,
                   saved: list[Path] | None = None) -> dict:
    """``yolox-edge eval``: COCO AP of any artifact (checkpoint, export, bundle) on ``split`` of the
    data spec ``data``; returns the record ``eval --json`` writes (AP, AP50, ... plus model, backend,
    precision, data, split, input size), which ``package_bundle(eval_json=...)`` takes as a file.

    ``progress=False`` turns off the progress bar. When the model's class names are not the
    data's (AP pairs classes by position), ``log`` receives a line saying so (None: it is not
    said). ``data`` and ``split`` were positional, ``note=`` and ``batch_size=`` the names of ``log=``
    and ``batch=``: those forms still work, with a DeprecationWarning.

    ``save_dir``: also write each image with its labelled boxes (white) and the model's boxes
    scoring at least ``save_conf`` (coloured), as ``NNNNN_<image>.jpg`` in split order, for
    seeing where the model misses; AP is unchanged (it still uses every box). Each image is
    written whole (a temp renamed into place) as soon as it is drawn, not with the files below:
    a run stopped part way leaves the images done. Each file is flushed before its rename and the
    folder once, after the last image or when the run stops or fails: when this returns or raises,
    the images written are on disk. ``saved``: a list that receives each one's path once it is in
    place (for a caller that says, after a stop, how many there are).

    ``confusion=True`` adds the record's ``confusion``: the confusion matrix at score
    ``confusion_conf`` (default the app's threshold, a bundle's own, else ``APP_CONF``) and IoU
    0.5, per-class and overall precision / recall / F1 there, and the score threshold with the
    best F1 on this split (``engine.confusion`` defines them; ``ConfusionCounter.summary`` lists
    the keys). The boxes are the evaluation's, with the app's NMS redone on them, not a second
    run of the model. ``confusion_png`` (implies ``confusion``) also draws it as a heat map.

    ``coco_results``: also write the detections scored (at ``conf``/``iou``/``max_det``) to this
    JSON file as COCO results, the list of ``{image_id, category_id, bbox [x, y, w, h], score}``
    that pycocotools' ``loadRes`` and the COCO evaluation server take, so pycocotools on it with
    the split's json gives this AP (unless the json holds boxes left out of scoring: a zero or
    negative side, wholly outside the image; ``coco_gt``'s file always does). The ids are the
    json's for COCO data; voc and yolo data have none, so they are those of the ground truth eval
    builds (image_id: the image's number in the
    split as read, from 1; category_id: class index + 1). The record's ``coco_results`` names the
    file and ``ids``: ``"json"`` or ``"built"``. When the model's category ids are not the data's
    (trained on another id mapping), ``log`` receives a line saying so.

    ``coco_gt``: also write the ground truth as scored to this JSON file (COCO format: the images
    read, their boxes, the categories; ``evaluate(ground_truth=)``), so pycocotools on it and the
    ``coco_results`` file gives this AP for voc and yolo data too, whose ids are the built ones.
    The record's ``coco_gt`` names the file and counts its images and annotations.

    A COCO annotation whose ``area`` is missing, NaN, infinite or negative is scored with its
    box's w * h; ``log`` receives one note, and the record's ``area_taken`` holds the json
    (``json``), how many (``count``) and the first ``AREA_TAKEN_SHOWN`` of them (``first``:
    ``'annotation ID'``), absent when there are none.

    The files (``coco_results``, ``coco_gt``, ``confusion_png``) are written to temps and renamed
    into place together once all are ready: a run stopped or failed before leaves each earlier
    file there as it was, never a mix of this run's and an earlier run's. ``files``: a
    ``fileio.StagedFiles`` to stage them in instead, for the caller to rename into place with
    its own (``eval --json``), by its ``commit``."""
    from ..runtime import load_predictor

    check_thresholds(save_conf, EVAL_NMS_IOU, EVAL_MAX_DET)
    confusion = confusion or confusion_conf is not None or confusion_png is not None
    if confusion_conf is not None:
        check_confusion_conf(confusion_conf, conf)
    if confusion_png is not None:
        require_writable(confusion_png, "confusion plot")  # before minutes of evaluation
    if coco_results is not None:
        require_writable(coco_results, "COCO results")
    if coco_gt is not None:
        require_writable(coco_gt, "COCO ground truth")
    split_data = read_split(data, split)
    for target, flag in ((coco_results, "--coco-results"), (coco_gt, "--coco-gt")):
        if target is not None:
            refuse_data_file(Path(target), data, flag)
    if save_dir is not None:
        refuse_data_folder(save_dir, data, in_python("--save-dir", "save_dir="))
    pred = load_predictor(model, threads=threads, precision_hint=precision_hint, img_size=img_size)
    require_same_class_count(pred, split_data, str(model), str(data))
    hooks = []
    drawer = None
    if save_dir is not None:
        drawer = _EvalDrawer(Path(save_dir), pred.class_names, save_conf, saved)
        hooks.append(drawer)
    counter = None
    if confusion:
        from .confusion import ConfusionCounter

        # pred holds the app's thresholds (a bundle's, else the Predictor's): what `predict` shows
        if confusion_conf is None:
            confusion_conf = pred.conf
            check_confusion_conf(confusion_conf, conf, f"{model}: its app score threshold {confusion_conf} (the "
                                 "confusion's default)")
        counter = ConfusionCounter(len(split_data.names), nms=pred.iou, agnostic=pred.agnostic,
                                   max_det=pred.max_det, min_conf=conf)
        hooks.append(counter)
    results: list[dict] = []
    gt: dict = {}
    area_taken: list[str] = []
    with drawer if drawer is not None else contextlib.nullcontext():  # --save-dir's folder flushed once, at the end
        res = evaluate(pred, split_data, batch=batch, conf=conf, iou=iou, max_det=max_det, progress=progress,
                       on_image=_each(hooks), results=results, ground_truth=gt, area_taken=area_taken)
    say = line_sink(log)
    for note in model_data_notes(pred.class_names, pred.category_ids, split_data):
        say(note)
    record = evaluation_record(model, pred, data, split, res)
    if area_taken:  # with or without --coco-gt: APs/APm/APl are those of the area used
        source = _annotation_file(data, split)
        say(area_note(area_taken, source))
        # in the record too: APs/APm/APl read later from --json were those of w * h with nothing saying so
        record["area_taken"] = {"json": source, "count": len(area_taken), "first": area_taken[:AREA_TAKEN_SHOWN]}
    # one StagedFiles for all: a stop between two writes left this run's results beside an earlier
    # run's ground truth (or plot), which read as one run's
    with contextlib.nullcontext(files) if files is not None else StagedFiles() as files:
        if coco_results is not None:
            dropped = write_coco_results(results, coco_results, files)
            record["coco_results"] = {"file": str(coco_results),
                                      "ids": "json" if split_data.category_ids is not None else "built"}
            if dropped:
                record["coco_results"]["left_out"] = dropped
                say(f"note: {dropped} of {len(results)} detection(s) have a NaN or infinite score or box, "
                    f"left out of {coco_results} (JSON has no NaN: the COCO server refuses such a file); "
                    "the model gave them, so check its outputs (eval's AP was taken with them)")
        if coco_gt is not None:
            nulled = write_coco_gt(gt, coco_gt, files)
            record["coco_gt"] = {"file": str(coco_gt), "images": len(gt["images"]),
                                 "annotations": len(gt["annotations"])}
            if nulled:
                record["coco_gt"]["nulled"] = nulled
                say(f"note: {len(nulled)} NaN or infinite number(s) of the ground truth ({first_few(nulled, 3)}) "
                    f"written as null in {coco_gt} (JSON has no NaN: other COCO tools refuse such a file); "
                    "no box is scored from them, so the AP is unchanged")
        if counter is not None:
            record["confusion"] = counter.summary(split_data.names, confusion_conf, app_conf=pred.conf,
                                                  category_ids=split_data.category_ids)
            if confusion_png is not None:
                from .confusion_report import write_confusion_png

                write_confusion_png(record["confusion"], confusion_png,
                                    f"{Path(str(model)).name} on {Path(str(data)).name}:{split}, score >= "
                                    f"{confusion_conf:.2f}, IoU 0.5 (rows normalised)", files)
    return record


AREA_TAKEN_SHOWN = 10
"""How many of the annotations scored with w * h for their area ``eval --json``'s ``area_taken`` names."""


def area_note(taken: list[str], source: str | Path) -> str:
    """The note for ``evaluate(area_taken=)``'s list: how many of ``source``'s (the json's)
    annotations were scored with w * h for their area, naming the first few."""
    return (f"note: {len(taken)} annotation(s) of {source} ({first_few(taken, 3)}) have no usable area (missing, "
            "NaN, infinite or negative): scored with their box's w * h instead, which decides whether APs, APm and "
            "APl count them")


def _annotation_file(data: str | Path, split: str) -> str:
    """The COCO json of ``split`` in the data spec ``data``, for a note naming it (``data`` itself
    where the spec names none)."""
    from ..data.spec import load_spec

    try:
        return str(load_spec(data).split_paths(split)["annotations"])
    except (UserError, OSError, ValueError, TypeError, KeyError, AttributeError):
        return str(data)


def _finite(r: dict) -> bool:
    return all(np.isfinite(v) for v in (r["score"], *r["bbox"]))


def write_coco_results(results: list[dict], path: str | Path, files: StagedFiles | None = None) -> int:
    """Write COCO results (``coco_results``' dicts) as one JSON list, atomically: a run stopped
    while writing leaves the earlier file whole. Returns how many were left out for a NaN or
    infinite score or box. ``files``: staged there instead, renamed into place by its ``commit``.

    JSON has no NaN or infinity: written as ``NaN`` the file is refused by the COCO server and
    by strict parsers. Such a detection is left out rather than the file refused: it can match no
    box (a NaN box) or ranks nowhere (a NaN score), and the rest of a long evaluation stays usable;
    the caller says how many (the model gave them: its outputs are worth a look)."""
    kept = [r for r in results if _finite(r)]
    write_json_file(kept, path, files)
    return len(results) - len(kept)


def write_coco_gt(gt: dict, path: str | Path, files: StagedFiles | None = None) -> list[str]:
    """Write the ground truth as scored (``evaluate(ground_truth=)``) as strict JSON, atomically
    (``files``: staged there). Returns where a NaN or infinite number was written as null
    (``'image 1 width'``).

    The user's json may hold NaN (Python's json reads it) where no box is scored from it (an
    image's width, a 'segmentation', a key of its own): copied as ``NaN`` the file was not JSON,
    and other COCO tools refuse it. A box or area that is not a number was already left out or
    taken as w * h by ``_scorable_gt``, so the boxes and eval's AP stay those of the file."""
    where: list[str] = []

    def clean(v, at: str):
        if isinstance(v, float) and not np.isfinite(v):
            where.append(at)
            return None
        if isinstance(v, dict):
            return {k: clean(x, f"{at} {k}") for k, x in v.items()}
        if isinstance(v, list):
            return [clean(x, at) for x in v]
        return v

    out = {}
    for key, value in gt.items():
        if key in ("images", "annotations", "categories") and isinstance(value, list):
            kind = {"images": "image", "annotations": "annotation", "categories": "category"}[key]
            out[key] = [clean(e, f"{kind} {e.get('id')}" if isinstance(e, dict) else kind) for e in value]
        else:
            out[key] = clean(value, key)
    write_json_file(out, path, files)
    return where


def write_json_file(value: list | dict, path: str | Path, files: StagedFiles | None = None) -> None:
    """Write COCO results or ground truth as strict JSON, atomically: a run stopped while writing
    leaves the earlier file whole (``files``: staged there, renamed into place by its ``commit``).
    A ValueError, before anything is written, where ``value`` holds NaN or infinity (the callers
    take those out first: JSON has no NaN)."""
    import json

    # no indent: a COCO val run at conf 0.001 holds ~10^5 detections
    text = json.dumps(value, allow_nan=False)
    (files.write if files is not None else atomic_write_bytes)(Path(path), lambda f: f.write(text.encode()))


def check_confusion_conf(confusion_conf: float, conf: float, flag: str = "") -> None:
    """UserError unless the confusion threshold is a score the evaluation kept boxes at
    (``flag``: what the message calls it, by default --confusion-conf)."""
    flag = flag or in_python(f"--confusion-conf {confusion_conf}", f"confusion_conf={confusion_conf}")
    if not 0.0 <= confusion_conf <= 1.0:
        raise UserError(f"{flag}: must be a score in [0, 1], e.g. 0.3")
    if confusion_conf < conf:
        raise UserError(f"{flag} is below the evaluation's score threshold {conf} "
                        f"({in_python('--conf', 'conf=')}): the boxes between were never kept; pass a "
                        f"--confusion-conf of at least {conf}, or a lower --conf")


def _each(hooks: list[Callable[[Sample, np.ndarray, Detections], None]]
          ) -> Callable[[Sample, np.ndarray, Detections], None] | None:
    """One ``on_image`` calling each of ``hooks`` (None when there is none)."""
    if not hooks:
        return None
    if len(hooks) == 1:
        return hooks[0]

    def each(sample: Sample, image: np.ndarray, det: Detections) -> None:
        for hook in hooks:
            hook(sample, image, det)

    return each


class _EvalDrawer:
    """``evaluate``'s ``on_image`` for ``evaluate_model(save_dir=)``: labels and boxes drawn, one file
    per image, each appended to ``saved`` (when given) once in place. As a context manager around
    the evaluation it flushes the folder once on leaving it, whether the run ended, stopped or failed."""

    def __init__(self, folder: Path, names: list[str], conf: float, saved: list[Path] | None = None) -> None:
        from ..errors import require_out_folder

        require_out_folder(folder, in_python("--save-dir", "save_dir="))  # before minutes of evaluation
        self.folder, self.names, self.conf, self.saved = folder, names, conf, saved
        self._count = itertools.count()
        self._wrote = False  # an image's rename may have happened: the folder needs its flush

    def __call__(self, sample: Sample, image: np.ndarray, det: Detections) -> None:
        from ..visualize import draw_detections, draw_ground_truth, write_image

        keep = det.scores >= self.conf
        shown = Detections(det.boxes[keep], det.scores[keep], det.labels[keep])
        canvas = draw_ground_truth(image, sample.boxes, sample.labels, names=self.names)
        # Each image is its own atomic write (write_image: a temp renamed into place), made as it
        # is drawn, not staged with --json & co. to be renamed at the end: a val split's images
        # would be held till then (GBs in memory, or a second copy on disk), and each is a view
        # of one image, whole by itself, that no other file refers to. A stop leaves the images
        # done, never half a JPEG, and its line counts them (``saved``). Each file is flushed
        # before its rename, the folder once at the end (``__exit__``): a flush of the folder per
        # image doubled the flushes, which on slow storage cost more than drawing.
        self._wrote = True
        path = write_image(self.folder / f"{next(self._count):05d}_{sample.image.stem}.jpg",
                           draw_detections(canvas, shown, names=self.names), flush_folder=False)
        if self.saved is not None:
            self.saved.append(path)

    def __enter__(self) -> _EvalDrawer:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        """Flush the folder, so the images' names are on disk when the evaluation returns or stops.
        Ctrl-C and SIGTERM wait for it (a second Ctrl-C would leave them unflushed); after a stop
        or error a failed flush is not raised, as it would hide why the run ended."""
        from ..fileio import fsync_folder, stops_held

        if not self._wrote:
            return
        with stops_held():
            if exc_type is None:
                fsync_folder(self.folder)
            else:
                with contextlib.suppress(OSError):
                    fsync_folder(self.folder)
