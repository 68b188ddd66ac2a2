"""Registries of buildable components and the one generic builder."""

import difflib
import inspect

from .errors import ConfigError


def closest(name, candidates):
    """The candidate closest to ``name``, or None when nothing is close."""
    match = difflib.get_close_matches(str(name), [str(c) for c in candidates], n=1, cutoff=0.5)
    return match[0] if match else None


def did_you_mean(name, candidates):
    """`` (did you mean 'x'?)`` for the closest candidate, or an empty string."""
    best = closest(name, candidates)
    return f" (did you mean '{best}'?)" if best else ""


class Registry:
    """A name → class (or function) table filled by the ``register`` decorator."""

    def __init__(self, name):
        self.name = name
        self._table = {}

    def register(self, obj=None, name=None):
        def add(item):
            key = name or item.__name__
            if key in self._table:
                raise KeyError(f"{key} is already registered in {self.name}")
            self._table[key] = item
            return item

        return add(obj) if obj is not None else add

    def __contains__(self, key):
        return key in self._table

    def names(self):
        return sorted(self._table)

    def get(self, key):
        if key not in self._table:
            raise ConfigError(
                f"'{key}' is not registered in {self.name}{did_you_mean(key, self._table)}; "
                f"registered: {', '.join(self.names()) or 'none'}"
            )
        return self._table[key]


def accepted_kwargs(obj):
    """Names ``obj`` accepts as keywords, or None when it takes ``**kwargs``."""
    params = inspect.signature(obj).parameters.values()
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return None
    return [p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]


def check_kwargs(obj, kwargs, where):
    """Raise ConfigError naming ``where`` for a keyword ``obj`` does not accept."""
    valid = getattr(obj, "config_keys", None) or accepted_kwargs(obj)
    if valid is None:
        return
    for key in kwargs:
        if key not in valid:
            raise ConfigError(
                f"unknown key '{where}.{key}' for {getattr(obj, '__name__', obj)}"
                f"{did_you_mean(key, valid)}; valid keys: {', '.join(sorted(valid))}"
            )


def build_from_cfg(cfg, registry, key="name", where=None, **extra):
    """Build ``registry[cfg[key]](**rest_of_cfg, **extra)``.

    ``cfg`` is a mapping with a type key (``name``, ``format`` or ``framework``);
    the other entries become keyword arguments. ``where`` is the config path used in
    error messages (``MODEL.backbone``).
    """
    where = where or registry.name
    if not isinstance(cfg, dict):
        raise ConfigError(f"{where} must be a mapping with a '{key}' key, got {cfg!r}")
    if key not in cfg:
        raise ConfigError(f"{where} has no '{key}' key; registered {registry.name}: {', '.join(registry.names())}")
    kwargs = {k: v for k, v in cfg.items() if k != key}
    kwargs.update(extra)
    obj = registry.get(cfg[key])
    check_kwargs(obj, {k: v for k, v in cfg.items() if k != key}, where)
    return obj(**kwargs)
