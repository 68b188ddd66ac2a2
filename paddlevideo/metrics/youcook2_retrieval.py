"""YouCook2 zero-shot text->video retrieval: the MSR-VTT computation and files (t2v and v2t
R@1/5/10, MedR = median rank, MeanR; ranks from 1, ties resolved as for MSR-VTT) over the
clips of MIL-NCE's ``validation_youcook.csv``, one query (its sentence) per clip."""

from .registry import METRICS
from .retrieval import MSRVTTMetric


@METRICS.register()
class YouCook2RetrievalMetric(MSRVTTMetric):
    """``METRIC: {name: YouCook2RetrievalMetric}``; see ``MSRVTTMetric`` (same outputs)."""
