"""yolox-edge predict --camera / a stream address: the live part of predict, over runtime.predict_stream.

Ctrl-C is how a live run is meant to end, so it is not an error here: the recording so far is
renamed into place, the JSON written, the summary printed, and the exit code is 0. SIGTERM (what
systemd, docker stop and `timeout` send to a camera left running as a service) ends it the same
way; unhandled, it would leave an MP4 without its index, which no player opens. (A Ctrl-C before
the first frame, while the model loads, is the CLI's usual interrupt: exit 130.)
"""
from __future__ import annotations

import sys
from pathlib import Path

from ..progress import counted
from .jsonout import report_stream, write_json
from .signals import Terminated, sigterm_stops


def _why(stopped: str, source) -> str:
    if stopped == "ended":
        return ("the camera stopped giving frames (unplugged, or taken by another app?)" if source.is_camera
                else "the stream ended or its connection dropped")
    return {"frames": "--frames reached", "duration": "--duration reached"}.get(stopped, stopped)


def run_live(args, source) -> int:
    """Read ``source`` (a runtime.live_source.LiveSource) until it or the user stops, as the flags ask."""
    from ..fileio import free_name, require_writable
    from ..runtime.live_source import check_live
    from ..runtime.stream import predict_stream
    from .predict import frame_record, predictor_from_args

    save = None
    if args.save_dir:
        # The name shown at the end is the one it got: another run may take this one meanwhile.
        save = require_writable(free_name(Path(args.save_dir) / f"{source.name}_pred.mp4"), "annotated video")
    w, h = check_live(source)  # before the model loads: a wrong device fails in a second
    if not args.no_progress:
        print(f"{source.label}: {w}x{h}; Ctrl-C stops", file=sys.stderr)
    pred = predictor_from_args(args)
    out = report_stream(args)
    frames, interrupted = [], None

    def record(stopped: str) -> list[dict]:
        return [{"source": source.label, "fps": round(live.fps, 2) if live.fps else None, "stopped": stopped,
                 "read": live.read, "frames": frames}]

    try:
        with sigterm_stops(), predict_stream(pred, source, max_frames=args.frames, duration_s=args.duration,
                                              save_to=save, progress=not args.no_progress,
                                              newest_only=not args.every_frame,
                                              on_frame=lambda f: frames.append(
                                                  frame_record(f, pred.class_names, pred.category_ids))) as live:
            try:
                # each frame is recorded by the run (on_frame), before it goes into the recording and
                # with no stop between: recorded here, a stop after the recording's write kept one more
                for _ in live:
                    pass
            except KeyboardInterrupt as e:  # in the read, the model or here: leaving the with block keeps the recording
                interrupted = "SIGTERM" if isinstance(e, Terminated) else "Ctrl-C"
    except BaseException:
        if frames and args.json_out:  # the frames so far cannot be had again: an error does not lose them
            write_json(record("error"), args.json_out)
        raise
    if not frames:  # interrupted while waiting for the first frame
        print(f"{source.label}: stopped with {interrupted} before the first frame; nothing was written",
              file=sys.stderr)
        return 130
    stopped = "interrupted" if interrupted else live.stopped
    why = f"stopped with {interrupted}" if interrupted else _why(stopped, source)
    write_json(record(stopped), args.json_out)
    n = len(frames)
    count = sum(len(f["detections"]) for f in frames)  # of the frames recorded, the loop may not have seen the last
    rate = f" ({live.fps:.1f} fps)" if live.fps else ""
    if not args.every_frame and live.read > n:  # the frames the model had no time for
        rate += f" of {live.read} read ({live.read - n} skipped: the source is faster than the model)"
    saved = f" -> {live.saved} (at {live.record_fps:g} fps)" if live.saved else ""
    print(f"{source.label}: {counted(n, 'frame')} in {live.elapsed_s:.1f} s{rate}, {counted(count, 'detection')} "
          f"({count / n:.1f} per frame); {why}{saved}", file=out)
    return 0
