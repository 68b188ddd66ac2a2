"""tools/bert_to_actbert.py on a real BERT checkpoint (MiniLM-L6-H384) and on synthetic ones."""

import sys

import numpy as np
import paddle
import pytest
from modeling_helpers import MINILM, build, golden_config
from safetensors.numpy import save_file

from paddlevideo.modeling import load_backbone_weights
from paddlevideo.utils.errors import WeightsError
from tools import bert_to_actbert


@pytest.fixture(scope="module")
def minilm_file(minilm_model_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("minilm") / "minilm.pdparams"
    assert bert_to_actbert.main([str(minilm_model_dir), str(out)]) == 0
    return out


def test_minilm_text_stream_reproduces_every_layer(minilm_file, golden_dir):
    reference = np.load(golden_dir / "minilm" / "minilm_l6_hidden.npz")
    model = build(MINILM)
    converted = paddle.load(str(minilm_file))
    state = model.state_dict()
    for key, value in converted.items():  # every converted tensor has its place in the model
        assert list(state[key].shape) == list(value.shape), key
        state[key].set_value(value)
    with paddle.no_grad():
        prefix = model.encode_text(
            paddle.to_tensor(reference["input_ids"]), paddle.to_tensor(reference["token_type_ids"]),
            paddle.to_tensor(reference["attention_mask"]), output_hidden_states=True,
        )
    real = reference["attention_mask"].astype(bool)  # padded positions differ by design (README)
    assert len(prefix.hidden_states) == reference["hidden_states"].shape[1] == 7
    for layer, got in enumerate(prefix.hidden_states):
        np.testing.assert_allclose(got.numpy()[real], reference["hidden_states"][:, layer][real], atol=1e-4,
                                   rtol=0, err_msg=f"hidden state {layer}")


def test_minilm_conversion_has_no_lm_head_and_the_loader_says_so(minilm_file, capsys):
    with pytest.raises(WeightsError, match="missing key.*cls.predictions.transform.*--new-lm-head"):
        load_backbone_weights(build(MINILM), minilm_file)


def test_new_lm_head_makes_a_sentence_model_usable_as_pretrained(minilm_model_dir, minilm_file, tmp_path, capsys):
    out = tmp_path / "minilm_head.pdparams"
    assert bert_to_actbert.main([str(minilm_model_dir), str(out), "--new-lm-head", "--seed", "3"]) == 0
    assert "initialised from scratch (--new-lm-head, seed 3): cls.predictions.transform.dense.weight" in \
        capsys.readouterr().out
    state, text_only = paddle.load(str(out)), paddle.load(str(minilm_file))
    assert set(state) - set(text_only) == {
        "cls.predictions.transform.dense.weight", "cls.predictions.transform.dense.bias",
        "cls.predictions.transform.LayerNorm.weight", "cls.predictions.transform.LayerNorm.bias",
        "cls.predictions.decoder_bias",
    }
    dense = state["cls.predictions.transform.dense.weight"].numpy()
    assert dense.shape == (384, 384) and abs(dense.std() - 0.02) < 0.001
    assert float(state["cls.predictions.transform.LayerNorm.weight"].min()) == 1.0
    assert list(state["cls.predictions.decoder_bias"].shape) == [30522]
    model = build(MINILM)
    load_backbone_weights(model, out)  # the strict loader accepts it now
    np.testing.assert_array_equal(model.cls.predictions.decoder_weight.numpy(),
                                  text_only["bert.embeddings.word_embeddings.weight"].numpy())


def test_converter_prints_mapping(minilm_model_dir, tmp_path, capsys):
    bert_to_actbert.main([str(minilm_model_dir / "model.safetensors"), str(tmp_path / "m.pdparams")])
    out = capsys.readouterr().out
    assert "encoder.layer.0.attention.self.query.weight -> bert.encoder.layer.0.attention.self.query.weight " \
           "(transposed)" in out
    assert "not used by ActBERT" in out and "embeddings.position_ids" in out
    assert "no masked-LM head" in out


def _as_hugging_face(state):
    """The tiny golden backbone's text stream and LM head in Hugging Face's BertForPreTraining layout."""
    hf = {}
    for key, value in state.items():
        value = value.numpy()
        if key.startswith(("bert.embeddings.", "bert.encoder.layer.")):
            linear = key.endswith(".weight") and value.ndim == 2 and "embeddings" not in key
            hf[key.replace("LayerNorm.weight", "LayerNorm.gamma")] = np.ascontiguousarray(value.T if linear else value)
        elif key.startswith("cls.predictions.transform."):
            hf[key] = np.ascontiguousarray(value.T if key.endswith("dense.weight") else value)
    hf["cls.predictions.bias"] = state["cls.predictions.decoder_bias"].numpy()
    hf["cls.predictions.decoder.weight"] = state["bert.embeddings.word_embeddings.weight"].numpy()
    hf["bert.pooler.dense.weight"] = np.zeros([32, 32], "float32")
    return hf


def test_prefixed_checkpoint_with_lm_head_round_trips(golden_dir, tmp_path):
    state = paddle.load(str(golden_dir / "actbert_tiny" / "backbone.pdparams"))
    save_file(_as_hugging_face(state), str(tmp_path / "model.safetensors"))
    out = tmp_path / "bert_for_actbert.pdparams"
    assert bert_to_actbert.main([str(tmp_path), str(out)]) == 0
    model = build(golden_config(golden_dir), seed=2)
    report = load_backbone_weights(model, out)
    assert report.scratch and not report.unexpected
    loaded = model.state_dict()
    for key in loaded:
        if key.startswith(("bert.embeddings.", "bert.encoder.layer.", "cls.predictions.")):
            np.testing.assert_array_equal(loaded[key].numpy(), state[key].numpy(), err_msg=key)


def test_bad_inputs_are_clear_errors(tmp_path, capsys, monkeypatch):
    (tmp_path / "model.safetensors").write_bytes(b"garbage")
    assert bert_to_actbert.main([str(tmp_path / "model.safetensors"), str(tmp_path / "o.pdparams")]) == 2
    assert "is not a safetensors file" in capsys.readouterr().err
    assert bert_to_actbert.main([str(tmp_path / "missing"), str(tmp_path / "o.pdparams")]) == 2
    assert "not found" in capsys.readouterr().err
    save_file({"linear.weight": np.zeros([2, 2], "float32")}, str(tmp_path / "other.safetensors"))
    assert bert_to_actbert.main([str(tmp_path / "other.safetensors"), str(tmp_path / "o.pdparams")]) == 2
    assert "not a BERT checkpoint" in capsys.readouterr().err
    (tmp_path / "pytorch_model.bin").write_bytes(b"")
    monkeypatch.setitem(sys.modules, "torch", None)  # as on a machine without torch: not needed
    assert bert_to_actbert.main([str(tmp_path / "pytorch_model.bin"), str(tmp_path / "o.pdparams")]) == 2
    assert "pytorch_model.bin: not a PyTorch checkpoint" in capsys.readouterr().err
