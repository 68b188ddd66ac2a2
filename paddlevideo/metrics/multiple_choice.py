"""MSR-VTT multiple-choice accuracy from the matching scores of every candidate.

The answer of a question is the candidate caption with the highest score. Ties count
against the model, as in retrieval: a question is answered correctly only when the true
candidate scores *strictly* higher than every other one; otherwise the reported choice is
the best-scoring wrong candidate (the first one among equals). NaN scores rank last.
"""

import csv
import json
import os

import numpy as np

from ..utils.errors import DataError
from ..utils.logger import get_logger
from ..utils.outfile import atomic_file
from .registry import METRICS

METRICS_FILE = "msrvtt_mc_metrics.json"
PREDICTIONS_FILE = "msrvtt_mc_predictions.csv"


def choose(scores, answers):
    """(chosen candidate int64 [N], correct bool [N], tied bool [N]) of scores [N, C], answers [N].

    ``tied``: the true candidate shares the top score with a wrong one (counted as wrong).
    """
    scores = np.where(np.isnan(np.asarray(scores, dtype=np.float64)), -np.inf, scores)
    answers = np.asarray(answers, dtype=np.int64)
    if scores.ndim != 2 or answers.shape != (scores.shape[0],):
        raise DataError(f"multiple-choice scores must be [questions, candidates] with one answer per question, "
                        f"got scores {scores.shape} and answers {answers.shape}")
    if answers.size and (answers.min() < 0 or answers.max() >= scores.shape[1]):
        raise DataError(f"an answer index lies outside the {scores.shape[1]} candidates")
    rows = np.arange(len(answers))
    true = scores[rows, answers]
    wrong = scores.copy()
    wrong[rows, answers] = -np.inf
    best_wrong = wrong.max(axis=1)
    correct = true > best_wrong
    chosen = np.where(correct, answers, wrong.argmax(axis=1))
    return chosen.astype(np.int64), correct, true == best_wrong


@METRICS.register()
class MSRVTTMCMetric:
    """Accuracy of MSR-VTT multiple choice (``METRIC: {name: MSRVTTMCMetric}``).

    ``update(scores [B, C], answers [B])`` per block of questions, then ``accumulate()`` ->
    ``{"accuracy": %, "correct", "count", "ties"}``; with ``output_dir`` it writes
    ``msrvtt_mc_metrics.json`` and ``msrvtt_mc_predictions.csv`` (per question: id, video,
    answer, chosen candidate, correct, every candidate's score). ``question_ids`` and
    ``video_ids`` (one per question) label the rows when set. ``data_size``,
    ``batch_size``, ``log_interval``: accepted for PaddleVideo's builder, unused.
    """

    def __init__(self, data_size=None, batch_size=None, log_interval=1, output_dir=None):
        self.output_dir = output_dir
        self.question_ids = self.video_ids = self.captions = None
        self._scores, self._answers = [], []

    def update(self, scores, answers):
        scores = np.asarray(scores, dtype=np.float32)
        self._scores.append(scores.reshape(-1, scores.shape[-1]))
        self._answers.append(np.asarray(answers, dtype=np.int64).reshape(-1))

    def accumulate(self):
        if not self._scores:
            raise DataError("MSRVTTMCMetric.accumulate: no scores were added (empty test set?)")
        scores, answers = np.concatenate(self._scores), np.concatenate(self._answers)
        chosen, correct, tied = choose(scores, answers)
        metrics = {"accuracy": 100.0 * float(correct.mean()), "correct": int(correct.sum()),
                   "count": int(len(answers)), "ties": int(tied.sum())}
        logger = get_logger()
        logger.info("MSR-VTT multiple choice: accuracy %.2f%% (%d of %d questions; %d ties counted as wrong)",
                    metrics["accuracy"], metrics["correct"], metrics["count"], metrics["ties"])
        if self.output_dir:
            self._write(scores, answers, chosen, correct, metrics)
        return metrics

    def _write(self, scores, answers, chosen, correct, metrics):
        os.makedirs(self.output_dir, exist_ok=True)
        with atomic_file(os.path.join(self.output_dir, METRICS_FILE), "w", encoding="utf-8") as f:
            json.dump(metrics, f, indent=2)
        qids = self.question_ids if self.question_ids is not None else range(len(answers))
        vids = self.video_ids if self.video_ids is not None else [""] * len(answers)
        with atomic_file(os.path.join(self.output_dir, PREDICTIONS_FILE), "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(["question_id", "video_id", "answer", "chosen", "correct",
                             *[f"score_{c}" for c in range(scores.shape[1])]])
            for q, (qid, vid) in enumerate(zip(qids, vids)):
                writer.writerow([qid, vid, int(answers[q]), int(chosen[q]), int(correct[q]),
                                 *[f"{s:.6g}" for s in scores[q]]])
        get_logger().info("metrics written to %s, predictions to %s", os.path.join(self.output_dir, METRICS_FILE),
                          os.path.join(self.output_dir, PREDICTIONS_FILE))
