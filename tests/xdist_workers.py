"""The test suite's set-up for pytest-xdist (imported by basename by conftest.py: tests are not a
package, and ``conftest`` names several modules)."""
from __future__ import annotations

import os
import sys


def share_cores_between_workers() -> None:
    """Under pytest-xdist (the README's ``-n 2``), give each worker its share of the cores.

    Two torch processes whose OpenMP pools each span every core spin against each other (30-80x
    slower, measured on 2 cores), so each worker gets cores // workers threads, one on the 2-core
    CI box. Set in the environment before torch loads, so the CLI subprocesses that tests start
    inherit it; an OMP_NUM_THREADS the user set wins."""
    workers = os.environ.get("PYTEST_XDIST_WORKER_COUNT")
    if not workers or "OMP_NUM_THREADS" in os.environ:
        return
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    os.environ["OMP_NUM_THREADS"] = str(max(1, cores // max(1, int(workers))))
    if "torch" in sys.modules:  # a plugin loaded it first: the variable came too late for its pool
        sys.modules["torch"].set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
