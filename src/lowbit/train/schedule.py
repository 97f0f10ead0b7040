"""Learning-rate and ramp schedules as pure functions of the step.

>>> from lowbit.train.recipe import ScheduleConfig
>>> cfg = ScheduleConfig(kind="cosine", warmup_epochs=1)
>>> [round(lr_at(s, total=10, steps_per_epoch=2, base_lr=1.0, cfg=cfg), 3) for s in (0, 1, 2, 9)]
[0.5, 1.0, 1.0, 0.038]
>>> linear_ramp(5, start=0, length=10, v0=0.0, v1=2.0)
1.0
"""

from __future__ import annotations

import bisect
import math

from ..errors import ConfigError


def lr_at(step: int, total: int, steps_per_epoch: int, base_lr: float, cfg) -> float:
    """Learning rate at ``step`` (0-based) of a phase with ``total`` steps.

    Linear warm-up over ``cfg.warmup_epochs`` (reaching ``base_lr`` at the end of warm-up),
    then ``cosine`` decay to ``final_lr_ratio * base_lr``, ``step`` decay by ``gamma`` at each
    milestone (fraction of the phase), ``linear`` decay, or ``constant``. With
    ``cfg.cycle_epochs`` > 0 the decay restarts every that many epochs (fractions of a cycle).

    >>> from lowbit.train.recipe import ScheduleConfig
    >>> cyc = ScheduleConfig(kind="linear", cycle_epochs=1)
    >>> [lr_at(s, total=8, steps_per_epoch=4, base_lr=1.0, cfg=cyc) for s in (0, 3, 4)]
    [1.0, 0.25, 1.0]
    """
    warm = int(round(cfg.warmup_epochs * steps_per_epoch))
    if step < warm:
        return base_lr * (step + 1) / warm
    span = max(total - warm, 1)
    cycle = int(round(getattr(cfg, "cycle_epochs", 0.0) * steps_per_epoch))
    if cycle > 0:  # warm restarts: the decay starts again every ``cycle`` steps
        t = (max(step - warm, 0) % cycle) / cycle
    else:
        t = min(max(step - warm, 0) / span, 1.0)  # progress after warm-up, in [0, 1]
    final = base_lr * cfg.final_lr_ratio
    if cfg.kind == "cosine":
        return final + (base_lr - final) * 0.5 * (1 + math.cos(math.pi * t))
    if cfg.kind == "linear":
        return base_lr + (final - base_lr) * t
    if cfg.kind == "step":
        return base_lr * cfg.gamma ** bisect.bisect_right(list(cfg.milestones), t)
    if cfg.kind == "constant":
        return base_lr
    raise ConfigError(f"unknown schedule kind {cfg.kind!r}; valid: constant, cosine, linear, step")


def linear_ramp(step: int, start: int, length: int, v0: float, v1: float) -> float:
    """``v0`` before ``start``, then linear to ``v1`` over ``length`` steps, then ``v1``."""
    if step <= start:
        return v0
    if length <= 0 or step >= start + length:
        return v1
    return v0 + (v1 - v0) * (step - start) / length
