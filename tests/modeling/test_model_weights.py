"""Weights files: backbone and full checkpoints, BERT-only initialisation, clear errors."""

import pickle
from pathlib import Path

import numpy as np
import paddle
import pytest
from modeling_helpers import build, golden_config

from paddlevideo.modeling import build_model, describe_checkpoint, load_backbone_weights, load_model_weights
from paddlevideo.modeling.framework.actbert import ActBert
from paddlevideo.modeling.weights import SCRATCH_PREFIXES
from paddlevideo.utils.config import load_yaml
from paddlevideo.utils.errors import WeightsError

CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "multimodal" / "actbert"
BERT_PARTS = ("bert.embeddings.", "bert.encoder.layer.", "cls.predictions.")


@pytest.fixture(scope="module")
def tiny(golden_dir):
    state = paddle.load(str(golden_dir / "actbert_tiny" / "backbone.pdparams"))
    return golden_config(golden_dir), state


def _save(tmp_path, state, name="w.pdparams"):
    path = tmp_path / name
    paddle.save(state, str(path))
    return path


def test_bare_and_prefixed_backbone_files_load_the_same(golden_dir, tiny):
    config, state = tiny
    for name in ("backbone.pdparams", "model.pdparams"):
        model = build(config, seed=11)
        report = load_backbone_weights(model, golden_dir / "actbert_tiny" / name)
        assert not report.scratch and not report.unexpected
        got = model.state_dict()
        assert all(np.array_equal(got[k].numpy(), v.numpy()) for k, v in state.items())


def test_bert_only_file_leaves_other_parts_from_scratch(tmp_path, tiny):
    config, state = tiny
    bert_only = {k: v for k, v in state.items() if k.startswith(BERT_PARTS) and k != "cls.predictions.decoder_weight"}
    model = build(config, seed=11)
    before = {k: v.numpy().copy() for k, v in model.state_dict().items()}
    report = load_backbone_weights(model, _save(tmp_path, bert_only))
    after = model.state_dict()
    assert report.scratch and all(k.startswith(SCRATCH_PREFIXES) for k in report.scratch)
    assert any(k.startswith("bert.encoder.c_layer.") for k in report.scratch)
    assert "bert.encoder.c_layer.*" in report.summary()
    for key in report.scratch:
        assert np.array_equal(after[key].numpy(), before[key]), key
    # the tied decoder follows the word embeddings it was not stored with
    assert np.array_equal(after["cls.predictions.decoder_weight"].numpy(),
                          state["bert.embeddings.word_embeddings.weight"].numpy())


def test_missing_text_key_is_an_error(tmp_path, tiny):
    config, state = tiny
    partial = {k: v for k, v in state.items() if k != "bert.encoder.layer.1.output.dense.weight"}
    with pytest.raises(WeightsError, match=r"1 missing key\(s\): 'bert.encoder.layer.1.output.dense.weight'"):
        load_backbone_weights(build(config), _save(tmp_path, partial))


def test_shape_mismatch_names_key_and_both_shapes(tmp_path, tiny):
    config, state = tiny
    changed = dict(state)
    changed["bert.encoder.v_layer.0.intermediate.dense.weight"] = paddle.zeros([48, 50])
    with pytest.raises(WeightsError, match=r"'bert.encoder.v_layer.0.intermediate.dense.weight' file \[48, 50\] "
                                           r"vs model \[48, 48\]"):
        load_backbone_weights(build(config), _save(tmp_path, changed))


def test_tied_names_that_disagree_are_an_error(tmp_path, tiny):
    config, state = tiny
    changed = dict(state)
    changed["cls.predictions.decoder_weight"] = changed["cls.predictions.decoder_weight"] * 2
    with pytest.raises(WeightsError, match="differ, but the model ties them"):
        load_backbone_weights(build(config), _save(tmp_path, changed))


def test_full_checkpoint_must_be_complete(tmp_path, golden_dir, tiny):
    config, state = tiny
    model = ActBert(backbone={"name": "BertForMultiModalPreTraining", **config})
    load_model_weights(model, golden_dir / "actbert_tiny" / "model.pdparams")
    bert_only = {"backbone." + k: v for k, v in state.items() if k.startswith(BERT_PARTS)}
    with pytest.raises(WeightsError, match="missing key.*MODEL.backbone.pretrained"):
        load_model_weights(model, _save(tmp_path, bert_only))


@pytest.mark.parametrize("content", [b"not a checkpoint at all\n", pickle.dumps([1, 2, 3]), b""])
def test_file_that_is_not_a_state_dict(tmp_path, tiny, content):
    path = tmp_path / "bad.pdparams"
    path.write_bytes(content)
    with pytest.raises(WeightsError, match="bad.pdparams"):
        load_backbone_weights(build(tiny[0]), path)
    with pytest.raises(WeightsError):
        describe_checkpoint(path)


def test_missing_file(tmp_path, tiny):
    with pytest.raises(WeightsError, match="not found"):
        load_backbone_weights(build(tiny[0]), tmp_path / "none.pdparams")


def test_describe_checkpoint(tmp_path, golden_dir, tiny):
    state = tiny[1]
    assert describe_checkpoint(golden_dir / "actbert_tiny" / "model.pdparams") == "full"
    assert describe_checkpoint(golden_dir / "actbert_tiny" / "backbone.pdparams") == "backbone"
    bert_only = {k: v for k, v in state.items() if k.startswith(BERT_PARTS)}
    assert describe_checkpoint(_save(tmp_path, bert_only, "bert.pdparams")) == "bert"
    optimizer = {"linear_0.w_0_moment1_0": paddle.zeros([2]), "LR_Scheduler": {"last_epoch": 3}}
    assert describe_checkpoint(_save(tmp_path, optimizer, "x.pdopt")) == "optimizer"


# ---------------------------------------------------------------------------------------------
# Configs as PaddleVideo ships them build this model


def test_shipped_configs_build_the_model(tmp_path, tiny):
    for name in ("actbert.yaml", "actbert_msrvtt.yaml"):
        model_cfg = load_yaml(CONFIGS / name).MODEL
        model_cfg.backbone.pop("pretrained", None)
        with paddle.LazyGuard():  # the full-size model: structure only
            model = build_model(model_cfg)
        assert type(model).__name__ == "ActBert"
        assert model.backbone.config.num_hidden_layers == 12 and model.backbone.config.a_target_size == 700


def test_build_model_loads_pretrained(tmp_path, golden_dir, tiny):
    config, state = tiny
    model_cfg = load_yaml(CONFIGS / "actbert.yaml").MODEL
    model_cfg.backbone.update(config, pretrained=str(golden_dir / "actbert_tiny" / "backbone.pdparams"))
    model = build_model(model_cfg)
    key = "bert.encoder.c_layer.1.ent_attention.value_at.weight"
    assert np.array_equal(model.backbone.state_dict()[key].numpy(), state[key].numpy())
    model_cfg.backbone.pretrained = str(tmp_path / "bert_for_actbert.pdparams")
    with pytest.raises(WeightsError, match="bert_for_actbert.pdparams"):
        build_model(model_cfg)
