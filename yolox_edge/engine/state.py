"""Run state that must survive a checkpoint read with ``torch.load(weights_only=True)``."""
from __future__ import annotations

import random

import numpy as np
import torch


def capture_rng() -> dict:
    """Python, numpy and torch RNG states as tensors/lists (weights_only-safe)."""
    _, py_state, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    st = {"python": list(py_state), "python_gauss": gauss,
          "numpy": torch.from_numpy(keys.astype(np.int64)), "numpy_pos": int(pos),
          "numpy_gauss": [int(has_gauss), float(cached)], "torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        st["cuda"] = torch.cuda.get_rng_state()
    return st


def restore_rng(st: dict, rank: int = 0) -> None:
    """Inverse of ``capture_rng`` (rank 0's state; other ranks offset so they stay distinct)."""
    random.setstate((3, tuple(int(v) for v in st["python"]), st.get("python_gauss")))
    np.random.set_state(("MT19937", st["numpy"].numpy().astype(np.uint32), int(st["numpy_pos"]),
                         int(st["numpy_gauss"][0]), float(st["numpy_gauss"][1])))
    torch.set_rng_state(st["torch"])
    if "cuda" in st and torch.cuda.is_available():
        torch.cuda.set_rng_state(st["cuda"])
    if rank:
        random.seed(random.random() + rank)
        torch.manual_seed(int(torch.randint(0, 2**31, (1,)).item()) + rank)


def skip_count(dataset) -> int:
    """Bad samples the dataset replaced so far (an int attribute or a shared multiprocessing Value)."""
    s = getattr(dataset, "skipped", 0)
    if callable(s):
        s = s()
    return int(getattr(s, "value", s) or 0)
