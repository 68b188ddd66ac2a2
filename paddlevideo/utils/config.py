"""YAML configs: loading, ``-o`` overrides and key validation.

A config is a tree of ``AttrDict`` (dicts with attribute access, as PaddleVideo
configs are used: ``cfg.DATASET.batch_size``). Upper-case sections (``MODEL``,
``DATASET``, ``PIPELINE``, ``OPTIMIZER``, ``METRIC``) hold components; lower-case
top-level keys are run settings.

Unknown keys are errors: run settings and ``DATASET`` settings are checked against
the tables below, and every component (a mapping with ``framework``, ``name`` or
``format``) against the keyword arguments of the registered class it names.
"""

import copy
import re

import yaml

from .errors import ConfigError
from .registry import did_you_mean
from .settings import run_keys


class AttrDict(dict):
    """A dict whose keys are also attributes."""

    def __getattr__(self, key):
        try:
            return self[key]
        except KeyError:
            raise AttributeError(key) from None

    def __setattr__(self, key, value):
        self[key] = value

    def __deepcopy__(self, memo):
        return AttrDict(copy.deepcopy(dict(self), memo))


class _Loader(yaml.SafeLoader):
    """SafeLoader that reads ``1e-4`` as a float (YAML 1.2), not as a string."""


_FLOAT = re.compile(
    r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
    |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
    |\.[0-9_]+(?:[eE][-+][0-9]+)?
    |[-+]?\.(?:inf|Inf|INF)
    |\.(?:nan|NaN|NAN))$""",
    re.X,
)
_Loader.yaml_implicit_resolvers = {
    k: [(tag, rx) for tag, rx in v if tag != "tag:yaml.org,2002:float"]
    for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT, list("-+0123456789."))


def _to_attr(node):
    if isinstance(node, dict):
        return AttrDict({k: _to_attr(v) for k, v in node.items()})
    if isinstance(node, list):
        return [_to_attr(v) for v in node]
    return node


def parse_value(text):
    """A YAML scalar or flow value as the config loader reads it (``1e-4`` → 1e-4)."""
    try:
        return _to_attr(yaml.load(text, Loader=_Loader))
    except yaml.YAMLError:
        return text


def load_yaml(path):
    """Read one YAML file into an AttrDict, with file and line on a syntax error."""
    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.load(f, Loader=_Loader)
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except IsADirectoryError:
        raise ConfigError(f"config path is a directory, not a YAML file: {path}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"YAML syntax error in {where}: {problem}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level of a config must be a mapping, got {type(data).__name__}")
    return _to_attr(data)


def _child(node, part, path):
    """The child of ``node`` named ``part``; ``path`` is the dotted path so far."""
    if isinstance(node, list):
        if not part.lstrip("-").isdigit() or not -len(node) <= int(part) < len(node):
            raise ConfigError(f"override '{path}': index {part} out of range for a list of {len(node)} items")
        return node[int(part)]
    if isinstance(node, dict):
        if part not in node:
            raise ConfigError(f"override '{path}': no key '{part}'{did_you_mean(part, node)}")
        return node[part]
    raise ConfigError(f"override '{path}': cannot descend into a {type(node).__name__} value")


def apply_override(cfg, override):
    """Apply one ``A.b.0.c=value`` override in place.

    The path splits on dots, integers index lists; the value is read by YAML. All
    intermediate keys must exist; the last may be new (``validate_config`` then
    rejects it if nothing accepts it). A list item that is a one-key mapping (a
    pipeline step) is entered transparently: ``PIPELINE.train.transform.1.caption_path``.
    """
    if "=" not in override:
        raise ConfigError(f"override '{override}' must look like KEY.PATH=value")
    path, text = override.split("=", 1)
    parts = path.strip().split(".")
    if not all(parts):
        raise ConfigError(f"override '{override}': empty key in path '{path}'")
    node = cfg
    for i, part in enumerate(parts[:-1]):
        in_list = isinstance(node, list)
        node = _child(node, part, ".".join(parts[: i + 1]))
        if in_list and isinstance(node, dict) and len(node) == 1 and parts[i + 1] not in node:
            inner = next(iter(node.values()))
            if isinstance(inner, dict) or inner is None:
                key = next(iter(node))
                if inner is None:
                    node[key] = inner = AttrDict()
                node = inner
    last, value = parts[-1], parse_value(text)
    if isinstance(node, list):
        _child(node, last, path)
        node[int(last)] = value
    elif isinstance(node, dict):
        node[last] = value
    else:
        raise ConfigError(f"override '{path}': cannot set a key inside a {type(node).__name__} value")


# Run settings (lower-case top-level keys: the fields of ``RunSettings``) and the keys of the
# DATASET section. A module that reads a new DATASET key adds it here, with its default in its own code.
RUN_KEYS = run_keys()
DATASET_KEYS = {
    "batch_size": "training batch size per process",
    "valid_batch_size": "validation batch size per process",
    "test_batch_size": "test batch size per process",
    "test_pair_batch_size": "MSR-VTT test: caption-video pairs per matching pass (default 256)",
    "num_workers": "DataLoader worker processes",
    "train": "training dataset component",
    "valid": "validation dataset component",
    "test": "test dataset component",
}
SECTIONS = ("MODEL", "DATASET", "PIPELINE", "OPTIMIZER", "METRIC")
# Checks of the components a config names (their keys against the registered classes),
# installed by the package once its registries are filled (``paddlevideo/__init__.py``):
# utils imports nothing of the layers above it.
_component_checks = []


def add_component_check(check):
    """Have ``validate_config`` also call ``check(cfg)`` (raising ConfigError on a bad key)."""
    if check not in _component_checks:
        _component_checks.append(check)


def _check_keys(node, valid, where):
    for key in node:
        if key not in valid:
            raise ConfigError(
                f"unknown key '{where}{key}'{did_you_mean(key, valid)}; valid: {', '.join(sorted(valid))}"
            )


def validate_config(cfg):
    """Reject unknown top-level, DATASET and component keys (with a suggestion).

    Components are checked against the keyword arguments of the registered class
    they name, by the checks the package installs when it fills the registries.
    """
    _check_keys(cfg, set(RUN_KEYS) | set(SECTIONS), "")
    if isinstance(cfg.get("DATASET"), dict):
        _check_keys(cfg.DATASET, DATASET_KEYS, "DATASET.")
    for check in _component_checks:
        check(cfg)
    return cfg


def get_config(path, overrides=None, validate=True):
    """Load ``path``, apply each ``-o`` override, and validate the result."""
    cfg = load_yaml(path)
    for override in overrides or []:
        apply_override(cfg, override)
    if validate:
        validate_config(cfg)
    return cfg


def print_config(cfg, logger, indent=0):
    """Log the config tree, one key per line."""
    for key, value in cfg.items():
        if isinstance(value, dict):
            logger.info("%s%s:", " " * indent, key)
            print_config(value, logger, indent + 4)
        elif isinstance(value, list) and value and isinstance(value[0], dict):
            logger.info("%s%s:", " " * indent, key)
            for item in value:
                print_config(item, logger, indent + 4)
        else:
            logger.info("%s%s: %s", " " * indent, key, value)
