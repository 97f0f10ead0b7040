"""Schedules are pure functions of the step with the documented shape."""

import math

import pytest
from hypothesis import given, strategies as st

from lowbit.train.recipe import ScheduleConfig
from lowbit.train.schedule import linear_ramp, lr_at


def test_warmup_reaches_base_lr_then_cosine_ends_at_final():
    cfg = ScheduleConfig(kind="cosine", warmup_epochs=2, final_lr_ratio=0.1)
    lrs = [lr_at(s, 100, 10, 0.5, cfg) for s in range(100)]
    assert lrs[0] == pytest.approx(0.5 / 20) and lrs[19] == pytest.approx(0.5)
    assert all(a >= b for a, b in zip(lrs[19:], lrs[20:]))  # non-increasing after warm-up
    assert lrs[-1] == pytest.approx(0.05, rel=0.05)


def test_step_schedule_drops_at_milestones():
    cfg = ScheduleConfig(kind="step", milestones=(0.5, 0.75), gamma=0.1)
    assert lr_at(0, 100, 10, 1.0, cfg) == 1.0
    assert lr_at(51, 100, 10, 1.0, cfg) == pytest.approx(0.1)
    assert lr_at(80, 100, 10, 1.0, cfg) == pytest.approx(0.01)


@given(st.integers(0, 999), st.sampled_from(["cosine", "linear", "step", "constant"]))
def test_lr_is_finite_and_within_base(step, kind):
    cfg = ScheduleConfig(kind=kind, warmup_epochs=1)
    lr = lr_at(step, 1000, 50, 0.1, cfg)
    assert math.isfinite(lr) and 0 <= lr <= 0.1 + 1e-12


def test_linear_ramp():
    assert linear_ramp(0, 10, 10, 0.0, 1.0) == 0.0
    assert linear_ramp(15, 10, 10, 0.0, 1.0) == 0.5
    assert linear_ramp(50, 10, 10, 0.0, 1.0) == 1.0


def test_cycles_restart_the_decay_every_cycle_epochs():
    cfg = ScheduleConfig(kind="cosine", warmup_epochs=1, cycle_epochs=2)
    lrs = [lr_at(s, 70, 10, 1.0, cfg) for s in range(70)]
    assert lrs[9] == pytest.approx(1.0)  # end of warm-up
    for start in (10, 30, 50):  # each 20-step cycle starts at the peak and decays
        cycle = lrs[start:start + 20]
        assert cycle[0] == pytest.approx(1.0) and all(a > b for a, b in zip(cycle, cycle[1:]))
    assert lrs[29] == pytest.approx(lrs[49]) and lrs[29] < 0.01


def test_negative_cycle_is_an_error():
    from lowbit.errors import ConfigError

    with pytest.raises(ConfigError, match="cycle_epochs"):
        ScheduleConfig(cycle_epochs=-1)
