"""Text -> video search over a collection of videos (``tools/search.py``).

The collection is an MSR-VTT-format features LMDB (every video in it) or a pretraining
store (every clip), turned into the retrieval input of ``DATASET.test``'s settings. Each
video is encoded once (``encode_video``: the per-video stage of ``score_matrix``) and the
encodings can be kept in a cache file, so later queries over the same collection skip
that stage. A query is tokenized as the test captions are, encoded once, and scored
against every video by the matching head (``match_logits`` in passes of
``pair_batch_size`` pairs), on the dygraph backbone or the exported predictors
(``InferenceEngine``), both ``scoring.Scorer``: the same scores, by the same loop, as ``score_matrix``.
"""

from __future__ import annotations

import hashlib
import json
import os
import time

import numpy as np
import paddle

from ..loader.dataset.msrvtt_dataset import MSRVTTDataset
from ..loader.store.lmdb_store import HEADER_KEY, PretrainStore, reader_env
from ..utils.errors import ConfigError, DataError
from ..utils.logger import get_logger
from ..utils.outfile import atomic_output
from ..utils.progress import progress_bar
from .export import VIDEO_FIELDS
from .marked_file import check_target, read_arrays, read_meta, refusal
from .scoring import (
    DEFAULT_PAIR_BATCH_SIZE,
    TEXT_KEYS,
    _progress,
    _score_caption_block,
    captions_per_pass,
    distinct,
    encode_distinct_videos,
    record_digest,
    score_rows,
    video_chunk,
)

# The cache file's marker (in its __meta__ entry): a file without it is never read nor overwritten.
CACHE_FORMAT = "actbert-search-cache"
# 2: the marker, and copies of one video share one encoding (version 1 encoded each copy on its own).
CACHE_VERSION = 2
# DATASET.test keys that shape a video's input (the rest name files or the captions).
VIDEO_SETTINGS = ("max_region_num", "max_action_num", "global_region_from_all_boxes", "action_mask_all_ones",
                  "vision_feature_dim", "action_feature_dim")


# --------------------------------------------------------------------------- collections


def _is_store(path):
    """True for a pretraining store (shard-* directories, or one shard with its header)."""
    if os.path.isdir(path) and any(name.startswith("shard-") for name in os.listdir(path)):
        return True
    with reader_env(path, what="--videos").begin() as txn:
        return txn.get(HEADER_KEY) is not None


class StoreCollection(MSRVTTDataset):
    """Every clip of a pretraining store as a video to search (id = the clip id), built
    into retrieval's video input exactly as the MSR-VTT test videos are."""

    def _all_video_ids(self):
        self._store = PretrainStore(self.features_path)
        if len(self._store) == 0:
            raise DataError(f"--videos {self.features_path}: the store holds no clips")
        ids = [self._store.get(i).clip_id for i in range(len(self._store))]
        self._index = {vid: i for i, vid in enumerate(ids)}
        return ids

    def read_record(self, video_id):
        clip = self._store.get(self._index[video_id])
        return {"features": np.asarray(clip.image_feature, np.float32), "boxes": np.asarray(clip.boxes, np.float32),
                "action": np.asarray(clip.action_feature, np.float32), "image_h": float(clip.image_h),
                "image_w": float(clip.image_w)}


def open_collection(path, test_cfg):
    """The videos at ``path`` with the input settings of ``test_cfg`` (DATASET.test)."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise DataError(f"--videos {path}: not found")
    settings = {k: v for k, v in dict(test_cfg or {}).items() if k in (*VIDEO_SETTINGS, "max_seq_length",
                                                                       "vocab_file", "padding_index", "bert_model")}
    try:
        cls = StoreCollection if _is_store(path) else MSRVTTDataset
        return cls(file_path=None, features_path=path, **settings)
    except DataError as exc:
        raise DataError(f"--videos {path}: cannot read the collection: {exc}") from None


# --------------------------------------------------------------------------- queries


def read_queries_file(path):
    """Queries of a text file, one per non-empty line."""
    try:
        with open(path, encoding="utf-8") as f:
            queries = [line.strip() for line in f if line.strip()]
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"--queries {path}: cannot read ({type(exc).__name__}: {exc})") from None
    if not queries:
        raise DataError(f"--queries {path}: no queries in the file")
    return queries


def encode_queries(collection, queries):
    """Text input of each query, as the test captions are built: dict TEXT_KEYS -> int64 [Q, T].

    An empty query is an error; one longer than ``max_seq_length`` - 2 word pieces is cut
    to that many with a warning (the test captions are cut the same way); words outside the
    vocabulary (read as ``[UNK]``) are named in a warning, which says so when that is every
    word (the query is still scored, but its ranking then means nothing)."""
    tokenizer, length = collection.tokenizer, collection.max_seq_length
    rows = []
    for n, query in enumerate(queries, start=1):
        if not query or not query.strip():
            raise DataError(f"query {n} is empty")
        pieces = tokenizer.encode(query)
        if not pieces:
            raise DataError(f"query {n} ({query!r}) has no word the vocabulary knows")
        warn_unknown_words(tokenizer, n, query, pieces)
        if len(pieces) > length - 2:
            get_logger().warning("query %d has %d word pieces; keeping the first %d (max_seq_length=%d): %r",
                                 n, len(pieces), length - 2, length, query)
        rows.append(tokenizer.build_input_ids(pieces, length))
    return {"text_ids": np.stack([r[0] for r in rows]), "text_mask": np.stack([r[1] for r in rows]),
            "token_type_ids": np.stack([r[2] for r in rows])}


def warn_unknown_words(tokenizer, n, query, pieces):
    """Warn about the words of query ``n`` that the vocabulary ``tokenizer`` reads as [UNK]."""
    unknown = tokenizer.unknown_words(query)
    if not unknown:
        return
    if len(unknown) == len(pieces):
        get_logger().warning("query %d (%r): no word of it is in the vocabulary %s (all [UNK]); its ranking is "
                             "arbitrary", n, query, tokenizer.vocab_file)
    else:
        get_logger().warning("query %d: word(s) not in the vocabulary, read as [UNK]: %s", n,
                             ", ".join(repr(w) for w in unknown))


class QueriesAgainst:
    """Query text arrays (``encode_queries``) against a collection's videos, with the
    dataset interface ``score_matrix`` reads (no ground truth)."""

    def __init__(self, text, collection):
        self.text, self.collection = text, collection
        self.num_queries, self.num_videos = len(text["text_ids"]), collection.num_videos
        self.video_ids = collection.video_ids

    def query(self, i):
        return {k: v[i] for k, v in self.text.items()}

    def video(self, j):
        return self.collection.video(j)


# --------------------------------------------------------------------------- video encodings


def collection_fingerprint(collection, model_key):
    """What cached encodings depend on: the model, the video input settings and the LMDB
    data files of the collection (path, size, modification time)."""
    root = collection.features_path
    if os.path.isdir(root):
        paths = sorted(os.path.join(d, n) for d, _, names in os.walk(root) for n in names if n == "data.mdb")
    else:
        paths = [root]
    files = [(os.path.realpath(p), os.stat(p).st_size, os.stat(p).st_mtime_ns) for p in paths]
    settings = {k: getattr(collection, k, None) for k in VIDEO_SETTINGS}
    blob = json.dumps({"model": model_key, "settings": settings, "files": files}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def encode_collection(engine, collection, batch_size=64, progress=True):
    """Every video of ``collection`` encoded by the Scorer ``engine``: dict VIDEO_FIELDS -> NumPy arrays [V, ...].

    Videos with identical inputs are encoded once and share that encoding, so that
    ``score_queries`` sees them as copies and gives them equal scores.
    """

    def encode(**inputs):
        return engine.video_arrays(engine.encode_video(**inputs))

    with engine.session(), progress_bar(total=collection.num_videos, requested=progress, unit="video",
                                        desc="encoding videos", dynamic_ncols=True) as bar:
        parts, inverse = encode_distinct_videos(encode, collection, batch_size, bar)
    return {name: np.concatenate([p[name] for p, _ in parts])[inverse] for name in VIDEO_FIELDS}


def _legacy_cache(meta):
    """The version-1 cache layout, written before the marker existed: ours, to be replaced."""
    return meta.get("version") == 1 and {"fingerprint", "video_ids"} <= set(meta)


def load_cache(path, fingerprint, video_ids):
    """Cached encodings at ``path`` if they were made for ``fingerprint``, else None (a missing
    file, or a cache of ours for another model, collection or format version: it will be
    replaced). A file that is not our cache, or a damaged one, raises DataError."""
    if not path or not os.path.lexists(path):
        return None
    meta = read_meta(path, CACHE_FORMAT, "--cache", _legacy_cache)
    if (meta.get("version") != CACHE_VERSION or meta.get("fingerprint") != fingerprint
            or list(meta.get("video_ids", [])) != list(video_ids)):
        get_logger().info("video cache %s was made for another model or collection: encoding again", path)
        return None
    arrays = read_arrays(path, VIDEO_FIELDS, "--cache")
    if any(len(a) != len(video_ids) for a in arrays.values()):
        raise refusal("--cache", path, f"a damaged cache (its arrays do not hold the {len(video_ids)} videos it lists)")
    return arrays


def check_cache_target(path):
    """Before any encoding: ``path`` is missing (and writable there) or a cache of ours."""
    check_target(path, CACHE_FORMAT, "--cache", _legacy_cache)


def save_cache(path, fingerprint, video_ids, arrays):
    """Write the encodings atomically (a temporary file renamed into place), never over a
    file that is not a cache of ours (checked again just before the rename)."""
    meta = json.dumps({"format": CACHE_FORMAT, "version": CACHE_VERSION, "fingerprint": fingerprint,
                       "video_ids": list(video_ids)})
    with atomic_output(path, "--cache") as f:
        np.savez(f, __meta__=np.array(meta), **arrays)
        check_cache_target(path)


# --------------------------------------------------------------------------- scoring


def _rows(arrays, index):
    return {name: a[index] for name, a in arrays.items()}


def _distinct_rows(arrays, names):
    """``distinct`` of the rows of arrays [N, ...] (row n = the arrays' n-th entries)."""
    count = len(arrays[names[0]])
    return distinct(record_digest({k: arrays[k][n] for k in names}, names) for n in range(count))


def score_queries(engine, text, videos, pair_batch_size=DEFAULT_PAIR_BATCH_SIZE, progress=True, text_batch_size=16):
    """Scores of every query against the encoded videos: float32 [Q, V], by ``score_matrix``'s loop.

    engine: a Scorer; text: dict TEXT_KEYS -> int64 [Q, T]; videos: dict VIDEO_FIELDS -> arrays [V, ...].
    Identical queries and identical video encodings are scored once and share their scores
    (ties stay ties whatever the pass size).
    """
    text_first, text_inverse = _distinct_rows(text, TEXT_KEYS)
    video_first, video_inverse = _distinct_rows(videos, VIDEO_FIELDS)
    scores = _score_distinct(engine, _rows(text, text_first), _rows(videos, video_first), pair_batch_size, progress,
                             text_batch_size)
    return scores[text_inverse][:, video_inverse]


def _video_chunks(engine, videos, pair_batch_size):
    """Encoded videos (dict VIDEO_FIELDS -> arrays [V, ...]) as ``score_rows`` takes them: list of
    (the engine's encoding of ``video_chunk`` videos, their number)."""
    num_videos = len(videos["region"])
    chunk = video_chunk(num_videos, pair_batch_size)
    return [(engine.video_from_arrays(_rows(videos, slice(s, s + chunk))), min(chunk, num_videos - s))
            for s in range(0, num_videos, chunk)]


def _score_distinct(engine, text, videos, pair_batch_size, progress, text_batch_size):
    """``score_queries`` of distinct queries and videos."""
    num_queries, num_videos = len(text["text_ids"]), len(videos["region"])

    def captions(start, stop):
        return {k: paddle.to_tensor(text[k][start:stop]) for k in TEXT_KEYS}

    with engine.session(), _progress(num_queries * num_videos, progress) as bar:
        encoded = _video_chunks(engine, videos, pair_batch_size)
        return score_rows(engine, captions, num_queries, encoded, pair_batch_size, text_batch_size, bar)


def score_encoded(engine, prefix, num_captions, videos, pair_batch_size=DEFAULT_PAIR_BATCH_SIZE):
    """Scores of ``num_captions`` captions already encoded (``prefix``: ``engine.encode_text``'s
    output) against distinct encoded videos (dict VIDEO_FIELDS -> arrays [V, ...]): float32
    [num_captions, V], by the passes ``score_queries`` makes of one block of captions. For the
    two-stage rerank, which encodes each caption once for both stages and finds the distinct
    videos itself."""
    num_videos = len(videos["region"])
    per_pass = captions_per_pass(num_videos, pair_batch_size)
    with engine.session(), _progress(num_captions * num_videos, False) as bar:
        encoded = _video_chunks(engine, videos, pair_batch_size)
        return _score_caption_block(engine, prefix, num_captions, encoded, per_pass, bar)




def ranked(scores, video_ids, top):
    """The ``top`` best videos of each query: list (per query) of [(rank, video id, score)]."""
    out = []
    for row in scores:
        order = [j for j in np.argsort(-row, kind="stable")[:top] if row[j] > -np.inf]  # -inf: not reranked
        out.append([(r + 1, video_ids[j], float(row[j])) for r, j in enumerate(order)])
    return out


def search(engine, collection, queries, top=10, pair_batch_size=DEFAULT_PAIR_BATCH_SIZE, cache=None, model_key="",
           progress=True, video_batch_size=64, two_stage=None):
    """Rank the collection's videos for each query: every video by ActBERT, or with ``two_stage``
    (a ``two_stage.TwoStagePlan``) the first stage's top N only (``two_stage.last`` then holds
    the index kind, its timings and the candidates).

    Returns (results: list per query of [(rank, video id, score)], timings dict in seconds:
    ``encode_videos`` (0 when read from the cache), ``load_cache``, ``score``).
    """
    timings = {}
    start = time.perf_counter()
    fingerprint = collection_fingerprint(collection, model_key) if cache else None
    if cache:
        check_cache_target(cache)
    videos = load_cache(cache, fingerprint, collection.video_ids)
    timings["load_cache"] = time.perf_counter() - start
    if videos is None:
        start = time.perf_counter()
        videos = encode_collection(engine, collection, video_batch_size, progress)
        timings["encode_videos"] = time.perf_counter() - start
        if cache:
            save_cache(cache, fingerprint, collection.video_ids, videos)
    else:
        timings["encode_videos"] = 0.0
        get_logger().info("video encodings of %d videos read from %s", len(collection.video_ids), cache)
    text = encode_queries(collection, queries)
    start = time.perf_counter()
    if two_stage is None:
        scores = score_queries(engine, text, videos, pair_batch_size, progress)
    else:
        scores, two_stage.last = two_stage.scores(engine, text, videos, pair_batch_size, score_encoded,
                                                  collection_fingerprint(collection, model_key))
    timings["score"] = time.perf_counter() - start
    return ranked(scores, collection.video_ids, min(top, collection.num_videos)), timings


def pair_batch_size(flag_value, cfg):
    """Pairs per scoring pass: ``--pair_batch_size``, else ``DATASET.test_pair_batch_size``, else the
    default; ConfigError unless it is a whole number of at least 1 (0 used to mean the default)."""
    if flag_value is not None:
        value, name = flag_value, "--pair_batch_size"
    else:
        value = (cfg.get("DATASET") or {}).get("test_pair_batch_size", DEFAULT_PAIR_BATCH_SIZE)
        name = "DATASET.test_pair_batch_size"
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{name} must be a whole number of pairs, at least 1; got {value!r}")
    return value


def check_top(top):
    if int(top) < 1:
        raise ConfigError(f"--top must be at least 1, got {top}")
    return int(top)
