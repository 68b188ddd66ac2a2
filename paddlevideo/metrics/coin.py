"""COIN action segmentation: frame accuracy over seconds (``METRIC: {name: COINMetric}``;
evaluated by ``evaluation/steps.py``).

The main figure is MMPT's: 1 - wrong / all over the seconds of every test video pooled,
background included. Under that protocol predicting background everywhere scores about
58.9% on COIN's test set (fairseq #4940), above ActBERT's published 57.0, so it is always
printed beside the all-background baseline on the same seconds and the accuracy on the
non-background seconds. Videos the caller expected but never scored (no features) are
counted and named, not skipped silently; they are outside every figure.
"""

import numpy as np

from ..utils.errors import DataError
from ..utils.logger import get_logger
from .registry import METRICS

BACKGROUND = 0
NAMES_SHOWN = 10


def _percent(correct, count):
    return 100.0 * correct / count if count else None


@METRICS.register(name="COINMetric")
class COINFrameAccuracy:
    """Pooled per-second accuracy. ``update(video_id, prediction, target)`` per video (either
    classes int [T] or scores [T, C], argmax taken), then ``accumulate()`` ->
    ``{"frame_accuracy", "background_baseline", "non_background_accuracy"`` (percent; the last
    None without step seconds), ``"seconds", "background_seconds", "videos",
    "missing_videos", "missing"}``. ``expected``: the test video ids, for the missing count.
    """

    def __init__(self, expected=None):
        self.expected = list(expected) if expected is not None else None
        self._expected = set(self.expected or ())
        self._seen = {}
        self._correct = self._seconds = self._background = self._step_correct = 0

    def update(self, video_id, prediction, target):
        target = np.asarray(target, dtype=np.int64).reshape(-1)
        prediction = np.asarray(prediction)
        if prediction.ndim == 2:
            if not np.isfinite(prediction).all():
                raise DataError(f"COIN video {video_id}: non-finite scores")
            prediction = prediction.argmax(axis=1)
        if prediction.shape != target.shape:
            raise DataError(f"COIN video {video_id}: {prediction.shape[0]} predicted seconds "
                            f"for {target.shape[0]} labelled ones")
        if video_id in self._seen:
            raise DataError(f"COIN video {video_id} scored twice")
        if self.expected is not None and video_id not in self._expected:
            raise DataError(f"COIN video {video_id} is not one of the {len(self.expected)} test videos")
        hit = prediction == target
        step = target != BACKGROUND
        self._seen[video_id] = len(target)
        self._correct += int(hit.sum())
        self._seconds += len(target)
        self._background += int((~step).sum())
        self._step_correct += int(hit[step].sum())

    def accumulate(self):
        if not self._seconds:
            raise DataError("COIN frame accuracy: no second was scored (no test video with features?)")
        missing = [v for v in self.expected if v not in self._seen] if self.expected is not None else []
        metrics = {
            "frame_accuracy": _percent(self._correct, self._seconds),
            "background_baseline": _percent(self._background, self._seconds),
            "non_background_accuracy": _percent(self._step_correct, self._seconds - self._background),
            "seconds": self._seconds, "background_seconds": self._background,
            "videos": len(self._seen), "missing_videos": len(missing), "missing": missing,
        }
        self._log(metrics)
        return metrics

    @staticmethod
    def _log(m):
        step = "n/a" if m["non_background_accuracy"] is None else f"{m['non_background_accuracy']:.2f}%"
        get_logger().info("COIN frame accuracy %.2f%% over %d seconds of %d videos (all-background baseline "
                          "%.2f%%, accuracy on non-background seconds %s)", m["frame_accuracy"], m["seconds"],
                          m["videos"], m["background_baseline"], step)
        if m["missing"]:
            shown = ", ".join(m["missing"][:NAMES_SHOWN]) + (", ..." if len(m["missing"]) > NAMES_SHOWN else "")
            get_logger().warning("COIN: %d test videos without features are outside these figures: %s",
                                 m["missing_videos"], shown)
