"""Shared test fixtures. Other test modules rely on these names; keep them stable.

Fixtures
- ``refdata`` (session): Path of the shared reference data (``$YOLOX_EDGE_REFDATA`` when
  set, else ``<repo>/../shared/refdata``); the test is skipped, with the reason, when absent.
- ``nano_coco_ckpt`` (session): Path of a yolox_edge checkpoint imported once per session
  from the official ``yolox_nano.onnx`` (through ``yolox-edge import-official``).
- ``to_official_state``: a function ``(model) -> state dict`` in the official YOLOX .pth
  layout (inverse key map and inverse Focus stem permutation), to fake official weights.
- ``randomize_model``: a function ``(model, seed=0) -> model`` (eval mode) with weights and
  BN statistics drawn so that outputs depend strongly on the input (a fresh model's
  outputs barely do, which would let channel-order bugs pass unnoticed).
- ``one_torch_thread``: torch limited to one thread for the test (use it with
  ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``): on the shared 2-core CI box
  OpenMP threads of small ops fight (up to 10x slower).
- ``fsync_log``: records ``os.fsync``, ``os.replace``, ``os.rename`` and ``os.link`` in order
  (``FsyncLog``), for asserting that a write is durable: ``fsync_log.assert_durable(path)``.
  Skips the test on Windows, where a folder cannot be flushed.
- ``run_cli``: a function ``run_cli(*args) -> (code, out, err)`` that calls
  ``yolox_edge.cli.main`` in-process with stdout/stderr captured. Uncaught exceptions
  propagate (so a test sees the traceback); argparse exits become their exit code.

- ``tiny_bench_json`` (session): Path of a real ``bench --json`` result (a tiny 3-class model
  ``tiny.pt`` and its copy ``tiny2.pt``, threads 1 and 2, both modes, 4 runs): read it, never
  write to it (tests edit copies).

Autouse (session): NNCF's hardware-pattern matching is memoized (``tests/nncf_memo.py``: half of
a tiny quantization's time is that one pure function, and the suite quantizes many graphs more
than once); ``YOLOX_EDGE_TEST_NNCF_MEMO=0`` turns it off. ``onnxslim.slim`` is memoized too
(``tests/onnxslim_memo.py``: keyed on the traced graph's bytes, every export still traces);
``YOLOX_EDGE_TEST_SLIM_MEMO=0`` turns it off, ``YOLOX_EDGE_TEST_SLIM_MEMO_REPORT=FILE`` adds a line
of its hits and misses there at the end of the session (a line per xdist worker: each has its memo).

Under pytest-xdist (``-n 2``, the README's test command) each worker's torch gets its share of
the cores (``OMP_NUM_THREADS``, one per worker on 2 cores) unless the variable is already set.

``call_cli`` (what ``run_cli`` returns) and ``find_refdata`` are plain functions for
session-scoped fixtures that cannot use function-scoped ones.
"""
from __future__ import annotations

import contextlib
import io
import os
from pathlib import Path

import pytest
from xdist_workers import share_cores_between_workers

REPO_ROOT = Path(__file__).resolve().parents[1]


# Before any test loads torch: each pytest-xdist worker's share of the cores (xdist_workers.py says why).
share_cores_between_workers()


def find_refdata() -> Path | None:
    """The reference data directory, or None when it is not on this machine."""
    env = os.environ.get("YOLOX_EDGE_REFDATA")
    # An explicit setting wins (set it to a missing folder to run as if there were no refdata).
    c = Path(env) if env else REPO_ROOT.parent / "shared" / "refdata"
    return c if (c / "models" / "yolox_nano.onnx").is_file() else None


def call_cli(*args: str) -> tuple[int, str, str]:
    """Run ``yolox-edge ARGS`` in-process; returns (exit code, stdout, stderr)."""
    from yolox_edge.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main([str(a) for a in args])
        except SystemExit as e:  # argparse usage errors and --help
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    return int(code), out.getvalue(), err.getvalue()


def official_state_dict(model) -> dict:
    """A yolox_edge model's state dict in the official layout: ``backbone.*`` ->
    ``backbone.backbone.*``, ``neck.*`` -> ``backbone.*``, stem input channels un-permuted."""
    import torch

    from yolox_edge.models.blocks import focus_official_to_ours
    from yolox_edge.models.official import STEM_KEY

    out = {}
    for k, v in model.state_dict().items():
        if k == STEM_KEY:
            idx = focus_official_to_ours(torch.arange(v.shape[1]).view(1, -1, 1, 1)).flatten()
            official = torch.empty_like(v)
            official[:, idx] = v  # ours[:, j] = official[:, idx[j]]
            v = official
        if k.startswith("backbone."):
            k = "backbone.backbone." + k[len("backbone."):]
        elif k.startswith("neck."):
            k = "backbone." + k[len("neck."):]
        out[k] = v
    return out


def randomize(model, seed: int = 0):
    """Input-sensitive random weights: unit-gain normal convs, non-trivial BatchNorm."""
    import torch
    from torch import nn

    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.Conv2d):
                m.weight.copy_(torch.randn(m.weight.shape, generator=g) / m.weight[0].numel() ** 0.5)
                if m.bias is not None:
                    m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.1)
            elif isinstance(m, nn.BatchNorm2d):
                m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g) * 0.2)
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)
                m.weight.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)
                m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.1)
    return model.eval()


@pytest.fixture(scope="session")
def randomize_model():
    """``randomize_model(model, seed=0) -> model``: see ``randomize``."""
    return randomize


@pytest.fixture(scope="session")
def to_official_state():
    """``to_official_state(model) -> dict``: see ``official_state_dict``."""
    return official_state_dict


@pytest.fixture(scope="session")
def refdata() -> Path:
    """Path to ../shared/refdata (or $YOLOX_EDGE_REFDATA); skips the test when absent."""
    p = find_refdata()
    if p is None:
        where = os.environ.get("YOLOX_EDGE_REFDATA") or REPO_ROOT.parent / "shared" / "refdata"
        pytest.skip(f"reference data not found at {where} (set YOLOX_EDGE_REFDATA or place it at ../shared/refdata)")
    return p


@pytest.fixture(scope="session")
def nano_coco_ckpt(refdata: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The official COCO YOLOX-Nano ONNX imported once per session into a checkpoint."""
    out = tmp_path_factory.mktemp("nano_coco") / "nano_coco.pt"
    code, stdout, stderr = call_cli("import-official", refdata / "models" / "yolox_nano.onnx",
                                    "--variant", "nano", "--out", out)
    assert code == 0, f"import-official failed ({code}): {stderr}"
    return out


@pytest.fixture(scope="session")
def tiny_bench_json(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``yolox-edge bench tiny.pt tiny2.pt --threads 1,2 --runs 4 --json``, run once (about 2 s) on
    tests/bench's tiny model (a 3-class ``test`` variant at 64 x 64) and a copy of it."""
    import shutil

    import torch

    from yolox_edge.data.preprocess import PreprocessConfig
    from yolox_edge.engine.checkpoint import save_checkpoint
    from yolox_edge.models import create_model

    d = tmp_path_factory.mktemp("bench_json")
    torch.manual_seed(0)
    save_checkpoint(d / "tiny.pt", create_model("test", num_classes=3), class_names=["a", "b", "c"],
                    preprocess=PreprocessConfig(input_size=(64, 64)))
    shutil.copy(d / "tiny.pt", d / "tiny2.pt")
    out = d / "bench.json"
    code, _stdout, stderr = call_cli("bench", d / "tiny.pt", d / "tiny2.pt", "--threads", "1,2", "--warmup", "1",
                                     "--runs", "4", "--no-rss", "--no-progress", "--json", out)
    assert code == 0, f"bench failed ({code}): {stderr}"
    return out


class FsyncLog:
    """What ``os.fsync`` flushed and what renames and links named, in call order.

    A flush is recorded by the flushed file's identity (device, inode), which a rename keeps, and
    its size then; ``path`` (from /proc/self/fd on Linux) only makes failures readable. Its
    ``events``: ``("sync", identity, size, path)`` and ``("name", identity, dst)``."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.events: list[tuple] = []
        real_fsync = os.fsync

        def fsync(fd: int) -> None:
            st = os.fstat(fd)
            try:
                where = os.readlink(f"/proc/self/fd/{fd}")
            except OSError:
                where = f"fd {fd}"
            real_fsync(fd)
            self.events.append(("sync", (st.st_dev, st.st_ino), st.st_size, where))

        monkeypatch.setattr(os, "fsync", fsync)
        for name in ("replace", "rename", "link"):
            monkeypatch.setattr(os, name, self._naming(getattr(os, name)))

    def _naming(self, real):
        def call(src, dst, *a, **k):
            real(src, dst, *a, **k)
            st = os.stat(dst)
            self.events.append(("name", (st.st_dev, st.st_ino), os.path.abspath(dst)))
        return call

    @staticmethod
    def _identity(path: Path) -> tuple[int, int]:
        st = os.stat(path)
        return st.st_dev, st.st_ino

    def named(self, path: str | Path) -> int:
        """Index of the event that gave ``path`` its present file or folder (AssertionError if none)."""
        ident, dst = self._identity(Path(path)), os.path.abspath(path)
        hits = [i for i, e in enumerate(self.events) if e[0] == "name" and e[1] == ident and e[2] == dst]
        assert hits, f"{path}: not put in place by a recorded rename or link: {self.events}"
        return hits[-1]

    def synced(self, path: str | Path, start: int = 0, stop: int | None = None) -> bool:
        """Whether ``path``'s present file (with its present size: after its data were written)
        or folder was flushed among ``events[start:stop]``."""
        st = os.stat(path)
        ident = (st.st_dev, st.st_ino)
        return any(e[0] == "sync" and e[1] == ident and (os.path.isdir(path) or e[2] == st.st_size)
                   for e in self.events[start:stop])

    def assert_durable(self, path: str | Path) -> int:
        """``path`` was flushed whole before the rename (or link) that named it, and its folder
        after: both its bytes and its name survive a power loss. Returns the rename's index."""
        path = Path(path)
        i = self.named(path)
        assert self.synced(path, 0, i), f"{path}: not flushed before its rename: {self.events}"
        assert self.synced(path.parent, i + 1), f"{path.parent}: not flushed after {path.name}'s rename: {self.events}"
        return i


@pytest.fixture
def fsync_log(monkeypatch: pytest.MonkeyPatch) -> FsyncLog:
    """An ``FsyncLog`` recording from now to the end of the test."""
    if os.name == "nt":
        pytest.skip("Windows cannot flush a folder")
    return FsyncLog(monkeypatch)


@pytest.fixture
def run_cli():
    """``run_cli(*args) -> (code, stdout, stderr)`` through ``yolox_edge.cli.main``."""
    return call_cli


@pytest.fixture
def one_torch_thread():
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _installed(memo_module):
    """Yield ``memo_module.install``'s memo for the session (None when its variable turns it off)."""
    if not memo_module.enabled():
        yield None
        return
    with pytest.MonkeyPatch.context() as mp:
        yield memo_module.install(mp)


@pytest.fixture(scope="session", autouse=True)
def _nncf_pattern_memo():
    """NNCF's pattern matching memoized for the session (tests/nncf_memo.py says why it is safe);
    YOLOX_EDGE_TEST_NNCF_MEMO=0 runs it unmemoized."""
    import nncf_memo

    yield from _installed(nncf_memo)


@pytest.fixture(scope="session", autouse=True)
def _onnxslim_memo():
    """onnxslim.slim memoized for the session (tests/onnxslim_memo.py says why it is safe);
    YOLOX_EDGE_TEST_SLIM_MEMO=0 runs it unmemoized."""
    import onnxslim_memo

    for cached in _installed(onnxslim_memo):
        yield cached
        report = os.environ.get("YOLOX_EDGE_TEST_SLIM_MEMO_REPORT")
        if cached is not None and report:
            with open(report, "a") as f:  # a line per process: each xdist worker has its own memo
                f.write(f"{cached.hits} {cached.misses}\n")


def _no_torch_sigchld_handler() -> None:
    """Keep torch's DataLoader from installing its Python SIGCHLD handler in the test process.

    Installed by the first DataLoader with workers, it stays for the session; a child that
    exited later (a worker, pnnx, a killed training run) then ran Python's C signal handler,
    whose first call resolves symbols lazily (``_dl_runtime_resolve_xsavec``, a large XSAVE
    frame) on faulthandler's alternate signal stack, and pytest died with SIGSEGV (seen under
    gdb, intermittently, in different tests). torch still notices dead workers through its
    own status checks; the product's children run under ``subprocesses.default_sigchld``.
    """
    from torch.utils.data._utils import signal_handling

    signal_handling._SIGCHLD_handler_set = True


_no_torch_sigchld_handler()
