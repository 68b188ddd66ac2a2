"""Where each component lives in a config, the check of its keys against the class it names,
and the check that the text inputs fit the model (vocabulary, lengths).

It reads every layer's registry, so it lives where the layers meet; ``paddlevideo/__init__.py``
installs both into ``utils.config.validate_config`` once the registries are filled.
"""

import inspect

from .loader.registry import DATASETS, PIPELINES
from .metrics.registry import METRICS
from .modeling.registry import BACKBONES, FRAMEWORKS, LOSSES
from .solver.registry import LR_SCHEDULERS, OPTIMIZERS
from .utils.errors import ActBertError, ConfigError
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


# --------------------------------------------------------------------------- text inputs vs the model


def _default(cls, key):
    """The default of keyword ``key`` of ``cls`` (None if it takes no such keyword)."""
    param = inspect.signature(cls).parameters.get(key)
    return None if param is None or param.default is param.empty else param.default


def _text_settings(cfg, key):
    """[(config path, value)] of ``key`` in every dataset and pipeline step of the config that
    takes it; a dataset or step that leaves it unset counts with its class's default."""
    found = []
    for split in ("train", "valid", "test"):
        node = (cfg.get("DATASET") or {}).get(split)
        if isinstance(node, dict) and "format" in node:
            value = node.get(key, _default(DATASETS.get(node["format"]), key))
            if value is not None:
                found.append((f"DATASET.{split}.{key}", value))
        section = (cfg.get("PIPELINE") or {}).get(split) or {}
        for i, step in enumerate(section.get("transform") or []):
            (name, args), = step.items()
            value = (args or {}).get(key, _default(PIPELINES.get(name), key))
            if value is not None:
                found.append((f"PIPELINE.{split}.transform.{i}.{name}.{key}", value))
    return found


def _vocab_lines(vocab_file):
    """Lines of a vocabulary file, None if it cannot be read (the dataset that uses it says why)."""
    from .loader.tokenizer import load_tokenizer

    try:
        return load_tokenizer(vocab_file).vocab_size
    except ActBertError:
        return None


def check_text_fits_model(cfg):
    """ConfigError unless every vocabulary and text length of the config fits MODEL.backbone.

    A vocabulary with more lines than ``vocab_size`` gives ids past the word embedding table
    (training segfaulted; scoring read memory outside the table), and ``max_seq_length``
    above ``max_position_embeddings`` positions past the position table. Every entry point
    (training, validation, fine-tuning, ``--test``, export, predict, search) loads its
    config through ``validate_config``, so this one check covers them all, before any work.
    """
    backbone = (cfg.get("MODEL") or {}).get("backbone")
    if not isinstance(backbone, dict) or "name" not in backbone:
        return
    from .modeling.backbones.actbert import ActBertConfig

    defaults = ActBertConfig()
    vocab_size = backbone.get("vocab_size", defaults.vocab_size)
    positions = backbone.get("max_position_embeddings", defaults.max_position_embeddings)
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in (vocab_size, positions)):
        return  # a size that is not a number: building the model reports it
    for where, vocab_file in _text_settings(cfg, "vocab_file"):
        lines = _vocab_lines(vocab_file)
        if lines is not None and lines > vocab_size:
            raise ConfigError(f"{where} '{vocab_file}' has {lines} tokens, more than the model's "
                              f"MODEL.backbone.vocab_size={vocab_size} (ids from {vocab_size} on would fall outside "
                              "its word embeddings); use the vocabulary the model was trained with")
    for where, length in _text_settings(cfg, "max_seq_length"):
        if isinstance(length, int) and length > positions:
            raise ConfigError(f"{where}={length} is more than the model's MODEL.backbone.max_position_embeddings="
                              f"{positions}; lower it to at most {positions}")
