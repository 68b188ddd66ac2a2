"""The ActBertRetrieval framework: fine-tuning the matching head for text-video retrieval.

A batch holds B positive (caption, video) pairs (``MSRVTTTrainDataset``). Each caption's
text prefix is computed once (``backbone.encode_text``) and each distinct video's inputs
once (``backbone.encode_video``), then all 1 + 2K pairs of every positive (the positive,
K other videos for its caption, K other captions for its video) go through
``backbone.match_logits`` in one pass, with gradients, the same three stages retrieval
scoring uses. That is about (B + U) stream prefixes plus B (1 + 2K) cheap pair passes,
instead of B (1 + 2K) full forward passes.

Negatives (``NegativeSampler``, built from the ``MODEL.loss`` keys ``num_negatives``,
``negative_source``, ``hard_negatives``): from the batch (the other
samples whose video differs; captions of the same video are never negatives of each
other) or from the set (the videos and captions the dataset drew per sample); random, or
the hardest ones under the current model (every candidate scored without gradient first).
"""

import numpy as np
import paddle
import paddle.nn as nn

from ...fields import TEXT_KEYS, VIDEO_KEYS
from ...utils.errors import DataError
from ...utils.registry import build_from_cfg
from ..losses.actbert_loss import classification_term
from ..negatives import NegativeSampler
from ..registry import BACKBONES, FRAMEWORKS, LOSSES


@FRAMEWORKS.register()
class ActBertRetrieval(nn.Layer):
    """``MODEL.framework: ActBertRetrieval``: ``MODEL.backbone`` + ``MODEL.loss``
    (``RetrievalMatchingLoss`` by default). Loads ActBERT checkpoints as ``ActBert`` does
    (same ``backbone.`` parameter names).

    ``forward(batch, mode)`` -> dict of 0-d losses (``loss``, ``loss_match``, and
    ``loss_text`` when the masked-word term is on).
    """

    def __init__(self, backbone, loss=None):
        super().__init__()
        self.backbone = build_from_cfg(backbone, BACKBONES, key="name", where="MODEL.backbone")
        self.sampler, loss = NegativeSampler.split_cfg(loss or {"name": "RetrievalMatchingLoss"})
        self.loss = build_from_cfg(loss, LOSSES, key="name", where="MODEL.loss")

    def check_training_data(self, dataset, batch_size):
        """Called by training before the first step: can the data supply the negatives and what
        the loss needs?"""
        self.sampler.check(dataset, batch_size)
        self.loss.check(dataset)

    # -- negatives ---------------------------------------------------------------------------

    def _encode(self, batch, first):
        """(TextPrefix of the batch captions [+ set negatives], VideoInputs of the distinct batch
        videos [+ set negatives]); each computed once for the whole batch."""
        texts = {k: batch[k] for k in TEXT_KEYS}
        videos = {k: paddle.index_select(batch[k], paddle.to_tensor(first)) for k in VIDEO_KEYS}
        if self.sampler.from_set:
            flat = lambda x: x.reshape([-1, *x.shape[2:]])  # noqa: E731  [B, N, ...] -> [B * N, ...]
            texts = {k: paddle.concat([v, flat(batch[f"neg_{k}"])]) for k, v in texts.items()}
            videos = {k: paddle.concat([v, flat(batch[f"neg_{k}"])]) for k, v in videos.items()}
        return self.backbone.encode_text(**texts), self.backbone.encode_video(**videos)

    def _hardness(self, prefix, video, vids, caps, inverse):
        """Scores (no gradient) of every candidate: (per-positive video scores, caption scores)."""
        B = len(vids)
        text_index = np.concatenate([np.full(len(v), i) for i, v in enumerate(vids)]
                                    + [c for c in caps]).astype(np.int64)
        video_index = np.concatenate([v for v in vids] + [np.full(len(c), inverse[i]) for i, c in enumerate(caps)])
        with paddle.no_grad():
            logits = self.backbone.match_logits(prefix, video, paddle.to_tensor(text_index),
                                                paddle.to_tensor(video_index.astype(np.int64)))
            diff = (logits[:, 0] - logits[:, 1]).astype("float32").numpy()
        cuts = np.cumsum([len(v) for v in vids] + [len(c) for c in caps])[:-1]
        parts = np.split(diff, cuts)
        return parts[:B], parts[B:]

    # -- forward -----------------------------------------------------------------------------

    def forward(self, batch, mode="train"):
        if mode not in ("train", "valid"):
            raise ValueError(f"mode must be 'train' or 'valid', got {mode!r}")
        missing = [k for k in (*TEXT_KEYS, *VIDEO_KEYS, "video_index") if k not in batch]
        if missing:
            raise DataError(f"retrieval fine-tuning batch lacks {', '.join(missing)}; got keys "
                            f"{', '.join(sorted(batch))} (DATASET.train must be an MSRVTTTrainDataset)")
        video_index = batch["video_index"].numpy().reshape(-1)
        B, K = len(video_index), self.sampler.num_negatives
        drawn = batch["neg_text_ids"].shape[1] if self.sampler.from_set else 0
        first, inverse, vids, caps = self.sampler.candidates(video_index, drawn)
        prefix, video = self._encode(batch, first)
        hardness = self._hardness(prefix, video, vids, caps, inverse) if self.sampler.hard_negatives else ()
        neg_videos, neg_captions = self.sampler.choose(vids, caps, *hardness)  # [B, K] each
        # Pairs: B positives, then B x K (caption i, other video), then B x K (other caption, video of i).
        text_index = np.concatenate([np.arange(B), np.repeat(np.arange(B), K), neg_captions.reshape(-1)])
        video_index_pairs = np.concatenate([inverse, neg_videos.reshape(-1), np.repeat(inverse, K)])
        logits = self.backbone.match_logits(prefix, video, paddle.to_tensor(text_index.astype(np.int64)),
                                            paddle.to_tensor(video_index_pairs.astype(np.int64)))
        positive = logits[:B]
        to_videos = logits[B : B + B * K].reshape([B, K, 2])
        to_captions = logits[B + B * K :].reshape([B, K, 2])
        return self.loss(positive, to_videos, to_captions, self._text_term(batch) if self.loss.text_weight else None)

    def _text_term(self, batch):
        """Masked-word loss on the positive pairs (pretraining's text head, labelled positions only)."""
        image_feat, action_feat = batch["image_feat"], batch["action_feat"]
        B = image_feat.shape[0]
        scores = self.backbone.pretrain_scores(
            text_ids=batch["masked_text_ids"], action_feat=action_feat, image_feat=image_feat,
            image_loc=batch["image_loc"], token_type_ids=batch["token_type_ids"], text_mask=batch["text_mask"],
            image_mask=batch["image_mask"], action_mask=batch["action_mask"], text_labels=batch["text_labels"],
            image_label=paddle.zeros([B, image_feat.shape[1] - 1], "int64"),
            action_label=paddle.full(action_feat.shape[:2], -1, "int64"),
        )
        return classification_term(scores.text_scores, scores.text_labels)

    def train_step(self, batch):
        return self.forward(batch, mode="train")

    def val_step(self, batch):
        return self.forward(batch, mode="valid")
