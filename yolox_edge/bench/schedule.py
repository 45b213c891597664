"""How the bench shares one machine between its rows: turns, settling, switch-in calls.

Rows are interleaved so that a drifting machine (heat, a neighbour) does not favour one of
them, but interleaving runtimes has costs of its own that a user running one model never
pays: after a call, onnxruntime's worker threads busy-wait for ~40 ms (measured on a 2-core VM
at 2 threads; OpenMP's in ncnn/torch ~5 ms, OpenVINO's ~1 ms) and hold a core the next row
needs; the row's own pool is asleep and its weights are out of cache. So each row gets a
*turn*: wait until the process is idle, make untimed switch-in calls, then time several
calls back to back, which is the steady state an app running the model sees.
"""
from __future__ import annotations

import time

SWITCH_IN_CALLS = 2
RUNS_PER_TURN = 10
SETTLE_SLICE_S = 0.005
SETTLE_MAX_S = 0.25


def settle(*, slice_s: float = SETTLE_SLICE_S, max_s: float = SETTLE_MAX_S) -> float:
    """Sleep until this process stops burning CPU (runtime threads done busy-waiting), or max_s.

    Returns the seconds waited. A slice counts as idle when the process used under a fifth of it.
    """
    t0 = time.perf_counter()
    while True:
        c0 = time.process_time()
        time.sleep(slice_s)
        waited = time.perf_counter() - t0
        if time.process_time() - c0 < 0.2 * slice_s or waited >= max_s:
            return waited


def turn_sizes(runs: int, per_turn: int) -> list[int]:
    """Timed runs per row in each round: ``per_turn`` each, the last round the remainder."""
    if runs < 1 or per_turn < 1:
        from ..errors import BadArgument

        raise BadArgument(f"runs {runs}, runs_per_turn {per_turn}: both must be at least 1")
    full, rest = divmod(runs, per_turn)
    return [per_turn] * full + ([rest] if rest else [])
