"""A small transformer decoder that writes a caption's word pieces from encoder states.

Training is teacher-forced (``forward``: every position at once under a causal mask);
generation is incremental (``start`` + ``step``): each step feeds one token and reuses the
keys and values of the earlier ones (paddle.nn.TransformerDecoder's cache) and the memory's
projected keys and values, computed once per caption.
"""

from dataclasses import dataclass

import paddle
import paddle.nn as nn

from ...utils.errors import ConfigError, DataError
from ..registry import HEADS

NEG_INF = -1e9  # additive attention bias of masked positions (float32 softmax gives them 0)


def memory_bias(memory_mask):
    """memory_mask [N, M] (1 = real, 0 = padded) -> additive bias [N, 1, 1, M]."""
    return ((1.0 - memory_mask.astype("float32")) * NEG_INF).unsqueeze([1, 2])


@dataclass
class DecodeState:
    """What incremental decoding carries between steps: the per-layer caches, the memory and
    its bias, and the number of tokens fed so far."""

    cache: list
    memory: paddle.Tensor
    bias: paddle.Tensor
    length: int = 0

    def select(self, index):
        """The state of rows ``index`` (int64 [N']), e.g. to follow the surviving beams."""
        cache = [(type(inc)(paddle.index_select(inc.k, index), paddle.index_select(inc.v, index)),
                  type(static)(paddle.index_select(static.k, index), paddle.index_select(static.v, index)))
                 for inc, static in self.cache]
        return DecodeState(cache, paddle.index_select(self.memory, index), paddle.index_select(self.bias, index),
                           self.length)


@HEADS.register()
class CaptionDecoder(nn.Layer):
    """``MODEL.decoder``: pre-norm transformer decoder over word pieces.

    vocab_size: word pieces (the encoder's vocabulary); d_model, num_layers, num_heads,
    dim_feedforward, dropout: the transformer's sizes; max_length: longest sequence fed,
    begin-of-sentence token included.
    """

    def __init__(self, vocab_size, d_model=256, num_layers=2, num_heads=4, dim_feedforward=1024, dropout=0.1,
                 max_length=32, pad_id=0):
        super().__init__()
        for name, value in (("vocab_size", vocab_size), ("d_model", d_model), ("num_layers", num_layers),
                            ("num_heads", num_heads), ("max_length", max_length)):
            if not isinstance(value, int) or value < 1:
                raise ConfigError(f"MODEL.decoder.{name} must be a positive integer, got {value!r}")
        if d_model % num_heads:
            raise ConfigError(f"MODEL.decoder.d_model ({d_model}) must be a multiple of num_heads ({num_heads})")
        self.vocab_size, self.d_model, self.max_length, self.pad_id = vocab_size, d_model, max_length, pad_id
        self.embed = nn.Embedding(vocab_size, d_model)
        self.position = nn.Embedding(max_length, d_model)
        layer = nn.TransformerDecoderLayer(d_model, num_heads, dim_feedforward, dropout, normalize_before=True)
        self.decoder = nn.TransformerDecoder(layer, num_layers, norm=nn.LayerNorm(d_model))
        self.out = nn.Linear(d_model, vocab_size)

    def _embed(self, ids, offset):
        """ids int64 [N, L] at positions offset.. -> [N, L, d_model]."""
        if offset + ids.shape[1] > self.max_length:
            raise DataError(f"caption of {offset + ids.shape[1]} tokens is longer than MODEL.decoder.max_length "
                            f"({self.max_length})")
        positions = paddle.arange(offset, offset + ids.shape[1], dtype="int64").unsqueeze(0)
        return self.embed(ids) * (self.d_model ** 0.5) + self.position(positions)

    def forward(self, ids, memory, memory_mask):
        """Teacher forcing: ids int64 [N, L] (begin token first), memory [N, M, d_model],
        memory_mask [N, M] -> logits [N, L, vocab] of the token after each position."""
        length = ids.shape[1]
        causal = paddle.triu(paddle.full([length, length], NEG_INF, "float32"), diagonal=1)
        hidden = self.decoder(self._embed(ids, 0), memory, tgt_mask=causal, memory_mask=memory_bias(memory_mask))
        return self.out(hidden)

    def start(self, memory, memory_mask):
        """The decoding state before the first token: memory [N, M, d_model], memory_mask [N, M]."""
        return DecodeState(self.decoder.gen_cache(memory), memory, memory_bias(memory_mask))

    def step(self, ids, state):
        """One incremental step: ids int64 [N] (the last token of each row) -> (logits [N, vocab],
        the state with this token added). Equals ``forward`` on the whole prefix, last position."""
        hidden, cache = self.decoder(self._embed(ids.unsqueeze(1), state.length), state.memory, tgt_mask=None,
                                     memory_mask=state.bias, cache=state.cache)
        return self.out(hidden[:, 0]), DecodeState(cache, state.memory, state.bias, state.length + 1)
