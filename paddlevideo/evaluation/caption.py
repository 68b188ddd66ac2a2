"""The captioning evaluator (``METRIC: {name: YouCook2CaptionMetric}``): generate a caption
for every segment of a ``YouCook2CaptionDataset`` with the framework's ``generate``
(greedy or beam search), score the corpus in one pycocoevalcap call, and at test write
``caption_metrics.json`` and ``captions.csv`` with the most-frequent-training-sentence
baseline scored beside the model.

METRIC keys: ``batch_size`` (segments generated together, default 32), ``beam_size``
(default: the framework's ``MODEL.beam_size``; 1 = greedy), ``baseline`` (default true:
also score the trivial captioner at test). Every rank generates every segment (the
validation set is small: 3,492 segments); rank 0 writes.
"""

import time

import paddle

from ..fields import VIDEO_KEYS
from ..loader.dataloader import collate_batch, to_tensors
from ..metrics.captioning import (
    CAPTIONS_FILE,
    METRIC_NAMES,
    METRICS_FILE,
    YouCook2CaptionMetric,
    caption_scores,
    most_frequent_sentence,
    scoring_tools,
)
from ..utils.errors import ConfigError, DataError
from ..utils.logger import get_logger
from ..utils.runtime import rank_and_world
from .base import Evaluator, results_dir
from .registry import EVALUATORS


@EVALUATORS.register(name="YouCook2CaptionMetric")
class CaptionEvaluator(Evaluator):
    """Generated captions scored against the annotation sentences (module docstring)."""

    names = METRIC_NAMES
    what = "captioning"
    best_hint = " (e.g. CIDEr with best_mode: max)"

    def __init__(self, metric_cfg, settings):
        super().__init__(metric_cfg, settings)
        self.batch_size = self.metric_cfg.get("batch_size", 32)
        self.beam_size = self.metric_cfg.get("beam_size")
        for key, value in (("batch_size", self.batch_size), ("beam_size", self.beam_size)):
            if value is not None and (not isinstance(value, int) or value < 1):
                raise ConfigError(f"METRIC.{key} must be a positive integer, got {value!r}")
        self.score_baseline = bool(self.metric_cfg.get("baseline", True))

    def check(self, dataset):
        """Before any work: segments to caption, and pycocoevalcap and Java to score them."""
        if not getattr(dataset, "segments", None):
            raise DataError(f"{self.settings.where}: no segments to caption")
        scoring_tools()

    @paddle.no_grad()
    def generate(self, net, dataset):
        """{segment key: generated text}, in dataset order."""
        net.eval()
        out = {}
        for start in range(0, len(dataset), self.batch_size):
            indices = list(range(start, min(start + self.batch_size, len(dataset))))
            batch = to_tensors({k: v for k, v in collate_batch(dataset, indices).items() if k in VIDEO_KEYS})
            for i, ids in zip(indices, net.generate(batch, beam_size=self.beam_size)):
                out[dataset.segments[i].key] = dataset.tokenizer.decode(ids).strip() if ids else ""
        return out

    def evaluate(self, net, dataset):
        """Validation: {metric: score} (nothing written; the model is left in train mode).
        Test: the same, plus the files and the baseline (rank 0; None on other ranks)."""
        tic = time.perf_counter()
        generated = self.generate(net, dataset)
        get_logger().info("captioned %d segments in %.1f s (beam %s)", len(generated), time.perf_counter() - tic,
                          self.beam_size or net.beam_size)
        if self.settings.split != "test":
            net.train()
            return caption_scores(dataset.references(), generated)
        if rank_and_world()[0] != 0:
            return None
        baseline = most_frequent_sentence(dataset.training_sentences()) if self.score_baseline else None
        metric = YouCook2CaptionMetric(
            output_dir=results_dir(self.settings.output_dir, (METRICS_FILE, CAPTIONS_FILE)))
        metric.segments = [(s.key, s.video_id, s.index, s.start, s.end, s.sentence) for s in dataset.segments]
        metric.baseline_sentence = baseline
        metric.settings = {"subset": dataset.subset, "beam_size": self.beam_size or net.beam_size,
                           "max_decode_length": net.max_decode_length, "freeze_encoder": net.freeze_encoder}
        metric.update(list(generated), list(generated.values()))
        return metric.accumulate()
