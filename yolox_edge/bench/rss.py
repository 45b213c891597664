"""Peak RSS of one artifact in a fresh process:
``python -m yolox_edge.bench.rss ARTIFACT THREADS RUNS [--image IMG] [--baseline | --img-size WxH
[--precision-hint H]]``."""
from __future__ import annotations

import json
import resource
import sys


def peak_rss_kib() -> int:
    """This process's peak resident memory in KiB.

    VmHWM is reset by exec; ru_maxrss on Linux keeps the parent's high-water mark across
    fork + exec, so a child started by a large process would report the parent's peak.
    """
    try:
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kib // 1024 if sys.platform == "darwin" else kib  # macOS reports bytes


def main(argv: list[str]) -> int:
    artifact, threads, runs = argv[0], int(argv[1]), int(argv[2])

    def option(name: str) -> str | None:
        return argv[argv.index(name) + 1] if name in argv else None

    if "--baseline" in argv:
        from .baseline import baseline_predictor
        pred = baseline_predictor(artifact, threads=threads, count_variant=False)  # no torch in the measurement
    else:
        from ..runtime.loader import load_predictor

        size = option("--img-size")  # WxH, as the bench row ran it
        w, h = (int(v) for v in size.split("x")) if size else (None, None)
        pred = load_predictor(artifact, threads=threads, precision_hint=option("--precision-hint"),
                              img_size=(h, w) if size else None)
    if option("--image"):  # the bench's own image: a large photo's decode and letterbox buffers count
        from ..data.preprocess import read_image

        img = read_image(option("--image"))
    else:
        from ..data.synthetic import synthetic_scene

        img = synthetic_scene()
    for _ in range(runs):
        pred.predict_images([img])
    print(json.dumps({"peak_rss_mb": round(peak_rss_kib() / 1024, 1)}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
