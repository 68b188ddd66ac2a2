"""Two-stage search: the first stage's index picks N videos per query, ActBERT reranks them.

The engine is anything with retrieval's scoring interface (``encode_text``,
``video_from_arrays``, ``match_logits``): the dygraph backbone's or the exported
predictor's. Videos are their cached encodings (dict of encoded fields -> arrays [V, ...]).
"""

from __future__ import annotations

import numpy as np
import paddle

from ..fields import TEXT_KEYS


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


def first_stage_candidates(engine, stage, index, text, n, settings=None, text_batch_size=64):
    """(first-stage scores float32 [Q, n], candidate videos int64 [Q, n]) from the index."""
    from .index import search_index

    vectors = []
    with paddle.no_grad():
        for start in range(0, len(text["text_ids"]), text_batch_size):
            rows = slice(start, start + text_batch_size)
            vectors.append(stage.text_vectors(engine.encode_text(**_text_tensors(text, rows))))
    return search_index(index, np.concatenate(vectors), n, settings)


def rerank(score_fn, engine, text, videos, candidates, pair_batch_size, num_videos):
    """ActBERT's scores of each query's candidates, -inf elsewhere: float32 [Q, V].

    score_fn(engine, text, videos, pair_batch_size, progress) -> [Q', V'] is the exhaustive
    scorer (the search's), run per query on its candidates in collection order, so that with
    every video a candidate the scores are those of the exhaustive search."""
    scores = np.full((len(candidates), num_videos), -np.inf, dtype=np.float32)
    for q, cand in enumerate(candidates):
        picked = np.unique(np.asarray(cand, np.int64))
        picked = picked[picked >= 0]  # faiss marks missing results with -1
        row = {k: np.asarray(text[k])[q : q + 1] for k in TEXT_KEYS}
        scores[q, picked] = score_fn(engine, row, _rows(videos, picked), pair_batch_size, False)[0]
    return scores
