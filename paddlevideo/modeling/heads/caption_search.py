"""Greedy and beam-search caption generation over a CaptionDecoder's incremental steps.

A generated caption is a sequence y_1..y_k of word pieces that ends with the end token
(y_k = eos, k <= max_len) or is cut at k = max_len without it. Its score is
sum_t log p(y_t | y_<t, video) / k ** length_penalty (k counts the end token); the
begin token is fed first and never generated; ``banned`` ids (padding, begin, unknown)
are never generated.

Beam search keeps the ``beam_size`` best unfinished prefixes by summed log-probability
at each step; every one of them is also ended with eos as a finished candidate. With
``beam_size`` at least the number of possible prefixes it is exhaustive, i.e. it returns
the best-scoring sequence (the test compares it with a brute force on a tiny vocabulary).
With length_penalty 0 it stops as soon as no unfinished prefix can beat the best finished
caption (scores only fall as a prefix grows).
"""

import numpy as np
import paddle
import paddle.nn.functional as F

from ...utils.errors import ConfigError


def _log_probs(decoder, tokens, state, banned):
    logits, state = decoder.step(tokens, state)
    logp = F.log_softmax(logits.astype("float32"), axis=-1)
    if banned:
        ban = paddle.zeros([logp.shape[-1]], "float32")
        ban[list(banned)] = float("-inf")
        logp = logp + ban
    return logp, state


def greedy_search(decoder, memory, memory_mask, bos, eos, max_len, banned=()):
    """The most likely next token at every step until eos or max_len.

    memory [N, M, d], memory_mask [N, M] -> N lists of token ids (no begin, no end token)."""
    count = memory.shape[0]
    state = decoder.start(memory, memory_mask)
    tokens = paddle.full([count], bos, "int64")
    out, done = [[] for _ in range(count)], np.zeros(count, bool)
    for _ in range(max_len):
        logp, state = _log_probs(decoder, tokens, state, banned)
        tokens = paddle.argmax(logp, axis=-1)
        picked = tokens.numpy()
        for row in np.flatnonzero(~done):
            if picked[row] == eos:
                done[row] = True
            else:
                out[row].append(int(picked[row]))
        if done.all():
            break
    return out


def _normalised(score, length, length_penalty):
    return score / (length ** length_penalty) if length_penalty else score


def beam_search(decoder, memory, memory_mask, bos, eos, max_len, beam_size=5, length_penalty=0.0, banned=()):
    """Beam search (module docstring). memory [N, M, d], memory_mask [N, M] -> N lists of ids
    (the best caption of each row, no begin or end token). Scores are float32 sums."""
    if not isinstance(beam_size, int) or beam_size < 1:
        raise ConfigError(f"beam_size must be a positive integer, got {beam_size!r}")
    count, width = memory.shape[0], beam_size
    rows = paddle.arange(count, dtype="int64").repeat_interleave(width)
    state = decoder.start(paddle.index_select(memory, rows), paddle.index_select(memory_mask, rows))
    start = np.full((count, width), -np.inf, np.float32)
    start[:, 0] = 0.0  # one live prefix (the empty one) per row at the start
    scores = paddle.to_tensor(start)
    prefixes = [[[] for _ in range(width)] for _ in range(count)]
    best = [(-np.inf, []) for _ in range(count)]
    tokens = paddle.full([count * width], bos, "int64")
    for step in range(1, max_len + 1):
        logp, state = _log_probs(decoder, tokens, state, banned)
        grow = scores.unsqueeze(-1) + logp.reshape([count, width, -1])  # [N, W, V]
        ended = grow[:, :, eos].numpy()  # every live prefix closed with eos
        vocab = grow.shape[-1]
        if step < max_len:
            grow[:, :, eos] = float("-inf")  # the live prefixes continue with other tokens
        top_scores, top_index = paddle.topk(grow.reshape([count, -1]), k=width, axis=-1)
        new_scores, flat = top_scores.numpy(), top_index.numpy()
        source, token = flat // vocab, flat % vocab
        new_prefixes = [[prefixes[r][source[r, b]] + [int(token[r, b])] for b in range(width)] for r in range(count)]
        for row in range(count):
            _keep_best(best, row, ended[row], [p + [eos] for p in prefixes[row]], step, length_penalty)
            if step == max_len:  # cut at max_len: the live prefixes become finished captions
                _keep_best(best, row, new_scores[row], new_prefixes[row], step, length_penalty)
        if step == max_len or (not length_penalty and all(best[r][0] >= new_scores[r].max() for r in range(count))):
            break
        scores, prefixes = top_scores, new_prefixes
        state = state.select(paddle.to_tensor((np.arange(count)[:, None] * width + source).reshape(-1), "int64"))
        tokens = paddle.to_tensor(token.reshape(-1), "int64")
    return [[t for t in seq if t != eos] for _, seq in best]


def _keep_best(best, row, scores, sequences, length, length_penalty):
    """best[row] = the better of itself and the finite-scored ``sequences`` of ``length`` tokens."""
    for score, sequence in zip(scores, sequences):
        if np.isfinite(score):
            value = _normalised(float(score), length, length_penalty)
            if value > best[row][0]:
                best[row] = (value, sequence)
