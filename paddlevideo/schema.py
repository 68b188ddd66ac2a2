"""Where each component lives in a config, and the check of its keys against the class it names.

It reads every layer's registry, so it lives where the layers meet; ``paddlevideo/__init__.py``
installs it into ``utils.config.validate_config`` once the registries are filled.
"""

from .loader.registry import DATASETS, PIPELINES
from .metrics.registry import METRICS
from .modeling.registry import BACKBONES, FRAMEWORKS, LOSSES
from .solver.registry import LR_SCHEDULERS, OPTIMIZERS
from .utils.errors import ConfigError
from .utils.registry import check_kwargs


def _component(node, registry, type_key, where):
    if node is None:
        return
    if not isinstance(node, dict) or type_key not in node:
        raise ConfigError(f"{where} must be a mapping with a '{type_key}' key")
    cls = registry.get(node[type_key])
    check_kwargs(cls, {k: v for k, v in node.items() if k != type_key}, where)


def check_components(cfg):
    """Check every component's keys against the class its type key names."""
    model = cfg.get("MODEL")
    if model is not None:
        _component(model, FRAMEWORKS, "framework", "MODEL")
        _component(model.get("backbone"), BACKBONES, "name", "MODEL.backbone")
        _component(model.get("loss"), LOSSES, "name", "MODEL.loss")
    for split in ("train", "valid", "test"):
        _component((cfg.get("DATASET") or {}).get(split), DATASETS, "format", f"DATASET.{split}")
        section = (cfg.get("PIPELINE") or {}).get(split)
        if section is None:
            continue
        if not isinstance(section, dict):
            raise ConfigError(f"PIPELINE.{split} must be a mapping with a 'transform' list")
        for key in section:
            if key != "transform":
                raise ConfigError(f"unknown key 'PIPELINE.{split}.{key}'; valid: transform")
        for i, step in enumerate(section.get("transform") or []):
            where = f"PIPELINE.{split}.transform.{i}"
            if not isinstance(step, dict) or len(step) != 1:
                raise ConfigError(f"{where} must be a one-key mapping such as '- Tokenize:'")
            (name, args), = step.items()
            check_kwargs(PIPELINES.get(name), args or {}, f"{where}.{name}")
    optimizer = cfg.get("OPTIMIZER")
    if optimizer is not None:
        _component(optimizer, OPTIMIZERS, "name", "OPTIMIZER")
        lr = optimizer.get("learning_rate")
        if isinstance(lr, dict):
            _component(lr, LR_SCHEDULERS, "name", "OPTIMIZER.learning_rate")
    if cfg.get("METRIC") is not None:
        _component(cfg.METRIC, METRICS, "name", "METRIC")
