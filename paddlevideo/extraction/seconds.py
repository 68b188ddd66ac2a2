"""Per-second features (``tools/extract_features.py --per_second``), for the step tasks
(COIN action segmentation, CrossTask step localization), whose labels live on seconds.

A video of ``duration`` seconds has T = ceil(duration) seconds; second t is [t, t+1) (the
last one may be partial). For each second:

- **regions**: the detector runs on one frame, the one at the middle of the part of the
  second inside the video; its boxes are ranked and de-duplicated as a clip's are
  (``select_regions``), up to ``boxes_per_second``;
- **action**: one window of 16 consecutive frames at the video's rate, centred on that
  middle (moved inside the video at its ends; a video shorter than 16 frames loop-pads
  its frames), through the 3D CNN: its pooled feature.

The record (one ``.npz`` per video, ``OUT/seconds/<video_id>.npz``; written atomically;
read and checked by ``paddlevideo.loader.steps.seconds.read_seconds``)::

    action        float32 [T, Da]    the action feature of the window centred on second t
    regions       float32 [T, R, Dv] the region features of second t's frame, zero-padded
    boxes         float32 [T, R, 4]  their boxes (x1, y1, x2, y2 pixels), zero-padded
    region_count  int64   [T]        boxes of second t (0: no frame decoded there)
    image_h, image_w  float32        the frames' size in pixels

R = ``boxes_per_second``. A second whose frame could not be decoded keeps its action
feature (its window reaches neighbouring frames) and has ``region_count`` 0.

Frames are decoded in passes of ``SECONDS_PER_PASS`` seconds (each seeks to its start),
so memory holds the frames of a few seconds, not of the whole video.
"""

import math

import numpy as np

from .frames import WINDOW_FRAMES, ClipFrames, decode_clips
from .inputs import ClipSpec
from .regions import select_regions

SECONDS_PER_PASS = 10


def second_count(duration):
    """T, the number of seconds of a video of ``duration`` seconds (the labels' default grid)."""
    return max(0, math.ceil(duration - 1e-9))


def plan_second(t, duration, fps):
    """The frames second ``t`` needs: ClipFrames with one detector frame and one action window."""
    end = min(t + 1.0, duration)
    middle = (t + end) / 2
    span = WINDOW_FRAMES / fps
    first = max(0.0, min(middle - span / 2, duration - span))
    times = [first + j / fps for j in range(WINDOW_FRAMES)]
    return ClipFrames(ClipSpec(float(t), end), [middle], [[x for x in times if x < duration] or times[:1]])


def finish_second(plan):
    """(region frame or None, 16 action frames or None) of a decoded ``plan``: missing frames
    dropped, the window loop-padded from the frames it got."""
    region = plan.region[0] if plan.region and plan.region[0] is not None else None
    got = [f for f in plan.windows[0] if f is not None] if plan.windows else []
    window = [got[j % len(got)] for j in range(WINDOW_FRAMES)] if got else None
    return region, window


class SecondsRecord:
    """Accumulates the seconds of one video into the record's arrays."""

    def __init__(self, seconds, boxes_per_second):
        self.seconds, self.boxes = seconds, boxes_per_second
        self.action = [None] * seconds
        self.regions = [None] * seconds  # (boxes [n, 4], features [n, Dv]) or None
        self.image_hw = None

    def arrays(self, action_dim, region_dim):
        T, R = self.seconds, self.boxes
        out = {"action": np.zeros((T, action_dim), np.float32), "regions": np.zeros((T, R, region_dim), np.float32),
               "boxes": np.zeros((T, R, 4), np.float32), "region_count": np.zeros(T, np.int64)}
        for t in range(T):
            if self.action[t] is not None:
                out["action"][t] = self.action[t]
            if self.regions[t] is not None:
                boxes, feats = self.regions[t]
                n = len(boxes)
                out["boxes"][t, :n], out["regions"][t, :n], out["region_count"][t] = boxes, feats, n
        h, w = self.image_hw or (0, 0)
        out["image_h"], out["image_w"] = np.float32(h), np.float32(w)
        return out


def extract_seconds(path, duration, fps, run_detector, run_actions, boxes_per_second, merge_iou):
    """The per-second record (dict of arrays, module docstring) of the video at ``path``.

    ``run_detector(images) -> [detections]`` and ``run_actions(windows) -> features [N, Da]``
    run the two models. Returns (record, decoded frames of the first pass).
    """
    T = second_count(duration)
    record, dims, decoded_first = SecondsRecord(T, boxes_per_second), [None, None], None
    for first in range(0, T, SECONDS_PER_PASS):
        plans = [plan_second(t, duration, fps) for t in range(first, min(first + SECONDS_PER_PASS, T))]
        decoded = decode_clips(path, plans, fps)
        decoded_first = decoded if decoded_first is None else decoded_first
        _run_pass(record, first, plans, run_detector, run_actions, boxes_per_second, merge_iou, dims)
    return record.arrays(dims[0] or 0, dims[1] or 0), decoded_first or 0


def _run_pass(record, first, plans, run_detector, run_actions, boxes_per_second, merge_iou, dims):
    finished = [finish_second(p) for p in plans]
    with_frame = [i for i, (region, _) in enumerate(finished) if region is not None]
    with_window = [i for i, (_, window) in enumerate(finished) if window is not None]
    detections = run_detector([finished[i][0] for i in with_frame]) if with_frame else []
    for i, det in zip(with_frame, detections):
        boxes, feats, _ = select_regions([det], boxes_per_second, merge_iou)
        record.regions[first + i] = (boxes, feats)
        dims[1] = feats.shape[1] if feats.ndim == 2 and feats.shape[1] else dims[1]
        record.image_hw = record.image_hw or finished[i][0].shape[:2]
    if with_window:
        feats = run_actions([finished[i][1] for i in with_window])
        dims[0] = feats.shape[1]
        for i, feat in zip(with_window, feats):
            record.action[first + i] = feat
