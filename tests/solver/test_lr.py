"""Learning-rate schedules against hand-computed values."""

import math

import pytest

import paddlevideo  # noqa: F401  (fills the registries)
from paddlevideo.solver.lr import build_lr
from paddlevideo.utils.errors import ConfigError


def rates(scheduler, n):
    """The rate of each of the first n steps (Paddle's scheduler is read, then stepped)."""
    out = []
    for _ in range(n):
        out.append(scheduler())
        scheduler.step()
    return out


def test_piecewise_as_in_actbert_yaml():
    cfg = {"iter_step": True, "name": "CustomPiecewiseDecay", "boundaries": [3], "values": [0.0002, 0.00002]}
    sched = build_lr(cfg, steps_per_epoch=100, epochs=10)
    assert sched.iter_step
    assert rates(sched, 5) == pytest.approx([2e-4, 2e-4, 2e-4, 2e-5, 2e-5])


def test_piecewise_with_warmup_ramps_to_first_value():
    cfg = {"name": "CustomPiecewiseDecay", "boundaries": [10], "values": [0.1, 0.01], "warmup_steps": 4,
           "warmup_start_lr": 0.0}
    assert rates(build_lr(cfg, 1, 1), 6) == pytest.approx([0.0, 0.025, 0.05, 0.075, 0.1, 0.1])


def test_cosine_with_warmup_total_from_run_length():
    # 2 epochs x 5 steps = 10 steps; warm-up 2 steps, then half a cosine over 8 steps.
    cfg = {"name": "CosineDecay", "learning_rate": 1.0, "end_lr": 0.0, "warmup_steps": 2}
    got = rates(build_lr(cfg, steps_per_epoch=5, epochs=2), 11)
    want = [0.0, 0.5] + [0.5 * (1 + math.cos(math.pi * k / 8)) for k in range(9)]
    assert got == pytest.approx(want)
    assert got[-1] == pytest.approx(0.0)


def test_linear_decay_and_epoch_clock():
    cfg = {"name": "LinearDecay", "learning_rate": 0.4, "end_lr": 0.0, "iter_step": False}
    sched = build_lr(cfg, steps_per_epoch=1000, epochs=4)  # counts epochs: total 4
    assert not sched.iter_step
    assert rates(sched, 5) == pytest.approx([0.4, 0.3, 0.2, 0.1, 0.0])


def test_linear_warmup_to_constant_and_float_rate():
    assert rates(build_lr({"name": "LinearWarmup", "learning_rate": 0.2, "warmup_steps": 2}, 1, 1), 4) == \
        pytest.approx([0.0, 0.1, 0.2, 0.2])
    assert build_lr(0.5, 10, 1) == 0.5


def test_schedule_state_round_trip():
    cfg = {"name": "CosineDecay", "learning_rate": 1.0, "total_steps": 10}
    a = build_lr(cfg, 1, 1)
    rates(a, 3)
    b = build_lr(cfg, 1, 1)
    b.set_state_dict(a.state_dict())
    assert rates(b, 4) == pytest.approx(rates(a, 4))


@pytest.mark.parametrize("cfg, message", [
    ({"name": "CustomPiecewiseDecay", "boundaries": [3], "values": [0.1]}, "len(values)"),
    ({"name": "CustomPiecewiseDecay", "boundaries": [3], "values": [0.1, 0.2], "bondaries": 1}, "did you mean"),
    ({"name": "CosineDecy", "learning_rate": 1.0}, "CosineDecay"),
])
def test_bad_schedules(cfg, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        build_lr(cfg, 10, 1)
