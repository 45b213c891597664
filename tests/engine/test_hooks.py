"""Trainer hooks: the note on a CPU shared with other work after the first epoch."""
from __future__ import annotations

import pytest

from yolox_edge.config import recipe_from_dict
from yolox_edge.engine.hooks import BUSY_CPU_PCT, busy_cpu_note
from yolox_edge.engine.trainer import Trainer

NOTE = "note: other processes used"


def _load(pct: float, cores: int = 2) -> dict:
    return {"window_s": 3.0, "cpus": list(range(cores)), "other_pct": pct, "steal_pct": 0.0}


def test_busy_cpu_note_counts_only_the_cores_the_threads_need() -> None:
    line = busy_cpu_note(_load(63.0), threads=2, epoch=0)
    assert line == ("note: other processes used 63% of the 2 cores during epoch 1; beside other work epochs took "
                    "3-6x as long (measured on 2 cores): try --set train.threads=1 (machine=['train.threads=1'] in "
                    "Python) or OMP_WAIT_POLICY=PASSIVE in the environment (README: 'On a CPU shared with other work')")
    assert busy_cpu_note(_load(BUSY_CPU_PCT), threads=2, epoch=0) is None  # at the threshold: not yet
    assert busy_cpu_note(None, threads=2, epoch=0) is None  # no reading (not Linux, a window under a tick)
    assert busy_cpu_note(_load(90.0), threads=1, epoch=0) is None  # one thread spins for no other
    # 8 cores, 4 threads: 3 cores' worth of other work fits in the 4 the threads leave free
    assert busy_cpu_note(_load(37.5, cores=8), threads=4, epoch=0) is None
    assert "75% of the 8 cores during epoch 3" in busy_cpu_note(_load(75.0, cores=8), threads=4, epoch=2)


def _tiny_recipe(epochs: int, threads: int | None):
    return recipe_from_dict({"model": {"variant": "test", "input_size": 64}, "data": {"workers": 0},
                             "aug": {"mosaic_prob": 0.0, "mixup_prob": 0.0},
                             "train": {"epochs": epochs, "batch": 4, "warmup_epochs": 0, "no_aug_epochs": 0,
                                       "eval_interval": 5, "multiscale_range": 0, "threads": threads,
                                       "device": "cpu"}})


@pytest.mark.parametrize("threads, omp, pct, said", [(None, None, 63.0, True), (None, None, 10.0, False),
                                                     (1, None, 63.0, False), (None, "PASSIVE", 63.0, False)])
def test_training_says_once_when_other_work_took_its_cores(synthetic_coco, tmp_path, monkeypatch,
                                                           threads, omp, pct, said) -> None:
    """The load reading is injected: busy -> the line once, after epoch 1's; quiet -> none; a user who
    already set train.threads=1 or OMP_WAIT_POLICY -> none, and nothing measured. Torch runs one
    thread here (the engine tests' fixture: two fight the rest of a test run) and the hook is told
    it has two."""
    from yolox_edge.bench import hostload
    from yolox_edge import threads as torch_cpu

    monkeypatch.setattr(torch_cpu, "torch_thread_count", lambda: 2)  # the hook asks it (busy_watch too)
    reads: list[str] = []
    monkeypatch.setattr(hostload, "sample", lambda *a, **k: reads.append("sample") or object())
    monkeypatch.setattr(hostload, "host_load", lambda start, end, **k: _load(pct))
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    if omp:
        monkeypatch.setenv("OMP_WAIT_POLICY", omp)
    msgs: list[str] = []
    Trainer(_tiny_recipe(2, threads), data=synthetic_coco(4), out=tmp_path / "run", progress=False,
            log=msgs.append).train()
    notes = [i for i, m in enumerate(msgs) if m.startswith(NOTE)]
    if said:
        assert len(notes) == 1 and msgs[notes[0] - 1].startswith("epoch 1/2"), msgs
        assert "63% of the 2 cores during epoch 1" in msgs[notes[0]] and len(reads) == 2
    else:
        assert notes == [], msgs
        assert reads == ([] if threads == 1 or omp else ["sample", "sample"])


def test_a_failing_load_reading_never_stops_training(synthetic_coco, tmp_path, monkeypatch) -> None:
    from yolox_edge.bench import hostload
    from yolox_edge import threads as torch_cpu

    def broken(*a, **k):
        raise RuntimeError("no /proc here")

    monkeypatch.setattr(hostload, "sample", broken)
    monkeypatch.setattr(torch_cpu, "torch_thread_count", lambda: 2)  # the hook asks it (busy_watch too)
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    msgs: list[str] = []
    res = Trainer(_tiny_recipe(1, None), data=synthetic_coco(4), out=tmp_path / "run", progress=False,
                  log=msgs.append).train()
    assert res.epochs == 1 and not any(m.startswith(NOTE) for m in msgs)


def test_a_trainer_inside_a_longer_run_leaves_the_note_to_it(synthetic_coco, tmp_path, monkeypatch) -> None:
    """``busy_cpu_note = False`` (QAT's trainer: quantize says it for the whole run, with its own flag):
    no line and nothing measured however busy the cores were."""
    from yolox_edge.bench import hostload
    from yolox_edge import threads as torch_cpu
    from yolox_edge.quantize.qat import _make_trainer

    assert Trainer.busy_cpu_note and not _make_trainer(None).busy_cpu_note
    reads: list[str] = []
    monkeypatch.setattr(torch_cpu, "torch_thread_count", lambda: 2)  # the hook asks it (busy_watch too)
    monkeypatch.setattr(hostload, "sample", lambda *a, **k: reads.append("sample") or object())
    monkeypatch.setattr(hostload, "host_load", lambda start, end, **k: _load(90.0))
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)

    class Inner(Trainer):
        busy_cpu_note = False

    msgs: list[str] = []
    Inner(_tiny_recipe(1, None), data=synthetic_coco(4), out=tmp_path / "run", progress=False, log=msgs.append).train()
    assert not any(m.startswith(NOTE) for m in msgs) and reads == [], msgs

