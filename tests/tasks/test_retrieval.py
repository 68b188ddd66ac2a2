"""The fast score matrix equals one full forward pass per pair (tiny reference model)."""

import json
from pathlib import Path

import numpy as np
import paddle
import pytest

from paddlevideo.modeling.backbones.actbert import BertForMultiModalPreTraining
from paddlevideo.modeling.weights import load_backbone_weights
from paddlevideo.retrieval import scoring as retrieval
from paddlevideo.retrieval.scoring import (
    ArrayRetrievalSet,
    brute_force_scores,
    merge_blocks,
    score_matrix,
    split_queries,
)
from paddlevideo.utils.errors import ConfigError, DataError, WeightsError

GOLDEN = Path(__file__).resolve().parents[1] / "fixtures" / "actbert_tiny"  # the tiny reference model


@pytest.fixture(scope="module")
def backbone():
    paddle.seed(0)
    config = json.loads((GOLDEN / "backbone.json").read_text())
    model = BertForMultiModalPreTraining(**config)
    load_backbone_weights(model, str(GOLDEN / "backbone.pdparams"))
    model.eval()
    return model


def make_set(num_queries, num_videos, seed=0, tokens=12, regions=9, actions=5, feat=64, vocab=120):
    """Random captions (various lengths, padded) and videos (various box counts)."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(3, tokens + 1, num_queries)
    text_mask = (np.arange(tokens)[None] < lengths[:, None]).astype(np.int64)
    text_ids = rng.integers(1, vocab, (num_queries, tokens)) * text_mask
    boxes = rng.integers(1, regions + 1, num_videos)
    image_mask = (np.arange(regions)[None] < boxes[:, None]).astype(np.int64)
    loc = np.sort(rng.random((num_videos, regions, 4)), axis=-1).astype(np.float32)
    area = ((loc[..., 2] - loc[..., 0]) * (loc[..., 3] - loc[..., 1]))[..., None]
    videos = {
        "image_feat": (rng.standard_normal((num_videos, regions, feat)) * image_mask[..., None]).astype(np.float32),
        "image_loc": np.concatenate([loc, area], axis=-1).astype(np.float32),
        "image_mask": image_mask,
        "action_feat": rng.standard_normal((num_videos, actions, feat)).astype(np.float32),
        "action_mask": np.ones((num_videos, actions), dtype=np.int64),  # as the reference's test input
    }
    queries = {"text_ids": text_ids, "token_type_ids": np.zeros_like(text_ids), "text_mask": text_mask}
    return ArrayRetrievalSet(queries, videos, rng.integers(0, num_videos, num_queries))


def brute_force_matrix(backbone, data):
    pairs = [(i, j) for i in range(data.num_queries) for j in range(data.num_videos)]
    diffs, _ = brute_force_scores(backbone, data, pairs)
    return diffs.reshape(data.num_queries, data.num_videos)


@pytest.fixture(scope="module")
def data_and_reference(backbone):
    data = make_set(7, 5)
    return data, brute_force_matrix(backbone, data)


@pytest.mark.parametrize("pair_batch_size,text_batch_size", [(1, 1), (3, 1), (8, 3), (64, 4), (1000, 7)])
def test_matrix_equals_full_forward_per_pair(backbone, data_and_reference, pair_batch_size, text_batch_size):
    data, reference = data_and_reference
    scores = score_matrix(backbone, data, pair_batch_size=pair_batch_size, text_batch_size=text_batch_size,
                          progress=False)
    assert scores.dtype == np.float32 and scores.shape == (7, 5)
    np.testing.assert_allclose(scores, reference, atol=1e-4, rtol=0)
    # Not a degenerate model: the scores differ across pairs.
    assert np.ptp(reference) > 1e-3


@pytest.mark.parametrize("num_queries,num_videos", [(1, 1), (1, 6), (5, 1), (11, 2)])
def test_any_number_of_queries_and_videos(backbone, num_queries, num_videos):
    data = make_set(num_queries, num_videos, seed=num_queries * 10 + num_videos)
    scores = score_matrix(backbone, data, pair_batch_size=4, text_batch_size=2, progress=False)
    np.testing.assert_allclose(scores, brute_force_matrix(backbone, data), atol=1e-4, rtol=0)


def test_restores_training_mode_and_rejects_bad_batch(backbone, data_and_reference):
    data, _ = data_and_reference
    backbone.train()
    try:
        score_matrix(backbone, data, pair_batch_size=16, progress=False)
        assert backbone.training
    finally:
        backbone.eval()
    with pytest.raises(ConfigError, match="batch sizes"):
        score_matrix(backbone, data, pair_batch_size=0, progress=False)


def test_amp_is_a_no_op_on_cpu(backbone, data_and_reference):
    data, reference = data_and_reference
    scores = score_matrix(backbone, data, pair_batch_size=16, amp=True, progress=False)
    np.testing.assert_allclose(scores, reference, atol=1e-4, rtol=0)


@pytest.mark.parametrize("num_queries,world", [(10, 3), (2, 4), (1000, 8), (7, 1)])
def test_split_queries_covers_every_query_once(num_queries, world):
    blocks = [split_queries(num_queries, world, r) for r in range(world)]
    assert np.concatenate(blocks).tolist() == list(range(num_queries))
    sizes = [len(b) for b in blocks]
    assert max(sizes) - min(sizes) <= 1
    # Gather: each rank's rows padded to the largest block, merged back in query order.
    full = np.arange(num_queries * 3, dtype=np.float32).reshape(num_queries, 3)
    padded = [np.pad(full[b], ((0, max(sizes) - len(b)), (0, 0)), constant_values=-1) for b in blocks]
    np.testing.assert_array_equal(merge_blocks(padded, sizes), full)


def test_rank_block_scores_are_the_rows_of_the_full_matrix(backbone, data_and_reference, monkeypatch):
    # Simulate rank 1 of 3 without a process group: its rows are its block of the matrix
    # (the gather puts them in place and leaves the other ranks' rows NaN).
    data, reference = data_and_reference
    monkeypatch.setenv("PADDLE_TRAINERS_NUM", "3")
    monkeypatch.setenv("PADDLE_TRAINER_ID", "1")

    def gather_one_rank(rows, num_queries, world):
        full = np.full((num_queries, rows.shape[1]), np.nan, dtype=np.float32)
        full[split_queries(num_queries, world, 1)] = rows
        return full

    monkeypatch.setattr(retrieval, "_gather_rows", gather_one_rank)
    scores = score_matrix(backbone, data, pair_batch_size=8, progress=False)
    block = split_queries(7, 3, 1)
    np.testing.assert_allclose(scores[block], reference[block], atol=1e-4, rtol=0)
    assert np.isnan(np.delete(scores, block, axis=0)).all()


# --- test_model: checks before scoring, and the whole run on an in-memory test set ---


def _cfg(tmp_path):
    """A config as main.py would load it (validated), for the tiny reference model."""
    import yaml

    from paddlevideo.utils.config import get_config

    backbone = {"name": "BertForMultiModalPreTraining", **json.loads((GOLDEN / "backbone.json").read_text())}
    cfg = {
        "MODEL": {"framework": "ActBert", "backbone": backbone},
        "DATASET": {"test_batch_size": 2, "test_pair_batch_size": 6, "test": {"format": "MSRVTTDataset"}},
        "PIPELINE": {"test": None},
        "METRIC": {"name": "MSRVTTMetric"},
        "model_name": "ActBert",
        "output_dir": str(tmp_path / "out"),
    }
    path = tmp_path / "msrvtt.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return get_config(str(path))


def test_test_model_end_to_end(backbone, data_and_reference, tmp_path, monkeypatch):
    from paddlevideo.loader import builder
    from paddlevideo.tasks.test import test_model

    data, reference = data_and_reference
    monkeypatch.setattr(builder, "build_dataset", lambda *args, **kwargs: data)
    metrics = test_model(_cfg(tmp_path), str(GOLDEN / "model.pdparams"), progress=False)
    out = tmp_path / "out"
    assert json.loads((out / "msrvtt_metrics.json").read_text()) == metrics
    np.testing.assert_allclose(np.load(out / "msrvtt_scores.npy"), reference, atol=1e-4, rtol=0)
    for name in ("msrvtt_ranks_t2v.csv", "msrvtt_ranks_v2t.csv", "msrvtt_ranks.png"):
        assert (out / name).exists()


def test_test_model_rejects_backbone_only_and_missing_weights(tmp_path):
    from paddlevideo.tasks.test import test_model

    with pytest.raises(WeightsError, match="backbone-only"):
        test_model(_cfg(tmp_path), str(GOLDEN / "backbone.pdparams"))
    with pytest.raises(WeightsError, match="not found"):
        test_model(_cfg(tmp_path), str(tmp_path / "nope.pdparams"))
    with pytest.raises(WeightsError, match="-w"):
        test_model(_cfg(tmp_path), None)


def test_test_model_rejects_mismatched_backbone(data_and_reference, tmp_path, monkeypatch):
    from paddlevideo.loader import builder
    from paddlevideo.tasks.test import test_model

    data, _ = data_and_reference
    good = ArrayRetrievalSet(data.queries, data.videos, data.query_video_index)
    monkeypatch.setattr(builder, "build_dataset", lambda *args, **kwargs: good)  # the data is checked first
    cfg = _cfg(tmp_path)
    cfg.MODEL.backbone.intermediate_size = 128  # the checkpoint's text FFN is 64 wide
    with pytest.raises(WeightsError):
        test_model(cfg, str(GOLDEN / "model.pdparams"))


def test_test_model_rejects_query_without_video(data_and_reference, tmp_path, monkeypatch):
    from paddlevideo.loader import builder
    from paddlevideo.tasks.test import test_model

    data, _ = data_and_reference
    broken = ArrayRetrievalSet(data.queries, data.videos, np.r_[data.query_video_index[:-1], 9])
    monkeypatch.setattr(builder, "build_dataset", lambda *args, **kwargs: broken)
    with pytest.raises(DataError, match="query 6 .* has no video"):
        test_model(_cfg(tmp_path), str(GOLDEN / "model.pdparams"), progress=False)
