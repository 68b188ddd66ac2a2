"""The caption decoder: incremental (cached) steps equal a full recomputation; beam search
equals a brute force over a tiny vocabulary; the framework's frozen / fine-tuned switch."""

import itertools

import numpy as np
import paddle
import paddle.nn.functional as F
import pytest

from paddlevideo.modeling.framework.actbert_caption import ActBertCaption
from paddlevideo.modeling.heads.caption_decoder import CaptionDecoder
from paddlevideo.modeling.heads.caption_search import beam_search, greedy_search
from paddlevideo.utils.errors import ConfigError

BOS, EOS, PAD = 1, 2, 0


def decoder(vocab=6, seed=0, scale=3.0):
    """A tiny decoder with large weights (peaked, distinct distributions), eval mode."""
    paddle.seed(seed)
    dec = CaptionDecoder(vocab, d_model=16, num_layers=2, num_heads=2, dim_feedforward=32, dropout=0.0,
                         max_length=8)
    with paddle.no_grad():
        for param in dec.parameters():
            if param.ndim == 2:
                param.set_value(param * scale)
    dec.eval()
    return dec


def memory(rows=3, slots=5, seed=1):
    rng = np.random.default_rng(seed)
    mask = np.ones([rows, slots], "float32")
    mask[1, 3:] = 0  # padded slots in one row
    return paddle.to_tensor(rng.normal(size=[rows, slots, 16]).astype("float32")), paddle.to_tensor(mask)


def test_cached_steps_equal_full_recomputation():
    dec, (mem, mask) = decoder(vocab=11), memory()
    ids = paddle.to_tensor(np.random.default_rng(2).integers(3, 11, [3, 6]), "int64")
    ids[:, 0] = BOS
    full = dec(ids, mem, mask).numpy()  # [3, 6, V], causal mask
    state = dec.start(mem, mask)
    for t in range(ids.shape[1]):
        logits, state = dec.step(ids[:, t], state)
        np.testing.assert_allclose(logits.numpy(), full[:, t], rtol=1e-4, atol=1e-4)
    # Padded memory slots are not attended: changing them changes nothing.
    noisy = mem.numpy().copy()
    noisy[1, 3:] = 100.0
    np.testing.assert_allclose(dec(ids, paddle.to_tensor(noisy), mask).numpy()[1], full[1], rtol=1e-4, atol=1e-4)
    # Following a reordering of the rows (beams) keeps each row's own cache.
    state = dec.start(mem, mask)
    _, state = dec.step(ids[:, 0], state)
    state = state.select(paddle.to_tensor([2, 0], "int64"))
    logits, _ = dec.step(paddle.to_tensor([int(ids[2, 1]), int(ids[0, 1])], "int64"), state)
    np.testing.assert_allclose(logits.numpy(), full[[2, 0], 1], rtol=1e-4, atol=1e-4)


def sequence_log_prob(dec, mem, mask, seq):
    """log p(seq) by one full teacher-forced pass (no cache)."""
    ids = paddle.to_tensor([[BOS] + list(seq)], "int64")
    logp = F.log_softmax(dec(ids[:, :-1] if len(seq) else ids, mem, mask), axis=-1).numpy()[0]
    banned = [PAD, BOS]
    total = 0.0
    for t, token in enumerate(seq):
        allowed = np.delete(np.arange(logp.shape[1]), banned)
        # banned tokens are never generated: renormalising is not needed (their mass stays excluded)
        assert token in allowed
        total += logp[t, token]
    return total


def brute_force(dec, mem, mask, max_len, length_penalty):
    """Best sequence over every word sequence of length < max_len closed by EOS, or of length max_len."""
    words = [3, 4, 5]  # vocab 6: PAD, BOS, EOS, three words
    best = (-np.inf, None)
    for k in range(max_len + 1):
        for body in itertools.product(words + [EOS], repeat=k):
            if EOS in body[:-1] or (k < max_len and (not body or body[-1] != EOS)):
                continue
            value = sequence_log_prob(dec, mem, mask, body) / (k ** length_penalty)
            if value > best[0]:
                best = (value, [t for t in body if t != EOS])
    return best[1]


@pytest.mark.parametrize("length_penalty", [0.0, 1.0])
def test_beam_search_equals_brute_force_on_a_tiny_vocabulary(length_penalty):
    dec, (mem, mask) = decoder(vocab=6, scale=1.0), memory()
    max_len = 3
    # 3 words -> at most 9 live prefixes before the last step: a beam of 9 is exhaustive.
    found = beam_search(dec, mem, mask, BOS, EOS, max_len, beam_size=9, length_penalty=length_penalty,
                        banned=(PAD, BOS))
    for row in range(3):
        expected = brute_force(dec, mem[row:row + 1], mask[row:row + 1], max_len, length_penalty)
        assert found[row] == expected, (row, found[row], expected)


def test_greedy_follows_the_argmax_and_stops_at_eos():
    dec, (mem, mask) = decoder(vocab=6, scale=1.0), memory()
    found = greedy_search(dec, mem, mask, BOS, EOS, 4, banned=(PAD, BOS))
    for row in range(3):
        seq = []
        for _ in range(4):
            ids = paddle.to_tensor([[BOS] + seq], "int64")
            logits = dec(ids, mem[row:row + 1], mask[row:row + 1]).numpy()[0, -1]
            logits[[PAD, BOS]] = -np.inf
            token = int(np.argmax(logits))
            if token == EOS:
                break
            seq.append(token)
        assert found[row] == seq


TINY = {"name": "BertForMultiModalPreTraining", "vocab_size": 12, "max_position_embeddings": 16,
        "v_feature_size": 8, "a_feature_size": 8, "v_target_size": 5, "a_target_size": 4, "hidden_size": 16,
        "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 16, "v_hidden_size": 16,
        "v_num_hidden_layers": 2, "v_num_attention_heads": 2, "v_intermediate_size": 16, "a_hidden_size": 16,
        "a_num_hidden_layers": 2, "a_num_attention_heads": 2, "a_intermediate_size": 16, "bi_hidden_size": 16,
        "bi_num_attention_heads": 2, "t_ent_attention_id": [0, 1], "v_ent_attention_id": [0, 1],
        "a_ent_attention_id": [0, 1]}
DECODER = {"name": "CaptionDecoder", "vocab_size": 12, "d_model": 16, "num_layers": 1, "num_heads": 2,
           "dim_feedforward": 16, "max_length": 10}


def video_batch(rows=2):
    rng = np.random.default_rng(0)
    batch = {"image_feat": rng.normal(size=[rows, 4, 8]), "image_loc": rng.uniform(size=[rows, 4, 5]),
             "image_mask": np.ones([rows, 4]), "action_feat": rng.normal(size=[rows, 3, 8]),
             "action_mask": np.array([[1, 0, 0]] + [[1, 1, 1]] * (rows - 1))}
    batch = {k: paddle.to_tensor(v.astype("float32")) for k, v in batch.items()}
    batch["caption_ids"] = paddle.to_tensor([[2, 5, 6, 3, 0], [2, 7, 8, 9, 3]][:rows], "int64")
    return batch


@pytest.mark.parametrize("freeze", [True, False])
def test_frozen_encoder_gets_no_gradient_fine_tuned_does(freeze):
    paddle.seed(0)
    net = ActBertCaption(TINY, DECODER, freeze_encoder=freeze, bos_id=2, eos_id=3, max_decode_length=5)
    net.train()
    assert net.backbone.training is not freeze  # a frozen encoder runs without dropout
    loss = net(video_batch())["loss"]
    loss.backward()
    encoder_grads = [p.grad for p in net.backbone.parameters() if p.grad is not None]
    assert bool(encoder_grads) is not freeze
    assert all(p.grad is not None for p in net.decoder.parameters() if p.name and "position" not in p.name)
    assert np.isfinite(float(loss))
    net.eval()
    captions = net.generate(video_batch(), beam_size=2)
    assert len(captions) == 2 and all(len(c) <= 5 and 3 not in c and 2 not in c and 0 not in c for c in captions)


def test_decoder_and_encoder_vocabularies_must_agree():
    with pytest.raises(ConfigError, match=r"decoder.vocab_size \(13\) must equal MODEL.backbone.vocab_size \(12\)"):
        ActBertCaption(TINY, {**DECODER, "vocab_size": 13})
    with pytest.raises(ConfigError, match="max_decode_length"):
        ActBertCaption(TINY, DECODER, max_decode_length=10)


def test_checkpoint_round_trip_loads_the_decoder_and_checks_its_keys(tmp_path):
    from paddlevideo.modeling.weights import describe_checkpoint, load_model_weights
    from paddlevideo.utils.errors import WeightsError

    paddle.seed(0)
    saved = ActBertCaption(TINY, DECODER, bos_id=2, eos_id=3, max_decode_length=5)
    path = str(tmp_path / "caption.pdparams")
    paddle.save(saved.state_dict(), path)
    assert describe_checkpoint(path) == "full"
    paddle.seed(1)
    fresh = ActBertCaption(TINY, DECODER, bos_id=2, eos_id=3, max_decode_length=5)
    load_model_weights(fresh, path)
    for key, value in saved.state_dict().items():
        np.testing.assert_array_equal(fresh.state_dict()[key].numpy(), value.numpy())
    wider = ActBertCaption(TINY, {**DECODER, "dim_feedforward": 32}, bos_id=2, eos_id=3, max_decode_length=5)
    with pytest.raises(WeightsError, match=r"shape mismatch: 'decoder.decoder.layers.0.linear1.weight' file \[16, "):
        load_model_weights(wider, path)
    state = dict(saved.state_dict())
    state["decoder.extra"] = state["decoder.out.bias"]
    paddle.save(state, path)
    with pytest.raises(WeightsError, match=r"1 key\(s\) ActBertCaption does not have: 'decoder.extra'"):
        load_model_weights(fresh, path)
