"""Training the first stage from a trained ActBERT (``tools/train_first_stage.py``).

The teacher is the checkpoint's retrieval path (dygraph or exported: any engine with
``encode_text``, ``encode_video`` via the search's ``encode_collection``, ``match_logits``).
The data is an MSR-VTT-format training split (``MSRVTTTrainDataset``: captions of
``MSRVTT_data.json`` for the videos of a split list, features LMDB); the first stage's
inputs are the encodings the teacher computes anyway (``first_stage`` module doc).
"""

from __future__ import annotations

import time

import numpy as np
import paddle

from ..utils.errors import DataError
from ..utils.logger import get_logger
from .first_stage import FirstStageSettings, text_arrays, text_features, train_first_stage, video_features
from .search import encode_collection
from .two_stage import caption_arrays, pair_scores


def encode_caption_features(engine, text, features, batch_size=64):
    """First-stage caption features (set ``features``) of text inputs [Q, T]: float32 [Q, F]."""
    out = []
    with paddle.no_grad():
        for start in range(0, len(text["text_ids"]), batch_size):
            rows = {k: paddle.to_tensor(v[start : start + batch_size]) for k, v in text.items()}
            out.append(text_features(text_arrays(engine.encode_text(**rows)), features))
    return np.concatenate(out)


def distill(engine, dataset, settings=None, teacher_sha256="", pair_batch_size=1024, progress=True):
    """A FirstStage distilled from ``engine`` on ``dataset`` (captions, videos, query_video_index)."""
    settings = settings or FirstStageSettings()
    log = get_logger().info
    if dataset.num_videos < 3 or dataset.num_queries < 2:
        raise DataError(f"the first stage needs at least 3 training videos and 2 captions, got "
                        f"{dataset.num_videos} videos and {dataset.num_queries} captions")
    start = time.perf_counter()
    videos = encode_collection(engine, dataset, progress=progress)
    text = caption_arrays(dataset)
    text_feats = encode_caption_features(engine, text, features=settings.features)
    video_feats = video_features(videos, settings.features)
    log(f"first stage: {dataset.num_queries} captions and {dataset.num_videos} videos encoded by the teacher in "
        f"{time.perf_counter() - start:.1f} s")

    def teacher(queries, candidates):
        return pair_scores(engine, text, videos, queries, candidates, pair_batch_size)

    return train_first_stage(text_feats, video_feats, dataset.query_video_index, teacher, settings, teacher_sha256,
                             log)
