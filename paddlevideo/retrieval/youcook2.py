"""The YouCook2 zero-shot retrieval evaluator (``METRIC: {name: YouCook2RetrievalMetric}``):
MSR-VTT's (``score_matrix`` over every clip sentence x every clip, the same metrics and
files), preceded at test by the clip count and the projected scoring time.

The projection scores two small corners of the matrix (1 and 1 + k sentences against the
same ``pair_batch_size`` clips), so the per-sentence cost and the clips' encoding cost are
told apart, then scales them to Q x V. MIL-NCE's list has 3,350 clips, i.e. 11.2M pairs
for a cross-encoder such as ActBERT.
"""

import time

import paddle

from ..evaluation.registry import EVALUATORS
from ..utils.logger import get_logger
from ..utils.runtime import rank_and_world
from .evaluation import RetrievalEvaluator
from .scoring import score_matrix

STANDARD = "MIL-NCE's validation_youcook.csv: 3,350 clips of 436 videos; VideoCLIP 3,305, MMV 3,190: not comparable"


class _Corner:
    """The first ``queries`` sentences and ``videos`` clips of a retrieval set."""

    def __init__(self, dataset, queries, videos):
        self.dataset, self.num_queries, self.num_videos = dataset, queries, videos

    def query(self, i):
        return self.dataset.query(i)

    def video(self, j):
        return self.dataset.video(j)


def projected_seconds(backbone, dataset, settings, extra=4):
    """(projected seconds to score the whole set, probe pairs): from the times of two corners."""
    videos = min(dataset.num_videos, settings.pair_batch_size)
    small, large = 1, min(dataset.num_queries, 1 + extra)
    kw = dict(pair_batch_size=settings.pair_batch_size, text_batch_size=settings.text_batch_size, amp=settings.amp,
              amp_level=settings.amp_level, progress=False, distributed=False)
    times = []
    for count in (small, large):
        tic = time.perf_counter()
        score_matrix(backbone, _Corner(dataset, count, videos), **kw)
        times.append(time.perf_counter() - tic)
    per_row = (times[1] - times[0]) / (large - small) if large > small else times[0]
    per_row = max(per_row, 1e-9)
    encode = max(times[0] - per_row, 0.0)  # the corner's clips encoded once
    scale = dataset.num_videos / videos
    world = rank_and_world()[1]
    return (dataset.num_queries * per_row * scale) / world + encode * scale, (small + large) * videos


@EVALUATORS.register(name="YouCook2RetrievalMetric")
class YouCook2RetrievalEvaluator(RetrievalEvaluator):
    """MSR-VTT's retrieval evaluator over YouCook2 clips; at test, the clip count and the
    projected time are logged before the scoring starts."""

    def evaluate(self, net, dataset):
        if self.settings.split == "test":
            clips = getattr(dataset, "clips", ())
            logger = get_logger()
            logger.info("YouCook2 retrieval: %d clips of %d videos, %d sentence queries (%s)", dataset.num_videos,
                        len({c.video_id for c in clips}), dataset.num_queries, STANDARD)
            seconds, probe = projected_seconds(net.backbone, dataset, self.settings)
            logger.info("projected scoring time for %d x %d = %d pairs on %s: %.0f s (%.1f h), from a probe of %d "
                        "pairs", dataset.num_queries, dataset.num_videos, dataset.num_queries * dataset.num_videos,
                        paddle.get_device(), seconds, seconds / 3600, probe)
        return super().evaluate(net, dataset)
