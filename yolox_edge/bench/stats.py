"""Latency statistics in milliseconds."""
from __future__ import annotations

import numpy as np


def latency_stats(seconds: list[float]) -> dict[str, float]:
    """min / p50 / p90 / p99 / mean / std in ms, and images per second from the mean."""
    ms = np.asarray(seconds, np.float64) * 1e3
    if ms.size == 0:
        raise ValueError("no timings")
    q = np.percentile(ms, [50, 90, 99])
    mean = float(ms.mean())
    return {"min": round(float(ms.min()), 3), "p50": round(float(q[0]), 3), "p90": round(float(q[1]), 3),
            "p99": round(float(q[2]), 3), "mean": round(mean, 3), "std": round(float(ms.std()), 3),
            "ips": round(1e3 / mean, 2), "n": int(ms.size)}


def drift_pct(seconds: list[float]) -> float | None:
    """How much slower (+) or faster (-) the second half of a row's runs was than the first, in
    % of the first half's median: heat or other load arriving mid-run. None under 4 runs."""
    if len(seconds) < 4:
        return None
    half = len(seconds) // 2
    first, second = np.median(seconds[:half]), np.median(seconds[-half:])
    return round(float((second - first) / first * 100), 1)
