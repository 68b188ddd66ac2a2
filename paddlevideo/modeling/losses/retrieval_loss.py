"""Fine-tuning loss for retrieval on ActBERT's matching head (caption-video pairs with negatives).

Every positive (caption, video) comes with K negatives in each direction: K other videos for
the caption (text->video) and K other captions for the video (video->text). A pair's
score is the matching logit difference ``logit[match] - logit[no match]`` (the quantity
retrieval ranks by). Two losses, chosen with ``kind``:

- ``pairwise``: the pretraining matching cross-entropy on every pair (label 0 = match for
  the positive, 1 = no match for the 2K negatives), the positives' mean and the negatives'
  mean weighted equally (pretraining sees as many matched as mismatched pairs).
- ``listwise``: a softmax over the 1 + K candidates of each direction (the positive must
  win), the mean of the two directions' cross-entropies.

Optional pretraining terms, off by default: ``text_weight`` > 0 adds the masked-word loss
on the positive pairs (needs ``mask_text: true`` in the training set).
``region_weight`` / ``action_weight`` exist for symmetry with pretraining but need region
class distributions and action classes, which MSR-VTT feature files do not hold: a
positive weight is refused with that reason.
"""

import paddle
import paddle.nn as nn
import paddle.nn.functional as F

from ...utils.errors import ConfigError
from ..negatives import SAMPLER_KEYS
from ..registry import LOSSES
from .actbert_loss import classification_term

KINDS = ("pairwise", "listwise")


@LOSSES.register()
class RetrievalMatchingLoss(nn.Layer):
    """``MODEL.loss`` of the ``ActBertRetrieval`` framework.

    Args:
        kind: ``listwise`` (softmax over 1 + K) or ``pairwise`` (matching cross-entropy).
        text_weight, region_weight, action_weight: weights of pretraining's masked terms.

    ``MODEL.loss`` also holds ``num_negatives``, ``negative_source`` and ``hard_negatives``
    (``SAMPLER_KEYS``): the framework builds its ``NegativeSampler`` from them.
    """

    config_keys = ("kind", "text_weight", "region_weight", "action_weight", *SAMPLER_KEYS)

    def __init__(self, kind="listwise", text_weight=0.0, region_weight=0.0, action_weight=0.0):
        super().__init__()
        if kind not in KINDS:
            raise ConfigError(f"MODEL.loss.kind must be one of {', '.join(KINDS)}, got {kind!r}")
        for name, value in (("region_weight", region_weight), ("action_weight", action_weight)):
            if value:
                raise ConfigError(
                    f"MODEL.loss.{name} must be 0: MSR-VTT features hold no region class distributions or action "
                    "classes (the targets of the masked-region and masked-action terms)")
        if text_weight < 0:
            raise ConfigError(f"MODEL.loss.text_weight must be >= 0, got {text_weight}")
        self.kind, self.text_weight = kind, float(text_weight)

    def check(self, dataset, where="DATASET.train"):
        """Raise ConfigError before training when the data lacks what a term needs (masked text)."""
        if self.text_weight and not getattr(dataset, "mask_text", False):
            raise ConfigError(f"MODEL.loss.text_weight > 0 needs {where}.mask_text: true (masked captions)")

    def forward(self, positive, to_videos, to_captions, text_term=None):
        """positive [B, 2], to_videos / to_captions [B, K, 2] matching logits -> dict of 0-d losses.

        ``to_videos``: the caption of each positive against K other videos; ``to_captions``:
        K other captions against its video. ``text_term``: the masked-word loss, or None.
        """
        positive, to_videos, to_captions = (x.astype("float32") for x in (positive, to_videos, to_captions))
        if self.kind == "listwise":
            diff = lambda x: x[..., 0] - x[..., 1]  # noqa: E731  (matching logit difference)
            pos = diff(positive).unsqueeze(-1)  # [B, 1]
            target = paddle.zeros([positive.shape[0], 1], "int64")
            t2v = F.cross_entropy(paddle.concat([pos, diff(to_videos)], axis=1), target)
            v2t = F.cross_entropy(paddle.concat([pos, diff(to_captions)], axis=1), target)
            match = (t2v + v2t) / 2
        else:
            negatives = paddle.concat([to_videos, to_captions], axis=1).reshape([-1, 2])
            pos_term = classification_term(positive, paddle.zeros([positive.shape[0]], "int64"))
            neg_term = classification_term(negatives, paddle.ones([negatives.shape[0]], "int64"))
            match = (pos_term + neg_term) / 2
        out = {"loss": match, "loss_match": match}
        if text_term is not None:
            out["loss"] = match + self.text_weight * text_term
            out["loss_text"] = text_term
        return out
