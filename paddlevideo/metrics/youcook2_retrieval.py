"""YouCook2 zero-shot text->video retrieval: the MSR-VTT computation and files, named
``youcook2_*`` (t2v and v2t R@1/5/10, MedR = median rank, MeanR; ranks from 1, ties resolved
as for MSR-VTT) over the clips of MIL-NCE's ``validation_youcook.csv``, one query (its
sentence) per clip."""

from .registry import METRICS
from .retrieval import MSRVTTMetric


@METRICS.register()
class YouCook2RetrievalMetric(MSRVTTMetric):
    """``METRIC: {name: YouCook2RetrievalMetric}``; see ``MSRVTTMetric`` (the same outputs, named
    ``youcook2_metrics.json``, ``youcook2_ranks_t2v.csv``, ...)."""

    title, prefix = "YouCook2", "youcook2"
