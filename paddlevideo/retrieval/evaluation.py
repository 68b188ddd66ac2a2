"""The evaluators of the retrieval tasks, found by ``METRIC.name`` (``evaluation.EVALUATORS``).

- ``MSRVTTMetric``: every caption against every video (``score_matrix``); text->video and
  video->text R@1/5/10, MedR, MeanR. Validation reports them as flat names (``t2v_R1``, ...);
  the test writes the score matrix and the metric's files, named by the metric's ``prefix``
  (``msrvtt_scores.npy``, ``msrvtt_metrics.json``, ...).
- ``MSRVTTMCMetric``: multiple choice, each question's candidate captions against its video
  (``score_pairs``); accuracy.
"""

import os
import time

import numpy as np
import paddle

from ..evaluation.base import Evaluator, results_dir
from ..evaluation.registry import EVALUATORS
from ..metrics import multiple_choice as mc_metric
from ..metrics.registry import METRICS
from ..utils.errors import DataError
from ..utils.logger import get_logger
from ..utils.outfile import atomic_file
from ..utils.registry import build_from_cfg
from ..utils.runtime import join_process_group, rank_and_world
from .scoring import score_matrix, score_pairs
from .two_stage import two_stage_matrix

MC_SCORES_FILE = "msrvtt_mc_scores.npy"
_VALIDATION_NAMES = ("R@1", "R@5", "R@10", "MedR", "MeanR")
VALIDATION_METRICS = tuple(f"{d}_{n.replace('@', '')}" for d in ("t2v", "v2t") for n in _VALIDATION_NAMES)


def check_dataset(dataset, where="DATASET.test"):
    """Raise DataError when the test set is empty or a query's video is not in it."""
    index = np.asarray(dataset.query_video_index, dtype=np.int64)
    if dataset.num_queries == 0 or dataset.num_videos == 0:
        raise DataError(f"{where}: nothing to evaluate ({dataset.num_queries} queries, {dataset.num_videos} videos)")
    if index.shape != (dataset.num_queries,):
        raise DataError(f"{where}: query_video_index has shape {index.shape}, expected [{dataset.num_queries}]")
    bad = np.flatnonzero((index < 0) | (index >= dataset.num_videos))
    if bad.size:
        q = int(bad[0])
        raise DataError(
            f"{where}: query {q} ({dataset.captions[q]!r}) has no video in the features "
            f"({bad.size} such queries); expected an index in 0..{dataset.num_videos - 1}, got {int(index[q])}"
        )
    dataset.video(0)  # the first record read and checked now, not hours into scoring


def validation_metrics(backbone, dataset, pair_batch_size=256, text_batch_size=8):
    """Text->video and video->text R@1/5/10, MedR, MeanR of ``dataset`` as flat names
    (``t2v_R1``, ``t2v_MedR``, ``v2t_R5``, ...), for ``--validate`` and ``best_metric``.

    The same ``score_matrix`` and ``retrieval_metrics`` as ``--test``; nothing is written.
    """
    from ..metrics.retrieval import retrieval_metrics

    scores = score_matrix(backbone, dataset, pair_batch_size, text_batch_size, progress=False)
    metrics = retrieval_metrics(scores, dataset.query_video_index)
    return {f"{d}_{n.replace('@', '')}": float(metrics[d][n]) for d in ("t2v", "v2t") for n in _VALIDATION_NAMES}


class _ScoringEvaluator(Evaluator):
    """Evaluators that score the dataset whole on the backbone (``net.backbone``)."""

    def metric(self, dataset, batch_size):
        """The ``METRIC`` object (``METRICS``) that writes the test report."""
        s = self.settings
        metric = build_from_cfg(self.metric_cfg, METRICS, where="METRIC", data_size=dataset.num_queries,
                                batch_size=batch_size, output_dir=s.output_dir)
        metric.video_ids, metric.captions = list(dataset.video_ids), list(dataset.captions)
        return metric

    def save_scores(self, metric, metrics_file, name, scores):
        """Rank 0 of a test: ``scores`` saved as ``name`` beside the metric's ``metrics_file``, in
        ``output_dir`` or, when that holds an earlier test's results, a new folder (``results_dir``)."""
        metric.output_dir = results_dir(self.settings.output_dir, (metrics_file, name))
        with atomic_file(os.path.join(metric.output_dir, name)) as f:
            np.save(f, scores)


@EVALUATORS.register(name="MSRVTTMetric")
class RetrievalEvaluator(_ScoringEvaluator):
    """Every caption against every video; the retrieval metrics."""

    names = VALIDATION_METRICS
    what = "retrieval"
    baseline = True
    best_hint = " (e.g. t2v_R1 with best_mode: max)"

    def check(self, dataset):
        check_dataset(dataset, self.settings.where)

    def evaluate(self, net, dataset):
        """Validation: the flat metrics. Test: writes the score matrix ``<prefix>_scores.npy`` [Q, V]
        and the metric's files; the metrics dict on rank 0, None on the other ranks."""
        s = self.settings
        if s.split != "test":
            return validation_metrics(net.backbone, dataset, s.pair_batch_size, s.text_batch_size)
        logger = get_logger()
        metric = self.metric(dataset, s.text_batch_size)
        rank, world = join_process_group()
        logger.info(
            "scoring %d captions x %d videos (%d pairs) on %s, %d process(es), %d pairs per pass",
            dataset.num_queries, dataset.num_videos, dataset.num_queries * dataset.num_videos,
            paddle.get_device(), world, s.pair_batch_size,
        )
        start = time.perf_counter()
        if s.two_stage is not None:
            scores, record = two_stage_matrix(net.backbone, dataset, s.two_stage, s.pair_batch_size, world, s.progress)
        else:
            scores = score_matrix(
                net.backbone, dataset, pair_batch_size=s.pair_batch_size, text_batch_size=s.text_batch_size,
                amp=s.amp, amp_level=s.amp_level, progress=s.progress,
            )
        elapsed = time.perf_counter() - start
        logger.info("scored in %.1f s (%.1f pairs/s)", elapsed, scores.size / max(elapsed, 1e-9))
        if rank != 0:
            return None
        self.save_scores(metric, metric.files["metrics"], metric.files["scores"], scores)
        if s.two_stage is not None:
            metric.extra["search"] = record  # in the metrics JSON, written once
        metric.update(scores, dataset.query_video_index)
        return metric.accumulate()


@EVALUATORS.register(name="MSRVTTMCMetric")
class MultipleChoiceEvaluator(_ScoringEvaluator):
    """MSR-VTT multiple choice: each question's candidates against its video; accuracy."""

    what = "multiple-choice"

    def check(self, dataset):
        check_dataset(dataset, self.settings.where)

    def evaluate(self, net, dataset):
        """Writes ``msrvtt_mc_metrics.json``, ``msrvtt_mc_predictions.csv`` and the scores
        ``msrvtt_mc_scores.npy`` [N, C]; returns the metrics dict (on rank 0; every rank
        scores all questions, which are few)."""
        s = self.settings
        metric = self.metric(dataset, s.pair_batch_size)
        get_logger().info("scoring %d questions x %d candidates (%d videos) on %s", dataset.num_questions,
                          dataset.num_choices, dataset.num_videos, paddle.get_device())
        start = time.perf_counter()
        scores = score_pairs(net.backbone, dataset, dataset.pairs(), pair_batch_size=s.pair_batch_size,
                             amp=s.amp, amp_level=s.amp_level, progress=s.progress)
        scores = scores.reshape(dataset.num_questions, dataset.num_choices)
        get_logger().info("scored in %.1f s", time.perf_counter() - start)
        if rank_and_world()[0] != 0:
            return None
        self.save_scores(metric, mc_metric.METRICS_FILE, MC_SCORES_FILE, scores)
        metric.question_ids = list(dataset.question_ids)
        metric.video_ids = [dataset.video_ids[j] for j in dataset.question_video]
        metric.update(scores, dataset.answers)
        return metric.accumulate()
