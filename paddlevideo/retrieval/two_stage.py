"""Two-stage search: the first stage's index picks N videos per query, ActBERT reranks them.

The engine is anything with retrieval's scoring interface (``encode_text``,
``video_from_arrays``, ``match_logits``): the dygraph backbone's or the exported
predictor's. Videos are their cached encodings (dict of encoded fields -> arrays [V, ...]).
"""

from __future__ import annotations

import dataclasses
import os
import time

import numpy as np
import paddle

from ..fields import TEXT_KEYS, VIDEO_FIELDS
from ..utils.errors import ConfigError
from .index import IndexSettings, index_kind
from .scoring import distinct, record_digest


def _rows(arrays, index):
    return {name: a[index] for name, a in arrays.items()}


def _text_tensors(text, rows):
    return {k: paddle.to_tensor(np.asarray(text[k])[rows]) for k in TEXT_KEYS}


def pair_scores(engine, text, videos, queries, candidates, pair_batch_size=1024):
    """ActBERT's scores (matching logit difference) of listed pairs: float32 [B, K].

    text: dict TEXT_KEYS -> int64 [Q, T]; videos: encoded videos [V, ...]; queries int64 [B]
    (rows of ``text``); candidates int64 [B, K] (rows of ``videos``). Each pass encodes its
    captions once and gathers only the videos its pairs use. The teacher of the first stage."""
    queries, candidates = np.asarray(queries, np.int64), np.asarray(candidates, np.int64)
    k = candidates.shape[1]
    per_pass = max(1, int(pair_batch_size) // k)
    out = np.zeros(candidates.shape, dtype=np.float32)
    with paddle.no_grad():
        for start in range(0, len(queries), per_pass):
            block = slice(start, start + per_pass)
            prefix = engine.encode_text(**_text_tensors(text, queries[block]))
            used, video_index = np.unique(candidates[block].reshape(-1), return_inverse=True)
            text_index = np.repeat(np.arange(len(queries[block])), k)
            logits = engine.match_logits(prefix, engine.video_from_arrays(_rows(videos, used)),
                                         paddle.to_tensor(text_index.astype(np.int64)),
                                         paddle.to_tensor(video_index.astype(np.int64))).astype("float32")
            out[block] = (logits[:, 0] - logits[:, 1]).numpy().reshape(-1, k)
    return out


class VideoDigests:
    """Content digests of encoded videos (dict VIDEO_FIELDS -> arrays [V, ...]) by row, each
    computed once: copies of a video share one encoding and are scored once per caption."""

    def __init__(self, videos):
        self.videos, self.known = videos, {}

    def __call__(self, j):
        if j not in self.known:
            self.known[j] = record_digest({k: self.videos[k][j] for k in VIDEO_FIELDS}, VIDEO_FIELDS)
        return self.known[j]


def rerank_caption(score_fn, engine, prefix, videos, candidates, pair_batch_size, digests):
    """ActBERT's scores of one encoded caption (``engine.encode_text`` of it alone) against its
    candidates: (videos int64 [K'], float32 [K']), the K' distinct valid ones in collection order.

    candidates int64 [K] (faiss marks missing results with -1); score_fn(engine, prefix, 1,
    distinct videos [U, ...], pair_batch_size) -> [1, U] (``search.score_encoded``); digests: a
    VideoDigests of ``videos``. The pass is the one the exhaustive scorer makes of these videos."""
    picked = np.unique(np.asarray(candidates, np.int64))
    picked = picked[picked >= 0]
    first, inverse = distinct(digests(int(j)) for j in picked)
    return picked, score_fn(engine, prefix, 1, _rows(videos, picked[first]), pair_batch_size)[0][inverse]


def rerank(score_fn, engine, text, videos, candidates, pair_batch_size, num_videos, timings=None):
    """ActBERT's scores of each query's candidates, -inf elsewhere: float32 [Q, V].

    candidates: int64 [Q, K], or pick(prefix) -> int64 [1, K] of a caption from its encoding
    (the first stage's search); each caption is encoded once, alone (as the exhaustive ``--test``
    encodes it), for both. score_fn: as ``rerank_caption``; with every video a candidate the
    scores are those of the exhaustive search. ``timings`` (a dict) gets the seconds of
    ``encode_captions``, ``first_stage`` (pick) and ``rerank`` added; ``timings["candidates"]``
    the candidates [Q, K] picked."""
    pick = candidates if callable(candidates) else None
    scores = np.full((len(text["text_ids"]), num_videos), -np.inf, dtype=np.float32)
    digests, picked_all, clock = VideoDigests(videos), [], {"encode_captions": 0.0, "first_stage": 0.0, "rerank": 0.0}
    with engine.session():
        for q in range(len(scores)):
            start = time.perf_counter()
            prefix = engine.encode_text(**_text_tensors(text, slice(q, q + 1)))
            middle = time.perf_counter()
            cand = pick(prefix)[0] if pick else candidates[q]
            ready = time.perf_counter()
            picked, row = rerank_caption(score_fn, engine, prefix, videos, cand, pair_batch_size, digests)
            scores[q, picked] = row
            picked_all.append(np.asarray(cand, np.int64))
            for key, value in zip(clock, (middle - start, ready - middle, time.perf_counter() - ready)):
                clock[key] += value
    if timings is not None:
        timings.update(clock, candidates=np.stack(picked_all) if picked_all else np.zeros((0, 0), np.int64))
    return scores


# --------------------------------------------------------------------------- the plan of a run


def check_rerank_top(value, where):
    """``rerank_top`` as an int >= 1, or None (exhaustive); ConfigError naming ``where`` otherwise."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{where} must be a whole number of videos, at least 1 (or null: exhaustive); got {value!r}")
    return value


@dataclasses.dataclass
class TwoStagePlan:
    """Two-stage scoring: the first stage (loaded, checked against the teacher), its file, N,
    the index settings and, for the search, the index cache file."""

    rerank_top: int
    stage: object
    path: str
    index_settings: IndexSettings
    index_cache: str | None = None
    last: dict | None = None  # the last search's index kind, timings and candidates

    def scores(self, engine, text, videos, pair_batch_size, score_fn, fingerprint=""):
        """``two_stage_scores`` of this plan (the search calls it through the plan it is given)."""
        return two_stage_scores(engine, self, text, videos, pair_batch_size, score_fn, fingerprint)

    def record(self, num_videos, outside=None, kind=None):
        """What the result files record of an approximate run."""
        n = min(self.rerank_top, num_videos)
        out = {"mode": "two-stage (approximate)" if n < num_videos else "two-stage (every video reranked: exact)",
               "rerank_top": n, "num_videos": int(num_videos), "first_stage": self.path,
               "first_stage_teacher_sha256": self.stage.meta.get("teacher_sha256"),
               "first_stage_holdout_recall": self.stage.meta.get("holdout_recall"),
               "index": kind or index_kind(num_videos, self.index_settings)}
        if outside is not None:
            out["queries_whose_video_was_not_reranked"] = int(outside)
        return out

    def describe(self, num_videos):
        n = min(self.rerank_top, num_videos)
        if n >= num_videos:
            return f"two-stage search with every video reranked ({num_videos}): the exhaustive ranking"
        return (f"APPROXIMATE: ActBERT reranked the top {n} of {num_videos} videos of the {self.stage.describe()}; "
                "videos outside them are not ranked (score -inf)")


SEARCH_KEYS = ("rerank_top", "file", "index")  # FIRST_STAGE keys of the search (the rest: training)


def check_section(section, where="FIRST_STAGE"):
    """ConfigError naming an unknown ``FIRST_STAGE`` key (a typo of ``rerank_top`` would
    otherwise fall back to the exhaustive search without a word)."""
    from .first_stage import FirstStageSettings

    known = {f.name for f in dataclasses.fields(FirstStageSettings)} | set(SEARCH_KEYS)
    unknown = sorted(set(dict(section or {})) - known)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}; known: {sorted(known)}")


def plan_from_config(section, teacher_sha256, where="FIRST_STAGE", rerank_top=None, path=None, index_cache=None):
    """The TwoStagePlan a ``FIRST_STAGE`` section (and flags, which win) asks for, or None when
    ``rerank_top`` is unset (exhaustive). The first-stage file is loaded and checked now (its
    teacher must be the model's weights, ``teacher_sha256``), before any scoring."""
    from ..utils.logger import get_logger
    from .first_stage import RECALL_TARGET, load_first_stage

    section = dict(section or {})
    check_section(section, where)
    n = check_rerank_top(rerank_top if rerank_top is not None else section.get("rerank_top"),
                         "--rerank-top" if rerank_top is not None else f"{where}.rerank_top")
    if n is None:
        return None
    path = path or section.get("file")
    if not path:
        raise ConfigError(f"rerank_top {n} needs the first stage: set {where}.file (or --first-stage) to the file "
                          "of tools/train_first_stage.py")
    if not os.path.isfile(path):
        raise ConfigError(f"first stage {path}: file not found")
    from .export import file_digest

    stage = load_first_stage(path, teacher_sha256)
    recall = stage.meta.get("holdout_recall")
    if recall is not None and recall < RECALL_TARGET:
        get_logger().warning("first stage %s: held-out recall %.3f is below %.2f: with N = 10%% of a collection some "
                             "of ActBERT's top 10 are not reranked; use a larger rerank_top", path, recall,
                             RECALL_TARGET)
    stage.meta["digest"] = file_digest(path)  # what a cached index was built from
    return TwoStagePlan(n, stage, str(path), IndexSettings.from_config(section.get("index")), index_cache)


def two_stage_scores(engine, plan, text, videos, pair_batch_size, score_fn, fingerprint=""):
    """ActBERT's scores of each query's first-stage top N, -inf elsewhere: (float32 [Q, V], info).

    The index is built over ``plan.stage``'s video vectors (or read from ``plan.index_cache``
    when it was made for ``fingerprint``: the collection's cache key). info: the index kind
    and the timings (``load_index``, ``build_index``, ``encode_captions``, ``first_stage``, ``rerank``).
    score_fn: as ``rerank_caption``."""
    from .index import index_fingerprint, load_or_build, search_index

    num_videos = len(videos["region"])
    key = index_fingerprint(plan.stage.meta.get("digest", plan.path), fingerprint, plan.index_settings)
    index, timings = load_or_build(plan.index_cache, key, lambda: plan.stage.video_vectors(videos), num_videos,
                                   plan.index_settings)

    def pick(prefix):
        return search_index(index, plan.stage.text_vectors(prefix), plan.rerank_top, plan.index_settings)[1]

    scores = rerank(score_fn, engine, text, videos, pick, pair_batch_size, num_videos, timings)
    return scores, {"index": "hnsw" if hasattr(index, "hnsw") else "flat", "timings_s": timings,
                    "candidates": timings.pop("candidates")}


def caption_arrays(dataset):
    """Every caption's text input: dict TEXT_KEYS -> int64 [Q, T]."""
    rows = [dataset.query(i) for i in range(dataset.num_queries)]
    return {k: np.stack([r[k] for r in rows]) for k in TEXT_KEYS}


def two_stage_matrix(backbone, dataset, plan, pair_batch_size, world=1, progress=True):
    """``main.py --test`` with ``FIRST_STAGE.rerank_top``: (scores float32 [Q, V], with -inf outside
    each caption's first-stage top N; the record for the metrics JSON). A caption whose video is
    not among its N is counted and logged (its rank is then the last)."""
    from ..utils.logger import get_logger
    from .scoring import as_scorer
    from .search import encode_collection, score_encoded

    if world > 1:
        raise ConfigError("two-stage --test (FIRST_STAGE.rerank_top) runs in one process; launch it without "
                          "paddle.distributed.launch")
    engine = as_scorer(backbone)
    start = time.perf_counter()
    videos = encode_collection(engine, dataset, progress=progress)
    encoding = time.perf_counter() - start
    scores, info = two_stage_scores(engine, plan, caption_arrays(dataset), videos, pair_batch_size, score_encoded)
    truth = np.asarray(dataset.query_video_index)
    outside = int(sum(truth[q] not in info["candidates"][q] for q in range(len(truth))))
    logger = get_logger()
    logger.info("%s", plan.describe(dataset.num_videos))
    if outside:
        logger.warning("%d of %d captions: the right video was not among the first stage's top %d (ranked last)",
                       outside, len(truth), plan.rerank_top)
    timings = {"encode_videos": encoding, **info["timings_s"]}
    return scores, {**plan.record(dataset.num_videos, outside, info["index"]), "timings_s": timings}
