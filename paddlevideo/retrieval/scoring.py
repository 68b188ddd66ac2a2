"""The MSR-VTT score matrix: every caption against every video, by the matching head.

The reference runs the whole network (all streams, all heads) once per (caption,
video) pair. The score of a pair only needs the matching logits, and most of the
work does not depend on the pair:

- the text stream up to the first connection layer, and that layer's text
  projections, depend on the caption only (``backbone.encode_text``: once per caption);
- the region stream up to the first connection layer and its projections there, and
  the whole action stream (it reads neither text nor regions) with its pooled output,
  depend on the video only (``backbone.encode_video``: once per video);
- what is left (the text-region exchange of the connection layers, the remaining text
  and region layers on the first token only after the last connection, poolers,
  ``cls.seq_relationship``) runs on many pairs per pass (``backbone.match_logits``).

The score is the matching logit difference ``logit[match] - logit[no match]``: it
orders pairs exactly as the reference's ``softmax(logits)[0]`` but does not saturate
to 1.0 (which would create ties in float32).

Batching: ``DATASET.test_batch_size`` captions (PaddleVideo: 1) are encoded together
and each is scored against every video, in passes of at most ``pair_batch_size``
(caption, video) pairs (``DATASET.test_pair_batch_size``, default 256).

Identical inputs, identical scores: a pair's float32 score depends on the pass it runs
in (kernel blocking and the padding cut change with the pass's shape, by ~1e-7), and
ties count against the model, so two identical (caption, video) pairs scored in
different passes would have their tie decided by float noise. Captions and videos are
therefore told apart by content (``record_digest``: the bytes of their input arrays),
each distinct pair is scored once, and duplicates get a copy of its score.
"""

import contextlib
import hashlib

import numpy as np
import paddle
import paddle.distributed as dist

from ..fields import TEXT_KEYS, VIDEO_FIELDS, VIDEO_KEYS
from ..utils import amp as amp_utils
from ..utils.errors import ConfigError
from ..utils.logger import get_logger
from ..utils.progress import progress_bar
from ..utils.runtime import rank_and_world

DEFAULT_PAIR_BATCH_SIZE = 256


class Scorer:
    """What scoring needs of a model; the dygraph backbone (``DygraphScorer``) and the exported
    predictors (``predictor.InferenceEngine``) both implement it, so ``score_matrix``,
    ``score_pairs`` and the search run on either unchanged.

    - ``encode_text(text_ids, token_type_ids, text_mask)``: int64 [B, T] each -> encoded captions;
    - ``encode_video(image_feat, image_loc, image_mask, action_feat, action_mask)`` -> encoded videos;
    - ``match_logits(text, video, text_index, video_index)``: matching logits float32 [P, 2]
      (a paddle Tensor) of the pairs (text_index[k], video_index[k]);
    - ``video_arrays(encoded)`` / ``video_from_arrays(arrays)``: encoded videos to and from a
      dict ``VIDEO_FIELDS`` -> NumPy arrays [B, ...] (the search's cache);
    - ``session()``: the context scoring runs in (inference mode).
    """

    kind = "scorer"

    def encode_text(self, text_ids, token_type_ids=None, text_mask=None):
        raise NotImplementedError

    def encode_video(self, image_feat, image_loc, image_mask=None, action_feat=None, action_mask=None):
        raise NotImplementedError

    def match_logits(self, text, video, text_index, video_index):
        raise NotImplementedError

    def video_arrays(self, encoded):
        raise NotImplementedError

    def video_from_arrays(self, arrays):
        raise NotImplementedError

    def session(self):
        return paddle.no_grad()


class DygraphScorer(Scorer):
    """``BertForMultiModalPreTraining`` (``encode_text``, ``encode_video``, ``match_logits``) as a Scorer."""

    kind = "dygraph"

    def __init__(self, backbone):
        self.backbone = backbone

    def encode_text(self, text_ids, token_type_ids=None, text_mask=None):
        return self.backbone.encode_text(text_ids, token_type_ids, text_mask)

    def encode_video(self, image_feat, image_loc, image_mask=None, action_feat=None, action_mask=None):
        return self.backbone.encode_video(image_feat, image_loc, image_mask, action_feat, action_mask)

    def match_logits(self, text, video, text_index, video_index):
        return self.backbone.match_logits(text, video, text_index, video_index)

    def video_arrays(self, encoded):
        from .export import flatten_video

        return {name: t.numpy() for name, t in zip(VIDEO_FIELDS, flatten_video(encoded))}

    def video_from_arrays(self, arrays):
        from .export import video_from_fields

        return video_from_fields([paddle.to_tensor(arrays[name]) for name in VIDEO_FIELDS])

    @contextlib.contextmanager
    def session(self):
        """Eval mode and no gradients; the backbone's training mode restored afterwards."""
        was_training = self.backbone.training
        self.backbone.eval()
        try:
            with paddle.no_grad():
                yield
        finally:
            if was_training:
                self.backbone.train()


def as_scorer(model):
    """``model`` itself when it is a Scorer, else the dygraph backbone it is, wrapped."""
    return model if isinstance(model, Scorer) else DygraphScorer(model)


def _stack(records, keys):
    """Stack per-sample numpy dicts into a dict of tensors [B, ...] in ``keys`` order."""
    return {k: paddle.to_tensor(np.stack([r[k] for r in records])) for k in keys}


def record_digest(record, keys):
    """A 128-bit digest of the arrays ``record[k]`` for ``keys`` (dtype, shape and bytes):
    equal digests mean identical model inputs."""
    digest = hashlib.blake2b(digest_size=16)
    for key in keys:
        array = np.ascontiguousarray(record[key])
        digest.update(f"{key}:{array.dtype.str}:{array.shape};".encode())
        digest.update(array.data)
    return digest.digest()


def distinct(digests):
    """(first position int64 [U], inverse int64 [N]) of a sequence of N digests, in
    first-seen order: item n is a copy of item ``first[inverse[n]]``."""
    ids, first, inverse = {}, [], []
    for n, key in enumerate(digests):
        if key not in ids:
            ids[key] = len(first)
            first.append(n)
        inverse.append(ids[key])
    return np.asarray(first, dtype=np.int64), np.asarray(inverse, dtype=np.int64)


def split_queries(num_queries, world_size, rank):
    """The contiguous block of query indices of ``rank``: int64 [~Q / world_size].

    Blocks differ in size by at most one, so all ranks finish at about the same time.
    """
    return np.array_split(np.arange(num_queries, dtype=np.int64), world_size)[rank]


def merge_blocks(blocks, sizes):
    """Concatenate gathered row blocks, each padded to the same height, cut to ``sizes``.

    blocks: list of [max(sizes), V] arrays, one per rank -> [sum(sizes), V].
    """
    return np.concatenate([np.asarray(b)[:n] for b, n in zip(blocks, sizes)], axis=0)


def _gather_rows(rows, num_queries, world_size):
    """All ranks' score rows [Q_r, V] -> the full matrix [Q, V] (identity for one process).

    ``all_gather`` needs equal shapes, so every block is padded to the largest one.
    """
    if world_size == 1:
        return rows
    sizes = [len(split_queries(num_queries, world_size, r)) for r in range(world_size)]
    padded = np.zeros((max(sizes), rows.shape[1]), dtype=np.float32)
    padded[: len(rows)] = rows
    gathered = []
    dist.all_gather(gathered, paddle.to_tensor(padded))
    return merge_blocks([g.numpy() for g in gathered], sizes)


def _autocast(amp, amp_level):
    """float16 autocast on GPU when asked (``utils.amp``'s plan); CPU runs float32."""
    plan = amp_utils.resolve_amp(amp, amp_level, "float16", paddle.get_device(), purpose="scoring")
    if plan.note:
        get_logger().warning(plan.note)
    return amp_utils.autocast(plan)


def _progress(total, enabled):
    """A bar counting pairs (rate and ETA) on a terminal, or a silent counter (see utils.progress)."""
    return progress_bar(total=total, requested=enabled, unit="pair", unit_scale=True, desc="scoring",
                        dynamic_ncols=True)


def encode_distinct_videos(encode, dataset, chunk, bar=None):
    """Encodings of the W distinct videos (by content) of ``dataset`` in chunks of ``chunk``.

    encode: stacked ``VIDEO_KEYS`` tensors [n, ...] -> an encoding of n videos. Returns (list
    of (encoding, n), inverse int64 [V]: the distinct video of each video). Videos are read
    once, in order; only one chunk's records are held at a time; ``bar`` counts videos read.
    """
    ids, inverse, out, pending = {}, np.zeros(dataset.num_videos, dtype=np.int64), [], []
    for j in range(dataset.num_videos):
        record = dataset.video(j)
        key = record_digest(record, VIDEO_KEYS)
        if key not in ids:
            ids[key] = len(ids)
            pending.append(record)
        inverse[j] = ids[key]
        if pending and (len(pending) == chunk or j == dataset.num_videos - 1):
            out.append((encode(**_stack(pending, VIDEO_KEYS)), len(pending)))
            pending = []
        if bar is not None:
            bar.update(1)
    return out, inverse


def video_chunk(num_videos, pair_batch_size):
    """Videos per chunk: one caption against one chunk fills a pass; when a chunk is smaller
    than a pass (few videos), several captions share a pass."""
    return max(1, min(num_videos, int(pair_batch_size)))


def captions_per_pass(num_videos, pair_batch_size):
    """Captions paired with one chunk of ``video_chunk`` videos in a pass of at most ``pair_batch_size`` pairs."""
    return max(1, int(pair_batch_size) // video_chunk(num_videos, pair_batch_size))


def score_rows(scorer, captions, num_rows, videos, pair_batch_size, text_batch_size, bar):
    """Scores of ``num_rows`` captions against encoded videos: float32 [num_rows, V].

    captions(start, stop): dict TEXT_KEYS -> tensors [stop - start, T] of those rows, encoded
    ``text_batch_size`` at a time; videos: list of (encoded chunk, n) of ``video_chunk`` videos.
    """
    num_videos = sum(n for _, n in videos)
    per_pass = captions_per_pass(num_videos, pair_batch_size)
    rows = np.zeros((num_rows, num_videos), dtype=np.float32)
    for start in range(0, num_rows, int(text_batch_size)):
        stop = min(start + int(text_batch_size), num_rows)
        prefix = scorer.encode_text(**captions(start, stop))
        rows[start:stop] = _score_caption_block(scorer, prefix, stop - start, videos, per_pass, bar)
    return rows


def _score_caption_block(backbone, prefix, num_captions, videos, per_pass, bar):
    """Scores of ``num_captions`` encoded captions against all videos: float32 [n, V].

    Each pass pairs ``per_pass`` captions with one chunk of videos (at most
    ``pair_batch_size`` pairs); indices are local to the prefix and the chunk.
    """
    columns = []
    for video, num_videos in videos:
        rows = []
        for c0 in range(0, num_captions, per_pass):
            n = min(per_pass, num_captions - c0)
            # Pair k is (caption c0 + k // num_videos, video k % num_videos): row-major [n, Vc].
            text_index = paddle.to_tensor(np.repeat(np.arange(c0, c0 + n), num_videos).astype(np.int64))
            video_index = paddle.to_tensor(np.tile(np.arange(num_videos), n).astype(np.int64))
            logits = backbone.match_logits(prefix, video, text_index, video_index).astype("float32")
            rows.append((logits[:, 0] - logits[:, 1]).numpy().reshape(n, num_videos))
            bar.update(n * num_videos)
        columns.append(np.concatenate(rows, axis=0))
    return np.concatenate(columns, axis=1)


def score_matrix(
    backbone,
    dataset,
    pair_batch_size=DEFAULT_PAIR_BATCH_SIZE,
    text_batch_size=1,
    amp=False,
    amp_level="O1",
    progress=True,
    distributed=None,
):
    """Matching logit difference of every caption against every video: float32 [Q, V].

    backbone: a ``Scorer``, or the dygraph ``BertForMultiModalPreTraining`` (wrapped in
    ``DygraphScorer``). dataset: ``.num_queries`` Q, ``.num_videos`` V, ``.query(i)``
    -> text arrays [T], ``.video(j)`` -> video arrays. ``text_batch_size`` captions are
    encoded at once; ``pair_batch_size`` bounds the pairs per matching pass.
    Only distinct captions against distinct videos are scored (by content; copies get
    the same scores). Under ``paddle.distributed.launch`` (``distributed`` None = detect)
    each rank scores its block of distinct captions and every rank returns the gathered matrix.
    """
    if int(pair_batch_size) < 1 or int(text_batch_size) < 1:
        raise ConfigError(f"test batch sizes must be >= 1, got pairs {pair_batch_size}, captions {text_batch_size}")
    scorer = as_scorer(backbone)
    rank, world = rank_and_world() if distributed in (None, True) else (0, 1)
    every = [dataset.query(i) for i in range(dataset.num_queries)]
    first, caption_inverse = distinct(record_digest(c, TEXT_KEYS) for c in every)
    # Ranks split the distinct captions, so that a caption's copies are never scored apart.
    queries = first[split_queries(len(first), world, rank)]

    def captions(start, stop):
        return _stack([every[int(i)] for i in queries[start:stop]], TEXT_KEYS)

    with scorer.session(), _autocast(amp, amp_level):
        videos, video_inverse = encode_distinct_videos(
            scorer.encode_video, dataset, video_chunk(dataset.num_videos, pair_batch_size)
        )
        with _progress(len(queries) * sum(n for _, n in videos), progress and rank == 0) as bar:
            rows = score_rows(scorer, captions, len(queries), videos, pair_batch_size, text_batch_size, bar)
    return _gather_rows(rows, len(first), world)[caption_inverse][:, video_inverse]


def score_pairs(backbone, dataset, pairs, pair_batch_size=DEFAULT_PAIR_BATCH_SIZE, amp=False, amp_level="O1",
                progress=False):
    """Matching logit difference of listed (query i, video j) pairs: float32 [P].

    For sparse pair sets (multiple choice: each video against its own few captions) where
    ``score_matrix``'s every-caption-against-every-video would waste work. Pairs with the
    same caption and video content are scored once (their scores are equal, whatever the
    pass size). The distinct pairs are taken in passes of ``pair_batch_size`` in the given
    order; within a pass each caption is encoded once (``encode_text``) and each video once
    (``encode_video``), and the pairs go through ``match_logits`` together. Keep pairs of a
    video next to each other.
    """
    if int(pair_batch_size) < 1:
        raise ConfigError(f"test_pair_batch_size must be >= 1, got {pair_batch_size}")
    pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    canonical = np.stack([_canonical(dataset.query, pairs[:, 0], TEXT_KEYS),
                          _canonical(dataset.video, pairs[:, 1], VIDEO_KEYS)], axis=1)
    first, inverse = distinct(map(tuple, canonical.tolist()))
    unique_pairs = canonical[first]
    out = np.zeros(len(unique_pairs), dtype=np.float32)
    scorer = as_scorer(backbone)
    with scorer.session(), _autocast(amp, amp_level), _progress(len(unique_pairs), progress) as bar:
        for start in range(0, len(unique_pairs), int(pair_batch_size)):
            chunk = unique_pairs[start : start + int(pair_batch_size)]
            queries, text_index = np.unique(chunk[:, 0], return_inverse=True)
            videos, video_index = np.unique(chunk[:, 1], return_inverse=True)
            prefix = scorer.encode_text(**_stack([dataset.query(int(i)) for i in queries], TEXT_KEYS))
            video = scorer.encode_video(**_stack([dataset.video(int(j)) for j in videos], VIDEO_KEYS))
            logits = scorer.match_logits(
                prefix, video, paddle.to_tensor(text_index.astype(np.int64)),
                paddle.to_tensor(video_index.astype(np.int64)),
            ).astype("float32")
            out[start : start + len(chunk)] = (logits[:, 0] - logits[:, 1]).numpy()
            bar.update(len(chunk))
    return out[inverse]


def _canonical(read, indices, keys):
    """For each index [P], the first index among ``indices`` whose record has the same content."""
    seen = np.unique(indices)
    first, inverse = distinct(record_digest(read(int(i)), keys) for i in seen)
    return seen[first][inverse][np.searchsorted(seen, indices)]


def brute_force_scores(backbone, dataset, pairs, batch_size=1):
    """Reference scoring: the full forward pass (every stream, every head) for each pair.

    pairs: sequence of (query i, video j), run ``batch_size`` pairs per forward call
    (the caption repeated per pair, as if each pair were scored alone).
    Returns (logit difference float32 [P], softmax match probability float32 [P]).
    Slow by design; for tests and benchmarks.
    """
    backbone.eval()
    diffs, probs = [], []
    pairs = list(pairs)
    with paddle.no_grad():
        for start in range(0, len(pairs), batch_size):
            chunk = pairs[start : start + batch_size]
            batch = {
                **_stack([dataset.query(int(i)) for i, _ in chunk], TEXT_KEYS),
                **_stack([dataset.video(int(j)) for _, j in chunk], VIDEO_KEYS),
            }
            logits = backbone(**batch)[3].astype("float32")  # [B, 2]
            diffs.append((logits[:, 0] - logits[:, 1]).numpy())
            probs.append(paddle.nn.functional.softmax(logits, axis=-1)[:, 0].numpy())
    return np.concatenate(diffs).astype(np.float32), np.concatenate(probs).astype(np.float32)


class ArrayRetrievalSet:
    """A retrieval set held in arrays, with the MSRVTTDataset interface ``score_matrix`` uses.

    queries: dict of ``TEXT_KEYS`` arrays [Q, T]; videos: dict of ``VIDEO_KEYS`` arrays
    [V, ...]; query_video_index int64 [Q]. For tests, benchmarks and scoring
    features that are already in memory.
    """

    default_metric = "MSRVTTMetric"

    def __init__(self, queries, videos, query_video_index, captions=None, video_ids=None):
        self.queries, self.videos = queries, videos
        self.query_video_index = np.asarray(query_video_index, dtype=np.int64)
        self.num_queries = len(self.query_video_index)
        self.num_videos = len(videos["image_feat"])
        self.captions = captions or [f"caption {i}" for i in range(self.num_queries)]
        self.video_ids = video_ids or [f"video{j}" for j in range(self.num_videos)]

    def __len__(self):
        return self.num_queries

    def query(self, i):
        return {k: self.queries[k][i] for k in TEXT_KEYS}

    def video(self, j):
        return {k: self.videos[k][j] for k in VIDEO_KEYS}

    __getitem__ = query
