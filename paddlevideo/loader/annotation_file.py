"""The checks shared by the readers of annotation files shaped ``{"database": {video_id: record}}``
(COIN's ``COIN.json``, YouCook2's ``youcookii_annotations_trainval.json``): the file, a video
record's common fields, a segment's bounds. Each reader keeps its own keys and rules (which
subsets, whether a zero duration or an empty segment is allowed) and builds its own records;
every message names the file, the video and, for a segment, the annotation.
"""

import json
import math

from ..utils.errors import DataError


def number(value):
    """``value`` as a finite float, or None (booleans are not numbers here)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def unique_keys(pairs):
    """``json`` object hook: a key given twice (two records of one video) is an error, not "last wins"."""
    keys = [k for k, _ in pairs]
    if len(set(keys)) != len(keys):
        raise ValueError(f"key {next(k for k in keys if keys.count(k) > 1)!r} appears twice in one object")
    return dict(pairs)


def read_database(path, what):
    """The ``database`` object of the JSON file ``path`` ({video_id: record}, file order).

    DataError naming the file (``what`` says which kind) when it is missing, unreadable, not
    JSON, repeats a key in one object, or has no ``database`` object at the top level.
    """
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f, object_pairs_hook=unique_keys)
    except FileNotFoundError:
        raise DataError(f"{path}: {what} not found") from None
    except (UnicodeDecodeError, ValueError) as exc:  # JSONDecodeError is a ValueError
        raise DataError(f"{path}: not a JSON file ({exc})") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror or exc})") from None
    database = data.get("database") if isinstance(data, dict) else None
    if not isinstance(database, dict):
        raise DataError(f"{path}: expected {{\"database\": {{video_id: record}}}} at the top level")
    return database


def video_fields(where, record, annotations, subsets, positive_duration):
    """(duration, subset, annotation list) of a video ``record``, checked: an object with
    ``duration`` (seconds, > 0 if ``positive_duration`` else >= 0), ``subset`` (one of
    ``subsets``) and the list under the key ``annotations``. DataError prefixed ``where``."""
    if not isinstance(record, dict):
        raise DataError(f"{where}: expected an object, got {type(record).__name__}")
    missing = [k for k in ("duration", "subset", annotations) if k not in record]
    if missing:
        raise DataError(f"{where}: missing {', '.join(repr(k) for k in missing)}")
    duration = number(record["duration"])
    if duration is None or duration < 0 or (positive_duration and duration == 0):
        raise DataError(f"{where}: 'duration' must be a number of seconds {'>' if positive_duration else '>='} 0, "
                        f"got {record['duration']!r}")
    if record["subset"] not in subsets:
        raise DataError(f"{where}: 'subset' must be one of {', '.join(subsets)}, got {record['subset']!r}")
    if not isinstance(record[annotations], list):
        raise DataError(f"{where}: {annotations!r} must be a list, got {type(record[annotations]).__name__}")
    return duration, record["subset"], record[annotations]


def segment_bounds(where, seg, allow_empty):
    """[start, end] seconds of an annotation's ``segment``: 0 <= start <= end (start < end unless
    ``allow_empty``); DataError prefixed ``where`` otherwise."""
    bounds = [number(x) for x in seg] if isinstance(seg, (list, tuple)) else []
    ordered = len(bounds) == 2 and None not in bounds and 0 <= bounds[0] <= bounds[1]
    if not ordered or (not allow_empty and bounds[0] == bounds[1]):
        rule = "<=" if allow_empty else "<"
        raise DataError(f"{where}: 'segment' must be [start, end] seconds with 0 <= start {rule} end, got {seg!r}")
    return bounds
