"""``main.py --test``: MSR-VTT retrieval evaluation of a trained ActBERT checkpoint.

Everything a user can get wrong (the ``-w`` file, the dataset, the config against the
checkpoint) is checked before scoring starts, since a full evaluation takes hours on CPU.

Settings read: ``DATASET.test`` (the MSRVTTDataset), ``PIPELINE.test`` (may be empty),
``DATASET.test_batch_size`` (captions encoded together, default 1 as in PaddleVideo;
each is scored against every video), ``DATASET.test_pair_batch_size`` (caption-video
pairs per matching pass, default 256), ``METRIC`` (default MSRVTTMetric),
``output_dir`` (default ``output/<model_name>``).
"""

import copy
import os
import time

import numpy as np
import paddle

from ..metrics.registry import METRICS
from ..retrieval.scoring import DEFAULT_PAIR_BATCH_SIZE, score_matrix, score_pairs
from ..utils.errors import ConfigError, DataError, WeightsError
from ..utils.logger import get_logger
from ..utils.registry import build_from_cfg
from ..utils.runtime import join_process_group, rank_and_world, select_device

SCORES_FILE = "msrvtt_scores.npy"
MC_SCORES_FILE = "msrvtt_mc_scores.npy"

# What describe_checkpoint's answer means to a user who passed the file as -w.
_KIND_HINTS = {
    "backbone": "a backbone-only state dict (bare 'bert.'/'cls.' keys, as MODEL.backbone.pretrained loads)",
    "bert": "a BERT-only initialisation (text stream only; it belongs in MODEL.backbone.pretrained)",
    "optimizer": "an optimizer state (.pdopt), not model weights",
    "unknown": "a state dict whose keys are neither 'backbone.' nor 'bert.'/'cls.' ones",
}


def check_weights_file(weights, flag="-w", task="--test"):
    """Raise WeightsError unless ``weights`` is an existing full-model checkpoint.

    flag, task: how the command line that gave the file names it and what needs it."""
    from ..modeling.weights import describe_checkpoint

    if not weights:
        raise WeightsError(f"{task} needs the checkpoint to evaluate: pass it with {flag}")
    from ..utils.checkpoint import check_file

    check_file(weights, flag)
    kind = describe_checkpoint(weights)
    if kind != "full":
        what = _KIND_HINTS.get(kind, kind)
        raise WeightsError(
            f"{flag} {weights}: expected a full-model checkpoint ('backbone.'-prefixed keys, e.g. ActBERT.pdparams "
            f"or <model_name>_best.pdparams), got {what}"
        )


def build_test_model(model_cfg, weights, flag="-w"):
    """The framework of ``model_cfg`` with ``weights`` loaded, in eval mode.

    ``MODEL.backbone.pretrained`` is ignored: the checkpoint replaces every weight,
    and the initialisation file need not exist on the evaluation machine.
    """
    from ..modeling.builder import build_model
    from ..modeling.weights import load_model_weights

    model_cfg = copy.deepcopy(model_cfg)
    if isinstance(model_cfg.get("backbone"), dict):
        model_cfg["backbone"].pop("pretrained", None)
    model = build_model(model_cfg)
    # Raises WeightsError naming the first missing or mis-shaped parameter, so a
    # config that does not match the checkpoint fails here and not mid-scoring.
    try:
        load_model_weights(model, weights)
    except WeightsError as exc:
        raise WeightsError(f"MODEL.backbone of the config does not match {flag}: {exc}") from None
    model.eval()
    return model


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
    if hasattr(dataset, "video"):
        dataset.video(0)  # the first record read and checked now, not hours into scoring


def _build_metric(cfg, output_dir, dataset, batch_size, default="MSRVTTMetric"):
    metric_cfg = cfg.get("METRIC") or {"name": default}
    metric = build_from_cfg(
        metric_cfg, METRICS, where="METRIC", data_size=dataset.num_queries, batch_size=batch_size, output_dir=output_dir
    )
    metric.video_ids, metric.captions = list(dataset.video_ids), list(dataset.captions)
    return metric


def test_model(cfg, weights, amp=False, amp_level="O1", progress=True):
    """Score every MSR-VTT test caption against every test video and report metrics.

    Writes ``msrvtt_metrics.json``, per-query/per-video rank CSVs, a rank histogram
    and the score matrix ``msrvtt_scores.npy`` [Q, V] to the output directory (rank 0).
    Returns the metrics dict on rank 0, None on the other ranks.
    """
    from ..loader.builder import build_dataset

    logger = get_logger()
    output_dir = cfg.get("output_dir") or os.path.join("output", cfg.get("model_name", "ActBert"))
    check_weights_file(weights)
    # The data first (queries, vocabulary, the features LMDB and its first record): a bad
    # input fails in seconds, before the weights load.
    dataset = build_dataset(cfg.DATASET.test, (cfg.get("PIPELINE") or {}).get("test"), where="DATASET.test")
    check_dataset(dataset)
    select_device(cfg.get("device"))
    model = build_test_model(cfg.MODEL, weights)
    text_batch = int(cfg.DATASET.get("test_batch_size", 1))
    pair_batch = int(cfg.DATASET.get("test_pair_batch_size", DEFAULT_PAIR_BATCH_SIZE))
    if getattr(dataset, "task", None) == "multiple_choice":
        return test_multiple_choice(cfg, model, dataset, output_dir, pair_batch, amp, amp_level, progress)
    metric = _build_metric(cfg, output_dir, dataset, text_batch)
    rank, world = join_process_group()
    logger.info(
        "scoring %d captions x %d videos (%d pairs) on %s, %d process(es), %d pairs per pass",
        dataset.num_queries, dataset.num_videos, dataset.num_queries * dataset.num_videos,
        paddle.get_device(), world, pair_batch,
    )
    start = time.perf_counter()
    scores = score_matrix(
        model.backbone, dataset, pair_batch_size=pair_batch, text_batch_size=text_batch,
        amp=amp, amp_level=amp_level, progress=progress,
    )
    elapsed = time.perf_counter() - start
    logger.info("scored in %.1f s (%.1f pairs/s)", elapsed, scores.size / max(elapsed, 1e-9))
    if rank != 0:
        return None
    os.makedirs(output_dir, exist_ok=True)
    np.save(os.path.join(output_dir, SCORES_FILE), scores)
    metric.update(scores, dataset.query_video_index)
    return metric.accumulate()


def test_multiple_choice(cfg, model, dataset, output_dir, pair_batch, amp=False, amp_level="O1", progress=True):
    """MSR-VTT multiple choice: score each question's candidates against its video, report accuracy.

    Writes ``msrvtt_mc_metrics.json``, ``msrvtt_mc_predictions.csv`` and the scores
    ``msrvtt_mc_scores.npy`` [N, C]; returns the metrics dict (on rank 0; every rank
    scores all questions, which are few).
    """
    logger = get_logger()
    metric = _build_metric(cfg, output_dir, dataset, pair_batch, default="MSRVTTMCMetric")
    if not hasattr(metric, "question_ids"):
        raise ConfigError(f"METRIC {type(metric).__name__} is a retrieval metric; a multiple-choice "
                          "test set needs METRIC: {name: MSRVTTMCMetric}")
    logger.info("scoring %d questions x %d candidates (%d videos) on %s", dataset.num_questions,
                dataset.num_choices, dataset.num_videos, paddle.get_device())
    start = time.perf_counter()
    scores = score_pairs(model.backbone, dataset, dataset.pairs(), pair_batch_size=pair_batch, amp=amp,
                         amp_level=amp_level, progress=progress).reshape(dataset.num_questions, dataset.num_choices)
    logger.info("scored in %.1f s", time.perf_counter() - start)
    if rank_and_world()[0] != 0:
        return None
    os.makedirs(output_dir, exist_ok=True)
    np.save(os.path.join(output_dir, MC_SCORES_FILE), scores)
    metric.question_ids = list(dataset.question_ids)
    metric.video_ids = [dataset.video_ids[j] for j in dataset.question_video]
    metric.update(scores, dataset.answers)
    return metric.accumulate()
