"""Region extractor: the bottom-up-attention Faster R-CNN (ResNet C4, Visual Genome) in Paddle.

This is a port of the public PyTorch port LXMERT's demo uses (checkpoint
``unc-nlp/frcnn-vg-finetuned``: ``pytorch_model.bin`` + ``config.yaml``; code
``modeling_frcnn.py`` / ``processing_image.py`` of transformers' ``research_projects/lxmert``),
inference only. It reproduces that code's outputs, quirks included:

- the network gets the image in **RGB** order when ``input.format`` is ``BGR`` (the public
  loader converts cv2's BGR to RGB and flips back only for ``RGB``), with the Caffe BGR means
  subtracted from R, G, B in that order;
- resize: the short edge to ``min_size_test``, the long one capped at ``max_size_test``, sizes
  rounded with ``int(x + 0.5)``, bilinear without antialias; zero padding after normalising;
- ResNet with BatchNorm in eval mode, Caffe max-pool (k3 s2 p0, ceil), stride in the 1x1 conv;
- RPN on res4: 12 anchors per cell, top ``pre_nms_topk_test`` by logit, clip, drop empty boxes,
  NMS (IoU > thr suppresses, no +1), keep ``post_nms_topk_test``;
- RoIPool (max, not RoIAlign; coordinates rounded half away from zero) at 1/16, res5 with
  stride 1 and dilation 2 (unless ``res5halve``), mean over the grid -> the region feature;
- the background class is the **last** of the ``num_classes + 1`` scores;
- final selection: per proposal its best non-background class and that class's box, one
  class-agnostic NMS at ``nms_thresh_test[0]``, the first ``max_detections``; when fewer than
  ``min_detections`` survive, again at the next threshold. ``score_thresh_test`` is not applied.
  Where the public code then crashes (every threshold leaves too few), this port returns the
  boxes of the last threshold and says how many (``num_boxes``, ``nms_thresh``).

Shapes: R proposals, K = num_classes (1600), C channels, N kept boxes. Parameter names are the
PyTorch ones (``backbone.res4.0.conv1.weight``, ``roi_heads.box_predictor.cls_score.weight``), with
Paddle's BatchNorm buffers (``_mean``/``_variance``) and Linear weights stored [in, out];
``tools/convert_frcnn_vg.py`` maps a PyTorch checkpoint to them.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass, field

import numpy as np
import paddle
import paddle.nn as nn
import paddle.nn.functional as F

from ...utils.errors import ConfigError, DataError, WeightsError
from ...utils.outfile import atomic_file, atomic_path

BLOCKS_PER_DEPTH = {50: (3, 4, 6, 3), 101: (3, 4, 23, 3), 152: (3, 8, 36, 3)}
FEATURE_STRIDE = 16  # res4
BOX_SCALE_CLAMP = math.log(1000.0 / 16)


# ----------------------------------------------------------------------------------------------
# Configuration


@dataclass
class FRCNNVGConfig:
    """The settings of the public ``config.yaml`` this port uses (defaults: full width, the
    bottom-up-attention test sizes 600/1000). ``from_yaml_dict`` reads the public schema."""

    # model / input
    pixel_mean: list = field(default_factory=lambda: [102.9801, 115.9465, 122.7717])
    pixel_std: list = field(default_factory=lambda: [1.0, 1.0, 1.0])
    input_format: str = "BGR"
    min_size_test: int = 600
    max_size_test: int = 1000
    pad_value: float = 0.0
    caffe_maxpool: bool = True
    # backbone
    depth: int = 101
    num_groups: int = 1
    width_per_group: int = 64
    stem_out_channels: int = 64
    res2_out_channels: int = 256
    stride_in_1x1: bool = True
    # RPN
    rpn_hidden_channels: int = 512
    anchor_sizes: list = field(default_factory=lambda: [64, 128, 256, 512])
    anchor_aspect_ratios: list = field(default_factory=lambda: [0.5, 1.0, 2.0])
    anchor_offset: float = 0.0
    rpn_bbox_reg_weights: list = field(default_factory=lambda: [1.0, 1.0, 1.0, 1.0])
    rpn_nms_thresh: float = 0.7
    pre_nms_topk_test: int = 6000
    post_nms_topk_test: int = 300
    rpn_min_size: float = 0.0
    # RoI heads
    num_classes: int = 1600
    num_attrs: int = 400
    attr: bool = True
    pooler_resolution: int = 14
    res5halve: bool = False
    cls_agnostic_bbox_reg: bool = False
    bbox_reg_weights: list = field(default_factory=lambda: [10.0, 10.0, 5.0, 5.0])
    nms_thresh_test: list = field(default_factory=lambda: [0.5, 0.6, 0.7])
    score_thresh_test: float = 0.2  # read for completeness; the public code does not apply it
    min_detections: int = 36
    max_detections: int = 36

    def __post_init__(self):
        if self.depth not in BLOCKS_PER_DEPTH:
            raise ConfigError(f"frcnn_vg: resnets.depth must be one of {sorted(BLOCKS_PER_DEPTH)}, got {self.depth}")
        if self.input_format not in ("BGR", "RGB"):
            raise ConfigError(f"frcnn_vg: input.format must be BGR or RGB, got {self.input_format!r}")
        if not self.nms_thresh_test:
            raise ConfigError("frcnn_vg: roi_heads.nms_thresh_test is empty")

    # The public schema: nested lower-case sections (the loader there also accepts upper case).
    _SCHEMA = {
        "pixel_mean": ("model", "pixel_mean"), "pixel_std": ("model", "pixel_std"),
        "caffe_maxpool": ("model", "max_pool"),
        "input_format": ("input", "format"), "min_size_test": ("input", "min_size_test"),
        "max_size_test": ("input", "max_size_test"), "pad_value": ("pad_value",),
        "depth": ("resnets", "depth"), "num_groups": ("resnets", "num_groups"),
        "width_per_group": ("resnets", "width_per_group"), "stem_out_channels": ("resnets", "stem_out_channels"),
        "res2_out_channels": ("resnets", "res2_out_channels"), "stride_in_1x1": ("resnets", "stride_in_1x1"),
        "rpn_hidden_channels": ("proposal_generator", "hidden_channels"),
        "rpn_min_size": ("proposal_generator", "min_size"),
        "anchor_sizes": ("anchor_generator", "sizes"), "anchor_aspect_ratios": ("anchor_generator", "aspect_ratios"),
        "anchor_offset": ("anchor_generator", "offset"),
        "rpn_bbox_reg_weights": ("rpn", "bbox_reg_weights"), "rpn_nms_thresh": ("rpn", "nms_thresh"),
        "pre_nms_topk_test": ("rpn", "pre_nms_topk_test"), "post_nms_topk_test": ("rpn", "post_nms_topk_test"),
        "num_classes": ("roi_heads", "num_classes"), "nms_thresh_test": ("roi_heads", "nms_thresh_test"),
        "score_thresh_test": ("roi_heads", "score_thresh_test"),
        "num_attrs": ("roi_box_head", "num_attrs"), "attr": ("roi_box_head", "attr"),
        "pooler_resolution": ("roi_box_head", "pooler_resolution"), "res5halve": ("roi_box_head", "res5halve"),
        "cls_agnostic_bbox_reg": ("roi_box_head", "cls_agnostic_bbox_reg"),
        "bbox_reg_weights": ("roi_box_head", "bbox_reg_weights"),
        "min_detections": ("min_detections",), "max_detections": ("max_detections",),
    }

    @classmethod
    def from_yaml_dict(cls, data, source="config"):
        """A config in the public ``config.yaml`` schema (dict) -> FRCNNVGConfig.

        Keys absent from ``data`` keep their defaults; settings this port cannot honour (another
        norm, RPN/RoI features other than res4, ``size_divisibility`` > 0, as the public code)
        raise ConfigError naming the key."""
        if not isinstance(data, dict):
            raise ConfigError(f"{source}: expected a mapping of config sections, got {type(data).__name__}")
        data = _lower_keys(data)
        kwargs = {}
        for name, path in cls._SCHEMA.items():
            value = _lookup(data, path)
            if value is not None:
                kwargs[name] = value
        sizes, ratios = kwargs.get("anchor_sizes"), kwargs.get("anchor_aspect_ratios")
        for key, value in (("sizes", sizes), ("aspect_ratios", ratios)):
            if value is not None and value and isinstance(value[0], list):  # one list per feature map
                if len(value) != 1:
                    raise ConfigError(f"{source}: anchor_generator.{key}: one feature map (res4) only, got {value}")
                kwargs["anchor_" + key] = value[0]
        nms = kwargs.get("nms_thresh_test")
        if nms is not None and not isinstance(nms, list):
            kwargs["nms_thresh_test"] = [nms]
        checks = {
            ("resnets", "norm"): lambda v: v in ("BN", "FrozenBN"),
            ("resnets", "out_features"): lambda v: list(v) == ["res4"],
            ("rpn", "in_features"): lambda v: list(v) == ["res4"],
            ("roi_heads", "in_features"): lambda v: list(v) == ["res4"],
            ("size_divisibility",): lambda v: v == 0,
        }
        for path, ok in checks.items():
            value = _lookup(data, path)
            if value is not None and not ok(value):
                raise ConfigError(f"{source}: {'.'.join(path)} = {value!r} is not supported by this port")
        try:
            return cls(**kwargs)
        except TypeError as exc:
            raise ConfigError(f"{source}: {exc}") from None

    def to_yaml_dict(self):
        """This config in the public schema (what ``from_yaml_dict`` reads back)."""
        out = {}
        for name, path in self._SCHEMA.items():
            value = getattr(self, name)
            if name in ("anchor_sizes", "anchor_aspect_ratios"):
                value = [list(value)]
            node = out
            for key in path[:-1]:
                node = node.setdefault(key, {})
            node[path[-1]] = value
        out.setdefault("resnets", {})["out_features"] = ["res4"]
        return out

    @classmethod
    def tiny(cls, **overrides):
        """A small config for tests and demos (ResNet-50 layout, 32-d regions, 1600 + 1 classes,
        frames resized to 64..100 px); ``overrides`` replace any field."""
        sizes = dict(depth=50, width_per_group=2, stem_out_channels=2, res2_out_channels=4, rpn_hidden_channels=4,
                     min_size_test=64, max_size_test=100)
        return cls(**{**sizes, **overrides})

    @property
    def blocks_per_stage(self):
        return BLOCKS_PER_DEPTH[self.depth]

    @property
    def roi_feature_dim(self):
        return self.res2_out_channels * 8

    @property
    def num_anchors(self):
        return len(self.anchor_sizes) * len(self.anchor_aspect_ratios)


def _lower_keys(data):
    if isinstance(data, dict):
        return {str(k).lower(): _lower_keys(v) for k, v in data.items()}
    return data


def _lookup(data, path):
    node = data
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return node


def read_config(path):
    """FRCNNVGConfig from a ``.yaml``/``.yml``/``.json`` file in the public schema."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ConfigError(f"detector config not found: {path}")
    try:
        with open(path, encoding="utf-8") as f:
            if path.endswith(".json"):
                data = json.load(f)
            else:
                import yaml

                data = yaml.safe_load(f)
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the detector config ({exc})") from None
    except Exception as exc:  # yaml.YAMLError and its subclasses
        raise ConfigError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    return FRCNNVGConfig.from_yaml_dict(data, source=path)


# ----------------------------------------------------------------------------------------------
# Network


class ConvBN(nn.Conv2D):
    """Conv2D (no bias) followed by BatchNorm under ``.norm`` (the public ``Conv2d(norm=...)``)."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1):
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, padding=padding,
                         dilation=dilation, groups=groups, bias_attr=False)
        self.norm = nn.BatchNorm2D(out_channels, epsilon=1e-5)

    def forward(self, x):
        return self.norm(super().forward(x))


class BasicStem(nn.Layer):
    """7x7/2 conv + BN + ReLU, then the 3x3/2 max-pool (Caffe's: no padding, ceil)."""

    def __init__(self, cfg: FRCNNVGConfig):
        super().__init__()
        self.conv1 = ConvBN(3, cfg.stem_out_channels, 7, stride=2, padding=3)
        self.caffe_maxpool = cfg.caffe_maxpool

    def forward(self, x):
        x = F.relu(self.conv1(x))
        if self.caffe_maxpool:
            return F.max_pool2d(x, 3, stride=2, padding=0, ceil_mode=True)
        return F.max_pool2d(x, 3, stride=2, padding=1)


class BottleneckBlock(nn.Layer):
    """1x1 -> 3x3 -> 1x1 with a projection shortcut when the width changes."""

    def __init__(self, in_channels, bottleneck_channels, out_channels, stride=1, num_groups=1,
                 stride_in_1x1=True, dilation=1):
        super().__init__()
        self.shortcut = ConvBN(in_channels, out_channels, 1, stride=stride) if in_channels != out_channels else None
        stride_1x1, stride_3x3 = (stride, 1) if stride_in_1x1 else (1, stride)
        self.conv1 = ConvBN(in_channels, bottleneck_channels, 1, stride=stride_1x1)
        self.conv2 = ConvBN(bottleneck_channels, bottleneck_channels, 3, stride=stride_3x3,
                            padding=dilation, dilation=dilation, groups=num_groups)
        self.conv3 = ConvBN(bottleneck_channels, out_channels, 1)

    def forward(self, x):
        out = F.relu(self.conv1(x))
        out = F.relu(self.conv2(out))
        out = self.conv3(out)
        return F.relu(out + (self.shortcut(x) if self.shortcut is not None else x))


def make_stage(num_blocks, in_channels, bottleneck_channels, out_channels, first_stride, cfg, dilation=1):
    blocks = []
    for i in range(num_blocks):
        blocks.append(BottleneckBlock(in_channels, bottleneck_channels, out_channels,
                                      stride=first_stride if i == 0 else 1, num_groups=cfg.num_groups,
                                      stride_in_1x1=cfg.stride_in_1x1, dilation=dilation))
        in_channels = out_channels
    return nn.Sequential(*blocks)


class ResNetC4(nn.Layer):
    """Stem and res2..res4 (stride 16). ``forward`` returns res4 [B, 4 * res2_out, H/16, W/16]."""

    def __init__(self, cfg: FRCNNVGConfig):
        super().__init__()
        self.stem = BasicStem(cfg)
        in_ch, bottleneck, out_ch = cfg.stem_out_channels, cfg.num_groups * cfg.width_per_group, cfg.res2_out_channels
        for index, name in enumerate(("res2", "res3", "res4")):
            stage = make_stage(cfg.blocks_per_stage[index], in_ch, bottleneck, out_ch, 1 if index == 0 else 2, cfg)
            self.add_sublayer(name, stage)
            in_ch, bottleneck, out_ch = out_ch, bottleneck * 2, out_ch * 2
        self.out_channels = in_ch

    def forward(self, x):
        return self.res4(self.res3(self.res2(self.stem(x))))


class RPNHead(nn.Layer):
    """3x3 conv + ReLU, then 1x1 convs for A objectness logits and A*4 box deltas per cell."""

    def __init__(self, in_channels, cfg: FRCNNVGConfig):
        super().__init__()
        hidden = in_channels if cfg.rpn_hidden_channels == -1 else cfg.rpn_hidden_channels
        self.conv = nn.Conv2D(in_channels, hidden, 3, padding=1)
        self.objectness_logits = nn.Conv2D(hidden, cfg.num_anchors, 1)
        self.anchor_deltas = nn.Conv2D(hidden, cfg.num_anchors * 4, 1)

    def forward(self, x):
        t = F.relu(self.conv(x))
        return self.objectness_logits(t), self.anchor_deltas(t)  # [B, A, H, W], [B, A*4, H, W]


class ProposalGenerator(nn.Layer):
    """Parameters under ``proposal_generator.rpn_head``; the anchor table is derived from the
    config (the PyTorch checkpoint's ``anchor_generator.cell_anchors.0`` is that same table)."""

    def __init__(self, in_channels, cfg: FRCNNVGConfig):
        super().__init__()
        self.rpn_head = RPNHead(in_channels, cfg)
        self.cell_anchors = cell_anchors(cfg.anchor_sizes, cfg.anchor_aspect_ratios)


class FastRCNNOutputLayers(nn.Layer):
    """Class scores (K + 1, background last), per-class box deltas, and the attribute branch
    (embedding of the arg-max class over all K + 1 scores, concat, fc, ReLU, A + 1 scores)."""

    def __init__(self, input_size, cfg: FRCNNVGConfig):
        super().__init__()
        self.cls_score = nn.Linear(input_size, cfg.num_classes + 1)
        self.bbox_pred = nn.Linear(input_size, (1 if cfg.cls_agnostic_bbox_reg else cfg.num_classes) * 4)
        self.use_attr = cfg.attr
        if cfg.attr:
            self.cls_embedding = nn.Embedding(cfg.num_classes + 1, input_size // 8)
            self.fc_attr = nn.Linear(input_size + input_size // 8, input_size // 4)
            self.attr_score = nn.Linear(input_size // 4, cfg.num_attrs + 1)

    def forward(self, features):
        scores = self.cls_score(features)  # [R, K+1]
        deltas = self.bbox_pred(features)  # [R, K*4]
        if not self.use_attr:
            return scores, None, deltas
        embedded = self.cls_embedding(paddle.argmax(scores, axis=-1))
        hidden = F.relu(self.fc_attr(paddle.concat([features, embedded], axis=-1)))
        return scores, self.attr_score(hidden), deltas


class Res5ROIHeads(nn.Layer):
    """RoIPool on res4, res5 (VG variant: stride 1, dilation 2), mean over the grid, predictor."""

    def __init__(self, in_channels, cfg: FRCNNVGConfig):
        super().__init__()
        out_ch = cfg.roi_feature_dim
        bottleneck = cfg.num_groups * cfg.width_per_group * 8
        dilation, stride = (1, 2) if cfg.res5halve else (2, 1)
        self.res5 = make_stage(3, in_channels, bottleneck, out_ch, stride, cfg, dilation=dilation)
        self.box_predictor = FastRCNNOutputLayers(out_ch, cfg)
        self.resolution = cfg.pooler_resolution

    def pool(self, res4, boxes):
        """RoIPool: res4 [B, C, H, W], boxes list (per image) of [Ri, 4] resized-image pixels ->
        [sum Ri, C, S, S]."""
        counts = [len(b) for b in boxes]
        flat = np.concatenate([np.asarray(b, np.float32).reshape(-1, 4) for b in boxes])
        return paddle.vision.ops.roi_pool(res4, paddle.to_tensor(flat), paddle.to_tensor(counts, dtype="int32"),
                                          self.resolution, spatial_scale=1.0 / FEATURE_STRIDE)

    def forward(self, res4, boxes, chunk=None):
        """-> features [R, D], class logits [R, K+1], attribute logits [R, A+1] or None,
        box deltas [R, K*4]; ``chunk`` RoIs at a time through res5 (same result, less memory)."""
        outputs = []
        total = sum(len(b) for b in boxes)  # > 0
        chunk = chunk or total
        for start in range(0, total, chunk):
            pooled = self.pool(res4, _slice_boxes(boxes, start, start + chunk))
            features = self.res5(pooled).mean(axis=[2, 3])  # [r, D]
            outputs.append((features, *self.box_predictor(features)))
        if len(outputs) == 1:
            return outputs[0]
        return tuple(None if parts[0] is None else paddle.concat(list(parts)) for parts in zip(*outputs))


def _slice_boxes(boxes, start, stop):
    """Rows start..stop of the boxes concatenated over images, kept per image."""
    out, offset = [], 0
    for b in boxes:
        lo, hi = max(start - offset, 0), min(stop - offset, len(b))
        out.append(b[lo:hi] if hi > lo else np.zeros((0, 4), np.float32))
        offset += len(b)
    return out


# ----------------------------------------------------------------------------------------------
# Box arithmetic (numpy float32, as the public code computes it in torch float32)


def _linear_taps(size_in, size_out):
    """Source rows (i0, i1) and weights (l0, l1) of a bilinear resize, align_corners=False.

    As torch's CPU kernel computes them: the source coordinate scale * (i + 0.5) - 0.5 in one
    rounding (a fused multiply-add; Paddle's interpolate rounds twice, which moves pixels by up
    to 6e-4), clamped at 0; the upper tap clamped to the last row."""
    scale = np.float32(size_in) / np.float32(size_out)
    src = (np.float64(scale) * (np.arange(size_out, dtype=np.float64) + 0.5) - 0.5).astype(np.float32)
    src = np.maximum(src, np.float32(0))
    i0 = np.minimum(np.floor(src).astype(np.int64), size_in - 1)
    l1 = np.clip(src - i0.astype(np.float32), np.float32(0), np.float32(1))
    return i0, np.minimum(i0 + 1, size_in - 1), np.float32(1) - l1, l1


def bilinear_resize(x, new_h, new_w):
    """x [C, H, W] float32 -> [C, new_h, new_w]: bilinear, no antialias, along W then H."""
    c0, c1, cw0, cw1 = _linear_taps(x.shape[2], new_w)
    r0, r1, rw0, rw1 = _linear_taps(x.shape[1], new_h)
    t = paddle.to_tensor
    x = paddle.index_select(x, t(c0), axis=2) * t(cw0) + paddle.index_select(x, t(c1), axis=2) * t(cw1)
    return (paddle.index_select(x, t(r0), axis=1) * t(rw0[:, None])
            + paddle.index_select(x, t(r1), axis=1) * t(rw1[:, None]))


def cell_anchors(sizes, aspect_ratios):
    """[len(sizes) * len(ratios), 4] anchors centred on 0, size-major (not rounded)."""
    rows = []
    for size in sizes:
        area = float(size) ** 2.0
        for ratio in aspect_ratios:
            w = math.sqrt(area / ratio)
            h = ratio * w
            rows.append([-w / 2.0, -h / 2.0, w / 2.0, h / 2.0])
    return np.asarray(rows, np.float32)


def grid_anchors(base, height, width, stride, offset):
    """All anchors of a [height, width] map, ordered (y, x, anchor) -> [H*W*A, 4]."""
    shift_x = np.arange(offset * stride, width * stride, step=stride, dtype=np.float32)[:width]
    shift_y = np.arange(offset * stride, height * stride, step=stride, dtype=np.float32)[:height]
    sy, sx = np.meshgrid(shift_y, shift_x, indexing="ij")
    shifts = np.stack([sx.ravel(), sy.ravel(), sx.ravel(), sy.ravel()], axis=1)
    return (shifts[:, None, :] + base[None, :, :]).reshape(-1, 4)


def apply_deltas(deltas, boxes, weights):
    """Decode deltas [N, k*4] (dx, dy, dw, dh per box) against boxes [N, 4] -> [N, k*4]."""
    boxes = boxes.astype(np.float32)
    widths = boxes[:, 2] - boxes[:, 0]
    heights = boxes[:, 3] - boxes[:, 1]
    ctr_x = boxes[:, 0] + np.float32(0.5) * widths
    ctr_y = boxes[:, 1] + np.float32(0.5) * heights
    wx, wy, ww, wh = (np.float32(w) for w in weights)
    clamp = np.float32(BOX_SCALE_CLAMP)
    dx, dy = deltas[:, 0::4] / wx, deltas[:, 1::4] / wy
    dw, dh = np.minimum(deltas[:, 2::4] / ww, clamp), np.minimum(deltas[:, 3::4] / wh, clamp)
    pred_ctr_x = dx * widths[:, None] + ctr_x[:, None]
    pred_ctr_y = dy * heights[:, None] + ctr_y[:, None]
    pred_w = np.exp(dw) * widths[:, None]
    pred_h = np.exp(dh) * heights[:, None]
    out = np.empty_like(deltas, dtype=np.float32)
    half = np.float32(0.5)
    out[:, 0::4] = pred_ctr_x - half * pred_w
    out[:, 1::4] = pred_ctr_y - half * pred_h
    out[:, 2::4] = pred_ctr_x + half * pred_w
    out[:, 3::4] = pred_ctr_y + half * pred_h
    return out


def clip_boxes(boxes, height, width):
    """Clamp x to [0, width] and y to [0, height] (in place on a copy)."""
    boxes = boxes.copy()
    if not np.isfinite(boxes).all():
        raise FloatingPointError("frcnn_vg: non-finite box coordinates (weights or input broken?)")
    boxes[:, 0::2] = np.clip(boxes[:, 0::2], 0, np.float32(width))
    boxes[:, 1::2] = np.clip(boxes[:, 1::2], 0, np.float32(height))
    return boxes


def nms(boxes, scores, threshold, limit=None):
    """Greedy NMS as torchvision's: visit by descending score, suppress later boxes whose IoU
    (no +1) is > threshold. Returns the kept indices in score order, stopping after ``limit``
    (the first ``limit`` kept boxes do not depend on the rest)."""
    if limit is not None and limit <= 0:
        return np.zeros(0, dtype=np.int64)
    order = np.argsort(-scores, kind="stable")
    x1, y1, x2, y2 = (boxes[:, i] for i in range(4))
    areas = (x2 - x1) * (y2 - y1)
    suppressed = np.zeros(len(boxes), dtype=bool)
    keep = []
    for pos, i in enumerate(order):
        if suppressed[i]:
            continue
        keep.append(i)
        if limit is not None and len(keep) >= limit:
            break
        rest = order[pos + 1:]
        rest = rest[~suppressed[rest]]
        if not len(rest):
            break
        w = np.maximum(np.float32(0), np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]))
        h = np.maximum(np.float32(0), np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]))
        inter = w * h
        with np.errstate(invalid="ignore", divide="ignore"):  # two empty boxes: 0/0 = NaN, kept (as torch)
            iou = inter / (areas[i] + areas[rest] - inter)
        suppressed[rest[iou.astype(np.float64) > threshold]] = True  # float IoU vs double threshold
    return np.asarray(keep, dtype=np.int64)


def softmax(logits):
    """Row softmax in float32, as the public code computes it."""
    logits = np.asarray(logits, np.float32)
    if not logits.size:
        return logits.copy()
    return F.softmax(paddle.to_tensor(logits), axis=-1).numpy()


# ----------------------------------------------------------------------------------------------
# The detector


class FRCNNVG(nn.Layer):
    """Faster R-CNN C4 with Visual Genome heads: ``backbone``, ``proposal_generator``,
    ``roi_heads``. Build with ``from_config`` or ``load_frcnn_vg``; run with ``extract``."""

    def __init__(self, cfg: FRCNNVGConfig = None):
        super().__init__()
        self.cfg = cfg or FRCNNVGConfig()
        self.backbone = ResNetC4(self.cfg)
        self.proposal_generator = ProposalGenerator(self.backbone.out_channels, self.cfg)
        self.roi_heads = Res5ROIHeads(self.backbone.out_channels, self.cfg)
        self.roi_chunk = 100  # RoIs per res5 pass: bounds memory at full width (~1 GB per 100)
        self.eval()

    @classmethod
    def from_config(cls, cfg=None):
        """``cfg``: an FRCNNVGConfig, a dict in the public ``config.yaml`` schema, a path to such
        a .yaml/.json, or None for the full-size defaults."""
        if cfg is None or isinstance(cfg, FRCNNVGConfig):
            return cls(cfg)
        if isinstance(cfg, dict):
            return cls(FRCNNVGConfig.from_yaml_dict(cfg))
        return cls(read_config(cfg))

    # ---------------------------------------------------------------- preprocessing

    def resized_size(self, height, width):
        """(new_h, new_w) as the public ResizeShortestEdge computes them (int(x + 0.5))."""
        size, max_size = self.cfg.min_size_test, self.cfg.max_size_test
        scale = size * 1.0 / min(height, width)
        new_h, new_w = (size, scale * width) if height < width else (scale * height, size)
        if max(new_h, new_w) > max_size:
            scale = max_size * 1.0 / max(new_h, new_w)
            new_h, new_w = new_h * scale, new_w * scale
        return int(new_h + 0.5), int(new_w + 0.5)

    def preprocess(self, images):
        """list of HxWx3 uint8 RGB arrays -> (batch [B, 3, Hmax, Wmax] float32 tensor,
        sizes int64 [B, 2] resized (h, w), scales_yx float32 [B, 2] = original / resized)."""
        mean = paddle.to_tensor(np.asarray(self.cfg.pixel_mean, np.float32).reshape(3, 1, 1))
        std = paddle.to_tensor(np.asarray(self.cfg.pixel_std, np.float32).reshape(3, 1, 1))
        resized, raw = [], []
        for index, image in enumerate(images):
            image = np.asarray(image)
            if image.ndim != 3 or image.shape[2] != 3 or image.shape[0] < 1 or image.shape[1] < 1:
                raise DataError(f"image {index}: expected an HxWx3 RGB array, got shape {image.shape}")
            if image.dtype != np.uint8:
                raise DataError(f"image {index}: expected uint8 pixels (0-255), got {image.dtype}")
            if self.cfg.input_format == "RGB":  # the public loader hands the net BGR only in this case
                image = image[:, :, ::-1]
            h, w = image.shape[:2]
            new_h, new_w = self.resized_size(h, w)
            x = paddle.to_tensor(np.ascontiguousarray(image.transpose(2, 0, 1)), dtype="float32")
            resized.append((bilinear_resize(x, new_h, new_w) - mean) / std)
            raw.append((h, w))
        sizes = np.asarray([r.shape[1:] for r in resized], np.int64)
        max_h, max_w = sizes.max(axis=0)
        batch = paddle.stack([
            F.pad(r, [0, int(max_w - r.shape[2]), 0, int(max_h - r.shape[1])], value=self.cfg.pad_value)
            if (r.shape[1], r.shape[2]) != (max_h, max_w) else r
            for r in resized
        ])
        scales_yx = np.asarray(raw, np.float32) / sizes.astype(np.float32)
        return batch, sizes, scales_yx

    # ---------------------------------------------------------------- stages

    def proposals(self, res4, sizes):
        """RPN: res4 [B, C, H, W], sizes [B, 2] -> per image (boxes [<=post_topk, 4] resized-image
        pixels, logits [<=post_topk]) sorted by logit."""
        cfg = self.cfg
        logits, deltas = self.proposal_generator.rpn_head(res4)
        b, a, h, w = logits.shape
        logits = logits.transpose([0, 2, 3, 1]).reshape([b, -1]).numpy()  # (y, x, anchor) order
        deltas = deltas.reshape([b, a, 4, h, w]).transpose([0, 3, 4, 1, 2]).reshape([b, -1, 4]).numpy()
        anchors = grid_anchors(self.proposal_generator.cell_anchors, h, w, FEATURE_STRIDE, cfg.anchor_offset)
        results = []
        for i in range(b):
            top = np.argsort(-logits[i], kind="stable")[: min(cfg.pre_nms_topk_test, logits.shape[1])]
            boxes = apply_deltas(deltas[i][top], anchors[top], cfg.rpn_bbox_reg_weights)
            boxes = clip_boxes(boxes, *sizes[i])
            scores = logits[i][top]
            widths, heights = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
            nonempty = (widths > cfg.rpn_min_size) & (heights > cfg.rpn_min_size)
            boxes, scores = boxes[nonempty], scores[nonempty]
            keep = nms(boxes, scores, cfg.rpn_nms_thresh, cfg.post_nms_topk_test)
            results.append((boxes[keep], scores[keep]))
        return results

    def box_head(self, res4, boxes):
        """res4 and per-image boxes (resized-image pixels) -> dict of numpy arrays over all boxes:
        ``features`` [R, D], ``obj_logits`` [R, K+1], ``attr_logits`` [R, A+1] (if the config has
        attributes), ``box_deltas`` [R, K*4]."""
        cfg = self.cfg
        if sum(len(b) for b in boxes) == 0:
            out = {"features": np.zeros((0, cfg.roi_feature_dim), np.float32),
                   "obj_logits": np.zeros((0, cfg.num_classes + 1), np.float32),
                   "box_deltas": np.zeros((0, 4 if cfg.cls_agnostic_bbox_reg else cfg.num_classes * 4), np.float32)}
            if cfg.attr:
                out["attr_logits"] = np.zeros((0, cfg.num_attrs + 1), np.float32)
            return out
        features, obj, attr, deltas = self.roi_heads(res4, boxes, chunk=self.roi_chunk)
        out = {"features": features.numpy(), "obj_logits": obj.numpy(), "box_deltas": deltas.numpy()}
        if attr is not None:
            out["attr_logits"] = attr.numpy()
        return out

    def select(self, proposals, head, size, max_boxes):
        """The public ``do_nms`` with its retries, for one image: per proposal its best
        non-background class and that class's clipped box, class-agnostic NMS at each threshold
        of ``nms_thresh_test`` until at least min(min_detections, max_boxes) survive, at most
        ``max_boxes`` kept. Returns (indices into the proposals, boxes [N, 4] resized pixels,
        classes [N], class probabilities [N], the threshold used)."""
        cfg = self.cfg
        probs = softmax(head["obj_logits"])[:, :-1]  # background (last) out
        classes = probs.argmax(axis=1) if len(probs) else np.zeros(0, np.int64)
        scores = probs[np.arange(len(probs)), classes]
        deltas = head["box_deltas"]
        if not cfg.cls_agnostic_bbox_reg:
            deltas = deltas.reshape(len(deltas), cfg.num_classes, 4)[np.arange(len(deltas)), classes]
        boxes = apply_deltas(deltas.reshape(-1, 4), np.asarray(proposals, np.float32).reshape(-1, 4),
                             cfg.bbox_reg_weights)
        boxes = clip_boxes(boxes, *size)
        least = min(cfg.min_detections, max_boxes)
        for threshold in cfg.nms_thresh_test:
            keep = nms(boxes, scores, threshold, max_boxes)
            if len(keep) >= least:
                break
        return keep, boxes[keep], classes[keep], scores[keep], threshold

    @paddle.no_grad()
    def extract(self, images, max_boxes=None, trace=None):
        """Detect regions in images.

        Args:
            images: list of HxWx3 uint8 RGB numpy arrays (any sizes; images of different sizes
                are padded to a common size as the public code does, which slightly changes
                features near the padded edge, so batch frames of one video together).
            max_boxes: boxes per image (default ``max_detections``, 36); ``min_detections`` is
                capped at it.
            trace: a dict to receive the intermediates (``pre_images``, ``sizes``, ``scales_yx``,
                ``res4``, ``proposals``: per image (boxes, logits)), for checks.
        Returns:
            one dict per image: ``boxes`` float32 [N, 4] x1, y1, x2, y2 in original-image pixels;
            ``features`` float32 [N, D] (D = 2048 at full width); ``cls_prob`` float32 [N, K+1]
            softmax over the classes, background LAST; ``num_boxes`` N; ``image_hw`` (h, w);
            ``obj_ids`` int64 [N] (best non-background class), ``obj_probs`` [N]; ``attr_ids``,
            ``attr_probs`` [N] (if the config has attributes); ``normalized_boxes`` [N, 4] (by the
            image size); ``nms_thresh``: the threshold that gave the boxes. Boxes are in score
            order. N < max_boxes only where every threshold of ``nms_thresh_test`` left fewer
            (the public code crashes there).
        """
        if not len(images):
            return []
        max_boxes = int(max_boxes or self.cfg.max_detections)
        batch, sizes, scales_yx = self.preprocess(images)
        res4 = self.backbone(batch)
        proposals = self.proposals(res4, sizes)
        head = self.box_head(res4, [p[0] for p in proposals])
        if trace is not None:
            trace.update(pre_images=batch.numpy(), sizes=sizes, scales_yx=scales_yx, res4=res4.numpy(),
                         proposals=proposals)
        results, start = [], 0
        for i, (boxes_i, _) in enumerate(proposals):
            part = {k: v[start:start + len(boxes_i)] for k, v in head.items()}
            start += len(boxes_i)
            results.append(self._finish(boxes_i, part, sizes[i], scales_yx[i], images[i].shape[:2], max_boxes))
        return results

    def _finish(self, proposals, head, size, scale_yx, image_hw, max_boxes):
        """One image's selected detections in original-image pixels."""
        keep, boxes, classes, scores, threshold = self.select(proposals, head, size, max_boxes)
        boxes = boxes * np.asarray([scale_yx[1], scale_yx[0]] * 2, np.float32)
        original = size.astype(np.float32) * scale_yx  # the public code's (h, w): resized size x scale
        out = {
            "boxes": boxes,
            "features": head["features"][keep],
            "cls_prob": softmax(head["obj_logits"][keep]),
            "num_boxes": int(len(keep)),
            "image_hw": (int(image_hw[0]), int(image_hw[1])),
            "obj_ids": classes.astype(np.int64),
            "obj_probs": scores.astype(np.float32),
            "normalized_boxes": boxes / np.asarray([original[1], original[0]] * 2, np.float32),
            "nms_thresh": float(threshold),
        }
        if "attr_logits" in head:
            attr = softmax(head["attr_logits"][keep][:, :-1])
            out["attr_ids"] = attr.argmax(axis=1).astype(np.int64)
            out["attr_probs"] = attr[np.arange(len(attr)), out["attr_ids"]]
        return out


# ----------------------------------------------------------------------------------------------
# Weights


def expected_state(model):
    """{name: shape} of the model's parameters and buffers."""
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def check_state(expected, state, source):
    """Raise WeightsError (one line, naming a key and both shapes) unless ``state`` has exactly
    the expected keys and shapes."""
    for key, shape in expected.items():
        if key in state and tuple(np.shape(state[key])) != shape:
            raise WeightsError(f"{source}: '{key}' has shape {list(np.shape(state[key]))}, the config expects "
                               f"{list(shape)} (a checkpoint of another width or model?)")
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing '{missing[0]}' (expected {list(expected[missing[0]])})"
                         + (f" and {len(missing) - 1} more" if len(missing) > 1 else ""))
        if unexpected:
            parts.append(f"unexpected '{unexpected[0]}' {list(np.shape(state[unexpected[0]]))}"
                         + (f" and {len(unexpected) - 1} more" if len(unexpected) > 1 else ""))
        raise WeightsError(f"{source}: does not fit the VG Faster R-CNN of this config: {'; '.join(parts)} "
                           "(a checkpoint of another depth or another model?)")


def config_path_for(weights_path):
    """The config file the converter writes beside OUT.pdparams: OUT.yaml."""
    return os.path.splitext(os.fspath(weights_path))[0] + ".yaml"


# Settings the detector was trained with that its tensors do not reveal: a config that
# changes one of them no longer describes these weights. (Input sizes, thresholds and
# detection counts are choices made at inference, free to change.)
TRAINED_SETTINGS = ("pixel_mean", "pixel_std", "input_format", "caffe_maxpool", "stride_in_1x1", "anchor_sizes",
                    "anchor_aspect_ratios", "anchor_offset", "rpn_bbox_reg_weights", "pooler_resolution", "res5halve",
                    "bbox_reg_weights")


def trained_settings(cfg):
    """{setting: value} of ``TRAINED_SETTINGS`` in ``cfg`` (an FRCNNVGConfig)."""
    return {name: getattr(cfg, name) for name in TRAINED_SETTINGS}


def load_frcnn_vg(weights_path, config_path=None):
    """A converted ``.pdparams`` (``tools/convert_frcnn_vg.py``) and its config (default: the
    ``.yaml`` beside it, or when there is none the config recorded in the file) -> FRCNNVG in eval mode.
    WeightsError / ConfigError on bad input, and WeightsError when the config contradicts
    a ``TRAINED_SETTINGS`` value the converter recorded in the file."""
    from ..weights import read_state_dict
    from . import recorded

    weights_path = os.fspath(weights_path)
    if not os.path.isfile(weights_path):  # named before its config, which is looked up beside it
        raise WeightsError(f"detector weights not found: {weights_path} (convert them with tools/convert_frcnn_vg.py)")
    state = read_state_dict(weights_path)
    settings = recorded.take(state, weights_path, "frcnn_vg")
    beside = config_path is None
    config_path = config_path or config_path_for(weights_path)
    if settings is not None and beside and not os.path.isfile(config_path):
        cfg = FRCNNVGConfig.from_yaml_dict(settings, f"{weights_path} (recorded config)")
    else:
        cfg = read_config(config_path)
    if settings is not None:
        recorded_cfg = FRCNNVGConfig.from_yaml_dict(settings, f"{weights_path} (recorded config)")
        recorded.check(trained_settings(recorded_cfg), trained_settings(cfg), weights_path, config_path)
    model = FRCNNVG.from_config(cfg)
    check_state(expected_state(model), state, weights_path)
    model.set_state_dict({k: paddle.to_tensor(v) for k, v in state.items()})
    model.eval()
    return model


# ----------------------------------------------------------------------------------------------
# ActBERT's region inputs


def to_actbert_regions(detection):
    """One image's ``extract`` output -> ActBERT's region fields (``specs/data_formats.md``):

    - ``image_feature`` float32 [N, D];
    - ``image_target`` float32 [N, K+1]: the class distribution with the background FIRST, as in
      the released ActBERT/ViLBERT features (bottom-up-attention's Caffe model scores background
      at index 0, then the 1600 Visual Genome classes in the same order as here); this port (like
      the public PyTorch one) scores it last, so the last column moves to the front;
    - ``image_location`` float32 [N, 4] x1, y1, x2, y2 pixels (the ``.npy`` field);
    - ``image_loc`` float32 [N, 5] x1/w, y1/h, x2/w, y2/h, area/(w h) (what the model reads);
    - ``n_boxes``, ``image_h``, ``image_w``.
    """
    from ...utils.boxes import normalised_locations

    h, w = detection["image_hw"]
    prob = np.asarray(detection["cls_prob"], np.float32)
    boxes = np.asarray(detection["boxes"], np.float32).reshape(-1, 4)
    return {
        "image_feature": np.asarray(detection["features"], np.float32),
        "image_target": np.concatenate([prob[:, -1:], prob[:, :-1]], axis=1),
        "image_location": boxes,
        "image_loc": normalised_locations(boxes, h, w),
        "n_boxes": int(detection["num_boxes"]),
        "image_h": int(h),
        "image_w": int(w),
    }


# ----------------------------------------------------------------------------------------------
# Benchmark hook


def count_flops(model, image_hw=(480, 640)):
    """FLOPs (2 x multiply-adds of convolutions and linear layers) for one image of
    ``image_hw``: the backbone and RPN on the resized image, plus ``post_nms_topk_test``
    (300) proposals through res5 and the predictor, as many as a trained RPN yields. Returns
    {"backbone_rpn": ..., "per_roi": ..., "rois": ..., "total": ...} in FLOPs."""
    macs = [0]

    def hook(layer, inputs, output):
        conv = isinstance(layer, nn.Conv2D)  # Conv2D weight [out, in/groups, kh, kw]; Linear [in, out]
        per_output = int(np.prod(layer.weight.shape[1:])) if conv else int(layer.weight.shape[0])
        macs[0] += int(np.prod(output.shape)) * per_output

    handles = [m.register_forward_post_hook(hook) for m in model.sublayers() if isinstance(m, (nn.Conv2D, nn.Linear))]
    try:
        with paddle.no_grad():
            batch, _, _ = model.preprocess([np.zeros((*image_hw, 3), np.uint8)])
            res4 = model.backbone(batch)
            model.proposal_generator.rpn_head(res4)
            backbone_rpn, macs[0] = macs[0], 0
            model.roi_heads(res4, [np.asarray([[0, 0, 64, 64]], np.float32)])
            per_roi = macs[0]
    finally:
        for h in handles:
            h.remove()
    rois = model.cfg.post_nms_topk_test
    return {"backbone_rpn": 2 * backbone_rpn, "per_roi": 2 * per_roi, "rois": rois,
            "total": 2 * (backbone_rpn + rois * per_roi)}


def bench_detector(n_images=2, image_hw=(480, 640), batch_size=1, config=None, warmup=0, seed=0):
    """Detector throughput at full width (or ``config``) with random weights (``random_init``:
    the RPN yields its full 300 proposals, as a trained one does) on Paddle's current device.
    Times ``n_images`` images in batches of ``batch_size`` after ``warmup`` untimed batches
    (on a CPU one image takes minutes, so the first call's overhead does not matter).
    Returns a dict: images, seconds, images_per_s, FLOPs per image (``gflops_per_image``, and
    the split ``gflops_backbone_rpn`` / ``gflops_per_roi`` x ``rois``), ``boxes_per_image``,
    ``proposals_per_image``, sizes and device."""
    paddle.seed(seed)
    model = random_init(FRCNNVG.from_config(config), seed)
    rng = np.random.default_rng(seed)
    images = [rng.integers(0, 256, (*image_hw, 3), dtype=np.uint8) for _ in range(batch_size)]
    flops = count_flops(model, image_hw)
    for _ in range(warmup):
        model.extract(images)
    done, seconds, trace = 0, 0.0, {}
    while done < n_images:
        start = time.perf_counter()
        dets = model.extract(images, trace=trace)
        seconds += time.perf_counter() - start
        done += batch_size
    return {
        "images": done, "seconds": seconds, "images_per_s": done / seconds, "batch_size": batch_size,
        "image_hw": tuple(image_hw), "resized_hw": model.resized_size(*image_hw),
        "gflops_per_image": flops["total"] / 1e9, "gflops_backbone_rpn": flops["backbone_rpn"] / 1e9,
        "gflops_per_roi": flops["per_roi"] / 1e9, "rois": flops["rois"],
        "proposals_per_image": len(trace["proposals"][0][0]), "boxes_per_image": dets[0]["num_boxes"],
        "feature_dim": model.cfg.roi_feature_dim, "device": paddle.device.get_device(),
    }


def random_init(model, seed=0):
    """Seeded random weights that keep activations of any depth in range (for tests and
    benchmarks): He-normal convs, unit BatchNorm statistics, residual branches scaled by 0.2,
    zero RPN deltas, N(0, 0.01) linear layers. Returns ``model``."""
    rng = np.random.default_rng(seed)
    for name, param in model.named_parameters():
        shape = tuple(param.shape)
        if name.endswith(".norm.weight"):
            value = np.full(shape, 0.2 if ".conv3." in name else 1.0)
        elif name.endswith("._variance"):
            value = np.ones(shape)
        elif name.endswith(".bias") or name.endswith("._mean"):
            value = np.zeros(shape)
        elif len(shape) == 4:
            # RPN deltas zero: the proposals are the anchors, 300 of them survive NMS as with a
            # trained RPN (random deltas collapse them onto a few image-sized boxes)
            std = math.sqrt(2.0 / np.prod(shape[1:]))
            value = np.zeros(shape) if "anchor_deltas" in name else rng.normal(0.0, std, shape)
        else:
            value = rng.normal(0.0, 0.01 if "cls_embedding" not in name else 1.0, shape)
        param.set_value(value.astype(np.float32))
    return model


def save_frcnn_vg(model, path):
    """Write ``model``'s weights to PATH (.pdparams) and its config beside it (.yaml), the pair
    ``load_frcnn_vg(PATH)`` reads (as ``tools/convert_frcnn_vg.py`` writes them)."""
    import yaml

    from . import recorded

    with atomic_path(path) as tmp:
        paddle.save(recorded.record(dict(model.state_dict()), "frcnn_vg", model.cfg.to_yaml_dict()), tmp)
    with atomic_file(config_path_for(path), "w", encoding="utf-8") as f:
        yaml.safe_dump(model.cfg.to_yaml_dict(), f, sort_keys=False)
