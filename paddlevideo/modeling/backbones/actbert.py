"""ActBERT backbone: three transformer streams (text, regions, actions) joined by tangled layers.

Shapes use B batch, T text tokens, V regions (global region first), A actions, H text hidden,
Hv region hidden, Ha action hidden, Hb the connection ("bi") hidden size, N selected rows.

Parameter names (``bert.…``, ``cls.…``) are those of PaddleVideo's checkpoints and are part of
the API: ``ActBERT.pdparams`` and ``bert-base-uncased.pdparams`` load unchanged. Inside the code
the streams are called text / region / action; the ``t_``/``v_``/``a_`` and ``1``/``2``/``3``
names appear only where a checkpoint needs them.

Besides the reference computation (``forward``), the backbone offers the cheaper paths callers
need: ``encode_text`` / ``encode_video`` / ``match_logits`` for retrieval, and ``pretrain_scores``
for training (heads only at labelled positions). Retrieval computes once per caption the text
stream before the first connection and that layer's text projections; once per video the region
stream before the first connection, that layer's region projections and ctx_av terms, and the
whole action stream with its pooled output (the action stream never reads the text or regions);
per pair only the text and region streams from the first connection on, and after the last
connection only their first tokens. Both cheaper paths also drop the trailing text and region
positions that are padding in every row of the batch (exactly: see ``kept_length``).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from dataclasses import dataclass, field

import paddle
import paddle.nn as nn
import paddle.nn.functional as F

from ...utils.errors import ConfigError, DataError
from ..registry import BACKBONES

ACTIVATIONS = {"gelu": F.gelu, "relu": F.relu, "swish": F.swish}
LAYER_NORM_EPS = 1e-12
INIT_STD = 0.02
# Padding positions get this added to their attention scores (the reference's value, not -inf:
# a row whose keys are all padding still gets a uniform softmax, as in the reference).
MASK_VALUE = -10000.0


# ----------------------------------------------------------------------------------------------
# Configuration


@dataclass
class ActBertConfig:
    """Every size and switch of the model, under PaddleVideo's flat names and defaults."""

    vocab_size: int = 30522
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    v_target_size: int = 1601
    a_target_size: int = 700
    v_feature_size: int = 2048
    a_feature_size: int = 2048
    num_hidden_layers: int = 12
    v_num_hidden_layers: int = 2
    a_num_hidden_layers: int = 3
    t_ent_attention_id: list = field(default_factory=lambda: [10, 11])
    v_ent_attention_id: list = field(default_factory=lambda: [0, 1])
    a_ent_attention_id: list = field(default_factory=lambda: [0, 1])
    fixed_t_layer: int = 0
    fixed_v_layer: int = 0
    hidden_size: int = 768
    v_hidden_size: int = 1024
    a_hidden_size: int = 768
    bi_hidden_size: int = 1024
    intermediate_size: int = 3072
    v_intermediate_size: int = 1024
    a_intermediate_size: int = 3072
    hidden_act: str = "gelu"
    v_hidden_act: str = "gelu"
    a_hidden_act: str = "gelu"
    hidden_dropout_prob: float = 0.1
    v_hidden_dropout_prob: float = 0.1
    a_hidden_dropout_prob: float = 0.1
    attention_probs_dropout_prob: float = 0.1
    v_attention_probs_dropout_prob: float = 0.1
    a_attention_probs_dropout_prob: float = 0.1
    av_attention_probs_dropout_prob: float = 0.1
    at_attention_probs_dropout_prob: float = 0.1
    num_attention_heads: int = 12
    v_num_attention_heads: int = 8
    a_num_attention_heads: int = 12
    bi_num_attention_heads: int = 8
    fusion_method: str = "mul"
    # Not in PaddleVideo: the reference adds value_at(ctx_av) to the text values, although
    # value_av exists for that; True uses value_av there (the evidently intended model; the
    # published weights were trained with False).
    use_value_av: bool = False

    def __post_init__(self):
        self.t_ent_attention_id = list(self.t_ent_attention_id)
        self.v_ent_attention_id = list(self.v_ent_attention_id)
        self.a_ent_attention_id = list(self.a_ent_attention_id)
        self._check_sizes()
        self._check_schedule()
        self._check_choices()

    def _check_sizes(self):
        for hidden, heads in [
            ("hidden_size", "num_attention_heads"),
            ("v_hidden_size", "v_num_attention_heads"),
            ("a_hidden_size", "a_num_attention_heads"),
            ("bi_hidden_size", "bi_num_attention_heads"),
        ]:
            if getattr(self, heads) <= 0 or getattr(self, hidden) % getattr(self, heads):
                raise ConfigError(
                    f"MODEL.backbone.{hidden}={getattr(self, hidden)} must be a multiple of "
                    f"{heads}={getattr(self, heads)}"
                )
        # The tangled layer's action output (dense3/LayerNorm3) is sized with the text hidden
        # size and added to the action input, so the reference only works when they agree.
        if self.a_hidden_size != self.hidden_size:
            raise ConfigError(
                f"MODEL.backbone.a_hidden_size={self.a_hidden_size} must equal hidden_size="
                f"{self.hidden_size} (the connection layer's action output is sized with hidden_size)"
            )

    def _check_schedule(self):
        ids = {"t": self.t_ent_attention_id, "v": self.v_ent_attention_id, "a": self.a_ent_attention_id}
        counts = {"t": self.num_hidden_layers, "v": self.v_num_hidden_layers, "a": self.a_num_hidden_layers}
        if len({len(v) for v in ids.values()}) != 1 or not ids["t"]:
            raise ConfigError(
                "MODEL.backbone: t_ent_attention_id, v_ent_attention_id and a_ent_attention_id need the "
                f"same, non-zero number of entries (one per connection layer), got {ids['t']}, {ids['v']}, {ids['a']}"
            )
        for s, entries in ids.items():
            if any(b < a for a, b in zip(entries, entries[1:])) or entries[0] < 0 or entries[-1] > counts[s]:
                raise ConfigError(
                    f"MODEL.backbone.{s}_ent_attention_id={entries} must be non-decreasing layer "
                    f"indices in [0, {counts[s]}]"
                )
        if not 0 <= self.fixed_t_layer <= ids["t"][0]:
            raise ConfigError(f"MODEL.backbone.fixed_t_layer={self.fixed_t_layer} must be in [0, {ids['t'][0]}]")
        if not 0 <= self.fixed_v_layer <= ids["v"][0]:
            raise ConfigError(f"MODEL.backbone.fixed_v_layer={self.fixed_v_layer} must be in [0, {ids['v'][0]}]")

    def _check_choices(self):
        if self.fusion_method not in ("mul", "sum"):
            raise ConfigError(f"MODEL.backbone.fusion_method must be 'mul' or 'sum', got {self.fusion_method!r}")
        for key in ("hidden_act", "v_hidden_act", "a_hidden_act"):
            if getattr(self, key) not in ACTIVATIONS:
                raise ConfigError(
                    f"MODEL.backbone.{key}={getattr(self, key)!r} is not one of {', '.join(ACTIVATIONS)}"
                )

    @property
    def num_connections(self):
        return len(self.t_ent_attention_id)


CONFIG_KEYS = [f.name for f in dataclasses.fields(ActBertConfig)]


# ----------------------------------------------------------------------------------------------
# Inputs shared between calls


def _select_rows(value, index):
    """Rows ``index`` of a tensor [B, ...], of each tensor of a tuple/list, or None."""
    if value is None:
        return None
    if isinstance(value, (tuple, list)):
        return tuple(paddle.index_select(v, index) for v in value)
    return paddle.index_select(value, index)


@dataclass
class TextPrefix:
    """The text stream up to the first connection layer.

    ``hidden`` [B, T, H]; ``mask`` float32 [B, T] (1 real, 0 padding); ``hidden_states``: the
    embedding output then each prefix layer's output (only with ``output_hidden_states``);
    ``qkv``: the first connection layer's text projections (q2, k2, v2) [B, T, Hb] each, set by
    ``encode_text`` for ``match_logits`` (B x 3 x 36 x 1024 floats at full size: 442 KB per caption).
    """

    hidden: paddle.Tensor
    mask: paddle.Tensor
    hidden_states: list | None = None
    qkv: tuple | None = None

    def index_select(self, index):
        """The prefixes of rows ``index`` (int64 [P]), e.g. one caption repeated P times."""
        return TextPrefix(
            paddle.index_select(self.hidden, index), paddle.index_select(self.mask, index),
            qkv=_select_rows(self.qkv, index),
        )

    def __len__(self):
        return self.hidden.shape[0]

    def leading(self, length):
        """The first ``length`` positions of every caption (without ``hidden_states``)."""
        return TextPrefix(self.hidden[:, :length], self.mask[:, :length], qkv=_leading(self.qkv, length))


def _leading(value, length):
    """Positions [0, length) of a tensor [B, L, ...] or of each tensor of a tuple; None stays None."""
    if value is None:
        return None
    if isinstance(value, (tuple, list)):
        return tuple(v[:, :length] for v in value)
    return value[:, :length]


@dataclass
class VideoInputs:
    """Region and action streams up to the first connection layer, and what scoring reuses.

    ``region`` [B, V, Hv], ``region_mask`` float32 [B, V], ``action`` [B, A, Ha],
    ``action_mask`` float32 [B, A]. Set by ``encode_video`` for ``match_logits`` (None otherwise),
    everything of a video that does not depend on the caption:
    ``region_qkv`` the first connection layer's region projections (q1, k1, v1) [B, V, Hb] each;
    ``to_text`` that layer's additions to the text keys and values (from ctx_av) [B, A, Hb] each;
    ``action_queries`` the action queries q3 of every connection layer, [B, A, Hb] each;
    ``pooled_action`` the action pooler output [B, Hb].
    Memory at full size (V = 36, A = 5, two connections), float32: about 740 KB per video
    (region 147 KB, region_qkv 442 KB, the rest under 100 KB), so ~0.75 GB for 1000 videos.
    """

    region: paddle.Tensor
    region_mask: paddle.Tensor
    action: paddle.Tensor
    action_mask: paddle.Tensor
    region_qkv: tuple | None = None
    to_text: tuple | None = None
    action_queries: tuple | None = None
    pooled_action: paddle.Tensor | None = None

    def index_select(self, index):
        """The videos of rows ``index`` (int64 [P])."""
        return VideoInputs(*(_select_rows(getattr(self, f.name), index) for f in dataclasses.fields(self)))

    def leading_regions(self, length):
        """The same videos with only their first ``length`` regions (the action fields unchanged)."""
        return dataclasses.replace(
            self, region=self.region[:, :length], region_mask=self.region_mask[:, :length],
            region_qkv=_leading(self.region_qkv, length),
        )

    def __len__(self):
        return self.region.shape[0]


@dataclass
class Rows:
    """A selection of N positions of a [B, L, ·] stream: ``batch`` and ``position`` int64 [N]."""

    batch: paddle.Tensor
    position: paddle.Tensor

    @staticmethod
    def first_tokens(batch_size):
        batch = paddle.arange(batch_size, dtype="int64")
        return Rows(batch, paddle.zeros_like(batch))

    @staticmethod
    def concat(*parts):
        return Rows(paddle.concat([p.batch for p in parts]), paddle.concat([p.position for p in parts]))

    def gather(self, x):
        """x [B, L, C] -> [N, C]."""
        flat = self.batch * x.shape[1] + self.position
        return paddle.gather(x.reshape([-1, x.shape[-1]]), flat)


@dataclass
class PretrainScores:
    """The head outputs a pretraining loss needs, at labelled positions only.

    ``text_scores`` [Nt, vocab] with ``text_labels`` [Nt]; ``region_scores`` [Nv, v_target] with
    ``region_index`` [Nv] (flat index into ``image_label`` [B, V-1], to pick ``image_target``);
    ``action_scores`` [Na, a_target] with ``action_labels`` [Na]; ``seq_relationship_score`` [B, 2].
    """

    text_scores: paddle.Tensor
    text_labels: paddle.Tensor
    region_scores: paddle.Tensor
    region_index: paddle.Tensor
    action_scores: paddle.Tensor
    action_labels: paddle.Tensor
    seq_relationship_score: paddle.Tensor


def mask_bias(mask):
    """Additive attention bias from a 1/0 mask: [B, L] -> float32 [B, 1, 1, L]."""
    return ((1.0 - mask.astype("float32")) * MASK_VALUE).unsqueeze([1, 2])


# ----------------------------------------------------------------------------------------------
# Building blocks


def _stop_constant_rows(constant, grad):
    """The gradient with the rows marked ``constant`` ([..., 1] bool) set to exactly zero."""
    return paddle.where(constant, paddle.zeros_like(grad), grad)


class Dropout(nn.Dropout):
    """``nn.Dropout`` that returns its input itself outside training (the identity, as
    ``upscale_in_train`` dropout is then), where Paddle's op still copies the tensor: 2.7 % of
    a full-size rerank pass of 100 pairs by cProfile. Training is unchanged."""

    def forward(self, x):
        return super().forward(x) if self.training else x


class LayerNorm(nn.LayerNorm):
    """``nn.LayerNorm`` (same parameters, same forward) that passes no gradient back into rows
    of its input that are exactly constant.

    Such rows occur from the first step of training from scratch: a padded action slot, or a
    clip whose only action was masked, is a zero feature; with zero-initialised biases and
    LayerNorm shifts it stays exactly zero through the action stream. LayerNorm's output there
    is its shift whatever the row's direction, and its input gradient is the incoming one
    scaled by 1/sqrt(eps) = 1e6; the tangled layer resizes the padded action queries onto real
    text and region positions, so gradient does arrive, and a chain of such LayerNorms
    overflows float32 (non-finite gradients at step 1). A constant row carries no
    information to learn from, so its input gradient is dropped; the parameters' gradients
    (shift and scale) are the usual ones. Only when the input requires a gradient in dygraph:
    evaluation, retrieval and export are untouched. The inputs of every LayerNorm here are
    fresh sums read by nothing else, so the hook affects this LayerNorm's input alone.

    Used in the region and action streams, their side of the connection layers and their
    heads. The text stream keeps ``nn.LayerNorm``: its rows sum learned word, position and
    type embeddings and are never constant, and skipping the check there halves its cost.
    """

    def forward(self, x):
        y = super().forward(x)
        if not x.stop_gradient and paddle.in_dynamic_mode():
            rows = x.detach()
            constant = rows.max(axis=-1, keepdim=True) == rows.min(axis=-1, keepdim=True)  # [..., 1]
            x.register_hook(functools.partial(_stop_constant_rows, constant))
        return y


class MultiHeadAttention(nn.Layer):
    """Scaled dot-product attention over heads: the one implementation every stack uses.

    Written with einsum on [B, L, heads, d] views. Measured on this CPU for [8, 37, 8 x 128]:
    this form 2.5 ms forward (5.9 ms with backward); matmul on transposed views 20 ms (Paddle's
    strided copies are slow); ``F.scaled_dot_product_attention`` 17 ms. No parameters.
    """

    def __init__(self, num_heads, dropout_prob):
        super().__init__()
        self.num_heads = num_heads
        self.dropout = Dropout(dropout_prob)

    def forward(self, query, key, value, bias):
        """query [B, Lq, D], key/value [B, Lk, D], bias [B, 1, 1, Lk] -> [B, Lq, D]."""
        head_dim = query.shape[-1] // self.num_heads
        q = query.reshape([0, 0, self.num_heads, head_dim])  # [B, Lq, h, d]
        k = key.reshape([0, 0, self.num_heads, head_dim])  # [B, Lk, h, d]
        v = value.reshape([0, 0, self.num_heads, head_dim])
        scores = paddle.einsum("bqhd,bkhd->bhqk", q, k) / math.sqrt(head_dim)  # [B, h, Lq, Lk]
        scores = scores + bias.astype(scores.dtype)  # the bias stays float32 under AMP
        probs = self.dropout(F.softmax(scores, axis=-1))
        context = paddle.einsum("bhqk,bkhd->bqhd", probs, v)  # [B, Lq, h, d]
        return context.reshape([0, 0, self.num_heads * head_dim])


class ResidualNorm(nn.Layer):
    """LayerNorm(dropout(dense(x)) + residual): BERT's ``attention.output`` and ``output``.

    ``norm``: the LayerNorm class (``nn.LayerNorm`` for the text stream, see ``LayerNorm``)."""

    def __init__(self, in_size, out_size, dropout_prob, norm=None):
        super().__init__()
        self.dense = nn.Linear(in_size, out_size)
        self.LayerNorm = (norm or LayerNorm)(out_size, epsilon=LAYER_NORM_EPS)
        self.dropout = Dropout(dropout_prob)

    def forward(self, x, residual):
        return self.LayerNorm(self.dropout(self.dense(x)) + residual)


class Intermediate(nn.Layer):
    """act(dense(x)): the feed-forward expansion."""

    def __init__(self, hidden_size, intermediate_size, act):
        super().__init__()
        self.dense = nn.Linear(hidden_size, intermediate_size)
        self.act = ACTIVATIONS[act]

    def forward(self, x):
        return self.act(self.dense(x))


class SelfAttention(nn.Layer):
    """Projections of a stream to query/key/value plus the shared attention."""

    def __init__(self, hidden_size, num_heads, dropout_prob):
        super().__init__()
        self.query = nn.Linear(hidden_size, hidden_size)
        self.key = nn.Linear(hidden_size, hidden_size)
        self.value = nn.Linear(hidden_size, hidden_size)
        self.attend = MultiHeadAttention(num_heads, dropout_prob)

    def forward(self, hidden, bias, rows=None):
        """hidden [B, L, C], bias [B, 1, 1, L] -> [B, L, C], or [N, C] for ``rows`` only."""
        key, value = self.key(hidden), self.value(hidden)
        if rows is None:
            return self.attend(self.query(hidden), key, value, bias)
        # Each selected row attends over all keys of its own sample.
        query = self.query(rows.gather(hidden)).unsqueeze(1)  # [N, 1, C]
        key, value, bias = (paddle.index_select(t, rows.batch) for t in (key, value, bias))
        return self.attend(query, key, value, bias).squeeze(1)


class Attention(nn.Layer):
    def __init__(self, hidden_size, num_heads, attention_dropout, hidden_dropout, norm=None):
        super().__init__()
        self.self = SelfAttention(hidden_size, num_heads, attention_dropout)
        self.output = ResidualNorm(hidden_size, hidden_size, hidden_dropout, norm)

    def forward(self, hidden, bias, rows=None):
        residual = hidden if rows is None else rows.gather(hidden)
        return self.output(self.self(hidden, bias, rows), residual)


class TransformerLayer(nn.Layer):
    """Post-LN BERT layer (``bert.encoder.layer.i``, ``v_layer.i``, ``a_layer.i``)."""

    def __init__(self, hidden_size, intermediate_size, act, num_heads, hidden_dropout, attention_dropout,
                 norm=None):
        super().__init__()
        self.attention = Attention(hidden_size, num_heads, attention_dropout, hidden_dropout, norm)
        self.intermediate = Intermediate(hidden_size, intermediate_size, act)
        self.output = ResidualNorm(intermediate_size, hidden_size, hidden_dropout, norm)

    def forward(self, hidden, bias, rows=None):
        """hidden [B, L, C] -> [B, L, C]; with ``rows`` the outputs of those rows only, [N, C]."""
        attended = self.attention(hidden, bias, rows)
        return self.output(self.intermediate(attended), attended)


# ----------------------------------------------------------------------------------------------
# Tangled (connection) layer. Streams: 1 = regions, 2 = text, 3 = actions.


def resize_index(source_len, target_len):
    """Nearest-neighbour source index of each of ``target_len`` positions, int64 [target_len].

    Taken from ``F.interpolate(mode="nearest")`` itself, which the reference calls: its float
    arithmetic differs from floor(i * source / target) for some lengths (e.g. 2 -> 82).
    """
    source = paddle.arange(source_len, dtype="float32").reshape([1, 1, source_len, 1])
    index = F.interpolate(source, size=(target_len, 1), mode="nearest")
    return index.reshape([target_len]).astype("int64")


def resize(x, length, positions=None):
    """Nearest-neighbour resize along the sequence: [B, L_in, C] -> [B, length, C].

    ``positions`` (int64 [length]): the source index of each output position, when the output
    is the kept prefix of a longer nominal length (see ``TrimPlan``)."""
    return paddle.index_select(x, resize_index(x.shape[1], length) if positions is None else positions, axis=1)


def kept_length(mask, *needed):
    """How many leading positions of a stream a computation must keep, or its full length.

    mask [B, L] (non-zero = real position), needed: bool maps [B, L] of positions a head reads.
    Trailing positions that are padding in every row and read by no head change nothing: they
    are keys with weight exactly 0 (exp(-10000) underflows) and their own outputs are not used.
    A row without any real position attends uniformly over all its (padding) keys, as in the
    reference, so then the stream keeps its full length.
    """
    real = mask != 0
    length = mask.shape[1]
    if not bool(real.any(axis=1).all()):
        return length
    used = real
    for extra in needed:
        used = paddle.logical_or(used, extra)
    last = paddle.nonzero(used.any(axis=0))
    return int(last.max()) + 1 if last.shape[0] else length


@dataclass
class TrimPlan:
    """Kept lengths of the text and region streams, and where their resized action contexts
    come from: the nearest-neighbour resize from the A actions to the *nominal* (input) length,
    cut to the kept length, so that every kept position receives what it receives untrimmed."""

    text_len: int
    region_len: int
    text_positions: paddle.Tensor
    region_positions: paddle.Tensor

    @staticmethod
    def make(action_len, text_len, text_keep, region_len, region_keep):
        """The plan for keeping ``text_keep`` of ``text_len`` and ``region_keep`` of
        ``region_len`` positions; None when both streams keep everything."""
        if text_keep == text_len and region_keep == region_len:
            return None
        return TrimPlan(
            text_keep, region_keep,
            resize_index(action_len, text_len)[:text_keep], resize_index(action_len, region_len)[:region_keep],
        )


class TangledAttention(nn.Layer):
    """``ent_attention``: each stream attends to itself, with action-conditioned keys/values."""

    def __init__(self, cfg: ActBertConfig):
        super().__init__()
        bi, heads = cfg.bi_hidden_size, cfg.bi_num_attention_heads
        self.query1, self.key1, self.value1 = (nn.Linear(cfg.v_hidden_size, bi) for _ in range(3))
        self.query2, self.key2, self.value2 = (nn.Linear(cfg.hidden_size, bi) for _ in range(3))
        self.query3, self.key3, self.value3 = (nn.Linear(cfg.a_hidden_size, bi) for _ in range(3))
        self.key_at, self.value_at = nn.Linear(bi, bi), nn.Linear(bi, bi)
        self.key_av, self.value_av = nn.Linear(bi, bi), nn.Linear(bi, bi)
        self.use_value_av = cfg.use_value_av
        self.region_attend = MultiHeadAttention(heads, cfg.v_attention_probs_dropout_prob)
        self.text_attend = MultiHeadAttention(heads, cfg.attention_probs_dropout_prob)
        self.action_attend = MultiHeadAttention(heads, cfg.a_attention_probs_dropout_prob)
        # The reference crosses these two probabilities over (its dropout_av uses
        # at_attention_probs_dropout_prob and vice versa); kept so configs mean the same.
        self.action_region_attend = MultiHeadAttention(heads, cfg.at_attention_probs_dropout_prob)
        self.action_text_attend = MultiHeadAttention(heads, cfg.av_attention_probs_dropout_prob)

    # No forward: ``ConnectionLayer`` chains the steps below, and retrieval computes the
    # pair-independent ones once per caption or video.

    def project_region(self, region):
        """region [B, V, Hv] -> (q1, k1, v1) [B, V, Hb] each."""
        return self.query1(region), self.key1(region), self.value1(region)

    def project_text(self, text):
        """text [B, T, H] -> (q2, k2, v2) [B, T, Hb] each."""
        return self.query2(text), self.key2(text), self.value2(text)

    def project_action(self, action):
        """action [B, A, Ha] -> (q3, k3, v3) [B, A, Hb] each."""
        return self.query3(action), self.key3(action), self.value3(action)

    def action_context(self, action_qkv, action_bias):
        """ctx3: the actions attend over the actions only, [B, A, Hb]."""
        return self.action_attend(*action_qkv, action_bias)

    def region_to_text(self, action_query, region_qkv, region_bias):
        """(key, value) additions of the text stream, from ctx_av: [B, A, Hb] each, not yet resized."""
        _, k1, v1 = region_qkv
        ctx_av = self.action_region_attend(action_query, k1, v1, region_bias)  # [B, A, Hb]
        text_value = self.value_av if self.use_value_av else self.value_at
        return self.key_av(ctx_av), text_value(ctx_av)

    def text_to_region(self, action_query, text_qkv, text_bias):
        """(key, value) additions of the region stream, from ctx_at: [B, A, Hb] each, not yet resized."""
        _, k2, v2 = text_qkv
        ctx_at = self.action_text_attend(action_query, k2, v2, text_bias)  # [B, A, Hb]
        return self.key_at(ctx_at), self.value_at(ctx_at)

    def cross_contexts(self, region_qkv, region_bias, text_qkv, text_bias, to_text, to_region, trim=None):
        """ctx1 [B, V, Hb], ctx2 [B, T, Hb]: region and text attention with the action-conditioned
        keys/values (the additions are resized from A to the stream's length, or as ``trim``
        (a TrimPlan) says for streams cut to their kept positions)."""
        q1, k1, v1 = region_qkv
        q2, k2, v2 = text_qkv
        text_len, region_len = k2.shape[1], k1.shape[1]
        text_at, region_at = (None, None) if trim is None else (trim.text_positions, trim.region_positions)
        k2 = k2 + resize(to_text[0], text_len, text_at)
        v2 = v2 + resize(to_text[1], text_len, text_at)
        k1 = k1 + resize(to_region[0], region_len, region_at)
        v1 = v1 + resize(to_region[1], region_len, region_at)
        return self.region_attend(q1, k1, v1, region_bias), self.text_attend(q2, k2, v2, text_bias)


class TangledOutput(nn.Layer):
    """``ent_output``: per stream LayerNorm(dropout(dense(context)) + input) (no forward: one method per stream)."""

    def __init__(self, cfg: ActBertConfig):
        super().__init__()
        bi = cfg.bi_hidden_size
        self.dense1 = nn.Linear(bi, cfg.v_hidden_size)
        self.LayerNorm1 = LayerNorm(cfg.v_hidden_size, epsilon=LAYER_NORM_EPS)
        self.dense2 = nn.Linear(bi, cfg.hidden_size)
        self.LayerNorm2 = nn.LayerNorm(cfg.hidden_size, epsilon=LAYER_NORM_EPS)  # text: see LayerNorm
        # Sized with the text hidden size in the reference (hence a_hidden_size == hidden_size).
        self.dense3 = nn.Linear(bi, cfg.hidden_size)
        self.LayerNorm3 = LayerNorm(cfg.hidden_size, epsilon=LAYER_NORM_EPS)
        self.dropout1 = Dropout(cfg.v_hidden_dropout_prob)
        self.dropout2 = Dropout(cfg.hidden_dropout_prob)
        self.dropout3 = Dropout(cfg.hidden_dropout_prob)

    def region(self, context, region):
        return self.LayerNorm1(self.dropout1(self.dense1(context)) + region)

    def text(self, context, text):
        return self.LayerNorm2(self.dropout2(self.dense2(context)) + text)

    def action(self, context, action):
        return self.LayerNorm3(self.dropout3(self.dense3(context)) + action)


class ConnectionLayer(nn.Layer):
    """``c_layer.j``: tangled attention, then each stream's own feed-forward block."""

    def __init__(self, cfg: ActBertConfig):
        super().__init__()
        self.ent_attention = TangledAttention(cfg)
        self.ent_output = TangledOutput(cfg)
        self.v_intermediate = Intermediate(cfg.v_hidden_size, cfg.v_intermediate_size, cfg.v_hidden_act)
        self.v_output = ResidualNorm(cfg.v_intermediate_size, cfg.v_hidden_size, cfg.v_hidden_dropout_prob)
        self.t_intermediate = Intermediate(cfg.hidden_size, cfg.intermediate_size, cfg.hidden_act)
        self.t_output = ResidualNorm(cfg.intermediate_size, cfg.hidden_size, cfg.hidden_dropout_prob, nn.LayerNorm)
        self.a_intermediate = Intermediate(cfg.a_hidden_size, cfg.a_intermediate_size, cfg.a_hidden_act)
        self.a_output = ResidualNorm(cfg.a_intermediate_size, cfg.a_hidden_size, cfg.a_hidden_dropout_prob)

    def forward(self, text, region, action, biases, trim=None):
        """Streams [B, L_s, C_s] and biases (text, region, action) -> updated (text, region, action).

        ``trim``: a TrimPlan when the text and region streams are cut to their kept positions."""
        action, action_query = self.action_stream(action, biases[2])
        text, region = self.pair_streams(text, region, action_query, biases[:2], trim=trim)
        return text, region, action

    def action_stream(self, action, action_bias):
        """The action stream alone (it reads nothing from the other streams).

        action [B, A, Ha] -> (updated action [B, A, Ha], its queries q3 [B, A, Hb], which the
        region and text streams read)."""
        attention = self.ent_attention
        action_qkv = attention.project_action(action)
        action = self.ent_output.action(attention.action_context(action_qkv, action_bias), action)
        return self.a_output(self.a_intermediate(action), action), action_qkv[0]

    def pair_streams(self, text, region, action_query, biases, text_qkv=None, region_qkv=None, to_text=None,
                     trim=None):
        """Text and region streams of paired rows, given the action queries of the same rows.

        text [P, T, H], region [P, V, Hv], action_query [P, A, Hb], biases (text, region) ->
        (text, region). ``text_qkv``, ``region_qkv`` (projections of ``text`` / ``region``) and
        ``to_text`` (``region_to_text`` of them) may be passed precomputed."""
        text_bias, region_bias = biases
        attention = self.ent_attention
        text_qkv = attention.project_text(text) if text_qkv is None else text_qkv
        region_qkv = attention.project_region(region) if region_qkv is None else region_qkv
        if to_text is None:
            to_text = attention.region_to_text(action_query, region_qkv, region_bias)
        to_region = attention.text_to_region(action_query, text_qkv, text_bias)
        ctx1, ctx2 = attention.cross_contexts(
            region_qkv, region_bias, text_qkv, text_bias, to_text, to_region, trim
        )
        region, text = self.ent_output.region(ctx1, region), self.ent_output.text(ctx2, text)
        region = self.v_output(self.v_intermediate(region), region)
        text = self.t_output(self.t_intermediate(text), text)
        return text, region


# ----------------------------------------------------------------------------------------------
# Embeddings, encoder, poolers, heads


class TextEmbeddings(nn.Layer):
    def __init__(self, cfg: ActBertConfig):
        super().__init__()
        # padding_idx=0: looking up [PAD] gives zeros whatever row 0 holds (the reference's semantics).
        self.word_embeddings = nn.Embedding(cfg.vocab_size, cfg.hidden_size, padding_idx=0)
        self.position_embeddings = nn.Embedding(cfg.max_position_embeddings, cfg.hidden_size)
        self.token_type_embeddings = nn.Embedding(cfg.type_vocab_size, cfg.hidden_size)
        self.LayerNorm = nn.LayerNorm(cfg.hidden_size, epsilon=LAYER_NORM_EPS)
        self.dropout = Dropout(cfg.hidden_dropout_prob)

    def forward(self, text_ids, token_type_ids):
        """text_ids, token_type_ids int64 [B, T] -> [B, T, H]."""
        positions = paddle.arange(text_ids.shape[1], dtype="int64").unsqueeze(0)
        embedded = (
            self.word_embeddings(text_ids)
            + self.position_embeddings(positions)
            + self.token_type_embeddings(token_type_ids)
        )
        return self.dropout(self.LayerNorm(embedded))


class RegionEmbeddings(nn.Layer):
    def __init__(self, cfg: ActBertConfig):
        super().__init__()
        self.image_embeddings = nn.Linear(cfg.v_feature_size, cfg.v_hidden_size)
        self.image_location_embeddings = nn.Linear(5, cfg.v_hidden_size)
        self.LayerNorm = LayerNorm(cfg.v_hidden_size, epsilon=LAYER_NORM_EPS)
        self.dropout = Dropout(cfg.v_hidden_dropout_prob)

    def forward(self, image_feat, image_loc):
        """image_feat [B, V, v_feature], image_loc [B, V, 5] -> [B, V, Hv]."""
        embedded = self.image_embeddings(image_feat) + self.image_location_embeddings(image_loc)
        return self.dropout(self.LayerNorm(embedded))


class ActionEmbeddings(nn.Layer):
    def __init__(self, cfg: ActBertConfig):
        super().__init__()
        self.action_embeddings = nn.Linear(cfg.a_feature_size, cfg.a_hidden_size)
        self.LayerNorm = LayerNorm(cfg.a_hidden_size, epsilon=LAYER_NORM_EPS)
        self.dropout = Dropout(cfg.a_hidden_dropout_prob)

    def forward(self, action_feat):
        """action_feat [B, A, a_feature] -> [B, A, Ha]."""
        return self.dropout(self.LayerNorm(self.action_embeddings(action_feat)))


class Encoder(nn.Layer):
    """The three stacks and the connection layers, run on the schedule of ``*_ent_attention_id``.

    Connection j runs after each stream's own layers up to (not including) its entry j; after the
    last connection each stream runs its remaining layers. The work is split in three stages so
    callers can reuse and skip parts: ``prefix`` (before the first connection, one stream at a
    time), ``tangle`` (first connection to last), ``tail`` (remaining layers, optionally only for
    selected rows).
    """

    def __init__(self, cfg: ActBertConfig):
        super().__init__()
        self.cfg = cfg
        self.layer = nn.LayerList(
            TransformerLayer(
                cfg.hidden_size, cfg.intermediate_size, cfg.hidden_act, cfg.num_attention_heads,
                cfg.hidden_dropout_prob, cfg.attention_probs_dropout_prob, nn.LayerNorm,
            )
            for _ in range(cfg.num_hidden_layers)
        )
        self.v_layer = nn.LayerList(
            TransformerLayer(
                cfg.v_hidden_size, cfg.v_intermediate_size, cfg.v_hidden_act, cfg.v_num_attention_heads,
                cfg.v_hidden_dropout_prob, cfg.v_attention_probs_dropout_prob,
            )
            for _ in range(cfg.v_num_hidden_layers)
        )
        self.a_layer = nn.LayerList(
            TransformerLayer(
                cfg.a_hidden_size, cfg.a_intermediate_size, cfg.a_hidden_act, cfg.a_num_attention_heads,
                cfg.a_hidden_dropout_prob, cfg.a_attention_probs_dropout_prob,
            )
            for _ in range(cfg.a_num_hidden_layers)
        )
        self.c_layer = nn.LayerList(ConnectionLayer(cfg) for _ in range(cfg.num_connections))

    @staticmethod
    def run(layers, hidden, bias, start, end, frozen=0, states=None):
        """Layers [start, end) of one stack; the first ``frozen`` run without gradient."""
        for i in range(start, end):
            if i < frozen:
                with paddle.no_grad():
                    hidden = layers[i](hidden, bias)
            else:
                hidden = layers[i](hidden, bias)
            if states is not None:
                states.append(hidden)
        return hidden

    def text_prefix(self, text, bias, states=None):
        return self.run(self.layer, text, bias, 0, self.cfg.t_ent_attention_id[0], self.cfg.fixed_t_layer, states)

    def region_prefix(self, region, bias):
        return self.run(self.v_layer, region, bias, 0, self.cfg.v_ent_attention_id[0], self.cfg.fixed_v_layer)

    def action_prefix(self, action, bias):
        return self.run(self.a_layer, action, bias, 0, self.cfg.a_ent_attention_id[0])

    def tangle(self, text, region, action, biases, trim=None):
        """From the first connection layer through the last: streams in, streams out."""
        cfg = self.cfg
        t_ids, v_ids, a_ids = cfg.t_ent_attention_id, cfg.v_ent_attention_id, cfg.a_ent_attention_id
        for j, connection in enumerate(self.c_layer):
            if j > 0:
                text = self.run(self.layer, text, biases[0], t_ids[j - 1], t_ids[j])
                region = self.run(self.v_layer, region, biases[1], v_ids[j - 1], v_ids[j])
                action = self.run(self.a_layer, action, biases[2], a_ids[j - 1], a_ids[j])
            text, region, action = connection(text, region, action, biases, trim)
        return text, region, action

    def action_only(self, action, bias):
        """The whole action stream, from its prefix output: it never reads the other streams.

        action [B, A, Ha], bias [B, 1, 1, A] -> (the action queries q3 of every connection layer,
        list of [B, A, Hb]; the first token after the action's last layer, [B, Ha])."""
        a_ids = self.cfg.a_ent_attention_id
        queries = []
        for j, connection in enumerate(self.c_layer):
            if j > 0:
                action = self.run(self.a_layer, action, bias, a_ids[j - 1], a_ids[j])
            action, query = connection.action_stream(action, bias)
            queries.append(query)
        first = self.tail(self.a_layer, a_ids[-1], action, bias, Rows.first_tokens(action.shape[0]))
        return queries, first

    def tangle_pairs(self, text, region, action_queries, biases, first_connection, trim=None):
        """Text and region streams of P pairs from the first connection layer through the last.

        text [P, T, H], region [P, V, Hv], action_queries (from ``action_only``, rows paired),
        biases (text, region); ``first_connection``: the precomputed parts of connection 0
        (``pair_streams`` keywords). -> (text [P, T, H], region [P, V, Hv])."""
        t_ids, v_ids = self.cfg.t_ent_attention_id, self.cfg.v_ent_attention_id
        for j, connection in enumerate(self.c_layer):
            known = first_connection
            if j > 0:
                text = self.run(self.layer, text, biases[0], t_ids[j - 1], t_ids[j])
                region = self.run(self.v_layer, region, biases[1], v_ids[j - 1], v_ids[j])
                known = {}
            text, region = connection.pair_streams(text, region, action_queries[j], biases, **known, trim=trim)
        return text, region

    @staticmethod
    def tail(layers, start, hidden, bias, rows=None):
        """Layers [start, end) of a stack; with ``rows`` the last one runs only for those rows.

        hidden [B, L, C] -> [B, L, C], or [N, C] with ``rows``. Restricting the last layer is
        exact: its keys and values still come from every position of the previous layer.
        """
        count = len(layers) - start
        if rows is None:
            return Encoder.run(layers, hidden, bias, start, len(layers))
        if count == 0:
            return rows.gather(hidden)
        hidden = Encoder.run(layers, hidden, bias, start, len(layers) - 1)
        return layers[len(layers) - 1](hidden, bias, rows)

    def tails(self, text, region, action, biases, rows=(None, None, None)):
        cfg = self.cfg
        return (
            self.tail(self.layer, cfg.t_ent_attention_id[-1], text, biases[0], rows[0]),
            self.tail(self.v_layer, cfg.v_ent_attention_id[-1], region, biases[1], rows[1]),
            self.tail(self.a_layer, cfg.a_ent_attention_id[-1], action, biases[2], rows[2]),
        )


class Pooler(nn.Layer):
    """ReLU(dense(first token)) into the connection hidden size."""

    def __init__(self, hidden_size, bi_hidden_size):
        super().__init__()
        self.dense = nn.Linear(hidden_size, bi_hidden_size)

    def forward(self, first_token):
        """first_token [N, C] -> [N, Hb]."""
        return F.relu(self.dense(first_token))


class BertModel(nn.Layer):
    """``bert.…``: embeddings, encoder and poolers."""

    def __init__(self, cfg: ActBertConfig):
        super().__init__()
        self.embeddings = TextEmbeddings(cfg)
        self.v_embeddings = RegionEmbeddings(cfg)
        self.a_embeddings = ActionEmbeddings(cfg)
        self.encoder = Encoder(cfg)
        self.t_pooler = Pooler(cfg.hidden_size, cfg.bi_hidden_size)
        self.v_pooler = Pooler(cfg.v_hidden_size, cfg.bi_hidden_size)
        self.a_pooler = Pooler(cfg.a_hidden_size, cfg.bi_hidden_size)


class HeadTransform(nn.Layer):
    def __init__(self, hidden_size, act, norm=None):
        super().__init__()
        self.dense = nn.Linear(hidden_size, hidden_size)
        self.act = ACTIVATIONS[act]
        self.LayerNorm = (norm or LayerNorm)(hidden_size, epsilon=LAYER_NORM_EPS)

    def forward(self, x):
        return self.LayerNorm(self.act(self.dense(x)))


class MaskedLMHead(nn.Layer):
    """``cls.predictions``: transform, then scores against the (tied) word embeddings."""

    def __init__(self, cfg: ActBertConfig, word_embeddings):
        super().__init__()
        # The same Parameter as bert.embeddings.word_embeddings.weight: the state dict lists it
        # under both names, as the checkpoints do.
        self.decoder_weight = word_embeddings
        self.decoder_bias = self.create_parameter([cfg.vocab_size], is_bias=True)
        self.transform = HeadTransform(cfg.hidden_size, cfg.hidden_act, nn.LayerNorm)

    def forward(self, hidden):
        """hidden [..., H] -> [..., vocab]."""
        return paddle.matmul(self.transform(hidden), self.decoder_weight, transpose_y=True) + self.decoder_bias


class ClassHead(nn.Layer):
    """``cls.imagePredictions`` / ``cls.actionPredictions``: transform, then a class decoder."""

    def __init__(self, hidden_size, act, num_classes):
        super().__init__()
        self.transform = HeadTransform(hidden_size, act)
        self.decoder = nn.Linear(hidden_size, num_classes)

    def forward(self, hidden):
        return self.decoder(self.transform(hidden))


class PreTrainingHeads(nn.Layer):
    """``cls.…``: the masked-LM, matching, region-class and action-class heads."""

    def __init__(self, cfg: ActBertConfig, word_embeddings):
        super().__init__()
        self.predictions = MaskedLMHead(cfg, word_embeddings)
        self.seq_relationship = nn.Linear(cfg.bi_hidden_size, 2)
        self.imagePredictions = ClassHead(cfg.v_hidden_size, cfg.v_hidden_act, cfg.v_target_size)
        self.actionPredictions = ClassHead(cfg.a_hidden_size, cfg.a_hidden_act, cfg.a_target_size)
        self.fusion_method = cfg.fusion_method
        self.dropout = Dropout(0.1)

    def match(self, pooled_text, pooled_region, pooled_action):
        """Pooled [N, Hb] each -> matching logits [N, 2] (class 0 = caption matches the clip)."""
        if self.fusion_method == "mul":
            fused = pooled_text * pooled_region + pooled_action
        else:
            fused = pooled_text + pooled_region + pooled_action
        return self.seq_relationship(self.dropout(fused))


# ----------------------------------------------------------------------------------------------
# The registered backbone


def _selected_rows(selected, offset=0):
    """Rows of the True entries of a bool map [B, L], positions shifted by ``offset``.

    Returns (Rows, flat index into the map's flattened [B * L] entries, int64 [N])."""
    width = selected.shape[1]
    flat = paddle.nonzero(selected.flatten()).flatten()
    return Rows(flat // width, flat % width + offset), flat


@BACKBONES.register()
class BertForMultiModalPreTraining(nn.Layer):
    """ActBERT with its pretraining heads, built from PaddleVideo's flat keyword arguments.

    ``pretrained`` (a backbone weights file) is recorded here and loaded by ``build_model``.
    """

    config_keys = ["pretrained", *CONFIG_KEYS]

    def __init__(self, pretrained=None, **kwargs):
        super().__init__()
        unknown = sorted(set(kwargs) - set(CONFIG_KEYS))
        if unknown:
            raise ConfigError(f"unknown key 'MODEL.backbone.{unknown[0]}' for BertForMultiModalPreTraining")
        self.config = ActBertConfig(**kwargs)
        self.pretrained = pretrained
        # The cheaper paths drop trailing all-padding positions (exact; see kept_length). Only
        # benchmarks and tests turn this off, to measure or check the paths without it.
        self.trim_padding = True
        self.bert = BertModel(self.config)
        self.cls = PreTrainingHeads(self.config, self.bert.embeddings.word_embeddings.weight)
        self.apply(_init_weights)

    # -- inputs ---------------------------------------------------------------------------------

    @paddle.jit.not_to_static
    def _check_feature(self, name, tensor, expected):
        if tensor is None:
            raise DataError(f"input {name} is required")
        if tensor.ndim != 3 or tensor.shape[-1] != expected:
            raise DataError(
                f"input {name} must be [batch, length, {expected}] for this model, got shape {list(tensor.shape)}"
            )

    # Input checks run as plain Python also when the model is traced for export
    # (paddle.jit.to_static), where a dynamic dimension is then -1.
    @paddle.jit.not_to_static
    def _check_text_ids(self, text_ids):
        if text_ids.ndim != 2 or text_ids.shape[1] > self.config.max_position_embeddings:
            raise DataError(
                f"input text_ids must be [batch, length <= {self.config.max_position_embeddings}], "
                f"got shape {list(text_ids.shape)}"
            )

    def _text_prefix(self, text_ids, token_type_ids=None, text_mask=None, output_hidden_states=False):
        """The text stream up to the first connection layer: TextPrefix without ``qkv``."""
        self._check_text_ids(text_ids)
        if token_type_ids is None:
            token_type_ids = paddle.zeros_like(text_ids)
        mask = paddle.ones(text_ids.shape, "float32") if text_mask is None else text_mask.astype("float32")
        hidden = self.bert.embeddings(text_ids, token_type_ids)
        states = [hidden] if output_hidden_states else None
        hidden = self.bert.encoder.text_prefix(hidden, mask_bias(mask), states)
        return TextPrefix(hidden, mask, states)

    def encode_text(self, text_ids, token_type_ids=None, text_mask=None, output_hidden_states=False):
        """The text stream up to the first connection layer, with that layer's text projections.

        text_ids, token_type_ids, text_mask int64 [B, T] -> TextPrefix (hidden [B, T, H], qkv).
        With ``output_hidden_states`` the prefix also holds the embedding output and every
        prefix layer's output (list of [B, T, H]).
        """
        prefix = self._text_prefix(text_ids, token_type_ids, text_mask, output_hidden_states)
        return self._with_text_projections(prefix)

    def _with_text_projections(self, prefix):
        """TextPrefix -> the same with ``qkv`` (per caption: computed once, not once per pair)."""
        projections = self.bert.encoder.c_layer[0].ent_attention.project_text(prefix.hidden)
        return dataclasses.replace(prefix, qkv=projections)

    def _video_prefix(self, image_feat, image_loc, image_mask=None, action_feat=None, action_mask=None):
        """Region and action streams up to the first connection layer: VideoInputs without the
        scoring fields."""
        cfg = self.config
        self._check_feature("image_feat", image_feat, cfg.v_feature_size)
        self._check_feature("image_loc", image_loc, 5)
        self._check_feature("action_feat", action_feat, cfg.a_feature_size)
        batch = image_feat.shape[0]
        region_mask = paddle.ones([batch, image_feat.shape[1]]) if image_mask is None else image_mask
        action_mask = paddle.ones([batch, action_feat.shape[1]]) if action_mask is None else action_mask
        region_mask, action_mask = region_mask.astype("float32"), action_mask.astype("float32")
        encoder = self.bert.encoder
        region = encoder.region_prefix(self.bert.v_embeddings(image_feat, image_loc), mask_bias(region_mask))
        action = encoder.action_prefix(self.bert.a_embeddings(action_feat), mask_bias(action_mask))
        return VideoInputs(region, region_mask, action, action_mask)

    def encode_video(self, image_feat, image_loc, image_mask=None, action_feat=None, action_mask=None):
        """Everything of a video that matching computes without the caption.

        image_feat [B, V, v_feature], image_loc [B, V, 5], image_mask [B, V],
        action_feat [B, A, a_feature], action_mask [B, A] -> VideoInputs with its scoring fields
        (the whole action stream and pooled action, the first connection's region projections
        and additions to the text keys/values).
        """
        video = self._video_prefix(image_feat, image_loc, image_mask, action_feat, action_mask)
        return self._with_video_scoring(video)

    def _with_video_scoring(self, video):
        """VideoInputs -> the same with the scoring fields (see VideoInputs)."""
        encoder = self.bert.encoder
        queries, action_first = encoder.action_only(video.action, mask_bias(video.action_mask))
        attention = encoder.c_layer[0].ent_attention
        region_qkv = attention.project_region(video.region)
        to_text = attention.region_to_text(queries[0], region_qkv, mask_bias(video.region_mask))
        return dataclasses.replace(
            video, region_qkv=region_qkv, to_text=to_text, action_queries=tuple(queries),
            pooled_action=self.bert.a_pooler(action_first),
        )

    def _encode(self, text, video, rows=(None, None, None), trim=None):
        """Tangle and tails of paired prefixes -> final streams (or the selected rows of each)."""
        biases = (mask_bias(text.mask), mask_bias(video.region_mask), mask_bias(video.action_mask))
        encoder = self.bert.encoder
        streams = encoder.tangle(text.hidden, video.region, video.action, biases, trim)
        return encoder.tails(*streams, biases, rows)

    def _match_from_first_tokens(self, text0, region0, action0):
        """First-token states [N, C_s] -> matching logits [N, 2]."""
        bert = self.bert
        return self.cls.match(bert.t_pooler(text0), bert.v_pooler(region0), bert.a_pooler(action0))

    # -- the reference computation ----------------------------------------------------------------

    def forward(
        self, text_ids, action_feat, image_feat, image_loc,
        token_type_ids=None, text_mask=None, image_mask=None, action_mask=None,
    ):
        """Every head at every position, as the reference computes them.

        Returns prediction_scores_t [B, T, vocab], prediction_scores_v [B, V, v_target],
        prediction_scores_a [B, A, a_target], seq_relationship_score [B, 2].
        """
        text = self._text_prefix(text_ids, token_type_ids, text_mask)
        video = self._video_prefix(image_feat, image_loc, image_mask, action_feat, action_mask)
        text_out, region_out, action_out = self._encode(text, video)
        seq_relationship = self._match_from_first_tokens(text_out[:, 0], region_out[:, 0], action_out[:, 0])
        return (
            self.cls.predictions(text_out),
            self.cls.imagePredictions(region_out),
            self.cls.actionPredictions(action_out),
            seq_relationship,
        )

    def encode_streams(self, text_ids, action_feat, image_feat, image_loc, token_type_ids=None, text_mask=None,
                       image_mask=None, action_mask=None):
        """The last layer's states of the three streams (what the heads of ``forward`` read):
        text [B, T, H], region [B, V, Hv], action [B, A, Ha]."""
        text = self._text_prefix(text_ids, token_type_ids, text_mask)
        video = self._video_prefix(image_feat, image_loc, image_mask, action_feat, action_mask)
        return self._encode(text, video)

    # -- the cheaper paths ------------------------------------------------------------------------

    def match_logits(self, text_prefix, video, text_index=None, video_index=None):
        """Matching logits [P, 2] of the pairs (text_index[k], video_index[k]) (int64 [P]).

        Without indices the prefixes are already paired row by row. Only the per-pair work runs
        here: the text and region streams from the first connection layer on (the first
        connection's projections of each stream, its additions from ctx_av and the whole action
        stream come from ``encode_text`` / ``encode_video``), and after the last connection only
        the first token of each stream; no vocabulary, region or action head.
        """
        if text_prefix.qkv is None:  # a prefix not made by encode_text
            text_prefix = self._with_text_projections(text_prefix)
        if video.action_queries is None:  # likewise for encode_video
            video = self._with_video_scoring(video)
        if text_index is not None:
            text_prefix = text_prefix.index_select(text_index)
        if video_index is not None:
            video = video.index_select(video_index)
        text_prefix, video, trim = self._trim_pairs(text_prefix, video)
        return self.match_paired(text_prefix, video, trim)

    def match_paired(self, text_prefix, video, trim=None):
        """Matching logits [P, 2] of prefixes already paired row by row and already cut as
        ``trim`` (a TrimPlan, or None for uncut streams) says, both with their scoring fields
        (``encode_text`` / ``encode_video``). ``match_logits`` after its row selection and cut;
        the exported pair scorer calls it with the cut computed by its caller."""
        encoder, cfg = self.bert.encoder, self.config
        biases = (mask_bias(text_prefix.mask), mask_bias(video.region_mask))
        first_connection = {"text_qkv": text_prefix.qkv, "region_qkv": video.region_qkv, "to_text": video.to_text}
        text, region = encoder.tangle_pairs(
            text_prefix.hidden, video.region, video.action_queries, biases, first_connection, trim
        )
        rows = Rows.first_tokens(text_prefix.hidden.shape[0])
        text0 = encoder.tail(encoder.layer, cfg.t_ent_attention_id[-1], text, biases[0], rows)
        region0 = encoder.tail(encoder.v_layer, cfg.v_ent_attention_id[-1], region, biases[1], rows)
        return self.cls.match(self.bert.t_pooler(text0), self.bert.v_pooler(region0), video.pooled_action)

    def _trim_pairs(self, text_prefix, video):
        """Paired prefixes cut to the text and region positions that are real in some pair
        (``kept_length``), with the TrimPlan that keeps the result exact; unchanged if nothing
        can be cut."""
        if not self.trim_padding:
            return text_prefix, video, None
        text_keep, region_keep = kept_length(text_prefix.mask), kept_length(video.region_mask)
        trim = TrimPlan.make(video.action_queries[0].shape[1], text_prefix.hidden.shape[1], text_keep,
                             video.region.shape[1], region_keep)
        if trim is None:
            return text_prefix, video, None
        return text_prefix.leading(text_keep), video.leading_regions(region_keep), trim

    def _training_trim(self, text_mask, text_labels, image_mask, image_label, action_len):
        """The TrimPlan for a pretraining batch: trailing positions that are padding in every
        sample and carry no label are cut (see kept_length); None when nothing can be cut."""
        if not self.trim_padding:
            return None
        text_len, region_len = text_labels.shape[1], image_label.shape[1] + 1
        text_keep = text_len if text_mask is None else kept_length(text_mask, text_labels != -1)
        region_keep = region_len
        if image_mask is not None:  # image_label covers regions 1..V-1
            no_label = paddle.zeros([image_label.shape[0], 1], "bool")
            region_keep = kept_length(image_mask, paddle.concat([no_label, image_label == 1], axis=1))
        return TrimPlan.make(action_len, text_len, text_keep, region_len, region_keep)

    def _check_labels(self, text_ids, image_feat, action_feat, text_labels, image_label, action_label):
        expected = {
            "text_labels": (text_labels, list(text_ids.shape)),
            "image_label": (image_label, [image_feat.shape[0], image_feat.shape[1] - 1]),
            "action_label": (action_label, list(action_feat.shape[:2])),
        }
        for name, (labels, shape) in expected.items():
            if labels is None or list(labels.shape) != shape:
                got = "none" if labels is None else f"shape {list(labels.shape)}"
                raise DataError(f"input {name} must have shape {shape} for these inputs, got {got}")

    def pretrain_scores(
        self, text_ids, action_feat, image_feat, image_loc, token_type_ids=None, text_mask=None,
        image_mask=None, action_mask=None, text_labels=None, image_label=None, action_label=None,
    ):
        """Head outputs at the labelled positions only (what the pretraining loss reads).

        Labels as in the batch: text_labels [B, T] (-1 = none), image_label [B, V-1] (1 = masked
        region; region 0, the global one, has no label), action_label [B, A] (-1 = none).
        Returns PretrainScores; the loss computed from it equals the loss of ``forward``'s outputs.
        Text and region positions that are padding in every sample and unlabelled, at the end of
        the batch, are not computed at all (``kept_length``, ``TrimPlan``): captions padded to 36
        tokens but at most 20 long cost about 20 tokens.
        """
        cfg = self.config
        self._check_feature("image_feat", image_feat, cfg.v_feature_size)
        self._check_feature("action_feat", action_feat, cfg.a_feature_size)
        self._check_labels(text_ids, image_feat, action_feat, text_labels, image_label, action_label)
        batch = text_ids.shape[0]
        trim = self._training_trim(text_mask, text_labels, image_mask, image_label, action_feat.shape[1])
        if trim is not None:
            text_ids, token_type_ids, text_mask = (
                _leading(x, trim.text_len) for x in (text_ids, token_type_ids, text_mask)
            )
            image_feat, image_loc, image_mask = (
                _leading(x, trim.region_len) for x in (image_feat, image_loc, image_mask)
            )
        text = self._text_prefix(text_ids, token_type_ids, text_mask)
        video = self._video_prefix(image_feat, image_loc, image_mask, action_feat, action_mask)
        first = Rows.first_tokens(batch)
        text_rows, text_flat = _selected_rows(text_labels != -1)
        # image_label describes regions 1..V-1 (the global region 0 is never masked).
        region_rows, region_index = _selected_rows(image_label == 1, offset=1)
        action_rows, action_flat = _selected_rows(action_label != -1)
        rows = (Rows.concat(first, text_rows), Rows.concat(first, region_rows), Rows.concat(first, action_rows))
        text_out, region_out, action_out = self._encode(text, video, rows, trim)
        return PretrainScores(
            text_scores=self.cls.predictions(text_out[batch:]),
            text_labels=paddle.gather(text_labels.flatten(), text_flat),
            region_scores=self.cls.imagePredictions(region_out[batch:]),
            region_index=region_index,
            action_scores=self.cls.actionPredictions(action_out[batch:]),
            action_labels=paddle.gather(action_label.flatten(), action_flat),
            seq_relationship_score=self._match_from_first_tokens(
                text_out[:batch], region_out[:batch], action_out[:batch]
            ),
        )


def _init_weights(layer):
    """Reference initialisation: Normal(0, 0.02) weights of Linear/Embedding, zero biases, LN 1/0."""
    if isinstance(layer, (nn.Linear, nn.Embedding)):
        nn.initializer.Normal(std=INIT_STD)(layer.weight)
    if isinstance(layer, nn.Linear) and layer.bias is not None:
        nn.initializer.Constant(0.0)(layer.bias)
    if isinstance(layer, nn.LayerNorm):
        nn.initializer.Constant(1.0)(layer.weight)
        nn.initializer.Constant(0.0)(layer.bias)
