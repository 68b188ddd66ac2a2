"""Mixed precision: one plan decides everything, one code path runs it.

``resolve_amp`` turns the request (``--amp``, ``--amp_level``, YAML ``amp_dtype``) and
the device into an ``AmpPlan``. The trainer then always runs
``with autocast(plan): ...``, ``scaler.scale(loss).backward()``, ``scaler.step(opt)``,
``scaler.update()``: when mixed precision is off both the autocast and the scaler are
no-ops, so there is no second loop to keep in sync.

float16 needs a dynamic loss scaler (its small exponent range underflows gradients);
bfloat16 has float32's range and runs without one. Paddle has no mixed precision on
CPU (its ``auto_cast`` and ``GradScaler`` only warn there), so the plan for a CPU is
float32 with a note the trainer prints once.
"""

import contextlib
from dataclasses import dataclass

import paddle

from .errors import ConfigError

LEVELS = ("O1", "O2")
DTYPES = ("float16", "bfloat16")


@dataclass(frozen=True)
class AmpPlan:
    """What mixed precision does in this run.

    ``level``: "O0" (float32), "O1" (autocast picks per op: matmuls in low precision,
    softmax / norms / losses in float32) or "O2" (parameters in low precision too, with
    float32 master weights in the optimiser). ``use_scaler``: dynamic loss scaling.
    """

    enabled: bool = False
    level: str = "O0"
    dtype: str = "float32"
    use_scaler: bool = False
    init_loss_scaling: float = 2.0**15
    note: str = ""

    @property
    def master_weights(self):
        """Whether the optimiser must keep float32 copies of low-precision parameters."""
        return self.level == "O2"


def resolve_amp(requested, level="O1", dtype="float16", device="cpu", init_loss_scaling=2.0**15, purpose="training"):
    """The ``AmpPlan`` for a request on ``device`` ("cpu", "gpu", "gpu:1", ...); ``purpose``
    names the work in the note of a plan that falls back to float32."""
    level = str(level or "O1").upper()
    if level not in LEVELS:
        raise ConfigError(f"amp_level must be one of {', '.join(LEVELS)}, got {level!r}")
    if dtype not in DTYPES:
        raise ConfigError(f"amp_dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    if not requested:
        return AmpPlan()
    if not str(device).startswith("gpu"):
        return AmpPlan(note=f"--amp ignored: Paddle has no mixed precision on {device}; {purpose} in float32")
    return AmpPlan(enabled=True, level=level, dtype=dtype, use_scaler=dtype == "float16",
                   init_loss_scaling=float(init_loss_scaling))


def autocast(plan):
    """The forward-pass context of ``plan`` (a no-op when mixed precision is off)."""
    if not plan.enabled:
        return contextlib.nullcontext()
    return paddle.amp.auto_cast(enable=True, level=plan.level, dtype=plan.dtype)


def build_scaler(plan):
    """A dynamic loss scaler for float16; a disabled (pass-through) one otherwise."""
    return paddle.amp.GradScaler(
        enable=plan.use_scaler, init_loss_scaling=plan.init_loss_scaling, use_dynamic_loss_scaling=True,
    )


def decorate(model, optimizer, plan):
    """Cast parameters for O2 (the optimiser keeps float32 masters); O0/O1 leave them."""
    if plan.level != "O2":
        return model, optimizer
    return paddle.amp.decorate(models=model, optimizers=optimizer, level="O2", dtype=plan.dtype,
                               master_weight=True)
