"""Identical (caption, video) pairs score identically, whatever the pass size.

A pair's float32 score depends on the pass it runs in (~1e-7), and ties count against the
model, so duplicated captions or videos scored in different passes once had their ties
decided by float noise: with this tiny model, pass sizes 2, 40 and 256 gave copies scores
1.5e-6..1.9e-6 apart in ``score_matrix``, and pass size 3 gave 2.4e-7 in ``score_pairs``.
"""

import numpy as np
import paddle
import pytest
from test_retrieval import make_set

from paddlevideo.metrics.multiple_choice import choose
from paddlevideo.metrics.retrieval import retrieval_metrics, text_to_video_ranks, video_to_text_ranks
from paddlevideo.modeling.backbones.actbert import BertForMultiModalPreTraining
from paddlevideo.retrieval.scoring import DygraphScorer, distinct, score_matrix, score_pairs
from paddlevideo.retrieval.search import encode_collection, score_queries

# The sizes of the reference's tiny model (tests/fixtures' actbert_tiny), random weights.
TINY = {
    "vocab_size": 120, "v_target_size": 17, "a_target_size": 11, "v_feature_size": 64, "a_feature_size": 64,
    "num_hidden_layers": 4, "v_num_hidden_layers": 2, "a_num_hidden_layers": 3, "t_ent_attention_id": [2, 3],
    "v_ent_attention_id": [0, 1], "a_ent_attention_id": [0, 1], "hidden_size": 32, "v_hidden_size": 48,
    "a_hidden_size": 32, "bi_hidden_size": 48, "intermediate_size": 64, "v_intermediate_size": 48,
    "a_intermediate_size": 64, "num_attention_heads": 4, "v_num_attention_heads": 4, "a_num_attention_heads": 4,
    "bi_num_attention_heads": 4, "fusion_method": "mul",
}
CAPTION_COPIES = {0: (5, 11, 19)}  # caption 0 is repeated as captions 5, 11 and 19
VIDEO_COPIES = {2: (7, 16)}
PASS_SIZES = [(2, 1), (7, 3), (40, 3), (256, 7)]  # (pairs per pass, captions encoded together)


@pytest.fixture(scope="module")
def backbone():
    paddle.seed(0)
    model = BertForMultiModalPreTraining(**TINY)
    with paddle.no_grad():  # weights x10: at std 0.02 the scores barely depend on the pair
        for name, param in model.named_parameters():
            if param.ndim == 2 and "embeddings" not in name:
                param.set_value(param * 10)
    model.eval()
    return model


def with_copies(data):
    for source, copies in CAPTION_COPIES.items():
        for key in data.queries:
            data.queries[key][list(copies)] = data.queries[key][source]
    for source, copies in VIDEO_COPIES.items():
        for key in data.videos:
            data.videos[key][list(copies)] = data.videos[key][source]
    return data


@pytest.fixture(scope="module")
def data():
    data = with_copies(make_set(20, 17, seed=4, tokens=16, regions=12))
    # Caption 0's true video has a copy (a t2v tie); video 9's only caption (5) has copies (a v2t tie).
    data.query_video_index[0], data.query_video_index[5] = 2, 9
    data.query_video_index[[11, 19]] = 3
    return data


def assert_copies_equal(scores):
    for source, copies in CAPTION_COPIES.items():
        for c in copies:
            np.testing.assert_array_equal(scores[c], scores[source])
    for source, copies in VIDEO_COPIES.items():
        for c in copies:
            np.testing.assert_array_equal(scores[:, c], scores[:, source])


def test_distinct_maps_copies_to_their_first():
    first, inverse = distinct([b"a", b"b", b"a", b"c", b"b"])
    assert first.tolist() == [0, 1, 3] and inverse.tolist() == [0, 1, 0, 2, 1]


def test_score_matrix_copies_tie_exactly_whatever_the_pass_size(backbone, data):
    runs = [score_matrix(backbone, data, pair_batch_size=p, text_batch_size=t, progress=False) for p, t in PASS_SIZES]
    for scores in runs:
        assert_copies_equal(scores)
        np.testing.assert_allclose(scores, runs[0], atol=1e-4, rtol=0)
    assert np.ptp(runs[0]) > 1e-2  # the pairs' scores differ: the ties come from the copies
    index = data.query_video_index
    t2v = [text_to_video_ranks(s, index) for s in runs]
    v2t = [video_to_text_ranks(s, index)[0] for s in runs]
    for ranks in t2v[1:]:
        np.testing.assert_array_equal(ranks, t2v[0])
    for ranks in v2t[1:]:
        np.testing.assert_array_equal(ranks, v2t[0])
    # The ties count against the model: video 2's copy 7 and caption 5's copies rank above.
    assert t2v[0][0] >= 2
    assert v2t[0][list(video_to_text_ranks(runs[0], index)[1]).index(9)] >= 4
    metrics = [retrieval_metrics(s, index) for s in runs]
    assert all(m == metrics[0] for m in metrics)


def test_multiple_choice_ties_are_wrong_whatever_the_pass_size(backbone):
    # 6 questions x 5 candidates: candidate k of question q is caption 5q + k, on video q.
    data = make_set(30, 6, seed=7, tokens=16, regions=12)
    data.query_video_index[:] = np.repeat(np.arange(6), 5)
    answers = np.array([0, 2, 4, 1, 3, 0])
    for key in data.queries:
        data.queries[key][[4, 9, 15]] = data.queries[key][[0, 7, 0]]  # q0, q1: the answer repeated
    for key in data.videos:
        data.videos[key][3] = data.videos[key][0]  # q3 asks about a copy of q0's video (with its caption 0)
    pairs = np.stack([np.arange(30), data.query_video_index], axis=1)
    outcomes = []
    for pass_size in (1, 3, 7, 256):
        scores = score_pairs(backbone, data, pairs, pair_batch_size=pass_size).reshape(6, 5)
        assert scores[0, 4] == scores[0, 0] and scores[1, 4] == scores[1, 2] and scores[3, 0] == scores[0, 0]
        outcomes.append(choose(scores, answers))
    for chosen, correct, tied in outcomes:
        np.testing.assert_array_equal(chosen, outcomes[0][0])
        np.testing.assert_array_equal(correct, outcomes[0][1])
        assert tied[0] and tied[1] and not correct[0] and not correct[1]


def test_search_copies_tie_exactly_whatever_the_pass_size(backbone, data):
    engine = DygraphScorer(backbone)
    text = {k: v.copy() for k, v in data.queries.items()}
    for batch in (3, 64):  # the copies of video 2 in other encoding batches than video 2 (3) or in one (64)
        videos = encode_collection(engine, data, batch_size=batch, progress=False)
        for source, copies in VIDEO_COPIES.items():
            for c in copies:
                assert all(np.array_equal(videos[k][c], videos[k][source]) for k in videos)
        for pass_size in (7, 40):
            scores = score_queries(engine, text, videos, pair_batch_size=pass_size, progress=False,
                                   text_batch_size=3)
            assert_copies_equal(scores)
