"""Tiny configurations and random inputs shared by the model tests."""

import json

import numpy as np
import paddle

from paddlevideo.modeling.backbones.actbert import BertForMultiModalPreTraining

# MiniLM's text stream, every text layer before the first connection; other streams tiny.
MINILM = {
    "vocab_size": 30522, "hidden_size": 384, "num_attention_heads": 12, "intermediate_size": 1536,
    "num_hidden_layers": 6, "t_ent_attention_id": [6, 6], "v_ent_attention_id": [0, 1],
    "a_ent_attention_id": [0, 1], "a_hidden_size": 384, "a_num_attention_heads": 12, "a_intermediate_size": 64,
    "v_hidden_size": 32, "v_num_attention_heads": 4, "v_intermediate_size": 32, "bi_hidden_size": 32,
    "bi_num_attention_heads": 4, "v_feature_size": 8, "a_feature_size": 8, "v_target_size": 5, "a_target_size": 5,
}

INPUT_KEYS = ("text_ids", "action_feat", "image_feat", "image_loc", "token_type_ids", "text_mask", "image_mask",
              "action_mask")


def golden_config(golden_dir):
    return json.loads((golden_dir / "actbert_tiny" / "backbone.json").read_text())


def golden_arrays(golden_dir, name):
    return dict(np.load(golden_dir / "actbert_tiny" / f"{name}.npz"))


def tensors(arrays):
    return {k: paddle.to_tensor(v) for k, v in arrays.items()}


def build(config, seed=0, eval_mode=True, scale=1.0):
    """A backbone with the reference initialisation; ``scale`` multiplies every weight matrix
    outside the embeddings. At the reference's std 0.02 a tiny model's cross-stream terms are
    ~1e-7 of its outputs, so tests that must see them (the action contexts) use scale 10."""
    paddle.seed(seed)
    model = BertForMultiModalPreTraining(**config)
    if scale != 1.0:
        with paddle.no_grad():
            for name, param in model.named_parameters():
                if param.ndim == 2 and "embeddings" not in name:
                    param.set_value(param * scale)
    if eval_mode:
        model.eval()
    return model


def random_batch(config, batch=3, text_len=10, regions=7, actions=4, seed=1):
    """A batch with padding in every stream, labels included (numpy arrays)."""
    rng = np.random.default_rng(seed)
    text_mask = np.ones([batch, text_len], "int64")
    text_mask[1, -3:] = 0
    text_mask[2, -1:] = 0
    text_ids = rng.integers(1, config["vocab_size"], [batch, text_len]) * text_mask
    image_mask = np.ones([batch, regions], "int64")
    image_mask[1, 4:] = 0
    action_mask = np.ones([batch, actions], "int64")
    action_mask[2, 1:] = 0
    words = rng.integers(0, config["vocab_size"], [batch, text_len])
    text_labels = np.where(rng.random([batch, text_len]) < 0.3, words, -1)
    text_labels[1] = -1  # a sample without any labelled token
    image_label = np.where(rng.random([batch, regions - 1]) < 0.3, 1, -1)
    target = rng.random([batch, regions - 1, config["v_target_size"]]).astype("float32")
    target[..., 0] = 0.0  # zero probabilities must contribute 0
    classes = rng.integers(0, config["a_target_size"], [batch, actions])
    action_label = np.where(rng.random([batch, actions]) < 0.4, classes, -1)
    return {
        "text_ids": text_ids.astype("int64"),
        "token_type_ids": np.zeros([batch, text_len], "int64"),
        "text_mask": text_mask,
        "image_feat": rng.normal(size=[batch, regions, config["v_feature_size"]]).astype("float32"),
        "image_loc": rng.random([batch, regions, 5]).astype("float32"),
        "image_mask": image_mask,
        "action_feat": rng.normal(size=[batch, actions, config["a_feature_size"]]).astype("float32"),
        "action_mask": action_mask,
        "text_labels": text_labels.astype("int64"),
        "image_label": image_label.astype("int64"),
        "image_target": target / target.sum(-1, keepdims=True),
        "action_label": action_label.astype("int64"),
        "next_sentence_label": rng.integers(0, 2, [batch]).astype("int64"),
    }


def inputs_of(batch):
    return {k: batch[k] for k in INPUT_KEYS}


def labels_of(batch):
    return [batch[k] for k in ("text_labels", "image_label", "image_target", "action_label", "next_sentence_label")]
