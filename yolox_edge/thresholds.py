"""Detection thresholds shared by every entry point (a module without numpy or torch, so the
numpy-only postprocess, the CLI parsers and the library read the same numbers)."""
import numbers

from .errors import UserError

# YOLOX's evaluation thresholds (score, NMS IoU, detections kept per image): every AP this
# project reports uses them, and exports' in-graph NMS defaults to them (an export's AP then
# equals the host pipeline's).
EVAL_CONF = 0.001
EVAL_NMS_IOU = 0.65
EVAL_MAX_DET = 1000

# What an app shows (the official YOLOX demo's thresholds): the defaults of `Predictor`,
# `predict`, `demo`, `bench` and of a packaged bundle, so a library call, the CLI and the app
# draw the same boxes for the same image; `eval --confusion` counts those boxes.
APP_CONF = 0.3
APP_NMS_IOU = 0.45
APP_MAX_DET = 300
# A bundle keeps fewer: an app draws them all on a phone screen.
BUNDLE_MAX_DET = 100
# The app reads a bundle's max_det as a C++ int (json.cpp as_int): more refuses the whole bundle.
APP_INT_MAX = 2**31 - 1


def check_thresholds(conf: float, iou: float, max_det: int) -> None:
    """UserError unless score and IoU are in [0, 1] and max_det >= 1 (conf=30, a percentage, kept
    nothing, silently): the Predictor and a bundle's app thresholds alike."""
    # max_det slices the detections: 1e3 or 10.5 passed here and every predict then stopped in a TypeError
    whole = isinstance(max_det, numbers.Integral) and not isinstance(max_det, bool)
    if not (0.0 <= conf <= 1.0 and 0.0 <= iou <= 1.0) or not whole or max_det < 1:
        raise UserError(f"thresholds out of range: conf {conf} and iou {iou} in [0, 1], max_det {max_det} a whole "
                        "number >= 1")
