"""MSR-VTT retrieval metrics from a score matrix.

A score matrix ``scores [Q, V]`` holds one score per (caption, video) pair, higher
meaning a better match; ``query_video_index [Q]`` is the index of each caption's true
video. Several captions may share a video.

Ranks are 1-based and ties are broken against the model: the true item is placed after
every wrong item with an equal score, so a constant score matrix gives the worst rank,
not the best. (The reference ranks by a softmax probability that saturates to exactly
1.0 for many pairs; counting ties in its favour would inflate R@K.)

- text→video: for caption q, ``rank = #{wrong videos v: s[q, v] >= s[q, true]} + 1``.
- video→text: for video v with correct captions C(v), the best-ranked correct caption
  counts: ``rank = #{wrong captions q: s[q, v] >= max_{c in C(v)} s[c, v]} + 1``.
  Videos with no caption are left out.

``MedR`` is the conventional median of the 1-based ranks (it may end in .5);
``MedR_floor`` is the reference's ``floor(median(rank0)) + 1`` on 0-based ranks, so
its published figures (e.g. MedR 13.0) can be compared.
"""

import csv
import json
import math
import os

import numpy as np

from ..utils.errors import DataError
from ..utils.logger import get_logger
from ..utils.outfile import atomic_file, atomic_path
from .registry import METRICS

RECALL_AT = (1, 5, 10)


def output_names(prefix):
    """The names of a retrieval test's files for a dataset's ``prefix`` (``msrvtt`` -> ``msrvtt_metrics.json``, ...)."""
    return {"metrics": f"{prefix}_metrics.json", "t2v": f"{prefix}_ranks_t2v.csv", "v2t": f"{prefix}_ranks_v2t.csv",
            "histogram": f"{prefix}_ranks.png", "scores": f"{prefix}_scores.npy"}


MSRVTT_FILES = output_names("msrvtt")  # the names MSR-VTT's users and scripts read, kept exactly


def _check_inputs(scores, query_video_index):
    """Validate and convert; NaN scores become -inf so that they never rank well."""
    scores = np.asarray(scores, dtype=np.float64)
    index = np.asarray(query_video_index, dtype=np.int64)
    if scores.ndim != 2:
        raise DataError(f"retrieval scores must be a [queries, videos] matrix, got shape {scores.shape}")
    if index.shape != (scores.shape[0],):
        raise DataError(f"query_video_index must have shape [{scores.shape[0]}] (one per query), got {index.shape}")
    if index.size and (index.min() < 0 or index.max() >= scores.shape[1]):
        bad = int(index[(index < 0) | (index >= scores.shape[1])][0])
        raise DataError(f"query_video_index holds {bad}, outside the {scores.shape[1]} videos of the score matrix")
    return np.where(np.isnan(scores), -np.inf, scores), index


def text_to_video_ranks(scores, query_video_index):
    """1-based rank of each caption's true video, ties counted against the model.

    scores [Q, V], query_video_index [Q] -> int64 [Q] in 1..V.
    """
    scores, index = _check_inputs(scores, query_video_index)
    true = scores[np.arange(len(index)), index][:, None]  # [Q, 1]
    # ">=" counts the true video itself once; that is the +1 of a 1-based rank.
    return (scores >= true).sum(axis=1).astype(np.int64)


def video_to_text_ranks(scores, query_video_index):
    """1-based rank of each video's best-ranked correct caption, ties against the model.

    scores [Q, V], query_video_index [Q] -> (ranks int64 [V'], videos int64 [V']) for
    the V' videos that have at least one caption.
    """
    scores, index = _check_inputs(scores, query_video_index)
    num_queries, num_videos = scores.shape
    correct = np.zeros((num_queries, num_videos), dtype=bool)
    correct[np.arange(num_queries), index] = True
    videos = np.flatnonzero(correct.any(axis=0))
    best = np.where(correct, scores, -np.inf).max(axis=0)  # [V]: best correct caption's score
    wrong_above = ((scores >= best[None, :]) & ~correct).sum(axis=0)  # [V]
    return (wrong_above[videos] + 1).astype(np.int64), videos


def rank_summary(ranks):
    """R@1/5/10 (percent), MedR, MeanR and the reference's MedR_floor of 1-based ranks [N]."""
    ranks = np.asarray(ranks, dtype=np.float64)
    if ranks.size == 0:
        nan = float("nan")
        return {**{f"R@{k}": nan for k in RECALL_AT}, "MedR": nan, "MeanR": nan, "MedR_floor": nan, "count": 0}
    out = {f"R@{k}": float(100.0 * np.mean(ranks <= k)) for k in RECALL_AT}
    out["MedR"] = float(np.median(ranks))
    out["MeanR"] = float(np.mean(ranks))
    out["MedR_floor"] = float(math.floor(np.median(ranks - 1)) + 1)
    out["count"] = int(ranks.size)
    return out


def retrieval_metrics(scores, query_video_index):
    """Both directions' metrics: {"t2v": {...}, "v2t": {...}} (see ``rank_summary``)."""
    v2t_ranks, _ = video_to_text_ranks(scores, query_video_index)
    return {
        "t2v": rank_summary(text_to_video_ranks(scores, query_video_index)),
        "v2t": rank_summary(v2t_ranks),
    }


def format_table(metrics):
    """The metrics as a fixed-width text table, one row per direction."""
    cols = [f"R@{k}" for k in RECALL_AT] + ["MedR", "MedR_floor", "MeanR", "count"]
    lines = [f"{'':<12}" + "".join(f"{c:>11}" for c in cols)]
    names = {"t2v": "text->video", "v2t": "video->text"}
    for key, label in names.items():
        row = metrics[key]
        cells = [f"{row[c]:>11d}" if c == "count" else f"{row[c]:>11.2f}" for c in cols]
        lines.append(f"{label:<12}" + "".join(cells))
    lines.append("R@K in %; ranks 1-based, ties against the model; MedR_floor = floor(median(rank0)) + 1 (reference).")
    return "\n".join(lines)


def _write_csv(path, header, rows):
    with atomic_file(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)


def _plot_histogram(path, t2v_ranks, v2t_ranks, num_videos, num_queries):
    """Histograms of both directions' ranks on a log axis (ranks span 1..1000)."""
    import matplotlib

    matplotlib.use("Agg")  # no display on servers; must precede pyplot
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
    for ax, ranks, top, title in (
        (axes[0], t2v_ranks, num_videos, "text→video"),
        (axes[1], v2t_ranks, num_queries, "video→text"),
    ):
        bins = np.unique(np.geomspace(1, max(top, 1) + 1, num=min(40, max(top, 1) + 1)).astype(int))
        ax.hist(ranks, bins=bins if bins.size > 1 else 1, color="tab:blue", edgecolor="white")
        ax.set_xscale("log")
        ax.set_xlabel("rank of the correct item (1 = best)")
        ax.set_ylabel("count")
        ax.set_title(f"{title}: median {np.median(ranks) if len(ranks) else float('nan'):.1f}")
    fig.tight_layout()
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)


def write_outputs(output_dir, scores, query_video_index, video_ids=None, captions=None, names=MSRVTT_FILES,
                  extra=None):
    """Write metrics JSON, per-query and per-video rank CSVs and a rank histogram, named by
    ``names`` (``output_names``); ``extra`` (a dict, e.g. the two-stage search record) is added
    to the metrics as it is.

    scores [Q, V], query_video_index [Q]; ``video_ids`` [V] and ``captions`` [Q] label the
    CSV rows when given. Returns the metrics dict.
    """
    os.makedirs(output_dir, exist_ok=True)
    scores = np.asarray(scores)
    index = np.asarray(query_video_index, dtype=np.int64)
    t2v = text_to_video_ranks(scores, index)
    v2t, videos = video_to_text_ranks(scores, index)
    metrics = {"t2v": rank_summary(t2v), "v2t": rank_summary(v2t), **(extra or {})}
    with atomic_file(os.path.join(output_dir, names["metrics"]), "w", encoding="utf-8") as f:
        json.dump(metrics, f, indent=2, default=float)
    vid = (lambda j: video_ids[j]) if video_ids is not None else (lambda j: j)
    cap = (lambda q: captions[q]) if captions is not None else (lambda q: "")
    top1 = np.argmax(np.where(np.isnan(scores), -np.inf, scores), axis=1)
    _write_csv(
        os.path.join(output_dir, names["t2v"]),
        ["query", "video_id", "rank", "score", "top1_video_id", "caption"],
        [(q, vid(index[q]), int(t2v[q]), float(scores[q, index[q]]), vid(top1[q]), cap(q)) for q in range(len(index))],
    )
    _write_csv(
        os.path.join(output_dir, names["v2t"]),
        ["video", "video_id", "rank", "num_captions"],
        [(int(j), vid(j), int(r), int(np.sum(index == j))) for j, r in zip(videos, v2t)],
    )
    _plot_histogram(os.path.join(output_dir, names["histogram"]), t2v, v2t, scores.shape[1], scores.shape[0])
    return metrics


@METRICS.register()
class MSRVTTMetric:
    """Collects score rows and reports MSR-VTT retrieval metrics in both directions.

    PaddleVideo's ``actbert_msrvtt.yaml`` names it with ``METRIC: {name: MSRVTTMetric}``;
    ``data_size``, ``batch_size`` and ``log_interval`` are accepted for PaddleVideo's
    builder but unused (the score matrix is complete only at the end).

    Usage: ``update(scores [B, V], query_video_index [B])`` for each block of queries,
    then ``accumulate()`` -> metrics dict (logs a table, writes files to ``output_dir``).
    A subclass for another dataset sets ``title`` (the log's) and ``prefix`` (its files'
    names, ``output_names``).
    """

    title, prefix = "MSR-VTT", "msrvtt"

    @property
    def files(self):
        """{kind: file name} of this dataset's outputs (``output_names``)."""
        return output_names(self.prefix)

    def __init__(self, data_size=None, batch_size=None, log_interval=1, output_dir=None):
        self.data_size = data_size
        self.output_dir = output_dir
        self.video_ids = None
        self.captions = None
        self.extra = {}  # entries added to the metrics and their JSON as they are (the two-stage search record)
        self._scores, self._index = [], []

    def update(self, scores, query_video_index):
        """Add score rows [B, V] of B queries with their true video indices [B]."""
        scores = np.asarray(scores, dtype=np.float32)
        self._scores.append(scores.reshape(-1, scores.shape[-1]))
        self._index.append(np.asarray(query_video_index, dtype=np.int64).reshape(-1))

    def accumulate(self):
        """Metrics of every row so far; logs the table and writes outputs if ``output_dir``."""
        if not self._scores:
            raise DataError(f"{type(self).__name__}.accumulate: no scores were added (empty test set?)")
        scores, index = np.concatenate(self._scores), np.concatenate(self._index)
        if self.output_dir:
            metrics = write_outputs(self.output_dir, scores, index, self.video_ids, self.captions, self.files,
                                    self.extra)
        else:
            metrics = {**retrieval_metrics(scores, index), **self.extra}
        logger = get_logger()
        logger.info("%s retrieval, %d queries x %d videos:\n%s", self.title, *scores.shape, format_table(metrics))
        if self.output_dir:
            logger.info("metrics written to %s", os.path.join(self.output_dir, self.files["metrics"]))
        return metrics
