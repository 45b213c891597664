import math

import pytest

from yolox_edge.engine.schedule import WarmCosSchedule, clamp_no_aug_epochs, yolox_warm_cos_lr


def test_warmup_is_quadratic_from_start():
    s = WarmCosSchedule(lr=0.01, epochs=10, iters_per_epoch=10, warmup_epochs=2, warmup_lr_start=0.001,
                        no_aug_epochs=2)
    assert s(0) == pytest.approx(0.001)
    # halfway through warm-up: start + (lr - start) * 0.25
    assert s(10) == pytest.approx(0.001 + 0.009 * 0.25)
    assert s(20) == pytest.approx(0.01)


def test_cosine_then_constant_min_in_no_aug_stage():
    s = WarmCosSchedule(lr=0.02, epochs=10, iters_per_epoch=10, warmup_epochs=2, no_aug_epochs=2)
    # cosine spans iterations 20..80; its midpoint is the mean of lr and min_lr
    assert s(50) == pytest.approx(0.5 * (0.02 + 0.001))
    assert s(79) > 0.001
    for it in (80, 85, 99):
        assert s(it) == pytest.approx(0.02 * 0.05)
    values = [s(i) for i in range(20, 81)]
    assert all(a >= b for a, b in zip(values, values[1:]))


def test_formula_matches_official_expression():
    lr, r, total, wu, start, noaug = 0.01, 0.05, 300, 15, 0.0, 45
    for it in (0, 7, 15, 16, 100, 254, 255, 299):
        min_lr = lr * r
        if it <= wu:
            ref = (lr - start) * pow(it / float(wu), 2) + start
        elif it >= total - noaug:
            ref = min_lr
        else:
            ref = min_lr + 0.5 * (lr - min_lr) * (1.0 + math.cos(math.pi * (it - wu) / (total - wu - noaug)))
        assert yolox_warm_cos_lr(lr, r, total, wu, start, noaug, it) == pytest.approx(ref)


def test_no_aug_clamp_short_runs():
    assert clamp_no_aug_epochs(15, 300, 5) == 15
    assert clamp_no_aug_epochs(15, 12, 1) == 5  # at most half of what follows warm-up
    assert clamp_no_aug_epochs(15, 3, 1) == 1
    assert clamp_no_aug_epochs(0, 30, 1) == 0


def test_a_schedule_that_ends_early_in_its_warm_up_is_named():
    """A 1-epoch smoke run on 32 images made one optimizer step, at lr 0 (the warm-up's start), and
    ended 'done: best AP ...' with best.pt holding the starting weights; nothing said so."""
    from yolox_edge.engine.trainer import warmup_only_note

    one_step = WarmCosSchedule(0.01, epochs=1, iters_per_epoch=1, warmup_epochs=5, no_aug_epochs=0)
    note = warmup_only_note(one_step)
    assert note is not None and note.startswith("note: this schedule's 1 optimizer step(s) all fall early in its "
                                                "warm-up (lr at most 0, against 0.01 after it)")
    assert warmup_only_note(WarmCosSchedule(0.01, epochs=1, iters_per_epoch=4, warmup_epochs=5, no_aug_epochs=0))
    # a schedule that gets past a tenth of its rate (or has no warm-up) trains: no note
    assert warmup_only_note(WarmCosSchedule(0.01, epochs=3, iters_per_epoch=1, warmup_epochs=1, no_aug_epochs=1)) is None
    assert warmup_only_note(WarmCosSchedule(0.01, epochs=1, iters_per_epoch=1, warmup_epochs=0, no_aug_epochs=0)) is None
    assert warmup_only_note(WarmCosSchedule(0.01, epochs=300, iters_per_epoch=1000)) is None
