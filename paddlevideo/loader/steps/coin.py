"""COIN (Tang et al., CVPR 2019) step annotations: the official ``COIN.json`` and the
per-second labels of action segmentation.

Layout of ``COIN.json``::

    {"database": {video_id: {"duration": s, "class": task name, "recipe_type": task id,
        "subset": "training" | "testing", "video_url", "start", "end",
        "annotation": [{"id": "<global step id>", "segment": [start_s, end_s], "label"}]}}}

Rules (also in data/README.md, "COIN and CrossTask"):

- **Classes.** 0 is background. The global step ids (decimal strings) met anywhere in the
  file, both subsets, sorted as integers, are numbered 1, 2, ...: COIN's 778 steps give
  classes 1..778 and 779 classes in all. Train and test therefore share one map, and it does
  not depend on which videos have features. With ids 1..778 the class is the id itself.
- **Seconds.** Second ``t`` is the interval [t, t+1). An annotation [start, end] labels the
  seconds floor(start) <= t < ceil(end) (MMPT's aligner and CrossTask's ground truth use the
  same slice); seconds at or beyond ``num_seconds`` are dropped; a zero-length annotation at
  a whole second labels nothing.
- **Overlaps.** Annotations are applied in file order and a later one overwrites an earlier
  one where they overlap, as MMPT's aligner does, so our labels equal the labels behind the
  published MMPT-protocol figures. The file order, not the start time, decides.
"""

import math
from dataclasses import dataclass

import numpy as np

from ...utils.errors import DataError
from ..annotation_file import read_database, segment_bounds, video_fields

SUBSETS = ("training", "testing")
BACKGROUND = 0


@dataclass(frozen=True)
class Segment:
    """One annotated step: global step id (a decimal string), its interval in seconds, its text."""

    step: str
    start: float
    end: float
    label: str


@dataclass(frozen=True)
class CoinVideo:
    """One video of ``COIN.json``; ``segments`` in file order."""

    video_id: str
    task: str
    recipe_type: str
    subset: str
    duration: float
    segments: tuple


def _segment(where, entry):
    if not isinstance(entry, dict):
        raise DataError(f"{where}: expected an object with 'id', 'segment', 'label', got {type(entry).__name__}")
    step = entry.get("id")
    if isinstance(step, int) and not isinstance(step, bool):
        step = str(step)
    if not isinstance(step, str) or not step.isdigit():
        raise DataError(f"{where}: 'id' must be a global step id (a decimal string), got {step!r}")
    start, end = segment_bounds(where, entry.get("segment"), allow_empty=True)
    return Segment(str(int(step)), start, end, str(entry.get("label", "")))


def _video(path, video_id, record):
    where = f"{path}: video {video_id!r}"
    duration, subset, annotations = video_fields(where, record, "annotation", SUBSETS, positive_duration=False)
    segments = tuple(_segment(f"{where}, annotation {i}", e) for i, e in enumerate(annotations))
    return CoinVideo(str(video_id), str(record.get("class", "")), str(record.get("recipe_type", "")), subset,
                     duration, segments)


def read_coin(path):
    """The videos of ``COIN.json`` at ``path``: {video_id: CoinVideo}, in file order.

    Raises DataError naming the file (and the video and annotation) when it is missing, not
    JSON, or a record breaks the layout above.
    """
    database = read_database(path, "COIN annotation file")
    return {vid: _video(path, vid, record) for vid, record in database.items()}


def step_classes(videos):
    """{global step id: class} over ``videos`` (all subsets): ids sorted as integers, classes from 1."""
    ids = {seg.step for video in videos.values() for seg in video.segments}
    return {step: i + 1 for i, step in enumerate(sorted(ids, key=int))}


def class_names(videos, classes):
    """Names of the classes, [C]: "background", then each step's label as first met in the file."""
    names = ["background"] + [""] * len(classes)
    for video in videos.values():
        for seg in video.segments:
            if not names[classes[seg.step]]:
                names[classes[seg.step]] = seg.label or seg.step
    return names


def second_labels(video, classes, num_seconds=None):
    """Class of every second of ``video``: int64 [T], T = ``num_seconds`` (the video's feature
    rows) or ceil(duration). Rules in the module docstring."""
    total = math.ceil(video.duration) if num_seconds is None else int(num_seconds)
    labels = np.full(max(total, 0), BACKGROUND, dtype=np.int64)
    for seg in video.segments:  # file order: a later annotation overwrites an earlier one
        labels[math.floor(seg.start):min(total, math.ceil(seg.end))] = classes[seg.step]
    return labels


def overlapped_seconds(video, num_seconds=None):
    """Number of seconds that more than one annotation of ``video`` labels (reported, not an error)."""
    total = math.ceil(video.duration) if num_seconds is None else int(num_seconds)
    cover = np.zeros(max(total, 0), dtype=np.int64)
    for seg in video.segments:
        cover[math.floor(seg.start):min(total, math.ceil(seg.end))] += 1
    return int((cover > 1).sum())
