"""Retrieval path of the backbone: what ``encode_video`` / ``encode_text`` precompute is reused
by ``match_logits`` for every pair, and the logits still equal the full forward pass."""

import numpy as np
import paddle
import pytest
from modeling_helpers import INPUT_KEYS, build, random_batch, tensors
from test_actbert_model import TINY

VIDEO_KEYS = ("image_feat", "image_loc", "image_mask", "action_feat", "action_mask")
TEXT_KEYS = ("text_ids", "token_type_ids", "text_mask")


@pytest.fixture(scope="module")
def model_and_batch():
    config = {**TINY, "t_ent_attention_id": [1, 2, 4], "v_ent_attention_id": [1, 1, 2],
              "a_ent_attention_id": [1, 2, 3]}
    return build(config, seed=11, scale=10.0), tensors(random_batch(config, batch=4, seed=3))


def _encode(model, batch):
    text = model.encode_text(*(batch[k] for k in TEXT_KEYS))
    video = model.encode_video(*(batch[k] for k in VIDEO_KEYS))
    return text, video


def _full(model, batch, texts, videos):
    paired = {k: paddle.index_select(batch[k], paddle.to_tensor(videos if k in VIDEO_KEYS else texts))
              for k in INPUT_KEYS}
    return model(**paired)[3]


def test_every_cross_pair_equals_full_forward(model_and_batch):
    model, batch = model_and_batch
    texts, videos = np.repeat(np.arange(4), 4), np.tile(np.arange(4), 4)
    with paddle.no_grad():
        text, video = _encode(model, batch)
        logits = model.match_logits(text, video, paddle.to_tensor(texts), paddle.to_tensor(videos))
        expected = _full(model, batch, texts, videos)
    np.testing.assert_allclose(logits.numpy(), expected.numpy(), atol=1e-5, rtol=0)


def test_pairs_given_row_by_row_and_by_index_select(model_and_batch):
    model, batch = model_and_batch
    texts, videos = [3, 0, 2], [1, 1, 0]
    with paddle.no_grad():
        text, video = _encode(model, batch)
        paired = model.match_logits(text.index_select(paddle.to_tensor(texts)),
                                    video.index_select(paddle.to_tensor(videos)))
        expected = _full(model, batch, texts, videos)
    np.testing.assert_allclose(paired.numpy(), expected.numpy(), atol=1e-5, rtol=0)


def test_prefixes_without_scoring_fields_still_match(model_and_batch):
    # Prefixes built without encode_text / encode_video (no cached fields) are completed on the fly.
    model, batch = model_and_batch
    index = paddle.to_tensor([0, 1, 2, 3])
    with paddle.no_grad():
        text = model._text_prefix(*(batch[k] for k in TEXT_KEYS))
        video = model._video_prefix(*(batch[k] for k in VIDEO_KEYS))
        assert text.qkv is None and video.action_queries is None
        logits = model.match_logits(text, video, index, index)
        expected = _full(model, batch, [0, 1, 2, 3], [0, 1, 2, 3])
    np.testing.assert_allclose(logits.numpy(), expected.numpy(), atol=1e-5, rtol=0)


def test_match_logits_runs_no_pair_independent_layer(model_and_batch):
    # The action stream, the pooled action and the first connection's region / action / text
    # projections are computed once per video or caption, never per pair.
    model, batch = model_and_batch
    encoder = model.bert.encoder
    attention = encoder.c_layer[0].ent_attention
    hoisted = [*encoder.a_layer, model.bert.a_pooler, attention.query1, attention.key1, attention.value1,
               attention.query2, attention.key2, attention.value2, attention.key_av, attention.value_av,
               *(c.ent_attention.query3 for c in encoder.c_layer), *(c.ent_attention.key3 for c in encoder.c_layer),
               *(c.a_intermediate for c in encoder.c_layer)]
    calls = []
    with paddle.no_grad():
        text, video = _encode(model, batch)
        handles = [layer.register_forward_post_hook(lambda *_: calls.append(1)) for layer in hoisted]
        try:
            model.match_logits(text, video, paddle.to_tensor([0, 1]), paddle.to_tensor([2, 3]))
        finally:
            for handle in handles:
                handle.remove()
    assert not calls


def test_dropout_is_the_identity_outside_training_only(model_and_batch):
    """Every dropout of the backbone hands its input back in eval mode (Paddle's op would copy it:
    the same values, at a cost in every scoring pass) and still drops in training."""
    from paddlevideo.modeling.backbones.actbert import Dropout

    model, _ = model_and_batch
    layers = [m for m in model.sublayers() if isinstance(m, paddle.nn.Dropout)]
    assert layers and all(isinstance(m, Dropout) for m in layers)
    layer, x = Dropout(0.5), paddle.ones([8, 64])
    layer.eval()
    assert layer(x) is x
    layer.train()
    kept = layer(x).numpy()
    assert set(np.unique(kept)) == {0.0, 2.0}  # dropped, and the kept ones scaled by 1 / (1 - p)
