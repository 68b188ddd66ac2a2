"""Fine-tuning losses through the retrieval path equal the same losses from full forward passes."""

import numpy as np
import paddle
import paddle.nn.functional as F
import pytest
from modeling_helpers import build, golden_config, random_batch

from paddlevideo.modeling.framework.actbert_retrieval import ActBertRetrieval
from paddlevideo.utils.errors import ConfigError

TEXT = ("text_ids", "token_type_ids", "text_mask")
VIDEO = ("image_feat", "image_loc", "image_mask", "action_feat", "action_mask")


def make_model(golden_dir, **loss):
    config = golden_config(golden_dir)
    model = ActBertRetrieval({"name": "BertForMultiModalPreTraining", **config},
                             {"name": "RetrievalMatchingLoss", **loss})
    model.backbone.set_state_dict(build(config, seed=0, scale=3.0).state_dict())  # cross-stream terms visible
    model.eval()  # no dropout: the two computations must agree exactly
    return model, config


def make_batch(config, video_index):
    """A batch of len(video_index) captions; samples with the same video index share its features."""
    B = len(video_index)
    arrays = random_batch(config, batch=B, text_len=9, regions=6, actions=5, seed=2)
    arrays["text_mask"] = (np.arange(9)[None] < (9 - np.arange(B) % 4)[:, None]).astype(np.int64)  # lengths 6-9
    arrays["action_mask"][:] = 1
    first = {v: i for i, v in reversed(list(enumerate(video_index)))}
    for k in VIDEO:
        arrays[k] = np.stack([arrays[k][first[v]] for v in video_index])
    batch = {k: paddle.to_tensor(arrays[k]) for k in (*TEXT, *VIDEO)}
    batch["video_index"] = paddle.to_tensor(np.array(video_index, np.int64))
    return batch


def full_forward_logits(backbone, batch, t, v):
    """Matching logits of caption t with the video of sample v, by the reference forward pass."""
    inputs = {k: batch[k][t : t + 1] for k in TEXT}
    inputs.update({k: batch[k][v : v + 1] for k in VIDEO})
    return backbone(**inputs)[3][0].astype("float32")


def reference_loss(backbone, batch, kind):
    """Both directions against every sample of another video (K = all of them)."""
    video_index = batch["video_index"].numpy()
    B = len(video_index)
    rows_t2v, rows_v2t, pos, neg = [], [], [], []
    for i in range(B):
        others = [j for j in range(B) if video_index[j] != video_index[i]]
        # one candidate per distinct other video for text->video
        other_videos = list({video_index[j]: j for j in others}.values())
        p = full_forward_logits(backbone, batch, i, i)
        to_v = [full_forward_logits(backbone, batch, i, j) for j in other_videos]
        to_c = [full_forward_logits(backbone, batch, j, i) for j in others]
        diff = lambda x: x[0] - x[1]  # noqa: E731
        rows_t2v.append(paddle.stack([diff(p)] + [diff(x) for x in to_v]))
        rows_v2t.append(paddle.stack([diff(p)] + [diff(x) for x in to_c]))
        pos.append(p)
        neg += to_v + to_c
    if kind == "listwise":
        target = paddle.zeros([1], "int64")
        t2v = paddle.stack([F.cross_entropy(r.unsqueeze(0), target) for r in rows_t2v]).mean()
        v2t = paddle.stack([F.cross_entropy(r.unsqueeze(0), target) for r in rows_v2t]).mean()
        return (t2v + v2t) / 2
    pos_term = F.cross_entropy(paddle.stack(pos), paddle.zeros([len(pos), 1], "int64"))
    neg_term = F.cross_entropy(paddle.stack(neg), paddle.ones([len(neg), 1], "int64"))
    return (pos_term + neg_term) / 2


def spy_pairs(model):
    """Record the (caption row, video row) pairs of the last matching pass with gradients."""
    seen, original = {}, model.backbone.match_logits

    def spy(prefix, video, text_index=None, video_index=None):
        out = original(prefix, video, text_index, video_index)
        if paddle.is_grad_enabled():
            seen["pairs"] = (text_index.numpy(), video_index.numpy())
        return out

    model.backbone.match_logits = spy
    return seen


@pytest.mark.parametrize("kind", ["listwise", "pairwise"])
def test_loss_and_gradients_equal_full_forward_passes(golden_dir, kind):
    # 5 distinct videos and K = 4: every other sample is a negative in both directions, so the
    # random choice does not change the loss; the reference runs one full forward pass per pair.
    model, config = make_model(golden_dir, kind=kind, num_negatives=4)
    batch = make_batch(config, [7, 2, 5, 0, 1])
    ours = model(batch)["loss"]
    reference = reference_loss(model.backbone, batch, kind)
    np.testing.assert_allclose(float(ours), float(reference), rtol=2e-4, atol=2e-5)
    ours.backward()
    grads = {n: p.grad.numpy().copy() for n, p in model.backbone.named_parameters() if p.grad is not None}
    model.backbone.clear_gradients()
    reference.backward()
    ref_grads = {n: p.grad.numpy() for n, p in model.backbone.named_parameters() if p.grad is not None}
    assert len(grads) > 50 and set(ref_grads) <= set(grads) | {n for n in ref_grads if "predictions" in n}
    for name in ("bert.t_pooler.dense.weight", "bert.encoder.c_layer.0.ent_attention.query1.weight",
                 "bert.embeddings.word_embeddings.weight", "cls.seq_relationship.weight", "bert.a_pooler.dense.weight"):
        np.testing.assert_allclose(grads[name], ref_grads[name], rtol=2e-3, atol=2e-6, err_msg=name)


def test_captions_of_one_video_are_never_negatives_of_each_other(golden_dir):
    video_index = [7, 2, 5, 7, 1, 2]
    model, config = make_model(golden_dir, kind="listwise", num_negatives=3)
    seen = spy_pairs(model)
    paddle.seed(0)
    for seed in range(5):
        np.random.seed(seed)
        model(make_batch(config, video_index))
        text_rows, video_rows = seen["pairs"]
        B, K = len(video_index), 3
        unique = np.unique(video_index)  # encoded videos, de-duplicated
        assert (unique[video_rows[:B]] == video_index).all()  # positives
        for i in range(B):
            own = video_index[i]
            assert own not in unique[video_rows[B + i * K : B + (i + 1) * K]]  # other videos for caption i
            caps = text_rows[B + B * K + i * K : B + B * K + (i + 1) * K]  # other captions for video i
            assert all(video_index[c] != own for c in caps)
            assert len(set(unique[video_rows[B + i * K : B + (i + 1) * K]])) == K  # distinct while enough


def test_hard_negatives_are_the_best_scoring_candidates(golden_dir):
    video_index = [0, 1, 2, 3, 4, 5]
    model, config = make_model(golden_dir, kind="pairwise", num_negatives=1, hard_negatives=True)
    batch = make_batch(config, video_index)
    seen = spy_pairs(model)
    model(batch)
    text_index, vids = seen["pairs"]
    B = len(video_index)
    picked_video = vids[B : 2 * B]  # (caption i, its negative video)
    for i in range(B):
        scores = [float((lambda x: x[0] - x[1])(full_forward_logits(model.backbone, batch, i, j))) for j in range(B)]
        scores[i] = -np.inf
        assert picked_video[i] == int(np.argmax(scores)), (i, scores)


def test_k_larger_than_the_candidates_is_refused_before_training(golden_dir):
    model, _ = make_model(golden_dir, num_negatives=8)

    class Data:
        num_videos, negatives_per_sample, mask_text = 100, 0, False

    with pytest.raises(ConfigError, match="num_negatives 8 is larger than the 7 other samples of a batch of 8"):
        model.check_training_data(Data, 8)
    model.check_training_data(Data, 9)
    model, _ = make_model(golden_dir, num_negatives=4, negative_source="set")
    with pytest.raises(ConfigError, match="negatives_per_sample >= num_negatives 4"):
        model.check_training_data(Data, 32)
    with pytest.raises(ConfigError, match="region class distributions"):
        make_model(golden_dir, region_weight=0.5)


def test_set_negatives_equal_full_forward_passes(golden_dir):
    """negative_source: set scores each positive against the N videos and captions drawn for it."""
    B, N = 3, 2
    model, config = make_model(golden_dir, kind="listwise", num_negatives=N, negative_source="set")
    pool = make_batch(config, list(range(B * (N + 1))))  # rows B.. are the drawn negatives
    batch = {k: v[:B] for k, v in pool.items()}
    for k in (*TEXT, *VIDEO):
        batch[f"neg_{k}"] = pool[k][B:].reshape([B, N, *pool[k].shape[1:]])
    ours = model(batch)["loss"]
    diff = lambda x: x[0] - x[1]  # noqa: E731
    target = paddle.zeros([1], "int64")
    terms = []
    for i in range(B):
        drawn = [B + i * N + n for n in range(N)]
        pos = diff(full_forward_logits(model.backbone, pool, i, i))
        t2v = paddle.stack([pos] + [diff(full_forward_logits(model.backbone, pool, i, j)) for j in drawn])
        v2t = paddle.stack([pos] + [diff(full_forward_logits(model.backbone, pool, j, i)) for j in drawn])
        terms += [F.cross_entropy(t2v.unsqueeze(0), target), F.cross_entropy(v2t.unsqueeze(0), target)]
    np.testing.assert_allclose(float(ours), float(paddle.stack(terms).mean()), rtol=2e-4, atol=2e-5)


def test_masked_word_term_is_added_with_its_weight(golden_dir):
    model, config = make_model(golden_dir, kind="listwise", num_negatives=2, text_weight=0.5)
    batch = make_batch(config, [0, 1, 2])
    labels = np.full([3, 9], -1, np.int64)
    labels[:, 2] = batch["text_ids"].numpy()[:, 2]  # one masked word per caption
    masked = batch["text_ids"].numpy().copy()
    masked[:, 2] = 3
    batch.update(masked_text_ids=paddle.to_tensor(masked), text_labels=paddle.to_tensor(labels))
    out = model(batch)
    # the masked-LM cross-entropy of the three labelled words, from the full forward pass
    inputs = {k: batch[k] for k in (*TEXT, *VIDEO)}
    inputs["text_ids"] = batch["masked_text_ids"]
    scores = model.backbone(**inputs)[0][:, 2]  # [3, vocab]
    expected = F.cross_entropy(scores, paddle.to_tensor(labels[:, 2:3]))
    np.testing.assert_allclose(float(out["loss_text"]), float(expected), rtol=1e-4)
    np.testing.assert_allclose(float(out["loss"]), float(out["loss_match"]) + 0.5 * float(expected), rtol=1e-4)
