"""yolox-edge eval: COCO AP of any artifact on a data spec split."""
from __future__ import annotations

import itertools
import os
import re
import sys
from pathlib import Path

from ..errors import UserError
from ..thresholds import APP_CONF, EVAL_CONF, EVAL_NMS_IOU
from . import add_no_progress, add_precision_hint
from .argtypes import file_named, img_size, positive, unit_interval
from .jsonout import STDOUT, add_json_option, check_json_target, report_stream, write_json
from .signals import Terminated, sigterm_stops


def add_parser(sub) -> None:
    p = sub.add_parser("eval", help="COCO-style AP of a model on a dataset")
    p.add_argument("model", help="checkpoint (.pt) or exported artifact / folder")
    p.add_argument("--data", required=True, help="data spec YAML")
    p.add_argument("--split", default="val", help="split of the data spec to score (default val)")
    p.add_argument("--img-size", type=img_size, default=None, metavar="S|WxH",
                   help="input size, S or WIDTHxHEIGHT (default: the model's own; any size only for dynamic-shape models)")
    p.add_argument("--conf", type=unit_interval, default=EVAL_CONF,
                   help="score threshold (default %(default)s: COCO-style AP wants low-score boxes too)")
    p.add_argument("--nms", type=unit_interval, default=EVAL_NMS_IOU, help="NMS IoU (default %(default)s)")
    p.add_argument("--batch", type=positive, default=8, help="images per call (default 8)")
    p.add_argument("--threads", type=positive, default=None, help="runtime threads (default: the runtime's)")
    add_precision_hint(p)
    p.add_argument("--save-dir", default=None, help="also write each image with its labelled boxes (white) and the "
                   "model's (coloured) here, NNNNN_<image>.jpg in split order")
    p.add_argument("--save-conf", type=unit_interval, default=APP_CONF,
                   help="lowest score of the boxes drawn with --save-dir (default %(default)s; AP uses every box)")
    p.add_argument("--confusion", action="store_true",
                   help="also a confusion matrix at IoU 0.5 (rows: true class and background, i.e. false alarms; "
                   "columns: predicted class and missed), the most confused class pairs, per-class precision, "
                   "recall and F1, and the score threshold with the best F1 on this split")
    p.add_argument("--confusion-conf", type=unit_interval, default=None, metavar="SCORE",
                   help=f"score threshold of the confusion matrix (default the app's, as predict uses: a bundle's "
                   f"own, else {APP_CONF}); implies --confusion")
    p.add_argument("--confusion-png", type=file_named(".png"), default=None, metavar="FILE.png",
                   help="also draw the confusion matrix as a heat map (rows normalised, only the classes that "
                   "occur); implies --confusion")
    p.add_argument("--coco-results", type=file_named(".json"), default=None, metavar="FILE.json",
                   help="also write the detections scored as COCO results ([{image_id, category_id, bbox [x, y, w, "
                   "h], score}], for pycocotools' loadRes or the COCO server): the json's ids for COCO data, else "
                   "image_id = the image's number in the split, category_id = class index + 1")
    p.add_argument("--coco-gt", type=file_named(".json"), default=None, metavar="FILE.json",
                   help="also write the ground truth as scored (COCO json: the images read, their boxes, with "
                   "--coco-results' ids), so pycocotools on the two files gives eval's AP for VOC and YOLO data too")
    add_no_progress(p)
    add_json_option(p, "the results")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..engine.evaluator import evaluate_model
    from ..fileio import StagedFiles

    # written after the evaluation: a bad path, the spec's labels or the export's metadata refused first
    check_json_target(args, reads=(args.model,), data=args.data)
    outputs = [(flag, value) for flag, value in (("--coco-results", args.coco_results), ("--coco-gt", args.coco_gt),
                                                 ("--json", args.json_out)) if value and value != STDOUT]
    for (flag, value), (other, second) in itertools.combinations(outputs, 2):
        if Path(value).absolute() == Path(second).absolute():
            raise UserError(f"{value}: named by both {flag} and {other}, so one file would replace the other; "
                            "give them two file names")
    notes: list[str] = []  # printed after the scores
    # --json, --coco-results, --coco-gt and --confusion-png are renamed into place together: a
    # Ctrl-C between two writes left this run's files beside an earlier run's, after a bare 'interrupted'
    files = StagedFiles()
    saved: list[Path] = []  # --save-dir's images in place: each is written whole as it is drawn
    try:
        with sigterm_stops():  # SIGTERM too: unhandled, it left the staged files' temps behind
            with files:
                res = evaluate_model(args.model, data=args.data, split=args.split, img_size=args.img_size,
                                     batch=args.batch, threads=args.threads, precision_hint=args.precision_hint,
                                     conf=args.conf, iou=args.nms, log=notes.append, save_dir=args.save_dir,
                                     save_conf=args.save_conf, confusion=args.confusion,
                                     confusion_conf=args.confusion_conf, confusion_png=args.confusion_png,
                                     coco_results=args.coco_results, coco_gt=args.coco_gt,
                                     progress=not args.no_progress, files=files, saved=saved)
                if args.json_out != STDOUT:
                    write_json(res, args.json_out, files)
            if args.json_out == STDOUT:
                write_json(res, STDOUT)
            _report(args, res, notes)
    except KeyboardInterrupt as e:
        named = [p for p in (args.json_out, args.coco_results, args.coco_gt, args.confusion_png) if p and p != STDOUT]
        how = "stopped by SIGTERM" if isinstance(e, Terminated) else "interrupted"
        if named or args.save_dir:
            line = stopped_note(how, named, files.committed) if named else f"eval: {how}"
            if args.save_dir:
                line += ("; " if named else ": ") + saved_note(args.save_dir, saved)
            print(line, file=sys.stderr)
        raise
    return 0


def stopped_note(how: str, named: list[str], written: bool) -> str:
    """The line an eval stopped (``how``: 'interrupted', 'stopped by SIGTERM') prints: whether its
    files (``named``: each one the flags ask for) all hold this run's results, or none does (each
    earlier one untouched): they are renamed into place together."""
    if written:
        return (f"eval: {how} after its files were written: {_and(named)} hold{'s' * (len(named) == 1)} this "
                "run's results")
    line = f"eval: {how}: " + (f"{named[0]} was not written" if len(named) == 1
                               else f"none of {_and(named)} was written")
    earlier = [p for p in named if Path(p).exists()]
    if earlier:
        line += f" ({_and(earlier)} still hold{'s' * (len(earlier) == 1)} an earlier run's, untouched)"
    return line + (": the files are written together once the evaluation is done" if len(named) > 1 else "")


def saved_note(save_dir: str | Path, saved: list[Path]) -> str:
    """What a stopped eval left in --save-dir: ``saved``, this run's annotated images, each written
    whole as it was drawn (the first and last named), and how many others there are an earlier
    run's (``NNNNN_<image>.jpg`` that this run did not write: it stopped before, or the split changed)."""
    line = f"{len(saved)} annotated image{'s' * (len(saved) != 1)} of this run in {save_dir}"
    if saved:
        line += f" ({saved[0].name}" + (f" to {saved[-1].name}" if len(saved) > 1 else "") + ", each whole)"
    ours = {p.name for p in saved}
    try:
        with os.scandir(save_dir) as it:
            earlier = sum(1 for e in it if e.name not in ours and _ANNOTATED.fullmatch(e.name) and e.is_file())
    except OSError:  # not made yet: the stop came before the first image
        earlier = 0
    if earlier:
        line += f"; {earlier} other{'s' * (earlier != 1)} there {'are' if earlier != 1 else 'is'} an earlier run's"
    return line


# eval --save-dir's names: NNNNN_<image>.jpg
_ANNOTATED = re.compile(r"[0-9]{5}_.*\.jpg")


def _and(items: list[str]) -> str:
    """'a, b and c'."""
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


def _report(args, res: dict, notes: list[str]) -> None:
    """The readable report of ``res`` (stdout, or stderr under ``--json`` alone) and the notes."""
    from ..engine.evaluator import STAT_NAMES, per_class_lines

    out = report_stream(args)
    print(f"{args.model} [{res['backend']}, {res['precision']}] on {args.data}:{args.split} "
          f"({res['images']} images, {res['seconds']:.1f}s)", file=out)
    print("  " + "  ".join(f"{k} {res[k]:.4f}" for k in STAT_NAMES), file=out)
    if any(res[k] < 0 for k in STAT_NAMES):  # pycocotools' 'nothing to score'
        print("  (-1: this split has no boxes of that size to score against)", file=out)
    if len(res["per_class"]) > 1:
        print("\n".join(per_class_lines(res["per_class"])), file=out)
    if "confusion" in res:
        from ..engine.confusion_report import confusion_lines

        print("\n".join(confusion_lines(res["confusion"], f"{args.data}:{args.split} ({res['images']} images)")),
              file=out)
        if args.confusion_png:
            print(f"  confusion heat map -> {args.confusion_png}", file=out)
    if res["skipped"]:
        print(f"  ({res['skipped']} unreadable image(s) skipped, left out of the score; "
              f"run 'yolox-edge data check {args.data}')", file=sys.stderr)
    if args.save_dir:
        print(f"  {res['images']} annotated image(s) -> {args.save_dir} (labels white, boxes scoring "
              f">= {args.save_conf} coloured)", file=out)
    if "coco_results" in res:
        print(coco_results_line(res), file=out)
    if "coco_gt" in res:
        gt = res["coco_gt"]
        print(f"  ground truth as scored ({gt['images']} images, {gt['annotations']} boxes) -> {gt['file']} (the "
              "ids of --coco-results: pycocotools on the two files gives this AP)", file=out)
    for line in notes:  # the model's class names or category ids are not the data's
        print(line, file=sys.stderr)


def coco_results_line(res: dict) -> str:
    """Where the COCO results went and which ids they use (voc/yolo data has none of its own)."""
    line = f"  {res['detections']} detection(s) as COCO results -> {res['coco_results']['file']}"
    if res["coco_results"]["ids"] == "json":
        line += " (image_id and category_id: the split's json's)"
    else:
        rows = res["per_class"]
        ids = ", ".join(f"{r['class']} {i}" for i, r in enumerate(rows[:3], 1)) + (", ..." if len(rows) > 3 else "")
        line += (f"; this data has no ids of its own, so image_id is the image's number in the split as read "
                 f"(1 to {res['images'] + res['skipped']}, in file-name order or the list file's) and category_id "
                 f"the class index + 1 ({ids})")
    if res["skipped"]:
        line += f"; the {res['skipped']} unreadable image(s) are not in it"
    return line
