"""Learning-rate schedules, selected by ``OPTIMIZER.learning_rate.name``.

Every schedule counts in *steps* of its own clock: optimiser steps when
``iter_step: True`` (as PaddleVideo's ``actbert.yaml`` says), epochs otherwise. The
trainer reads ``scheduler.iter_step`` to know when to call ``scheduler.step()``.

All schedules share an optional linear warm-up (``warmup_steps``, ``warmup_start_lr``)
that ramps to the value the schedule has where the warm-up ends, so a warm-up never
makes the learning rate jump.
"""

import math

from paddle.optimizer.lr import LRScheduler

from ..utils.errors import ConfigError
from ..utils.registry import build_from_cfg
from .registry import LR_SCHEDULERS


def check_rate(value, key, zero_ok=False):
    """``value`` as a float; ConfigError unless it is a number > 0 (>= 0 with ``zero_ok``).

    A negative rate climbs the loss instead of descending it, and a zero one trains
    nothing, so every rate of a config must be positive (the start of a warm-up and the
    end of a decay may be 0).
    """
    where = f"OPTIMIZER.learning_rate{'.' + key if key else ''}"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{where} must be a number, got {value!r}")
    if not math.isfinite(value) or value < 0 or (value == 0 and not zero_ok):
        raise ConfigError(f"{where} must be {'>= 0' if zero_ok else 'positive'}, got {value!r}")
    return float(value)


class _WarmupSchedule(LRScheduler):
    """Base of the registered schedules: warm-up, then ``self.decayed(step)``.

    ``last_epoch`` (Paddle's name) is the number of ``step()`` calls so far, i.e. the
    learning rate returned is the one the next optimiser step (or epoch) uses.
    """

    def __init__(self, base_lr, iter_step, warmup_steps, warmup_start_lr):
        if warmup_steps < 0:
            raise ConfigError(f"OPTIMIZER.learning_rate.warmup_steps must be >= 0, got {warmup_steps}")
        self.iter_step = bool(iter_step)
        self.warmup_steps = int(warmup_steps)
        self.warmup_start_lr = check_rate(warmup_start_lr, "warmup_start_lr", zero_ok=True)
        super().__init__(learning_rate=float(base_lr))

    def decayed(self, step):
        raise NotImplementedError

    def get_lr(self):
        step = self.last_epoch
        if step < self.warmup_steps:
            target = self.decayed(self.warmup_steps)
            return self.warmup_start_lr + (target - self.warmup_start_lr) * step / self.warmup_steps
        return self.decayed(step)


@LR_SCHEDULERS.register()
class CustomPiecewiseDecay(_WarmupSchedule):
    """``values[i]`` while ``step < boundaries[i]``, ``values[-1]`` after the last boundary."""

    def __init__(self, boundaries, values, iter_step=False, warmup_steps=0, warmup_start_lr=0.0):
        if len(values) != len(boundaries) + 1:
            raise ConfigError(
                f"OPTIMIZER.learning_rate: CustomPiecewiseDecay needs len(values) == len(boundaries) + 1, "
                f"got {len(values)} values for {len(boundaries)} boundaries"
            )
        if list(boundaries) != sorted(boundaries):
            raise ConfigError(f"OPTIMIZER.learning_rate.boundaries must increase, got {list(boundaries)}")
        self.boundaries = [int(b) for b in boundaries]
        self.values = [check_rate(v, f"values.{i}") for i, v in enumerate(values)]
        super().__init__(self.values[0], iter_step, warmup_steps, warmup_start_lr)

    def decayed(self, step):
        for boundary, value in zip(self.boundaries, self.values):
            if step < boundary:
                return value
        return self.values[-1]


class _DecayToEnd(_WarmupSchedule):
    """A schedule that goes from ``learning_rate`` at the end of warm-up to ``end_lr``
    at ``total_steps`` and stays there. ``total_steps`` defaults to the whole run
    (epochs × optimiser steps per epoch, or epochs when ``iter_step`` is false)."""

    def __init__(self, learning_rate, total_steps=None, end_lr=0.0, iter_step=True, warmup_steps=0,
                 warmup_start_lr=0.0):
        if total_steps is None or total_steps <= warmup_steps:
            raise ConfigError(
                f"OPTIMIZER.learning_rate: total_steps ({total_steps}) must exceed warmup_steps ({warmup_steps})"
            )
        self.total_steps = int(total_steps)
        self.end_lr = check_rate(end_lr, "end_lr", zero_ok=True)
        self.peak_lr = check_rate(learning_rate, "learning_rate")
        super().__init__(learning_rate, iter_step, warmup_steps, warmup_start_lr)

    def progress(self, step):
        """Fraction of the decay done at ``step``, in [0, 1]."""
        span = self.total_steps - self.warmup_steps
        return min(max(step - self.warmup_steps, 0) / span, 1.0)


@LR_SCHEDULERS.register()
class CosineDecay(_DecayToEnd):
    """Half a cosine from ``learning_rate`` down to ``end_lr``."""

    def decayed(self, step):
        cosine = 0.5 * (1.0 + math.cos(math.pi * self.progress(step)))
        return self.end_lr + (self.peak_lr - self.end_lr) * cosine


@LR_SCHEDULERS.register()
class LinearDecay(_DecayToEnd):
    """A straight line from ``learning_rate`` down to ``end_lr``."""

    def decayed(self, step):
        return self.peak_lr + (self.end_lr - self.peak_lr) * self.progress(step)


@LR_SCHEDULERS.register()
class LinearWarmup(_WarmupSchedule):
    """A warm-up to a constant ``learning_rate`` (the other schedules warm up too)."""

    def __init__(self, learning_rate, warmup_steps, warmup_start_lr=0.0, iter_step=True):
        super().__init__(check_rate(learning_rate, "learning_rate"), iter_step, warmup_steps, warmup_start_lr)

    def decayed(self, step):
        return self.base_lr


def build_lr(lr_cfg, steps_per_epoch, epochs):
    """The learning rate of ``OPTIMIZER.learning_rate``: a float, or a registered schedule.

    ``steps_per_epoch`` (optimiser steps) and ``epochs`` fill ``total_steps`` of the
    decaying schedules when the config leaves it out.
    """
    if lr_cfg is None:
        raise ConfigError("OPTIMIZER.learning_rate is missing (a number or a schedule with a 'name')")
    if not isinstance(lr_cfg, dict):
        return check_rate(lr_cfg, "")
    extra = {}
    if isinstance(lr_cfg, dict) and "total_steps" not in lr_cfg and "name" in lr_cfg:
        cls = LR_SCHEDULERS.get(lr_cfg["name"])
        if issubclass(cls, _DecayToEnd):
            per_epoch = steps_per_epoch if lr_cfg.get("iter_step", True) else 1
            extra["total_steps"] = per_epoch * epochs
    return build_from_cfg(lr_cfg, LR_SCHEDULERS, where="OPTIMIZER.learning_rate", **extra)


def steps_every_iter(scheduler):
    """True when ``scheduler`` advances every optimiser step, False when every epoch."""
    return isinstance(scheduler, LRScheduler) and getattr(scheduler, "iter_step", False)


def step_epoch(scheduler):
    """At an epoch's end: advance a schedule that steps every epoch (not one that steps every
    optimiser step, nor a constant rate, which has no schedule)."""
    if isinstance(scheduler, LRScheduler) and not steps_every_iter(scheduler):
        scheduler.step()
