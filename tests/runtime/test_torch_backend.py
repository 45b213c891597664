"""The torch backend's ``threads``: each predictor runs on its own count, the caller keeps theirs."""
from __future__ import annotations

import numpy as np
import torch

from yolox_edge.runtime import load_predictor


def test_threads_hold_per_predictor_and_do_not_leak(tiny_ckpt) -> None:
    """``load_predictor(ckpt, threads=1)`` set torch's process-wide count at load time: a second
    predictor with threads=2 silently moved the first one to 2, and training after ran on 1."""
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(3)
        one, two = load_predictor(tiny_ckpt, threads=1), load_predictor(tiny_ckpt, threads=2)
        assert torch.get_num_threads() == 3  # loading leaves the caller's count alone
        seen = []
        for pred in (one, two, one):
            forward = pred.backend.model.forward
            pred.backend.model.forward = lambda x, _f=forward: (seen.append(torch.get_num_threads()), _f(x))[1]
            img = np.full((64, 64, 3), 127, np.uint8)
            pred.predict(img)
            pred.backend.model.forward = forward
        assert seen == [1, 2, 1] and torch.get_num_threads() == 3
    finally:
        torch.set_num_threads(before)
