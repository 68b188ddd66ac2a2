"""The ActBert framework: backbone + loss, one training/validation step each."""

import paddle.nn as nn

from ...utils.errors import DataError
from ...utils.registry import build_from_cfg
from ..registry import BACKBONES, FRAMEWORKS, LOSSES

INPUT_KEYS = ("text_ids", "action_feat", "image_feat", "image_loc", "token_type_ids", "text_mask", "image_mask",
              "action_mask")
LABEL_KEYS = ("text_labels", "image_label", "image_target", "action_label", "next_sentence_label")


@FRAMEWORKS.register()
class ActBert(nn.Layer):
    """``MODEL.framework: ActBert``: builds ``MODEL.backbone`` and ``MODEL.loss``.

    ``forward(batch, mode)`` takes a collated pretraining batch (dict of tensors, keys as the
    dataset returns them) and returns the 0-d tensors ``loss, loss_text, loss_region,
    loss_action, loss_match``. The vocabulary, region and action heads are computed only at
    labelled positions; the numbers equal those of the full computation.
    """

    def __init__(self, backbone, loss=None):
        super().__init__()
        self.backbone = build_from_cfg(backbone, BACKBONES, key="name", where="MODEL.backbone")
        self.loss = build_from_cfg(loss or {"name": "ActBertLoss"}, LOSSES, key="name", where="MODEL.loss")

    def forward(self, batch, mode="train"):
        """batch: dict with INPUT_KEYS and LABEL_KEYS -> dict of 0-d loss tensors."""
        if mode not in ("train", "valid"):
            raise ValueError(f"mode must be 'train' or 'valid', got {mode!r}")
        missing = [k for k in INPUT_KEYS + LABEL_KEYS if k not in batch]
        if missing:
            raise DataError(f"pretraining batch lacks {', '.join(missing)}; got keys {', '.join(sorted(batch))}")
        inputs = {k: batch[k] for k in INPUT_KEYS}
        scores = self.backbone.pretrain_scores(
            **inputs, text_labels=batch["text_labels"], image_label=batch["image_label"],
            action_label=batch["action_label"],
        )
        return self.loss.from_scores(scores, batch["image_target"], batch["next_sentence_label"])

    def train_step(self, batch):
        """Losses of one training batch (the caller runs backward and the optimizer)."""
        return self.forward(batch, mode="train")

    def val_step(self, batch):
        """Losses of one validation batch (call under ``paddle.no_grad()`` in eval mode)."""
        return self.forward(batch, mode="valid")
