"""Losses of the step tasks (COIN segmentation, CrossTask step localization)."""

import paddle
import paddle.nn as nn
import paddle.nn.functional as F

from ..registry import LOSSES
from .actbert_loss import classification_term

MASKED = -1e4  # the score of a padded step slot: exp() of it vanishes next to real steps


@LOSSES.register()
class SegmentationLoss(nn.Layer):
    """Cross-entropy of each second's class, averaged over the labelled seconds (label -1:
    a padded slot past the video's end, ignored).

    Args:
        background_weight: weight of the background class (0) in the mean; below 1 it counts
            background seconds less (COIN's test seconds are about 59% background).
    """

    def __init__(self, background_weight=1.0):
        super().__init__()
        self.background_weight = float(background_weight)

    def forward(self, logits, labels):
        """logits [B, S, C], labels int64 [B, S] -> {"loss"}."""
        scores, labels = logits.reshape([-1, logits.shape[-1]]), labels.flatten()
        if self.background_weight == 1.0:
            return {"loss": classification_term(scores, labels)}
        keep = paddle.nonzero(labels != -1).flatten()
        scores, labels = paddle.gather(scores, keep).astype("float32"), paddle.gather(labels, keep)
        weight = paddle.where(labels == 0, paddle.full_like(labels, self.background_weight, "float32"),
                              paddle.ones_like(labels, "float32"))
        per_row = F.cross_entropy(scores, labels.unsqueeze(-1), reduction="none").flatten()
        return {"loss": (per_row * weight).sum() / paddle.clip(weight.sum(), min=1e-6)}


@LOSSES.register()
class StepLocalizationLoss(nn.Layer):
    """Cross-entropy over a task's steps of the second's scores: the step the second shows must
    score highest among its task's steps (padded step slots excluded), the quantity the
    metric's log-softmax over steps per second normalises."""

    def forward(self, scores, step_mask, label):
        """scores [B, K], step_mask int [B, K] (1 real step), label int64 [B] -> {"loss"}."""
        scores = paddle.where(step_mask.astype("bool"), scores.astype("float32"), paddle.full_like(scores, MASKED,
                                                                                                 "float32"))
        return {"loss": F.cross_entropy(scores, label.reshape([-1, 1]))}
