"""yolox-edge demo: the import-free main job on an embedded default.

Builds YOLOX-Nano, prints its summary, runs predict on a generated image (or the given
one) and prints the detections. Weights are random unless ``--weights`` names a
checkpoint: nothing is downloaded.
"""
from __future__ import annotations

import time
from pathlib import Path

from ..errors import UserError
from ..progress import counted
from ..thresholds import APP_CONF
from .argtypes import unit_interval


def add_parser(sub) -> None:
    p = sub.add_parser("demo", help="build Nano, summarise it and run predict on a generated image")
    p.add_argument("--variant", default=None,
                   help="network to build with random weights (default nano; `yolox-edge models` lists them)")
    p.add_argument("--weights", default=None, help="checkpoint to use instead of random weights (it names its variant)")
    p.add_argument("--image", default=None, help="image to run on (default: a generated scene)")
    p.add_argument("--conf", type=unit_interval, default=APP_CONF, help=f"score threshold (default {APP_CONF})")
    p.add_argument("--save", default="demo_pred.jpg",
                   help="annotated output image (default demo_pred.jpg in the current folder, replaced if there)")
    p.set_defaults(func=run)


def run(args) -> int:
    import torch

    from ..data.preprocess import PreprocessConfig, read_image
    from ..data.synthetic import synthetic_scene
    from ..models import count_gflops, count_params, create_model, get_variant
    from ..models.official import default_names
    from ..runtime import ModelInfo, Predictor, load_predictor
    from ..runtime.torch_backend import TorchBackend
    from ..visualize import draw_detections, write_image

    _check_save(args.save, reads=(args.image, args.weights))
    img = read_image(args.image) if args.image else synthetic_scene()  # a wrong path said before the model builds
    torch.manual_seed(0)
    if args.weights:
        pred = load_predictor(args.weights, conf=args.conf)
        model = pred.backend.model
        name = pred.info.name
        has = pred.info.extra.get("variant")
        if args.variant and has != args.variant:
            raise UserError(f"{args.weights}: this checkpoint is {has or 'not a zoo variant'}, not --variant "
                            f"{args.variant}; drop --variant (the checkpoint decides the network)")
    else:
        try:
            v = get_variant(args.variant or "nano")
        except KeyError as e:
            raise UserError(f"--variant: {e.args[0]}") from None
        model = create_model(v.name).eval()
        name = f"yolox_{v.name}"
        info = ModelInfo(name, default_names(80), PreprocessConfig(input_size=(v.input_size,) * 2))
        pred = Predictor(TorchBackend(model), info, conf=args.conf)
    size = pred.info.preprocess.input_size[0]
    print(f"{name}: {count_params(model) / 1e6:.3f} M params, {count_gflops(model, img_size=size):.2f} GFLOPs at {size}"
          f"{'' if args.weights else ' (random weights: pass --weights for real detections)'}")
    t0 = time.perf_counter()
    det = pred.predict(img)
    ms = (time.perf_counter() - t0) * 1e3
    print(f"predict on {'the generated scene' if not args.image else args.image} "
          f"({img.shape[1]}x{img.shape[0]}): {counted(len(det), 'detection')} in {ms:.1f} ms")
    for d in det.to_list(names=pred.class_names)[:20]:
        print(f"  {d['name']:<14} {d['score']:.3f}  {d['box']}")
    existed = Path(args.save).exists()
    write_image(args.save, draw_detections(img, det, names=pred.class_names))
    print(f"annotated image: {args.save}{' (replaced the file there)' if existed else ''}")
    return 0


def _check_save(path: str, reads) -> None:
    """UserError, before any work, when ``--save`` cannot take the annotated picture: a suffix
    OpenCV writes no image for (``--save x.txt`` ended in a cv2.error traceback), or a file the
    command reads (``--save`` on the input photo replaced it)."""
    import cv2

    from .jsonout import refuse_own_file

    suffix = Path(path).suffix or ".jpg"
    if not cv2.haveImageWriter(f"x{suffix}"):
        raise UserError(f"{path}: --save takes an image file name OpenCV can write (.jpg, .png, .bmp, .webp, ...), "
                        f"not {suffix}")
    refuse_own_file(path, reads, flag="--save", what="the annotated picture")
    if Path(path).is_dir():
        raise UserError(f"{path}: --save names a folder; give the picture's file name (e.g. {Path(path) / 'demo_pred.jpg'})")
    from ..errors import file_in_the_way

    blocked = file_in_the_way(path)
    if blocked is not None:  # said now, not after the model built (nothing made on the way)
        raise UserError(f"{path}: {blocked} is a file, not a folder; choose another path for the annotated picture")
