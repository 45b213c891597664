"""Time the training data pipeline per sample: ``python -m yolox_edge.data.augbench SPEC``.

Reports CPU time per sample (one thread; what a DataLoader worker spends, independent of other
load on the machine) and wall time, for Mosaic alone and the Nano / S-and-up presets, with and
without ``cache_images``.
"""
from __future__ import annotations

import argparse
import time

import cv2
import numpy as np
import torch

from .dataset import DetectionDataset
from .sample import Sample
from .spec import read_split
from .transforms import AUG_PRESETS, AugConfig


def time_pipeline(samples: list[Sample], img_size: int, aug: AugConfig | None, n: int,
                  cache_images: bool) -> dict[str, float]:
    """Mean CPU and median wall milliseconds per ``DetectionDataset.__getitem__``."""
    ds = DetectionDataset(samples, img_size=img_size, aug=aug, cache_images=cache_images)
    ds[0]
    cpu, wall = [], []
    for i in range(n):
        t, c = time.perf_counter(), time.process_time()
        ds[i % len(ds)]
        cpu.append(time.process_time() - c)
        wall.append(time.perf_counter() - t)
    return {"cpu_ms": 1000 * float(np.mean(cpu)), "wall_ms": 1000 * float(np.median(wall))}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("spec")
    p.add_argument("--split", default="train")
    p.add_argument("--img-size", type=int, default=416)
    p.add_argument("-n", type=int, default=160)
    args = p.parse_args(argv)
    cv2.setNumThreads(1)  # one worker's view; DataLoader workers are the parallelism
    torch.set_num_threads(1)
    samples = read_split(args.spec, args.split).samples
    configs = {"mosaic only": AugConfig(mosaic_prob=1.0, mixup_prob=0.0), "nano preset": AUG_PRESETS["nano"],
               "S-and-up preset (mosaic+mixup)": AUG_PRESETS["large"], "no aug (letterbox)": None}
    print(f"{len(samples)} images of {args.spec}:{args.split}, input {args.img_size}, {args.n} samples each")
    for name, aug in configs.items():
        for cache in (False, True):
            r = time_pipeline(samples, args.img_size, aug, args.n, cache)
            print(f"  {name:32s} cache_images={cache!s:5s}  cpu {r['cpu_ms']:5.1f} ms/sample  "
                  f"wall {r['wall_ms']:5.1f} ms/sample")


if __name__ == "__main__":
    main()
