"""CrossTask step localization: the ordered assignment of steps to seconds and the recall
(``METRIC: {name: CrossTaskMetric}``; evaluated by ``evaluation/steps.py``).

Per video, scores [T, K] (second t, step k in task order) become log-probabilities over the
steps of each second (log-softmax); ``ordered_assignment`` then gives every step exactly one
second, t_1 < t_2 < ... < t_K, maximising the summed log-probabilities (dynamic programming,
O(T K)). A video with fewer seconds than steps (T < K) has no such assignment: there the
order is relaxed to t_1 <= ... <= t_K (steps may share a second), and such videos are
counted. A video with no second predicts nothing (-1).

Recall of a task = (steps whose predicted second lies inside a ground-truth interval of that
step, summed over the task's videos) / (steps present in the ground truth, summed over the
same videos); the reported figure is the plain mean over the tasks. Averaging per video
first (another paper's variant) gives other numbers and is not offered.
"""

import numpy as np

from ..utils.errors import DataError
from ..utils.logger import get_logger
from .registry import METRICS

NAMES_SHOWN = 10


def log_softmax(scores):
    """Log-softmax over the steps of each second: [T, K] -> [T, K] (float64)."""
    scores = np.asarray(scores, dtype=np.float64)
    shifted = scores - scores.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def _prefix_argmax(values, strict):
    """(best value, its earliest index) over seconds before t (strict) or up to t: [T] each."""
    best = np.maximum.accumulate(values)
    index = np.arange(len(values))
    new = np.concatenate([[True], values[1:] > best[:-1]])  # a later equal value keeps the earlier second
    arg = np.maximum.accumulate(np.where(new, index, 0))
    if strict:
        best = np.concatenate([[-np.inf], best[:-1]])
        arg = np.concatenate([[0], arg[:-1]])
    return best, arg


def ordered_assignment(scores, name="video"):
    """Second of each step: int64 [K], maximising sum_k scores[t_k, k] with t_1 < ... < t_K
    (t_1 <= ... <= t_K when T < K; all -1 when T = 0). Ties go to earlier seconds.

    ``scores``: finite [T, K], higher is better (the log-softmax outputs); ``name`` labels errors.
    """
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim != 2:
        raise DataError(f"{name}: step scores must be [seconds, steps], got shape {scores.shape}")
    seconds, steps = scores.shape
    if seconds == 0 or steps == 0:
        return np.full(steps, -1, dtype=np.int64)
    if not np.isfinite(scores).all():
        raise DataError(f"{name}: non-finite step scores")
    strict = seconds >= steps
    total, back = scores[:, 0].copy(), []
    for k in range(1, steps):  # total[t]: best sum of steps 0..k-1 with step k-1 at second t
        previous, arg = _prefix_argmax(total, strict)
        total = previous + scores[:, k]
        back.append(arg)
    assignment = np.empty(steps, dtype=np.int64)
    assignment[-1] = int(np.argmax(total))
    for k in range(steps - 1, 0, -1):
        assignment[k - 1] = back[k - 1][assignment[k]]
    return assignment


def uniform_assignment(num_seconds, num_steps):
    """The baseline without a model: step k at the middle second of the k-th of K equal parts, int64 [K]."""
    if num_seconds == 0:
        return np.full(num_steps, -1, dtype=np.int64)
    return ((np.arange(num_steps) + 0.5) * num_seconds / num_steps).astype(np.int64)


def localize(scores, name="video"):
    """Ordered assignment of the log-softmax of raw ``scores`` [T, K]: int64 [K]."""
    return ordered_assignment(log_softmax(scores) if np.size(scores) else scores, name)


@METRICS.register(name="CrossTaskMetric")
class CrossTaskRecall:
    """Per-task recall pooled over videos, then the plain mean over ``tasks``.

    ``update(task, video_id, assignment [K], truth bool [T, K])`` per test video, then
    ``accumulate()`` -> ``{"recall", "per_task": {task: %}, "matched": {task: n},
    "present": {task: n}, "videos", "short_videos": [ids with T < K], "missing_videos",
    "missing": ["task_vid"]}``. ``expected``: the test (task, vid) pairs, for the missing
    count; missing videos are outside every figure.
    """

    def __init__(self, tasks, expected=None):
        self.tasks = list(tasks)
        self.expected = [tuple(pair) for pair in expected] if expected is not None else None
        self._matched = dict.fromkeys(self.tasks, 0)
        self._present = dict.fromkeys(self.tasks, 0)
        self._seen, self._short = set(), []

    def update(self, task, video_id, assignment, truth):
        truth = np.asarray(truth, dtype=bool)
        assignment = np.asarray(assignment, dtype=np.int64).reshape(-1)
        if task not in self._matched:
            raise DataError(f"CrossTask video {video_id}: task {task} is not one of {', '.join(self.tasks)}")
        if truth.ndim != 2 or truth.shape[1] != len(assignment):
            raise DataError(f"CrossTask video {task}_{video_id}: {len(assignment)} predicted steps for a "
                            f"ground truth of shape {truth.shape}")
        if (task, video_id) in self._seen:
            raise DataError(f"CrossTask video {task}_{video_id} scored twice")
        self._seen.add((task, video_id))
        seconds, steps = truth.shape
        if seconds < steps:
            self._short.append(f"{task}_{video_id}")
        inside = (assignment >= 0) & (assignment < seconds)
        hits = truth[assignment[inside], np.flatnonzero(inside)]
        self._matched[task] += int(hits.sum())  # a hit needs the step in the truth, so only present steps count
        self._present[task] += int(truth.any(axis=0).sum())

    def accumulate(self):
        empty = [t for t in self.tasks if not self._present[t]]
        if empty:
            raise DataError(f"CrossTask recall: no ground-truth step in the scored videos of task(s) "
                            f"{', '.join(empty)}; the mean over tasks would be undefined")
        per_task = {t: 100.0 * self._matched[t] / self._present[t] for t in self.tasks}
        missing = [f"{t}_{v}" for t, v in self.expected if (t, v) not in self._seen] if self.expected else []
        metrics = {"recall": float(np.mean(list(per_task.values()))), "per_task": per_task,
                   "matched": dict(self._matched), "present": dict(self._present), "videos": len(self._seen),
                   "short_videos": list(self._short), "missing_videos": len(missing), "missing": missing}
        self._log(metrics)
        return metrics

    @staticmethod
    def _log(m):
        logger = get_logger()
        logger.info("CrossTask average recall %.2f%% over %d tasks, %d videos (%d shorter than their step count, "
                    "steps there may share a second)", m["recall"], len(m["per_task"]), m["videos"],
                    len(m["short_videos"]))
        if m["missing"]:
            shown = ", ".join(m["missing"][:NAMES_SHOWN]) + (", ..." if len(m["missing"]) > NAMES_SHOWN else "")
            logger.warning("CrossTask: %d test videos without features are outside these figures: %s",
                           m["missing_videos"], shown)
