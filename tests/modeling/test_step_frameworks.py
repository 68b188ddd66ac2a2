"""ActBertSegmentation / ActBertStepLocalization and their losses on a tiny random model:
hand-computed pooling and losses, scores equal to the reference forward's matching head."""

import numpy as np
import paddle
import pytest
from paddle.io.dataloader.collate import default_collate_fn

from paddlevideo.loader.steps.seconds import window_inputs
from paddlevideo.modeling import build_model
from paddlevideo.modeling.framework.actbert_steps import second_regions
from paddlevideo.modeling.losses.steps_loss import SegmentationLoss, StepLocalizationLoss
from paddlevideo.utils.errors import ConfigError, DataError

D = 8
TINY = {"name": "BertForMultiModalPreTraining", "vocab_size": 12, "max_position_embeddings": 8,
        "v_feature_size": D, "a_feature_size": D, "v_target_size": 3, "a_target_size": 3, "hidden_size": 16,
        "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 16, "v_hidden_size": 16,
        "v_num_hidden_layers": 1, "v_num_attention_heads": 2, "v_intermediate_size": 16, "a_hidden_size": 16,
        "a_num_hidden_layers": 1, "a_num_attention_heads": 2, "a_intermediate_size": 16, "bi_hidden_size": 16,
        "bi_num_attention_heads": 2, "t_ent_attention_id": [0, 1], "v_ent_attention_id": [0, 0],
        "a_ent_attention_id": [0, 0]}


def record(seconds, seed=0):
    rng = np.random.default_rng(seed)
    count = rng.integers(0, 3, size=seconds)
    real = (np.arange(2) < count[:, None])[..., None]  # [T, 2, 1]
    regions = rng.normal(size=(seconds, 2, D)).astype(np.float32) * real
    boxes = np.tile(np.array([10, 10, 50, 40], np.float32), (seconds, 2, 1)) * real
    return {"action": rng.normal(size=(seconds, D)).astype(np.float32), "regions": regions, "boxes": boxes,
            "region_count": count, "image_h": np.float32(100), "image_w": np.float32(100)}


def windows(rec, starts):
    items = [window_inputs(rec, s, 5, 2) for s in starts]
    batch = {k: np.stack([w[k] for w in items]) for k in items[0]}
    batch.update(text_ids=np.tile([[2, 3]], (len(starts), 1)), text_mask=np.ones((len(starts), 2), np.int64),
                 token_type_ids=np.zeros((len(starts), 2), np.int64))
    return batch


def tensors(batch):
    return {k: paddle.to_tensor(v) for k, v in batch.items()}


def test_second_regions_mean_of_each_seconds_boxes():
    region_out = paddle.to_tensor(np.array([[[9, 9], [1, 2], [3, 4], [5, 6], [0, 0]]], np.float32))
    region_second = paddle.to_tensor(np.array([[0, 0, 2, -1]], np.int64))
    out = second_regions(region_out, region_second, 3).numpy()
    assert out.tolist() == [[[2, 3], [0, 0], [5, 6]]]  # the global region (slot 0) and padding never count


def test_segmentation_loss_ignores_padding_and_weights_background():
    logits = np.array([[[2.0, 0.0, 1.0], [0.0, 3.0, 0.0], [5.0, 5.0, 5.0]]], np.float32)
    labels = np.array([[0, 1, -1]], np.int64)
    logp = logits[0, :2] - np.log(np.exp(logits[0, :2]).sum(axis=1, keepdims=True))
    rows = -logp[[0, 1], [0, 1]]
    loss = SegmentationLoss()(paddle.to_tensor(logits), paddle.to_tensor(labels))["loss"]
    assert float(loss) == pytest.approx(rows.mean(), rel=1e-6)
    weighted = SegmentationLoss(background_weight=0.25)(paddle.to_tensor(logits), paddle.to_tensor(labels))["loss"]
    assert float(weighted) == pytest.approx((0.25 * rows[0] + rows[1]) / 1.25, rel=1e-6)


def test_step_loss_over_real_steps_only():
    scores = np.array([[1.0, 2.0, 50.0], [0.5, -1.0, 3.0]], np.float32)
    mask = np.array([[1, 1, 0], [1, 1, 1]], np.int64)
    label = np.array([1, 2], np.int64)
    first = -(2.0 - np.log(np.exp(1.0) + np.exp(2.0)))
    second = -(3.0 - np.log(np.exp([0.5, -1.0, 3.0]).sum()))
    loss = StepLocalizationLoss()(*(paddle.to_tensor(x) for x in (scores, mask, label)))["loss"]
    assert float(loss) == pytest.approx((first + second) / 2, rel=1e-5)


def test_segmentation_forward_trains_the_head_and_predicts_every_window():
    paddle.seed(0)
    net = build_model({"framework": "ActBertSegmentation", "backbone": TINY, "num_classes": 4})
    rec = record(7)
    batch = windows(rec, [0, 2])
    batch["labels"] = np.array([[0, 1, 2, 3, 0], [2, 3, 0, 1, -1]], np.int64)
    loss = net(tensors(batch))["loss"]
    loss.backward()
    assert np.isfinite(float(loss)) and float(paddle.abs(net.head.weight.grad).sum()) > 0
    net.eval()
    del batch["labels"]
    logits = net.predict_windows(batch, batch_size=1)
    assert logits.shape == (2, 5, 4)
    np.testing.assert_allclose(logits, net.second_logits(tensors(batch)).numpy(), rtol=1e-5, atol=1e-6)
    with pytest.raises(DataError, match="segmentation batch lacks labels"):
        net(tensors(batch))

    class Data:
        num_classes = 5

    with pytest.raises(ConfigError, match="DATASET.train has 5 classes .* MODEL.num_classes is 4"):
        net.check_training_data(Data(), 2)
    with pytest.raises(ConfigError, match="MODEL.num_classes must be a whole number >= 2, got 1"):
        build_model({"framework": "ActBertSegmentation", "backbone": TINY, "num_classes": 1})


def test_step_scores_are_the_matching_heads_of_each_pair():
    paddle.seed(1)
    net = build_model({"framework": "ActBertStepLocalization", "backbone": TINY})
    net.eval()
    rec = record(4, seed=2)
    video = windows(rec, [0, 0, 0, 0])
    video = {k: v for k, v in video.items() if not k.startswith("text")}
    video["action_feat"][1:, 0] += 0.5  # make the windows differ
    texts = {"text_ids": np.array([[2, 5, 6, 3], [2, 7, 3, 0]], np.int64),
             "text_mask": np.array([[1, 1, 1, 1], [1, 1, 1, 0]], np.int64),
             "token_type_ids": np.zeros((2, 4), np.int64)}
    scores = net.score_video(video, texts, pair_batch_size=3)
    assert scores.shape == (4, 2)
    for t in range(4):
        for k in range(2):
            single = {**{n: v[t:t + 1] for n, v in video.items()}, **{n: v[k:k + 1] for n, v in texts.items()}}
            s = tensors(single)
            out = net.backbone(s["text_ids"], s["action_feat"], s["image_feat"], s["image_loc"], s["token_type_ids"],
                               s["text_mask"], s["image_mask"], s["action_mask"])[3].numpy()[0]
            assert scores[t, k] == pytest.approx(out[0] - out[1], abs=1e-4)
    net.train()
    item = {k: v[:2] for k, v in video.items() if k != "region_second"}
    item.update({f"step_{k}": np.stack([v, v]) for k, v in texts.items()})
    item.update(step_mask=np.array([[1, 1], [1, 0]], np.int64), label=np.array([1, 0], np.int64))
    loss = net(tensors(item))["loss"]
    assert np.isfinite(float(loss))
    collated = default_collate_fn([{k: v[i] for k, v in item.items()} for i in range(2)])
    assert float(net(tensors(collated))["loss"]) > 0
