"""The ActBertCaption framework: ActBERT as the video encoder of a caption decoder (YouCook2).

Our protocol (ActBERT's paper does not describe its captioning head):
- **Input is video only.** The regions and actions of the segment go in as in pretraining;
  the text stream holds no caption, only the two tokens [CLS] [SEP] (``bos_id``, ``eos_id``):
  an empty caption, so nothing of the answer leaks and the connection layers still run.
- **Memory.** The last layer's states of all three streams (text [B, 2, H], regions
  [B, V, Hv], actions [B, A, Ha]), each projected to the decoder's width and normalised,
  concatenated with their masks: the decoder attends to [B, 2 + V + A] states.
- **Decoder.** ``CaptionDecoder`` (``MODEL.decoder``) over the encoder's word pieces,
  teacher-forced in training; greedy or beam search at test (``generate``).
- **Frozen or fine-tuned.** ``freeze_encoder: true`` (the default, VideoBERT's protocol)
  runs ActBERT without gradient and in eval mode (no dropout) and leaves its weights out of
  training; ``false`` fine-tunes it end to end with the decoder.

Batch fields: ``image_feat`` [B, V, Dv], ``image_loc`` [B, V, 5], ``image_mask`` [B, V],
``action_feat`` [B, A, Da], ``action_mask`` [B, A], and in training ``caption_ids`` int64
[B, L] = [CLS] w_1 .. w_n [SEP] [PAD]...
"""

import paddle
import paddle.nn as nn

from ...fields import CAPTION_KEY, VIDEO_KEYS
from ...utils.errors import ConfigError, DataError
from ...utils.registry import build_from_cfg
from ..heads.caption_search import beam_search, greedy_search
from ..registry import BACKBONES, FRAMEWORKS, HEADS, LOSSES


@FRAMEWORKS.register()
class ActBertCaption(nn.Layer):
    """``MODEL.framework: ActBertCaption``: ``MODEL.backbone`` (ActBERT), ``MODEL.decoder``
    (CaptionDecoder), ``MODEL.loss`` (CaptionLoss). bos_id, eos_id, pad_id: the vocabulary's
    [CLS], [SEP], [PAD]; beam_size (1 = greedy), max_decode_length (word pieces, end token
    included), length_penalty: generation at test."""

    def __init__(self, backbone, decoder, loss=None, freeze_encoder=True, bos_id=101, eos_id=102, pad_id=0,
                 unk_id=None, beam_size=5, max_decode_length=24, length_penalty=0.0):
        super().__init__()
        self.backbone = build_from_cfg(backbone, BACKBONES, key="name", where="MODEL.backbone")
        self.decoder = build_from_cfg(decoder, HEADS, key="name", where="MODEL.decoder")
        self.loss = build_from_cfg(loss or {"name": "CaptionLoss"}, LOSSES, key="name", where="MODEL.loss")
        cfg = self.backbone.config
        if self.decoder.vocab_size != cfg.vocab_size:
            raise ConfigError(f"MODEL.decoder.vocab_size ({self.decoder.vocab_size}) must equal "
                              f"MODEL.backbone.vocab_size ({cfg.vocab_size}): the decoder writes the encoder's "
                              "word pieces")
        if not isinstance(max_decode_length, int) or not 1 <= max_decode_length < self.decoder.max_length:
            raise ConfigError(f"MODEL.max_decode_length must be an integer in [1, MODEL.decoder.max_length - 1 = "
                              f"{self.decoder.max_length - 1}], got {max_decode_length!r}")
        self.freeze_encoder = bool(freeze_encoder)
        self.bos_id, self.eos_id, self.pad_id = bos_id, eos_id, pad_id
        self.banned = tuple(i for i in (pad_id, bos_id, unk_id) if i is not None)
        self.beam_size, self.max_decode_length, self.length_penalty = beam_size, max_decode_length, length_penalty
        width = self.decoder.d_model
        self.project = nn.LayerList([nn.Linear(size, width) for size in
                                     (cfg.hidden_size, cfg.v_hidden_size, cfg.a_hidden_size)])
        self.norm = nn.LayerList([nn.LayerNorm(width) for _ in range(3)])
        if self.freeze_encoder:
            for param in self.backbone.parameters():
                param.stop_gradient = True

    def train(self):
        super().train()
        if self.freeze_encoder:  # a frozen encoder is a fixed feature extractor: no dropout
            self.backbone.eval()
        return self

    def encode(self, batch):
        """Video batch -> (memory [B, 2 + V + A, d_model], memory_mask [B, 2 + V + A])."""
        missing = [k for k in VIDEO_KEYS if k not in batch]
        if missing:
            raise DataError(f"captioning batch lacks {', '.join(missing)}; got keys {', '.join(sorted(batch))}")
        count = batch["image_feat"].shape[0]
        text_ids = paddle.to_tensor([[self.bos_id, self.eos_id]] * count, "int64")
        text_mask = paddle.ones_like(text_ids)
        inputs = dict(text_ids=text_ids, text_mask=text_mask, action_feat=batch["action_feat"],
                      image_feat=batch["image_feat"], image_loc=batch["image_loc"], image_mask=batch["image_mask"],
                      action_mask=batch["action_mask"])
        if self.freeze_encoder:
            with paddle.no_grad():
                streams = self.backbone.encode_streams(**inputs)
            streams = [s.detach() for s in streams]
        else:
            streams = self.backbone.encode_streams(**inputs)
        memory = paddle.concat([norm(proj(s)) for s, proj, norm in zip(streams, self.project, self.norm)], axis=1)
        mask = paddle.concat([text_mask.astype("float32"), batch["image_mask"].astype("float32"),
                              batch["action_mask"].astype("float32")], axis=1)
        return memory, mask

    def forward(self, batch, mode="train"):
        """train / valid: dict of 0-d losses (``loss``); test: the generated captions (list of id lists)."""
        if mode == "test":
            return self.generate(batch)
        if mode not in ("train", "valid"):
            raise ValueError(f"mode must be 'train', 'valid' or 'test', got {mode!r}")
        if CAPTION_KEY not in batch:
            raise DataError(f"captioning batch lacks {CAPTION_KEY}; got keys {', '.join(sorted(batch))}")
        ids = batch[CAPTION_KEY]
        memory, mask = self.encode(batch)
        logits = self.decoder(ids[:, :-1], memory, mask)
        return self.loss(logits, ids[:, 1:])

    def train_step(self, batch):
        return self.forward(batch, mode="train")

    def val_step(self, batch):
        return self.forward(batch, mode="valid")

    def generate(self, batch, beam_size=None):
        """Captions of a video batch: B lists of word-piece ids (no [CLS]/[SEP]); beam_size 1 = greedy."""
        beam = self.beam_size if beam_size is None else beam_size
        memory, mask = self.encode(batch)
        args = (self.decoder, memory, mask, self.bos_id, self.eos_id, self.max_decode_length)
        if beam == 1:
            return greedy_search(*args, banned=self.banned)
        return beam_search(*args, beam_size=beam, length_penalty=self.length_penalty, banned=self.banned)
