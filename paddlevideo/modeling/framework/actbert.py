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
        self._check_classes(batch["image_target"])
        inputs = {k: batch[k] for k in INPUT_KEYS}
        scores = self.backbone.pretrain_scores(
            **inputs, text_labels=batch["text_labels"], image_label=batch["image_label"],
            action_label=batch["action_label"],
        )
        return self.loss.from_scores(scores, batch["image_target"], batch["next_sentence_label"])

    def _check_classes(self, image_target):
        """DataError naming both counts when the data's region classes (``image_target`` [B, V-1, C])
        do not fit the model's head (a shape: no device read). The action class ids are checked
        by the dataset, told the count by ``tell_dataset``."""
        cfg = self.backbone.config
        if image_target.shape[-1] != cfg.v_target_size:
            raise DataError(f"the data's region class distributions have {image_target.shape[-1]} classes, but "
                            f"MODEL.backbone.v_target_size is {cfg.v_target_size}; set it to "
                            f"{image_target.shape[-1]} (or use data made for this model)")

    def tell_dataset(self, dataset):
        """Before training: a pretraining set (``ActBertDataset.expect_action_classes``) learns the
        action head's class count and checks each sample's action class ids as it builds it (NumPy,
        in the loader), instead of the model reading every batch's largest label off the device
        (one GPU->CPU sync per step)."""
        expect = getattr(dataset, "expect_action_classes", None)
        if expect is not None:
            expect(self.backbone.config.a_target_size, "MODEL.backbone.a_target_size")

    def train_step(self, batch):
        """Losses of one training batch (the caller runs backward and the optimizer)."""
        return self.forward(batch, mode="train")

    def val_step(self, batch):
        """Losses of one validation batch (call under ``paddle.no_grad()`` in eval mode)."""
        return self.forward(batch, mode="valid")
