"""ActBERT backbone, loss and framework: parity with the reference and the cheaper paths."""

import numpy as np
import paddle
import pytest
from modeling_helpers import (
    INPUT_KEYS,
    build,
    golden_arrays,
    golden_config,
    inputs_of,
    labels_of,
    random_batch,
    tensors,
)

from paddlevideo.modeling.backbones.actbert import ActBertConfig, BertForMultiModalPreTraining, resize_index
from paddlevideo.modeling.builder import check_training_data
from paddlevideo.modeling.framework.actbert import ActBert
from paddlevideo.modeling.losses.actbert_loss import ActBertLoss
from paddlevideo.modeling.weights import load_backbone_weights, load_model_weights
from paddlevideo.utils.errors import ConfigError, DataError

OUTPUT_NAMES = ("prediction_scores_t", "prediction_scores_v", "prediction_scores_a", "seq_relationship_score")
LOSS_NAMES = ("loss", "loss_text", "loss_region", "loss_action", "loss_match")


@pytest.fixture(scope="module")
def golden(golden_dir):
    model = build(golden_config(golden_dir))
    load_backbone_weights(model, golden_dir / "actbert_tiny" / "backbone.pdparams")
    return model, tensors(golden_arrays(golden_dir, "inputs")), golden_arrays(golden_dir, "outputs")


def full_outputs(model, batch):
    with paddle.no_grad():
        return model(**inputs_of(batch))


# ---------------------------------------------------------------------------------------------
# Parity with PaddleVideo's implementation


def test_golden_outputs_from_backbone_file(golden):
    model, batch, expected = golden
    for name, got in zip(OUTPUT_NAMES, full_outputs(model, batch)):
        np.testing.assert_allclose(got.numpy(), expected[name], atol=1e-4, rtol=0, err_msg=name)


def test_golden_outputs_from_full_checkpoint(golden_dir, golden):
    _, batch, expected = golden
    paddle.seed(5)  # different random init: the checkpoint must overwrite every weight
    model = ActBert(backbone={"name": "BertForMultiModalPreTraining", **golden_config(golden_dir)})
    model.eval()
    load_model_weights(model, golden_dir / "actbert_tiny" / "model.pdparams")
    for name, got in zip(OUTPUT_NAMES, full_outputs(model.backbone, batch)):
        np.testing.assert_allclose(got.numpy(), expected[name], atol=1e-4, rtol=0, err_msg=name)


def test_golden_loss_parts(golden):
    model, batch, expected = golden
    losses = ActBertLoss()(*full_outputs(model, batch), *labels_of(batch))
    for name in LOSS_NAMES:
        np.testing.assert_allclose(float(losses[name]), expected[name], rtol=1e-5, err_msg=name)


def test_golden_training_path_loss(golden):
    model, batch, expected = golden
    with paddle.no_grad():
        losses = ActBert.forward(_framework_around(model), batch, mode="valid")
    for name in LOSS_NAMES:
        np.testing.assert_allclose(float(losses[name]), expected[name], rtol=1e-5, err_msg=name)


def test_golden_match_logits(golden):
    model, batch, expected = golden
    with paddle.no_grad():
        text = model.encode_text(batch["text_ids"], batch["token_type_ids"], batch["text_mask"])
        video = model.encode_video(
            batch["image_feat"], batch["image_loc"], batch["image_mask"], batch["action_feat"], batch["action_mask"]
        )
        index = paddle.to_tensor([0, 1, 2])
        logits = model.match_logits(text, video, index, index)
    np.testing.assert_allclose(logits.numpy(), expected["seq_relationship_score"], atol=1e-4, rtol=0)


def _framework_around(backbone):
    """An ActBert framework holding an existing backbone (no second model built)."""
    framework = ActBert.__new__(ActBert)
    paddle.nn.Layer.__init__(framework)
    framework.backbone = backbone
    framework.loss = ActBertLoss()
    return framework


def test_full_size_state_dict_matches_reference(golden_dir):
    expected = [line for line in (golden_dir / "actbert_full_state_dict.txt").read_text().splitlines() if line]
    with paddle.LazyGuard():  # names and shapes only: no 800 MB of weights
        model = BertForMultiModalPreTraining()
    assert [f"{k} {list(v.shape)}" for k, v in model.state_dict().items()] == expected


def test_word_embedding_and_decoder_are_one_tensor(golden):
    model = golden[0]
    state = model.state_dict()
    assert state["cls.predictions.decoder_weight"] is state["bert.embeddings.word_embeddings.weight"]


def test_reference_initialisation():
    model = build(dict(TINY), seed=3)
    state = model.state_dict()
    assert abs(float(state["bert.encoder.c_layer.0.ent_attention.query1.weight"].std()) - 0.02) < 0.004
    assert float(state["bert.encoder.layer.0.attention.self.query.bias"].abs().max()) == 0.0
    assert float(state["cls.predictions.decoder_bias"].abs().max()) == 0.0
    assert np.all(state["bert.v_embeddings.LayerNorm.weight"].numpy() == 1.0)
    assert np.all(state["bert.v_embeddings.LayerNorm.bias"].numpy() == 0.0)


def test_nearest_resize_matches_paddle_interpolate():
    # The reference resizes with F.interpolate; resize_index must reproduce it, including the
    # lengths where floor(i * L_in / L_out) would differ (2 -> 82).
    assert resize_index(5, 12).tolist() == [0, 0, 0, 1, 1, 2, 2, 2, 3, 3, 4, 4]
    source = paddle.arange(2, dtype="float32").reshape([1, 1, 2, 1])
    expected = paddle.nn.functional.interpolate(source, size=(82, 1)).flatten().astype("int64")
    assert resize_index(2, 82).tolist() == expected.tolist()


# ---------------------------------------------------------------------------------------------
# The cheaper paths equal the full computation, for other valid configurations too

TINY = {
    "vocab_size": 50, "v_target_size": 7, "a_target_size": 6, "v_feature_size": 12, "a_feature_size": 10,
    "num_hidden_layers": 4, "v_num_hidden_layers": 2, "a_num_hidden_layers": 3,
    "t_ent_attention_id": [2, 3], "v_ent_attention_id": [0, 1], "a_ent_attention_id": [0, 1],
    "hidden_size": 16, "v_hidden_size": 24, "a_hidden_size": 16, "bi_hidden_size": 24,
    "intermediate_size": 32, "v_intermediate_size": 20, "a_intermediate_size": 28,
    "num_attention_heads": 4, "v_num_attention_heads": 3, "a_num_attention_heads": 2, "bi_num_attention_heads": 4,
}
VARIANTS = {
    "default-schedule": {},
    "fusion-sum": {"fusion_method": "sum"},
    "connections-at-1-3": {"t_ent_attention_id": [1, 3], "v_ent_attention_id": [1, 2], "a_ent_attention_id": [0, 2]},
    # no layer left after the last connection in any stream, three connections
    "connections-last": {
        "t_ent_attention_id": [2, 3, 4], "v_ent_attention_id": [0, 1, 2], "a_ent_attention_id": [1, 2, 3],
    },
    "frozen-layers": {"fixed_t_layer": 2, "fixed_v_layer": 1, "v_ent_attention_id": [1, 2]},
    "value-av": {"use_value_av": True},
    # the action stream runs out of layers before the last of three connections
    "three-connections-few-action-layers": {
        "t_ent_attention_id": [1, 2, 4], "v_ent_attention_id": [0, 1, 1], "a_ent_attention_id": [0, 1, 1],
        "a_num_hidden_layers": 1,
    },
    # action layers only before the first connection; fusion sum with value_av
    "action-layers-first": {
        "a_ent_attention_id": [2, 2], "a_num_hidden_layers": 2, "fusion_method": "sum", "use_value_av": True,
    },
    "no-action-layers": {"a_ent_attention_id": [0, 0], "a_num_hidden_layers": 0},
}


@pytest.fixture(scope="module", params=list(VARIANTS))
def variant(request):
    config = {**TINY, **VARIANTS[request.param]}
    batch = tensors(random_batch(config))
    return build(config, seed=7, scale=10.0), batch


def test_match_logits_equal_full_forward_for_every_pair(variant):
    assert_match_logits_equal_full(*variant, texts=[0, 0, 1, 2, 2, 1], videos=[0, 2, 1, 0, 1, 2])


def assert_match_logits_equal_full(model, batch, texts, videos):
    with paddle.no_grad():
        text = model.encode_text(batch["text_ids"], batch["token_type_ids"], batch["text_mask"])
        video = model.encode_video(
            batch["image_feat"], batch["image_loc"], batch["image_mask"], batch["action_feat"], batch["action_mask"]
        )
        logits = model.match_logits(text, video, paddle.to_tensor(texts), paddle.to_tensor(videos))
        video_keys = ("action_feat", "image_feat", "image_loc", "image_mask", "action_mask")
        paired = {k: paddle.index_select(batch[k], paddle.to_tensor(videos if k in video_keys else texts))
                  for k in INPUT_KEYS}
        expected = model(**paired)[3]
    np.testing.assert_allclose(logits.numpy(), expected.numpy(), atol=1e-5, rtol=0)


def test_training_path_equals_full_computation(variant):
    assert_training_path_equals_full(*variant)


def with_trailing_padding(arrays, text=3, regions=2):
    """The batch with its last ``text`` tokens and ``regions`` regions padding in every row, unlabelled."""
    arrays = {k: v.copy() for k, v in arrays.items()}
    arrays["text_mask"][:, -text:] = 0
    arrays["text_ids"][:, -text:] = 0
    arrays["text_labels"][:, -text:] = -1
    arrays["image_mask"][:, -regions:] = 0
    arrays["image_label"][:, -regions:] = -1
    return arrays


def first_layer_lengths(model):
    """Record the sequence length each stream's first layer is run with (text, region)."""
    seen = {"text": [], "region": []}
    encoder = model.bert.encoder
    for name, layer in (("text", encoder.layer[0]), ("region", encoder.c_layer[0].v_intermediate)):
        layer.register_forward_pre_hook(lambda _, inputs, name=name: seen[name].append(inputs[0].shape[1]))
    return seen


@pytest.mark.parametrize("name", ["default-schedule", "connections-at-1-3", "three-connections-few-action-layers"])
def test_trailing_padding_is_not_computed_and_changes_nothing(name):
    # The last 3 tokens and 2 regions are padding everywhere: the training and retrieval paths
    # run on 7 tokens and 5 regions and still equal the full computation over 10 and 7, whose
    # action contexts are resized to the nominal lengths.
    config = {**TINY, **VARIANTS[name]}
    model = build(config, seed=7, scale=10.0)
    batch = tensors(with_trailing_padding(random_batch(config)))
    seen = first_layer_lengths(model)
    assert_training_path_equals_full(model, batch)
    assert seen["text"][0] == 10 and seen["text"][-1] == 7  # full forward first, then the cut batch
    assert seen["region"][0] == 7 and seen["region"][-1] == 5
    assert_match_logits_equal_full(model, batch, texts=[0, 1, 2, 2], videos=[2, 1, 0, 1])
    assert seen["region"][-1] == 7  # the full forward of the pairs; the pair stage ran on 5:
    assert 5 in seen["region"][2:]
    model.trim_padding = False  # the switch the benchmark uses to measure the paths without cutting
    assert_training_path_equals_full(model, batch)
    assert seen["text"][-1] == 10 and seen["region"][-1] == 7


def test_labelled_padding_and_rows_without_real_tokens_are_kept():
    arrays = with_trailing_padding(random_batch(TINY))
    arrays["text_labels"][0, -2] = 4  # a label on a padded position: its row must be computed
    model = build(TINY, seed=7, scale=10.0)
    seen = first_layer_lengths(model)
    assert_training_path_equals_full(model, tensors(arrays))
    assert seen["text"][-1] == 9
    # A caption that is padding throughout attends uniformly over all its keys, as the
    # reference does: nothing is cut then.
    arrays["text_mask"][1] = 0
    assert_training_path_equals_full(model, tensors(arrays))
    assert seen["text"][-1] == 10


def assert_training_path_equals_full(model, batch):
    with paddle.no_grad():
        full = model(**inputs_of(batch))
        scores = model.pretrain_scores(
            **inputs_of(batch), text_labels=batch["text_labels"], image_label=batch["image_label"],
            action_label=batch["action_label"],
        )
    labelled = batch["text_labels"].numpy() != -1
    np.testing.assert_allclose(scores.text_scores.numpy(), full[0].numpy()[labelled], atol=1e-5)
    masked = batch["image_label"].numpy() == 1
    np.testing.assert_allclose(scores.region_scores.numpy(), full[1].numpy()[:, 1:][masked], atol=1e-5)
    acted = batch["action_label"].numpy() != -1
    np.testing.assert_allclose(scores.action_scores.numpy(), full[2].numpy()[acted], atol=1e-5)
    np.testing.assert_allclose(scores.seq_relationship_score.numpy(), full[3].numpy(), atol=1e-5)
    loss = ActBertLoss()
    efficient = loss.from_scores(scores, batch["image_target"], batch["next_sentence_label"])
    reference = loss(*full, *labels_of(batch))
    for name in LOSS_NAMES:
        np.testing.assert_allclose(float(efficient[name]), float(reference[name]), rtol=1e-5, err_msg=name)


def test_value_av_switch_changes_only_when_asked():
    batch = tensors(random_batch(TINY))
    default, switched = build(TINY, seed=7), build({**TINY, "use_value_av": True}, seed=7)
    with paddle.no_grad():
        a, b = default(**inputs_of(batch))[3], switched(**inputs_of(batch))[3]
    assert not np.allclose(a.numpy(), b.numpy())


def test_frozen_layers_get_no_gradient():
    config = {**TINY, "fixed_t_layer": 2, "fixed_v_layer": 1, "v_ent_attention_id": [1, 2]}
    paddle.seed(7)
    model = ActBert(backbone={"name": "BertForMultiModalPreTraining", **config})
    model.train()
    losses = model.train_step(tensors(random_batch(config)))
    losses["loss"].backward()
    params = dict(model.backbone.named_parameters())
    for frozen in ("bert.encoder.layer.0.output.dense.weight", "bert.encoder.layer.1.attention.self.query.weight",
                   "bert.encoder.v_layer.0.output.dense.weight"):
        assert params[frozen].grad is None, frozen
    for trained in ("bert.encoder.layer.2.output.dense.weight", "bert.encoder.v_layer.1.output.dense.weight",
                    "bert.encoder.c_layer.0.ent_attention.key_at.weight", "cls.predictions.decoder_bias"):
        assert params[trained].grad is not None, trained


def test_framework_returns_the_four_parts_and_trains():
    paddle.seed(3)
    model = ActBert(backbone={"name": "BertForMultiModalPreTraining", **TINY}, loss={"name": "ActBertLoss"})
    batch = tensors(random_batch(TINY))
    model.train()
    losses = model.train_step(batch)
    assert set(losses) == set(LOSS_NAMES) and all(v.ndim == 0 for v in losses.values())
    losses["loss"].backward()
    model.eval()
    with paddle.no_grad():
        assert set(model.val_step(batch)) == set(LOSS_NAMES)


def test_training_step_reads_no_action_label_off_the_device(monkeypatch):
    """The action class ids are checked by the dataset as it builds a sample (``tell_dataset``),
    not by a reduction of the batch's labels on the device every step (a GPU->CPU sync)."""
    model = ActBert(backbone={"name": "BertForMultiModalPreTraining", **TINY})
    batch = tensors(random_batch(TINY))
    reduced, original = [], paddle.Tensor.max
    monkeypatch.setattr(paddle.Tensor, "max", lambda self, *a, **k: (reduced.append(self is batch["action_label"]),
                                                                     original(self, *a, **k))[1])
    model.train_step(batch)
    assert reduced and not any(reduced)  # the spy saw other reductions, none of the action labels

    class Told:
        def expect_action_classes(self, count, key):
            self.expected = (count, key)

    train, valid = Told(), Told()
    check_training_data(model, train, 8, valid)
    assert train.expected == valid.expected == (TINY["a_target_size"], "MODEL.backbone.a_target_size")
    check_training_data(model, object(), 8)  # a set that takes no class count: nothing to tell


def test_loss_terms_without_labels_are_zero():
    batch = random_batch(TINY)
    batch["text_labels"][:] = -1
    batch["image_label"][:] = -1
    batch["action_label"][:] = -1
    batch = tensors(batch)
    model = build(TINY)
    with paddle.no_grad():
        full = model(**inputs_of(batch))
        scores = model.pretrain_scores(**inputs_of(batch), text_labels=batch["text_labels"],
                                       image_label=batch["image_label"], action_label=batch["action_label"])
    for losses in (ActBertLoss()(*full, *labels_of(batch)),
                   ActBertLoss().from_scores(scores, batch["image_target"], batch["next_sentence_label"])):
        assert [float(losses[k]) for k in ("loss_text", "loss_region", "loss_action")] == [0.0, 0.0, 0.0]
        assert np.isfinite(float(losses["loss"])) and float(losses["loss"]) == float(losses["loss_match"])


def test_loss_means_over_labelled_positions_only():
    # One labelled token among four: the mean is that token's cross-entropy, not a quarter of it.
    scores = paddle.to_tensor(np.log(np.array([[[0.5, 0.25, 0.25]] * 4], "float32")))
    labels = paddle.to_tensor([[-1, 0, -1, -1]])
    from paddlevideo.modeling.losses.actbert_loss import classification_term

    assert float(classification_term(scores.reshape([-1, 3]), labels.flatten())) == pytest.approx(np.log(2), 1e-6)


# ---------------------------------------------------------------------------------------------
# Bad input and configuration


@pytest.mark.parametrize("name, shape, expected", [
    ("image_feat", [3, 7, 13], "12"), ("action_feat", [3, 4, 9], "10"), ("image_loc", [3, 7, 4], "5"),
])
def test_feature_size_mismatch_is_a_data_error(name, shape, expected):
    model = build(TINY)
    batch = tensors(random_batch(TINY))
    batch[name] = paddle.zeros(shape)
    with pytest.raises(DataError, match=rf"{name}.*{expected}.*{shape[-1]}\]"):
        model(**inputs_of(batch))


@pytest.mark.parametrize("change, message", [
    ({"a_hidden_size": 24, "a_num_attention_heads": 4}, "a_hidden_size"),
    ({"t_ent_attention_id": [2]}, "same, non-zero number"),
    ({"t_ent_attention_id": [3, 2]}, "non-decreasing"),
    ({"fixed_t_layer": 3}, "fixed_t_layer"),
    ({"hidden_size": 18}, "multiple of num_attention_heads"),
    ({"fusion_method": "max"}, "fusion_method"),
])
def test_invalid_configuration_is_a_config_error(change, message):
    with pytest.raises(ConfigError, match=message):
        ActBertConfig(**{**TINY, **change})


def test_unknown_backbone_key_is_a_config_error():
    from paddlevideo.modeling.registry import BACKBONES
    from paddlevideo.utils.registry import build_from_cfg

    with pytest.raises(ConfigError, match="hiden_size.*did you mean 'hidden_size'"):
        build_from_cfg({"name": "BertForMultiModalPreTraining", "hiden_size": 8}, BACKBONES, where="MODEL.backbone")


def test_layer_norm_drops_only_the_input_gradient_of_constant_rows():
    from paddlevideo.modeling.backbones.actbert import LayerNorm

    paddle.seed(0)
    ours, plain = LayerNorm(6, epsilon=1e-12), paddle.nn.LayerNorm(6, epsilon=1e-12)
    plain.set_state_dict(ours.state_dict())
    rows = np.random.default_rng(0).normal(size=[2, 3, 6]).astype("float32")
    rows[0, 1] = 0.0  # a padded slot
    rows[1, 2] = 0.25  # constant, not zero
    grads = {}
    for name, layer in (("ours", ours), ("plain", plain)):
        x = paddle.to_tensor(rows, stop_gradient=False)
        y = layer(x)
        (y * paddle.arange(6, dtype="float32")).sum().backward()
        grads[name] = (y.numpy(), x.grad.numpy(), layer.weight.grad.numpy(), layer.bias.grad.numpy())
    np.testing.assert_array_equal(grads["ours"][0], grads["plain"][0])  # the same forward
    assert np.abs(grads["plain"][1][0, 1]).max() > 1e5  # the 1/sqrt(eps) gradient it stops
    assert not grads["ours"][1][0, 1].any() and not grads["ours"][1][1, 2].any()
    live = np.ones([2, 3], bool)
    live[0, 1] = live[1, 2] = False
    np.testing.assert_array_equal(grads["ours"][1][live], grads["plain"][1][live])
    for i in (2, 3):
        np.testing.assert_array_equal(grads["ours"][i], grads["plain"][i])
