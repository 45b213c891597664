"""yolox-edge predict: detections for images, videos, a camera or a stream, printed or as JSON,
annotated copies saved."""
from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path
from typing import NamedTuple

from . import add_precision_hint
from ..fileio import file_identity, fsync_folder
from ..progress import counted
from ..thresholds import APP_CONF, APP_MAX_DET, APP_NMS_IOU
from .argtypes import frame_size, img_size, positive, positive_float, unit_interval
from .jsonout import STDOUT, add_json_option, check_json_target, report_stream, write_json
from .signals import Terminated, sigterm_stops


CLI_DEFAULTS = {"conf": APP_CONF, "iou": APP_NMS_IOU, "max_det": APP_MAX_DET}


def camera_spec(s: str) -> str:
    """A camera index (``0``) or device path (``/dev/video0``): anything else after ``--camera``
    is most likely the model or an image that the optional value took."""
    import argparse

    if s.strip().isdigit() or s.startswith("/dev/"):
        return s.strip()
    raise argparse.ArgumentTypeError(f"expected a camera index (e.g. 0) or device (e.g. /dev/video0), not {s!r}")


def add_parser(sub) -> None:
    p = sub.add_parser("predict", help="detect objects in images, videos, a camera or a stream with any model artifact")
    p.add_argument("model", help="checkpoint (.pt) or exported artifact / folder")
    p.add_argument("images", nargs="*", metavar="inputs", help="image or video files (.mp4, .mov, .avi, .mkv, ...), "
                   "folders of images (not recursive), or one stream address (rtsp://, http(s)://)")
    p.add_argument("--camera", nargs="?", const="0", default=None, type=camera_spec, metavar="INDEX|DEVICE",
                   help="read a live camera: its index (default 0) or device (/dev/video0); runs until Ctrl-C, "
                        "--frames or --duration")
    p.add_argument("--camera-size", type=frame_size, default=None, metavar="WxH",
                   help="frame size to ask the camera for, e.g. 640x480 (it takes the nearest it has; smaller is "
                        "less work on a Pi)")
    p.add_argument("--frames", type=positive, default=None, metavar="N", help="camera or stream: stop after N frames")
    p.add_argument("--duration", type=positive_float, default=None, metavar="SECONDS",
                   help="camera or stream: stop after this many seconds")
    p.add_argument("--every-frame", action="store_true",
                   help="camera or stream: predict every frame in order; by default each prediction takes the "
                        "newest frame and skips those the model had no time for, so detections stay current "
                        "(in order, a slow model falls ever further behind a network stream)")
    # None: a bundle's own thresholds (what the app uses), else the defaults in CLI_DEFAULTS.
    p.add_argument("--conf", type=unit_interval, default=None,
                   help=f"score threshold (obj x cls); default a bundle's own, else {APP_CONF}")
    p.add_argument("--nms", type=unit_interval, default=None, help=f"NMS IoU threshold; default a bundle's, else {APP_NMS_IOU}")
    p.add_argument("--agnostic", action="store_true", help="class-agnostic NMS")
    p.add_argument("--max-det", type=positive, default=None, help="most detections per image; default a bundle's, "
                   f"else {APP_MAX_DET}")
    p.add_argument("--threads", type=positive, default=None, help="runtime threads (default: the runtime's)")
    p.add_argument("--img-size", type=img_size, default=None, metavar="S|WxH",
                   help="input size, S or WIDTHxHEIGHT (default: the model's own; any size only for dynamic-shape "
                        "models such as a .pt checkpoint)")
    add_precision_hint(p)
    p.add_argument("--save-dir", default=None, help="write an annotated copy of each image (X_pred.jpg) and "
                   "video (X_pred.mp4) here, and a camera's or stream's recording (camera0_pred.mp4, "
                   "<stream>_pred.mp4; never over an earlier one)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (videos) or status line (camera, "
                   "stream) on stderr")
    add_json_option(p, "the detections")
    p.set_defaults(func=run)


def _expand(items: list[str], save_dir: str | None = None) -> list[tuple[Path, bool]]:
    """(path, named) for each image: the files given, then each folder's images in name order.
    ``named`` marks files the user typed (a bad one stops the run before any work). A folder's
    subfolders are not searched, and counted in a note (``save_dir`` among them is not)."""
    from ..data.check import CONVERT_HEIF, HEIF_SUFFIXES
    from ..data.preprocess import IMAGE_SUFFIXES, left_out_note, scan_images
    from ..errors import UserError
    from ..progress import first_few

    out: list[tuple[Path, bool]] = []
    for item in items:
        p = Path(item)
        if not p.is_dir():
            out.append((p, True))
            continue
        # AVIF (a phone's or a browser's), GIF, .jfif, ...: read when this OpenCV decodes them (a build
        # with libavif does, the 4.x wheels do not), else named below; left out unsaid before
        found, unread = scan_images(p)
        # an iPhone's HEIC photos: named with how to convert them (a folder of its pictures gave
        # fewer results, or 'no images', without a word on why)
        photos = sorted(q.name for q in unread if q.suffix.lower() in HEIF_SUFFIXES)
        left_out = (f"{len(photos)} HEIC photo{'s' if len(photos) != 1 else ''} left out "
                    f"({first_few(photos, 3)}): {CONVERT_HEIF}") if photos else ""
        no_decoder = left_out_note(p, [q for q in unread if q.suffix.lower() not in HEIF_SUFFIXES])
        # 'every image in a folder' read as every one below it: a photos/2024/ went unpredicted unsaid
        subs = _subfolders(p, save_dir)
        not_searched = (f"{len(subs)} subfolder{'s' if len(subs) != 1 else ''} not searched ({first_few(subs, 3)}): "
                        "name a subfolder to predict its images") if subs else ""
        notes = [n for n in (left_out, no_decoder, not_searched) if n]
        if not found:
            raise UserError(f"{p}: no images in this folder (looked for {', '.join(sorted(IMAGE_SUFFIXES))}, "
                            f"not in subfolders)" + "".join(f"; {n}" for n in notes))
        for note in notes:
            print(f"note: {p}: {note}", file=sys.stderr)
        out += [(q, False) for q in found]
    return out


def _subfolders(folder: Path, save_dir: str | None) -> list[str]:
    """The names of ``folder``'s subfolders a user may expect searched: not hidden ones (.git,
    .thumbnails), nor ``save_dir`` (this run's own annotated copies)."""
    own = Path(save_dir).resolve() if save_dir else None
    with os.scandir(folder) as it:
        return sorted(e.name for e in it if not e.name.startswith(".") and e.is_dir()
                      and (own is None or Path(e.path).resolve() != own))


def _drop_earlier_copies(paths: list[tuple[Path, bool]], save_dir: Path
                         ) -> tuple[list[tuple[Path, bool]], list[Path], set[str]]:
    """Predicting a folder into itself twice read back its own ``X_pred.jpg`` copies: drop those
    that sit beside their source ``X.*`` among the inputs (a user's own ``cat_pred.jpg`` without a
    ``cat.jpg`` is an input like any other), named ones too: ``photos/*.jpg`` names every file, and
    each run added a generation of copies of copies. Also returns the names of the inputs in
    ``save_dir``, which an annotated copy must never take."""
    import re

    own = save_dir.resolve()
    here = {p for p, _ in paths if p.parent.resolve() == own}  # each folder resolved once
    stems = {p.stem for p in here}
    keep, earlier = [], []
    for p, named in paths:
        m = re.fullmatch(r"(.+)_pred(?:_\d+)?\.jpg", p.name)  # X_pred.jpg, X_png_pred.jpg, X_pred_2.jpg
        ours = m is not None and (m.group(1) in stems or m.group(1).rsplit("_", 1)[0] in stems)
        if p in here and ours:
            earlier.append(p)
        else:
            keep.append((p, named))
    return keep, earlier, {p.name for p, _ in keep if p in here}


def _pred_name(path: Path, taken: set[str], ext: str = ".jpg") -> str:
    """``<stem>_pred<ext>`` (.jpg for images, .mp4 for videos); ``<stem>_<suffix>_pred<ext>`` when
    another input took that name (a.jpg, a.png)."""
    name = f"{path.stem}_pred{ext}"
    if name in taken:
        name = f"{path.stem}_{path.suffix.lstrip('.').lower()}_pred{ext}"
    n = 2
    while name in taken:
        name, n = f"{path.stem}_pred_{n}{ext}", n + 1
    taken.add(name)
    return name


def _live_source(args):
    """The camera or stream this run reads (a LiveSource), or None for files; a UserError for a
    live source mixed with other inputs, or a live-only flag without one."""
    from ..errors import UserError
    from ..runtime.live_source import as_live_source, is_stream_url, redact

    urls = [s for s in args.images if is_stream_url(s)]
    if args.camera is None and not urls:
        flags = [f for f, v in (("--frames", args.frames), ("--duration", args.duration),
                                ("--camera-size", args.camera_size), ("--every-frame", args.every_frame or None))
                 if v is not None]
        if flags:
            raise UserError(f"{' and '.join(flags)}: only for --camera or a stream address (rtsp://, http://); "
                            f"a video is always read to its end")
        if not args.images:
            raise UserError("nothing to predict: give image or video files, folders, a stream address, or --camera")
        return None
    given = ([f"--camera {args.camera}"] if args.camera is not None else []) + [redact(s) for s in args.images]
    if len(given) > 1:
        raise UserError(f"a camera or stream runs alone: {', '.join(given)} were given; predict the others in a "
                        f"run of their own")
    if args.camera_size is not None and args.camera is None:
        raise UserError("--camera-size: only for --camera; a stream's frame size is set where it is sent from")
    return as_live_source(args.camera if args.camera is not None else urls[0], args.camera_size)


def predictor_from_args(args):
    """The Predictor the flags ask for, with a note when the export's own NMS hides what --conf asks."""
    import sys

    from ..runtime import load_predictor

    pred = load_predictor(args.model, threads=args.threads, precision_hint=args.precision_hint, conf=args.conf,
                          iou=args.nms, agnostic=args.agnostic or None, max_det=args.max_det, defaults=CLI_DEFAULTS,
                          img_size=args.img_size)
    graph_nms = (((pred.info.extra.get("metadata") or {}).get("graph") or {}).get("nms") or {})
    if graph_nms.get("conf") is not None and pred.conf < graph_nms["conf"]:
        # the export's in-graph NMS already dropped those boxes: torch/ncnn show them, this cannot
        print(f"note: {args.model} keeps only scores above {graph_nms['conf']} in its graph; --conf {pred.conf} "
              f"shows no more (export with --conf {pred.conf} for that)", file=sys.stderr)
    if pred.agnostic and graph_nms.get("class_aware"):
        # one NMS per class in the graph, then one across classes here: a box the graph removed for a
        # same-class neighbour that --agnostic then removes too stays gone, where one agnostic NMS keeps it
        print(f"note: {args.model} ran NMS per class in its graph; --agnostic over its output can keep fewer boxes "
              "than one class-agnostic NMS (export with --no-nms for exactly that)", file=sys.stderr)
    return pred


def run(args) -> int:
    import sys

    from ..data.preprocess import read_image
    from ..errors import UserError, require_out_folder
    from ..runtime.video import check_video, is_video
    from ..visualize import draw_detections, write_image

    check_json_target(args, reads=(args.model,))
    live = _live_source(args)
    if live is not None:
        from .predict_live import run_live
        return run_live(args, live)
    if args.save_dir:
        # a file or a read-only folder there failed only at the first annotated copy, after the model
        # loaded and the image was done, with a stop line above the error
        require_out_folder(args.save_dir, "--save-dir")
    paths = _expand(args.images, args.save_dir)
    taken: set[str] = set()
    if args.save_dir:
        paths, earlier, taken = _drop_earlier_copies(paths, Path(args.save_dir))
        if earlier:
            print(f"skipped {len(earlier)} annotated cop{'y' if len(earlier) == 1 else 'ies'} of an earlier run "
                  f"({earlier[0].name}, beside its source)", file=sys.stderr)
    # Files the user named are read now: a typo fails before the model loads. Folder members
    # are read one at a time (a folder may hold thousands) and an unreadable one is skipped.
    # A video is opened and its first frame decoded now; the rest waits for the model.
    named = {p: check_video(p) if is_video(p) else read_image(p) for p, is_named in paths if is_named}
    pred = predictor_from_args(args)
    results, skipped = [], []
    replaced = 0  # annotated copies of an earlier run written over (a re-run refreshes them)
    out = report_stream(args)
    saved = 0  # annotated copies this run wrote: a stop says how many
    current = None  # the record of the input being done (a video's holds its frames so far): a stop marks it
    video_save = None  # (annotated video, its file_identity before): a stop keeps its frames so far
    images_saved = False  # an annotated image renamed into --save-dir, its folder not yet flushed
    try:
        # SIGTERM (systemd, docker stop, timeout) is a stop like Ctrl-C: unhandled, it lost the
        # detections and video frames done, which the live path keeps
        with sigterm_stops():
            for path, is_named in paths:
                if is_named and is_video(path):
                    info = named[path]
                    current = {"video": str(path), "fps": info.fps, "fps_stated": info.fps_stated, "frames": []}
                    save = Path(args.save_dir) / _pred_name(path, taken, ".mp4") if args.save_dir else None
                    video_save = (save, file_identity(save)) if save is not None else None
                    replaced += _video(pred, path, info, save, args, out, current["frames"])
                    results.append(current)
                    current = video_save = None
                    saved += bool(args.save_dir)
                    continue
                current = {"image": str(path)}
                if is_named:
                    img = named[path]
                else:
                    try:
                        img = read_image(path)
                    except UserError as e:
                        print(f"skipped {e}", file=sys.stderr)
                        skipped.append(str(path))
                        current = None
                        continue
                det = pred.predict(img)
                results.append({"image": str(path),
                                "detections": det.to_list(names=pred.class_names, category_ids=pred.category_ids)})
                current = None
                if args.save_dir:
                    target = Path(args.save_dir) / _pred_name(path, taken)
                    existed = target.exists()
                    try:
                        # the file flushed before its rename, the folder once for all (below)
                        write_image(target, draw_detections(img, det, names=pred.class_names), flush_folder=False)
                    except UserError as e:  # a 70000 px panorama: its detections stand, the folder goes on
                        print(f"note: no annotated copy of {path}: {e}", file=sys.stderr)
                    else:
                        replaced += existed
                        saved += 1
                        images_saved = True
                print(f"{path}: {counted(len(det), 'detection')}", file=out)
                for d in results[-1]["detections"]:
                    print(f"  {d['name']:<14} {d['score']:.3f}  [{', '.join(f'{v:.1f}' for v in d['box'])}]",
                          file=out)
            if images_saved:  # one flush of --save-dir for its images, not one per image (thousands)
                fsync_folder(args.save_dir)
    except BaseException as e:
        if images_saved:  # what was saved is on disk when the run stops, too; the stop is what to report
            with contextlib.suppress(OSError):
                fsync_folder(args.save_dir)
        _keep_what_was_done(e, args, results, current, video_save,
                            Progress(len(results) + len(skipped), len(paths), saved))
        raise
    write_json(results, args.json_out)
    if skipped:
        print(f"{counted(len(skipped), 'unreadable image')} skipped", file=sys.stderr)
    if replaced:
        copies = "1 annotated copy" if replaced == 1 else f"{replaced} annotated copies"
        print(f"replaced {copies} of an earlier run in {args.save_dir}", file=sys.stderr)
    return 0


class Progress(NamedTuple):
    """How far a run over files got: inputs done (skipped ones too) of ``total``, and the
    annotated copies written to --save-dir."""

    done: int
    total: int
    saved: int


def _keep_what_was_done(e: BaseException, args, results: list[dict], current: dict | None,
                        video_save: tuple[Path, tuple[int, ...] | None] | None, progress: Progress) -> None:
    """A run over files stopped by ``e`` (Ctrl-C, SIGTERM or an error): write --json with what was
    done, as the live path does, the input it stopped in marked ``"stopped"``, and say what --json
    and --save-dir hold. Nothing is written when nothing was done (an earlier file stays)."""
    # The JSON was written once every input was done: a stop left no file, or an earlier run's
    # untouched, and the detections of a long folder or the frames of a long video were lost.
    mark = "interrupted" if isinstance(e, KeyboardInterrupt) else "error"
    written = bool(args.json_out) and bool(results or (current or {}).get("frames"))
    if current is not None:
        results = [*results, {**current, "stopped": mark}]
    if isinstance(e, BrokenPipeError):  # the reader of stdout went away: stop quietly, as cat does
        if written and args.json_out != STDOUT:
            write_json(results, args.json_out)
        return
    if written:
        write_json(results, args.json_out)
    kept = None
    if video_save is not None and file_identity(video_save[0]) not in (None, video_save[1]):
        kept = (video_save[0], _frame_count(video_save[0]), video_save[1] is not None)
    how = ("stopped by SIGTERM" if isinstance(e, Terminated) else "interrupted" if mark == "interrupted"
           else "stopped by the error below")
    print(stopped_note(how, args.json_out, args.save_dir, progress, stopped_in=current, mark=mark, written=written,
                       kept=kept), file=sys.stderr)


def _frame_count(video: Path) -> int | None:
    """The frames a video file says it holds (None if it cannot be read)."""
    from ..errors import UserError
    from ..runtime.video import open_video

    try:
        cap, info = open_video(video)
    except UserError:
        return None
    cap.release()
    return info.frames


def stopped_note(how: str, json_out: str | None, save_dir: str | None, progress: Progress, *,
                 stopped_in: dict | None = None, mark: str = "interrupted", written: bool = False,
                 kept: tuple[Path, int | None, bool] | None = None) -> str:
    """The line a stopped run over files prints: ``how`` it stopped, how far it got, and what
    --json and --save-dir then hold. ``stopped_in``: the record of the input it stopped in (a
    video's with its frames so far), marked ``"stopped": mark`` in the JSON; ``written``: --json
    was written with what was done; ``kept``: (the annotated video of the frames done, their
    count, whether it replaced an earlier run's)."""
    line = f"predict: {how} after {progress.done} of {counted(progress.total, 'input')}"
    name = None
    if stopped_in is not None:
        name = stopped_in.get("video") or stopped_in["image"]
        line += (f" and {counted(len(stopped_in['frames']), 'frame')} of {name}" if "frames" in stopped_in
                 else f", in {name}")
    if written:
        where = "the JSON printed holds" if json_out == STDOUT else f"{json_out} holds"
        line += f"; {where} what was done"
        if name is not None:
            line += f' ({name}\'s record marked "stopped": "{mark}")'
    elif json_out == STDOUT:
        line += "; no JSON was printed (nothing was done)"
    elif json_out:
        earlier = " (an earlier file there is untouched)" if Path(json_out).exists() else ""
        line += f"; {json_out} was not written{earlier}: nothing was done"
    if save_dir:
        line += f"; {progress.saved} annotated cop{'y' if progress.saved == 1 else 'ies'} written to {save_dir}"
        if kept is not None:
            frames = "its frames" if kept[1] is None else f"its {counted(kept[1], 'frame')}"
            over = ", over an earlier run's" if kept[2] else ""
            line += f" and {kept[0].name} kept with {frames} done (a playable video{over})"
        elif stopped_in is not None and "frames" in stopped_in:
            line += f" (none of {name}: no frame was done)"
    return line


def frame_record(f, names: list[str], category_ids: list[int] | None = None) -> dict:
    """One frame of a video, camera or stream as the JSON holds it (``category_ids``: the model's, when known)."""
    return {"frame": f.index, "time_s": round(f.time_s, 4),
            "detections": f.detections.to_list(names=names, category_ids=category_ids)}


def _video(pred, path: Path, info, save: Path | None, args, out, frames: list[dict]) -> bool:
    """Every frame of one video appended to ``frames`` as the JSON holds them (the caller keeps
    those done when stopped), a summary line, the annotated copy at ``save`` when asked (a stop
    keeps its frames so far there). Returns whether that copy replaced an earlier one."""
    import contextlib
    import time

    from ..runtime.video import predict_video

    was_there = save is not None and save.exists()
    count = 0
    start = time.perf_counter()
    def record(f) -> None:
        frames.append(frame_record(f, pred.class_names, pred.category_ids))

    # closed on the way out: a stop in this loop, not the generator's, keeps the annotated frames at
    # once. Each frame is recorded by the reader (on_frame), with no stop between its record and its
    # write: recorded here, a stop just after the write kept a video one frame longer than --json
    with contextlib.closing(predict_video(pred, path, save_to=save, progress=not args.no_progress,
                                          keep_stopped=True, on_frame=record)) as video:
        for f in video:
            count += len(f.detections)
    ms = 1000 * (time.perf_counter() - start) / len(frames)
    also = "decoding, drawing and encoding" if save else "decoding"
    rate = "" if info.fps_stated else f"; the file states no frame rate, times are at {info.fps:g} FPS"
    print(f"{path}: {counted(len(frames), 'frame')}, {counted(count, 'detection')} ({count / len(frames):.1f} per frame), "
          f"{ms:.1f} ms per frame with {also}{rate}" + (f" -> {save}" if save else ""), file=out)
    # A cut file decodes up to the cut without an error: 14 of 150 frames ended with exit 0 and no word.
    # (Containers round their frame count, and some state none: a few frames short is no note.)
    if info.frames and len(frames) < info.frames - max(2, info.frames // 100):
        print(f"note: {path}: read {len(frames)} of the {info.frames} frames the file states; it may be cut short "
              "(a partial download or copy): check the file", file=sys.stderr)
    return was_there
