"""The evaluators of the step tasks, found by ``METRIC.name`` (``EVALUATORS``).

- ``COINMetric`` (``COINDataset``): every window of a test video through
  ``ActBertSegmentation``, the logits of overlapping windows averaged per second, the argmax
  scored by ``COINFrameAccuracy`` (frame accuracy pooled over seconds, background included,
  beside the all-background baseline and the accuracy on non-background seconds).
- ``CrossTaskMetric`` (``CrossTaskDataset``, part test): every (second, step text) pair
  scored by ``ActBertStepLocalization``, log-softmax over steps per second, the ordered
  assignment by dynamic programming, the recall pooled per task then averaged over tasks;
  beside it the recall of the uniform assignment (no model).

Validation returns the values; the test also writes ``coin_metrics.json`` and
``coin_predictions.json`` (per video, the class of each second) or ``crosstask_metrics.json``
and ``crosstask_predictions.json`` (per video, the second of each step).
"""

import json
import os
import time

from ..loader.steps.windows import merge_windows
from ..metrics.coin import COINFrameAccuracy
from ..metrics.crosstask import CrossTaskRecall, localize, uniform_assignment
from ..utils.errors import DataError
from ..utils.logger import get_logger
from ..utils.outfile import atomic_output
from ..utils.runtime import rank_and_world
from .base import Evaluator, results_dir
from .registry import EVALUATORS

WINDOWS_PER_PASS = 64


def _needs(net, method, framework):
    if not hasattr(net, method):
        raise DataError(f"this evaluation needs MODEL.framework: {framework} (the model has no {method})")


def write_results(settings, files, payloads):
    """Write the test's JSON ``payloads`` as ``files`` in its results folder (never over an earlier test's)."""
    folder = results_dir(settings.output_dir, files)
    for name, payload in zip(files, payloads):
        with atomic_output(os.path.join(folder, name), "test results") as f:
            f.write(json.dumps(payload, indent=1).encode("utf-8"))
    get_logger().info("results: %s", ", ".join(os.path.join(folder, n) for n in files))


@EVALUATORS.register(name="COINMetric")
class COINEvaluator(Evaluator):
    """COIN frame accuracy of ``ActBertSegmentation`` on a ``COINDataset`` (test subset)."""

    names = ("frame_accuracy", "background_baseline", "non_background_accuracy")
    what = "COIN"
    baseline = True  # fine-tuning: the starting weights' figures are logged as epoch 0
    best_hint = " (e.g. non_background_accuracy with best_mode: max)"
    files = ("coin_metrics.json", "coin_predictions.json")

    def check(self, dataset):
        if not len(dataset.videos):
            raise DataError(f"{self.settings.where}: no COIN video with per-second features to evaluate")

    def evaluate(self, net, dataset):
        """Values (percent) on rank 0 (None elsewhere in a test); the test writes ``files``."""
        _needs(net, "predict_windows", "ActBertSegmentation")
        metric, predictions = COINFrameAccuracy(dataset.video_ids + dataset.missing), {}
        start = time.perf_counter()
        net.eval()
        try:
            for j, video_id in enumerate(dataset.video_ids):
                inputs, starts, labels = dataset.video(j)
                logits = merge_windows(net.predict_windows(inputs, WINDOWS_PER_PASS), starts, len(labels))
                metric.update(video_id, logits, labels)
                predictions[video_id] = logits.argmax(axis=1).tolist()
        finally:
            net.train()
        result = metric.accumulate()
        get_logger().info("COIN: %d videos scored in %.1f s", len(predictions), time.perf_counter() - start)
        values = {k: float(result[k]) for k in self.names if result[k] is not None}
        if self.settings.split != "test":
            return values
        if rank_and_world()[0] != 0:
            return None
        write_results(self.settings, self.files, (result, {"class_names": dataset.class_names,
                                                           "videos": predictions}))
        return result


@EVALUATORS.register(name="CrossTaskMetric")
class CrossTaskEvaluator(Evaluator):
    """CrossTask average recall of ``ActBertStepLocalization`` on a ``CrossTaskDataset`` (part test)."""

    names = ("recall", "uniform_recall")
    what = "CrossTask"
    baseline = True
    best_hint = " (e.g. recall with best_mode: max)"
    files = ("crosstask_metrics.json", "crosstask_predictions.json")

    def check(self, dataset):
        if dataset.part != "test":
            raise DataError(f"{self.settings.where}: CrossTask is evaluated on part: test, not {dataset.part}")

    def evaluate(self, net, dataset):
        """``recall`` and ``uniform_recall`` (percent); the test also writes ``files``."""
        _needs(net, "score_video", "ActBertStepLocalization")
        tasks = dataset.split["tasks"]
        expected = [(t, v) for t, vids in dataset.split["test"].items() for v in vids]
        recall, uniform, predictions = CrossTaskRecall(tasks, expected), CrossTaskRecall(tasks), {}
        start = time.perf_counter()
        net.eval()
        try:
            for j, (task, vid) in enumerate(dataset.videos):
                windows, texts, truth, _ = dataset.video(j)
                assignment = localize(net.score_video(windows, texts, self.settings.pair_batch_size), f"{task}_{vid}")
                recall.update(task, vid, assignment, truth)
                uniform.update(task, vid, uniform_assignment(*truth.shape), truth)
                predictions[f"{task}_{vid}"] = assignment.tolist()
        finally:
            net.train()
        result = recall.accumulate()
        get_logger().info("the uniform assignment (no model) on the same videos:")
        base = uniform.accumulate()
        result["uniform_recall"], result["uniform_per_task"] = base["recall"], base["per_task"]
        get_logger().info("CrossTask: %d videos scored in %.1f s", len(predictions), time.perf_counter() - start)
        values = {"recall": result["recall"], "uniform_recall": base["recall"]}
        if self.settings.split != "test":
            return values
        if rank_and_world()[0] != 0:
            return None
        write_results(self.settings, self.files, (result, {"split": dataset.split, "videos": predictions}))
        return result
