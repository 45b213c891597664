"""``convert_checkpoint``: a trained checkpoint -> the same network with another activation
(e.g. nano -> nano_hswish), fitted block by block to the original without labels."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..progress import deprecated_keywords
from .reconstruct import BlockResult


# What the note on a busy CPU quotes (tiny test model, 2-core VM, two `yes` processes beside it).
BUSY_MEASURED = "the fit ran 5x slower at 2 threads and 1.5x at 1, measured on 2 cores"


@dataclass
class ConvertResult:
    """What ``convert_checkpoint`` wrote and how close each block came to the teacher: ``path``
    (the checkpoint), ``variant`` (the student's), ``blocks`` (per block: name, NMSE to the teacher
    before and after, kept, seconds) and ``source`` (the checkpoint's record of the conversion)."""

    path: Path
    variant: str
    blocks: list[BlockResult]
    source: dict  # the checkpoint's ``source`` record (method, calibration set, settings)

    def to_dict(self) -> dict:
        """What ``yolox-edge convert --log`` writes."""
        return {"source": self.source, "blocks": [b.to_dict() for b in self.blocks]}


@deprecated_keywords("to", "calib", "out")  # convert_checkpoint(model, to, calib, out), the earlier form
def convert_checkpoint(model: str | Path, *, to: str, calib: str | Path, out: str | Path, force: bool = False,
                       granularity: str = "block", steps: int = 500, lr: float = 2e-3, batch: int = 8,
                       flip: bool = True, seed: int = 0, threads: int | None = None,
                       progress: bool = True, log: Callable[[str], None] | None = print) -> ConvertResult:
    """``yolox-edge convert``: give the checkpoint ``model`` the activation of variant ``to`` (same
    tensors), fitting each block to the original's outputs on the calibration set ``calib`` (no
    labels); writes the checkpoint ``out`` (refused when it exists, unless ``force``).

    ``threads`` sets torch's CPU threads for the fit only; the caller's count and random stream
    are left as they were. ``log`` receives the one line said after the fit when other processes
    took more than a quarter of the cores torch's threads ran on (None: not said). ``to``, ``calib``
    and ``out`` were positional: that still works, with a DeprecationWarning."""
    import torch

    from ..data.preprocess import PreprocessConfig
    from ..errors import UserError, in_python, refuse_overwrite
    from ..fileio import require_writable
    from ..models.zoo import get_variant
    from ..quantize.calib import load_calibration_set
    from ..threads import busy_cpu_line, busy_watch, cpu_load_since, torch_thread_count, torch_threads
    from .checkpoint import checkpoint_category_ids, load_model, save_checkpoint
    from .reconstruct import convert_activation

    # Written after minutes of fitting: a path that cannot take them fails now.
    out = require_writable(refuse_overwrite(out, force), "checkpoint")
    target = get_variant(to).name  # an unknown name is a UserError (UnknownVariant)
    # Building the models draws from torch's generator and the fit seeds it: the caller's random
    # stream stays where it was.
    with torch.random.fork_rng():
        teacher, ckpt = load_model(model)
        pre = PreprocessConfig.from_dict(ckpt["preprocess"])  # the student keeps the teacher's preprocessing
        # convert fits at the checkpoint's own size: no --img-size to offer (export and quantize take one after)
        cal = load_calibration_set(calib, img_size=pre.input_size, other_size=False)
        try:
            with torch_threads(threads):
                load_start = busy_watch() if log else None
                student, blocks = convert_activation(teacher, target, torch.from_numpy(cal.data),
                                                     granularity=granularity, steps=steps, lr=lr, batch=batch,
                                                     flip=flip, seed=seed, progress=progress)
                busy = busy_cpu_line(cpu_load_since(load_start), torch_thread_count(), during="while converting",
                                     measured=BUSY_MEASURED, fix=in_python("--threads 1", "threads=1"))
        except UserError as e:  # the fit does not know the file names; the user needs them
            raise UserError(f"{model} -> {target} with {calib}: {e}") from None
        if busy and log:
            log(busy)
    source = {"kind": "converted", "from": str(model), "from_variant": teacher.variant,
              "method": f"label-free {granularity} reconstruction", "calibration": cal.describe(),
              "steps": steps, "lr": lr, "flip": flip}
    # BN statistics came with the teacher's weights, so bn_folded carries over
    path = save_checkpoint(out, student, class_names=ckpt["class_names"], preprocess=pre, source=source,
                           bn_folded=ckpt.get("bn_folded", False), category_ids=checkpoint_category_ids(ckpt, model))
    return ConvertResult(path, target, blocks, source)
