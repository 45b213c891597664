"""What the exported-model backends share: output-name mapping and the batch loop."""
from __future__ import annotations

from typing import Callable

import numpy as np

from ..errors import UserError


def output_blobs(meta: dict) -> dict[str, str]:
    """Contract output name (boxes/scores/labels/raw) -> the backend's own tensor name."""
    return {o["name"]: o.get("blob", o["name"]) for o in meta["outputs"]}


def fixed_input(meta: dict) -> tuple[int, int]:
    """(height, width) the graph was exported for (grids are baked in at export)."""
    return tuple(meta["input"]["shape"][2:4])


def check_graph_input(path, meta: dict, names: set[str], shape: list) -> None:
    """UserError when the graph's input is not the one metadata.json describes (its name, or a
    fixed channel/height/width that differs): an edited metadata.json would otherwise end in a
    runtime traceback, or in boxes decoded for another grid."""
    want = meta["input"]
    if want["name"] not in names:
        raise UserError(f"{path}: the graph's input is {', '.join(sorted(map(repr, names)))} but metadata.json "
                        f"names {want['name']!r}; re-export the model")
    for axis, got, exp in zip(("channels", "height", "width"), shape[1:4], want["shape"][1:4]):
        if isinstance(got, int) and isinstance(exp, int) and got != exp:
            raise UserError(f"{path}: the graph's input {axis} is {got} but metadata.json says {exp} "
                            f"(input shape {want['shape']}); metadata.json does not describe this graph, re-export it")


def check_graph_outputs(path, blobs: dict[str, str], names: set[str]) -> None:
    """UserError when an output metadata.json names (``output_blobs``) is not among the graph's
    ``names``: an edited blob name ended in onnxruntime's InvalidArgument or ncnn's code -100."""
    for name, blob in blobs.items():
        if blob not in names:
            raise UserError(f"{path}: metadata.json's output {name!r} is the graph's {blob!r}, which the graph does "
                            f"not have (it has {', '.join(sorted(map(repr, names)))}); re-export the model")


def static_batch(meta: dict) -> bool:
    """True when the graph takes exactly one image per call."""
    return meta["input"]["shape"][0] == 1


def run_batched(run_one: Callable[[np.ndarray], dict[str, np.ndarray]], batch: np.ndarray,
                static: bool) -> dict[str, np.ndarray]:
    """Run a whole batch, or image by image when the graph has batch 1; concatenate per output."""
    if not static or len(batch) == 1:
        return run_one(batch)
    parts = [run_one(batch[i:i + 1]) for i in range(len(batch))]
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def precision_label(meta: dict, inference: str) -> str:
    """What runs in what precision, e.g. 'int8 weights, int8 layers + f32 inference'.

    INT8 artifacts run their quantized convs in int8; the runtime hint governs the float layers.
    An IR whose SiLU is the rational approximation says so ('..., rational SiLU').
    """
    mixed = "int8 layers + " if meta["precision"] == "int8" else ""
    silu = ", rational SiLU" if meta.get("graph", {}).get("silu") == "rational" else ""
    return f"{meta['precision']} weights, {mixed}{inference} inference{silu}"


def as_host(a: np.ndarray) -> np.ndarray:
    """Float outputs as float32 (fp16 graphs), integer labels left as they are."""
    a = np.asarray(a)
    return a.astype(np.float32) if a.dtype == np.float16 else a
