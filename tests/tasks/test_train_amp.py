"""Mixed-precision plans (no GPU needed) and the loss scaler's state in resume checkpoints."""

import numpy as np
import paddle
import pytest

from paddlevideo.utils import amp
from paddlevideo.utils import checkpoint as ckpt
from paddlevideo.utils.errors import ConfigError


@pytest.mark.parametrize("level, dtype, scaler", [
    ("O1", "float16", True), ("O2", "float16", True), ("O1", "bfloat16", False), ("O2", "bfloat16", False),
])
def test_gpu_plans(level, dtype, scaler):
    plan = amp.resolve_amp(True, level, dtype, device="gpu:0")
    assert (plan.enabled, plan.level, plan.dtype, plan.use_scaler) == (True, level, dtype, scaler)
    assert plan.master_weights == (level == "O2")  # O2 keeps float32 masters in the optimiser
    assert not plan.note


def test_cpu_amp_is_float32_with_a_note_and_off_is_silent():
    plan = amp.resolve_amp(True, "O2", "float16", device="cpu")
    assert (plan.enabled, plan.level, plan.dtype, plan.use_scaler) == (False, "O0", "float32", False)
    assert "float32" in plan.note
    assert amp.resolve_amp(False, "O1", "float16", device="gpu:0") == amp.AmpPlan()


def test_bad_level_or_dtype():
    with pytest.raises(ConfigError, match="amp_level"):
        amp.resolve_amp(True, "O3", "float16", "gpu")
    with pytest.raises(ConfigError, match="amp_dtype"):
        amp.resolve_amp(True, "O1", "float8", "gpu")


def test_off_plan_is_a_pass_through():
    plan = amp.AmpPlan()
    scaler = amp.build_scaler(plan)
    loss = paddle.to_tensor(3.0)
    assert not scaler.is_enable() and float(scaler.scale(loss)) == 3.0
    model = paddle.nn.Linear(2, 2)
    assert amp.decorate(model, None, plan) == (model, None)


def enabled_scaler():
    """A float16 scaler. Paddle switches scalers off on CPU; switch it back on to test its state."""
    scaler = amp.build_scaler(amp.AmpPlan(enabled=True, level="O1", dtype="float16", use_scaler=True))
    scaler._enable = True
    return scaler


def test_scaler_state_survives_a_resume_checkpoint(tmp_path):
    # The state a float16 run on a GPU has after some overflow steps.
    gpu_state = {"scale": np.array([1024.0], dtype="float32"), "incr_ratio": 2.0, "decr_ratio": 0.5,
                 "incr_every_n_steps": 7, "decr_every_n_nan_or_inf": 1, "incr_count": 5, "decr_count": 0,
                 "use_dynamic_loss_scaling": True}
    path = tmp_path / "x_resume.pdckpt"
    ckpt.save_resume(str(path), {"scaler": gpu_state})
    scaler = enabled_scaler()
    scaler.load_state_dict(ckpt.load_resume(str(path))["scaler"])
    state = scaler.state_dict()
    assert state["scale"] == pytest.approx([1024.0])
    assert (state["incr_count"], state["incr_every_n_steps"]) == (5, 7)
    assert amp.build_scaler(amp.AmpPlan()).state_dict() == {}  # float32 / bfloat16: nothing to keep
