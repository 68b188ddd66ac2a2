"""Frameworks of the step tasks over windows of per-second features (data/README.md,
"COIN and CrossTask").

- ``ActBertSegmentation`` (COIN): a window of S seconds is one ActBERT input whose S action
  slots are its seconds; each second's output is its action-stream output, concatenated
  (``use_regions``) with the mean of the region-stream outputs of its own boxes (zeros
  for a second without a frame), then a linear head to the classes (779 for COIN: 778
  steps and background). The action stream of the Tangled Transformer reads nothing of
  the other streams, so the regions reach the head only through the region stream.
- ``ActBertStepLocalization`` (CrossTask): the score of (second t, step k) is ActBERT's
  matching logit difference ``logit[match] - logit[no match]`` of the window centred on t
  with step k's text as the caption. Zero-shot that is the pretrained matching head;
  supervised, the whole model is fine-tuned so that, among its task's steps, the step a
  second shows scores highest (``StepLocalizationLoss``), matching the metric's
  log-softmax over steps per second.
"""

import numpy as np
import paddle
import paddle.nn as nn

from ...utils.errors import ConfigError, DataError
from ...utils.registry import build_from_cfg
from ..registry import BACKBONES, FRAMEWORKS, LOSSES

TEXT_INPUTS = ("text_ids", "token_type_ids", "text_mask")
VIDEO_INPUTS = ("image_feat", "image_loc", "image_mask", "action_feat", "action_mask")


def _missing(batch, keys, what, dataset):
    missing = [k for k in keys if k not in batch]
    if missing:
        raise DataError(f"{what} batch lacks {', '.join(missing)}; got keys {', '.join(sorted(batch))} "
                        f"(DATASET.train must be a {dataset})")


def _tensor(value, dtype=None):
    return value if isinstance(value, paddle.Tensor) else paddle.to_tensor(np.asarray(value), dtype=dtype)


def second_regions(region_out, region_second, seconds):
    """Mean region-stream output of each second's boxes: region_out [B, V, Hv] (slot 0 the global
    region), region_second int64 [B, V-1] (window slot of each box, -1 padding) -> [B, S, Hv]."""
    owner = (region_second.unsqueeze(1) == paddle.arange(seconds, dtype="int64").reshape([1, seconds, 1]))
    owner = owner.astype(region_out.dtype)  # [B, S, V-1]
    count = owner.sum(axis=-1, keepdim=True)
    return paddle.matmul(owner, region_out[:, 1:]) / paddle.clip(count, min=1.0)


@FRAMEWORKS.register()
class ActBertSegmentation(nn.Layer):
    """``MODEL.framework: ActBertSegmentation``: ``MODEL.backbone`` + a per-second class head
    + ``MODEL.loss`` (``SegmentationLoss`` by default).

    Args:
        num_classes: classes of a second, background (0) included (COIN: 779).
        use_regions: add each second's pooled region outputs to its action output.
        dropout: before the head.
    """

    def __init__(self, backbone, num_classes=779, use_regions=True, dropout=0.1, loss=None):
        super().__init__()
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
            raise ConfigError(f"MODEL.num_classes must be a whole number >= 2, got {num_classes!r}")
        self.backbone = build_from_cfg(backbone, BACKBONES, key="name", where="MODEL.backbone")
        cfg = self.backbone.config
        self.num_classes, self.use_regions = num_classes, bool(use_regions)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(cfg.a_hidden_size + (cfg.v_hidden_size if self.use_regions else 0), num_classes)
        self.loss = build_from_cfg(loss or {"name": "SegmentationLoss"}, LOSSES, key="name", where="MODEL.loss")

    def check_training_data(self, dataset, batch_size):
        """ConfigError before training when the data's classes do not fit the head."""
        if dataset.num_classes != self.num_classes:
            raise ConfigError(f"DATASET.train has {dataset.num_classes} classes (background and "
                              f"{dataset.num_classes - 1} steps), but MODEL.num_classes is {self.num_classes}")

    def second_logits(self, batch):
        """Window batch (TEXT_INPUTS, VIDEO_INPUTS, ``region_second``) -> logits [B, S, C]."""
        b = self.backbone
        # every stream at every position (the backbone's reference path without its heads):
        # the cheaper paths keep only first tokens or labelled rows, and this head reads all slots
        text = b._text_prefix(batch["text_ids"], batch["token_type_ids"], batch["text_mask"])
        video = b._video_prefix(batch["image_feat"], batch["image_loc"], batch["image_mask"], batch["action_feat"],
                                batch["action_mask"])
        _, region_out, action_out = b._encode(text, video)
        features = action_out
        if self.use_regions:
            regions = second_regions(region_out, batch["region_second"], action_out.shape[1])
            features = paddle.concat([action_out, regions], axis=-1)
        return self.head(self.dropout(features))

    def forward(self, batch, mode="train"):
        """Window batch with ``labels`` int64 [B, S] (-1: none) -> dict of 0-d losses."""
        _missing(batch, (*TEXT_INPUTS, *VIDEO_INPUTS, "region_second", "labels"), "segmentation", "COINDataset")
        return self.loss(self.second_logits(batch), batch["labels"])

    def predict_windows(self, inputs, batch_size=64):
        """Logits of windows given as numpy arrays [W, ...] (``COINDataset.video``): float32
        [W, S, C], in batches of ``batch_size`` windows, without gradient."""
        count = len(inputs["action_feat"])
        out = []
        with paddle.no_grad():
            for i in range(0, count, batch_size):
                batch = {k: _tensor(v[i:i + batch_size]) for k, v in inputs.items()}
                out.append(self.second_logits(batch).astype("float32").numpy())
        return np.concatenate(out) if out else np.zeros((0, 0, self.num_classes), np.float32)

    def train_step(self, batch):
        return self.forward(batch, mode="train")

    def val_step(self, batch):
        return self.forward(batch, mode="valid")


@FRAMEWORKS.register()
class ActBertStepLocalization(nn.Layer):
    """``MODEL.framework: ActBertStepLocalization``: ``MODEL.backbone`` (its matching head scores
    (window, step text) pairs) + ``MODEL.loss`` (``StepLocalizationLoss`` by default)."""

    def __init__(self, backbone, loss=None):
        super().__init__()
        self.backbone = build_from_cfg(backbone, BACKBONES, key="name", where="MODEL.backbone")
        self.loss = build_from_cfg(loss or {"name": "StepLocalizationLoss"}, LOSSES, key="name", where="MODEL.loss")

    def pair_scores(self, texts, windows, text_index, window_index, prefix=None):
        """Matching logit differences [P] of pairs (text_index[p], window_index[p]) (int64 [P]);
        ``texts``: TEXT_INPUTS [N, L]; ``windows``: VIDEO_INPUTS [W, ...] (tensors); ``prefix``:
        ``texts`` already encoded (``backbone.encode_text``), to encode them once for many windows."""
        b = self.backbone
        if prefix is None:
            prefix = b.encode_text(texts["text_ids"], texts["token_type_ids"], texts["text_mask"])
        video = b.encode_video(windows["image_feat"], windows["image_loc"], windows["image_mask"],
                               windows["action_feat"], windows["action_mask"])
        logits = b.match_logits(prefix, video, _tensor(text_index, "int64"), _tensor(window_index, "int64"))
        logits = logits.astype("float32")
        return logits[:, 0] - logits[:, 1]

    def forward(self, batch, mode="train"):
        """Batch of (window, its task's step texts [B, K, L], ``step_mask`` [B, K], ``label`` [B])
        -> dict of 0-d losses."""
        keys = (*VIDEO_INPUTS, *(f"step_{k}" for k in TEXT_INPUTS), "step_mask", "label")
        _missing(batch, keys, "step localization", "CrossTaskDataset with part: train")
        B, K = batch["step_text_ids"].shape[:2]
        texts = {k: batch[f"step_{k}"].reshape([B * K, -1]) for k in TEXT_INPUTS}
        windows = {k: batch[k] for k in VIDEO_INPUTS}
        scores = self.pair_scores(texts, windows, np.arange(B * K), np.repeat(np.arange(B), K)).reshape([B, K])
        return self.loss(scores, batch["step_mask"], batch["label"])

    def score_video(self, windows, texts, pair_batch_size=256):
        """Scores [T, K] (numpy float32) of every second's window (numpy [T, ...]) against every
        step text (numpy [K, L]), without gradient; each text encoded once, each window once."""
        T, K = len(windows["action_feat"]), len(texts["text_ids"])
        if T == 0:
            return np.zeros((0, K), np.float32)
        per_chunk = max(1, pair_batch_size // K)  # windows per pass
        out = []
        with paddle.no_grad():
            t = {k: _tensor(v) for k, v in texts.items()}
            prefix = self.backbone.encode_text(t["text_ids"], t["token_type_ids"], t["text_mask"])
            for i in range(0, T, per_chunk):
                chunk = {k: _tensor(v[i:i + per_chunk]) for k, v in windows.items() if k in VIDEO_INPUTS}
                n = len(chunk["action_feat"])
                scores = self.pair_scores(None, chunk, np.tile(np.arange(K), n), np.repeat(np.arange(n), K), prefix)
                out.append(scores.numpy().reshape(n, K))
        return np.concatenate(out)

    def train_step(self, batch):
        return self.forward(batch, mode="train")

    def val_step(self, batch):
        return self.forward(batch, mode="valid")
