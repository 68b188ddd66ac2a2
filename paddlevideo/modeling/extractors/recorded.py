"""The settings a converted extractor's weights cannot reveal, kept inside its ``.pdparams``.

A 3D ResNet converted for a stem of temporal stride 2, or without its max-pool, has
exactly the shapes of one with stride 1 and the pool; a detector's anchors, pixel
statistics or pooler size leave no trace in its tensors either. The converters write
these settings into the file, under ``SETTINGS_KEY`` (a uint8 tensor of JSON
``{"model": ..., "settings": {...}}``), and the loaders use them and refuse a config
that contradicts them. Files converted before this was recorded load as before.
"""

import json

import numpy as np

from ...utils.errors import WeightsError

SETTINGS_KEY = "__converted_settings__"
# ResNet3D arguments no tensor shape shows (depth, widths, classes, conv1's size are read
# from the shapes; the shortcut type mostly is, but 'A' vs 'B' of a model without
# projections is not).
RESNET3D_SETTINGS = ("conv1_t_stride", "no_max_pool", "shortcut_type")


def _plain(value):
    """A JSON round trip, so that tuples and lists, 1 and 1.0 compare as the file stores them."""
    return json.loads(json.dumps(value))


def record(state, model, settings):
    """``state`` (name -> tensor or array) plus the settings entry; returns ``state``."""
    import paddle

    blob = json.dumps({"model": model, "settings": settings}, sort_keys=True).encode()
    state[SETTINGS_KEY] = paddle.to_tensor(np.frombuffer(blob, dtype=np.uint8))
    return state


def take(state, path, model):
    """Remove the settings entry from ``state`` (name -> np.ndarray): its settings dict, or
    None for a file converted before settings were recorded. WeightsError when the file
    was converted for another model or the entry is unreadable."""
    if SETTINGS_KEY not in state:
        return None
    try:
        entry = json.loads(np.asarray(state.pop(SETTINGS_KEY), dtype=np.uint8).tobytes().decode())
        found, settings = entry["model"], dict(entry["settings"])
    except (ValueError, KeyError, TypeError) as exc:
        raise WeightsError(f"{path}: its recorded conversion settings are unreadable ({exc})") from None
    if found != model:
        raise WeightsError(f"{path} was converted for a {found} model, not a {model}")
    return settings


def check(recorded, given, path, source):
    """WeightsError naming the first setting of ``given`` that contradicts ``recorded``
    (both dicts; ``source`` says where ``given`` comes from)."""
    for key in sorted(set(recorded) & set(given)):
        if _plain(recorded[key]) != _plain(given[key]):
            raise WeightsError(f"{path} was converted with {key}={recorded[key]!r}, but {source} says "
                               f"{key}={given[key]!r} (the weights cannot tell; convert again, or drop the setting)")
