"""Optimisers selected by ``OPTIMIZER.name``, with PaddleVideo's config keys.

``weight_decay`` follows PaddleVideo: ``{name: L2, value: 1e-4}`` adds an L2 penalty
to the gradients (Adam, Momentum). AdamW decays the weights directly (decoupled) by a
float ``weight_decay`` and never decays biases or normalisation weights, which would
only pull them towards zero without regularising anything.
``grad_clip`` is a float (clip the global norm) or ``{name: ClipGradByGlobalNorm |
ClipGradByNorm | ClipGradByValue, value: x}``.
"""

import inspect

import paddle

from ..utils.errors import ConfigError
from ..utils.registry import build_from_cfg
from .registry import OPTIMIZERS

_CLIPS = {
    "ClipGradByGlobalNorm": lambda v: paddle.nn.ClipGradByGlobalNorm(clip_norm=v),
    "ClipGradByNorm": lambda v: paddle.nn.ClipGradByNorm(clip_norm=v),
    "ClipGradByValue": lambda v: paddle.nn.ClipGradByValue(max=v),
}
_REGULARIZERS = {"L2": paddle.regularizer.L2Decay, "L1": paddle.regularizer.L1Decay}


def _registered(fn):
    """Register ``fn``; its config keys are its keywords except ``model`` (given by the trainer)."""
    fn.config_keys = [p for p in inspect.signature(fn).parameters if p not in ("model", "multi_precision")]
    return OPTIMIZERS.register(fn)


def _value(spec, where):
    """The ``value`` of a ``{name, value}`` mapping, checked to be a number."""
    value = spec.get("value")
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise ConfigError(f"{where}.value must be a number, got {value!r}")
    return float(value)


def build_grad_clip(spec):
    """A Paddle gradient clip from ``OPTIMIZER.grad_clip`` (None: no clipping)."""
    if spec is None:
        return None
    if isinstance(spec, (int, float)) and not isinstance(spec, bool):
        return paddle.nn.ClipGradByGlobalNorm(clip_norm=float(spec))
    if not isinstance(spec, dict) or spec.get("name") not in _CLIPS:
        raise ConfigError(f"OPTIMIZER.grad_clip must be a number or {{name: one of {sorted(_CLIPS)}, value: x}}, "
                          f"got {spec!r}")
    return _CLIPS[spec["name"]](_value(spec, "OPTIMIZER.grad_clip"))


def build_regularizer(spec):
    """The coupled penalty of ``OPTIMIZER.weight_decay`` (PaddleVideo's ``{name: L2, value}``)."""
    if spec is None:
        return None
    if isinstance(spec, (int, float)) and not isinstance(spec, bool):
        return paddle.regularizer.L2Decay(float(spec))
    if not isinstance(spec, dict) or spec.get("name") not in _REGULARIZERS:
        raise ConfigError(f"OPTIMIZER.weight_decay must be a number or {{name: L2 | L1, value: x}}, got {spec!r}")
    return _REGULARIZERS[spec["name"]](_value(spec, "OPTIMIZER.weight_decay"))


def no_decay_names(model):
    """Internal names of the parameters AdamW must not decay: biases and norm weights."""
    skip = set()
    for _, layer in model.named_sublayers(include_self=True):
        is_norm = "Norm" in type(layer).__name__
        for attr, param in layer.named_parameters(include_sublayers=False):
            if is_norm or attr.endswith("bias"):
                skip.add(param.name)
    return skip


def _trainable(model):
    return [p for p in model.parameters() if not p.stop_gradient]


@_registered
def Adam(model, learning_rate=0.001, beta1=0.9, beta2=0.999, epsilon=1e-8, weight_decay=None, grad_clip=None,
         multi_precision=False):
    return paddle.optimizer.Adam(
        learning_rate=learning_rate, beta1=beta1, beta2=beta2, epsilon=epsilon, parameters=_trainable(model),
        weight_decay=build_regularizer(weight_decay), grad_clip=build_grad_clip(grad_clip),
        multi_precision=multi_precision,
    )


@_registered
def AdamW(model, learning_rate=0.001, beta1=0.9, beta2=0.999, epsilon=1e-8, weight_decay=0.01, grad_clip=None,
          multi_precision=False):
    if isinstance(weight_decay, dict):  # {name: L2, value} carried over from an Adam config
        weight_decay = _value(weight_decay, "OPTIMIZER.weight_decay")
    if not isinstance(weight_decay, (int, float)):
        raise ConfigError(f"OPTIMIZER.weight_decay of AdamW must be a number, got {weight_decay!r}")
    skip = no_decay_names(model)
    return paddle.optimizer.AdamW(
        learning_rate=learning_rate, beta1=beta1, beta2=beta2, epsilon=epsilon, parameters=_trainable(model),
        weight_decay=float(weight_decay), apply_decay_param_fun=lambda name: name not in skip,
        grad_clip=build_grad_clip(grad_clip), multi_precision=multi_precision,
    )


@_registered
def Momentum(model, learning_rate=0.001, momentum=0.9, use_nesterov=False, weight_decay=None, grad_clip=None,
             multi_precision=False):
    return paddle.optimizer.Momentum(
        learning_rate=learning_rate, momentum=momentum, use_nesterov=use_nesterov, parameters=_trainable(model),
        weight_decay=build_regularizer(weight_decay), grad_clip=build_grad_clip(grad_clip),
        multi_precision=multi_precision,
    )


def build_optimizer(opt_cfg, model, learning_rate, multi_precision=False):
    """The optimiser of ``OPTIMIZER`` for ``model``'s trainable parameters.

    ``learning_rate`` is the float or schedule built by ``build_lr`` from
    ``OPTIMIZER.learning_rate``; ``multi_precision`` keeps float32 master weights (AMP O2).
    """
    if not isinstance(opt_cfg, dict):
        raise ConfigError("OPTIMIZER must be a mapping with a 'name' key (Adam, AdamW, Momentum)")
    cfg = {k: v for k, v in opt_cfg.items() if k != "learning_rate"}
    return build_from_cfg(cfg, OPTIMIZERS, where="OPTIMIZER", model=model, learning_rate=learning_rate,
                          multi_precision=multi_precision)
