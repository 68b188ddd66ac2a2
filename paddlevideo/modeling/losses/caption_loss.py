"""Teacher-forced caption loss: cross-entropy of each next word piece, padding ignored."""

import paddle
import paddle.nn as nn
import paddle.nn.functional as F

from ...utils.errors import ConfigError, DataError
from ..registry import LOSSES


@LOSSES.register()
class CaptionLoss(nn.Layer):
    """``MODEL.loss`` of ``ActBertCaption``: mean cross-entropy over the non-padding target
    tokens of the batch (a long caption weighs by its length, as in sequence training);
    ``label_smoothing`` in [0, 1)."""

    def __init__(self, label_smoothing=0.0, pad_id=0):
        super().__init__()
        if not isinstance(label_smoothing, (int, float)) or not 0 <= label_smoothing < 1:
            raise ConfigError(f"MODEL.loss.label_smoothing must be in [0, 1), got {label_smoothing!r}")
        self.label_smoothing, self.pad_id = float(label_smoothing), pad_id

    def forward(self, logits, targets):
        """logits [B, L, vocab], targets int64 [B, L] -> {"loss": 0-d}."""
        flat = targets.reshape([-1])
        # The real tokens first: paddle's cross_entropy does not honour ignore_index with label smoothing.
        keep = paddle.nonzero(flat != self.pad_id).reshape([-1])
        if keep.shape[0] == 0:
            raise DataError("caption batch without a single target token (all captions empty)")
        scores = paddle.index_select(logits.reshape([-1, logits.shape[-1]]), keep)
        loss = F.cross_entropy(scores, paddle.index_select(flat, keep), label_smoothing=self.label_smoothing)
        return {"loss": loss}
