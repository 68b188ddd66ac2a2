"""3D ResNets for action features: a Paddle port of kenshohara's ``3D-ResNets-PyTorch`` models.

The architecture follows ``models/resnet.py`` of that repository, parameter for parameter,
so its checkpoints (e.g. the Kinetics-700 ``r3d50_K_200ep.pth``: depth 50, 700 classes,
2048-d pooled features) convert by renaming alone (``tools/convert_resnet3d.py``):

- stem: Conv3d (``conv1_t_size`` x 7 x 7, stride (``conv1_t_stride``, 2, 2), padding
  (t//2, 3, 3), no bias), BatchNorm3d, ReLU, then MaxPool3d(3, 2, 1) unless ``no_max_pool``;
- four stages of BasicBlocks (depth 10/18/34) or Bottlenecks (50/101/152/200) with
  ``block_inplanes`` (64, 128, 256, 512) x ``widen_factor`` planes, stride 2 from the
  second stage on; a Bottleneck strides on its 3x3x3 conv;
- a shortcut where the shape changes: type 'B' a 1x1x1 strided conv + BatchNorm (the first
  block of every stage whose input width differs, layer1 included for Bottlenecks), type 'A'
  a parameter-free strided subsampling padded with zero channels;
- global average pool over T, H, W, then ``fc`` to ``n_classes``.

Input: float32 [N, 3, T, H, W] clips (the public models: 16 frames of 112 x 112, RGB,
``(x/255 - mean) / std`` with ``KINETICS_MEAN`` / ``KINETICS_STD``; see
``preprocess_frames``). ``forward`` returns (pooled features [N, 2048 x widen], logits
[N, n_classes]).
"""

import numpy as np
import paddle
import paddle.nn as nn
import paddle.nn.functional as F

from ...utils.errors import ConfigError

# Kinetics statistics of the repository's loader (value_scale 1: pixels / 255 first).
KINETICS_MEAN = (0.4345, 0.4051, 0.3775)
KINETICS_STD = (0.2768, 0.2713, 0.2737)
BLOCK_INPLANES = (64, 128, 256, 512)
# depth -> (block kind, blocks per stage)
DEPTHS = {
    10: ("basic", (1, 1, 1, 1)),
    18: ("basic", (2, 2, 2, 2)),
    34: ("basic", (3, 4, 6, 3)),
    50: ("bottleneck", (3, 4, 6, 3)),
    101: ("bottleneck", (3, 4, 23, 3)),
    152: ("bottleneck", (3, 8, 36, 3)),
    200: ("bottleneck", (3, 24, 36, 3)),
}
EXPANSION = {"basic": 1, "bottleneck": 4}


def _conv(cin, cout, kernel, stride=1):
    return nn.Conv3D(cin, cout, kernel, stride=stride, padding=kernel // 2, bias_attr=False)


class BasicBlock(nn.Layer):
    """Two 3x3x3 convs; the first one strides."""

    def __init__(self, in_planes, planes, stride=1, downsample=None):
        super().__init__()
        self.conv1 = _conv(in_planes, planes, 3, stride)
        self.bn1 = nn.BatchNorm3D(planes)
        self.conv2 = _conv(planes, planes, 3)
        self.bn2 = nn.BatchNorm3D(planes)
        self.downsample = downsample

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + (x if self.downsample is None else self.downsample(x)))


class Bottleneck(nn.Layer):
    """1x1x1 reduce, 3x3x3 (strided), 1x1x1 expand (x4)."""

    def __init__(self, in_planes, planes, stride=1, downsample=None):
        super().__init__()
        self.conv1 = _conv(in_planes, planes, 1)
        self.bn1 = nn.BatchNorm3D(planes)
        self.conv2 = _conv(planes, planes, 3, stride)
        self.bn2 = nn.BatchNorm3D(planes)
        self.conv3 = _conv(planes, planes * 4, 1)
        self.bn3 = nn.BatchNorm3D(planes * 4)
        self.downsample = downsample

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return F.relu(out + (x if self.downsample is None else self.downsample(x)))


class ZeroPadShortcut(nn.Layer):
    """Shortcut 'A': keep every ``stride``-th position, append zero channels up to ``planes``."""

    def __init__(self, planes, stride):
        super().__init__()
        self.planes, self.stride = planes, stride

    def forward(self, x):
        s = self.stride
        out = x[:, :, ::s, ::s, ::s] if s != 1 else x
        n, c, t, h, w = out.shape
        return paddle.concat([out, paddle.zeros([n, self.planes - c, t, h, w], out.dtype)], axis=1)


class ResNet3D(nn.Layer):
    """kenshohara's 3D ResNet (see the module docstring); ``forward`` -> (pooled, logits).

    Args:
        depth: 10, 18, 34, 50, 101, 152 or 200.
        n_classes: classifier outputs (Kinetics-700: 700).
        n_input_channels, conv1_t_size, conv1_t_stride, no_max_pool, shortcut_type,
        widen_factor: as ``generate_model`` of the public code.
    """

    def __init__(self, depth=50, n_classes=700, n_input_channels=3, conv1_t_size=7, conv1_t_stride=1,
                 no_max_pool=False, shortcut_type="B", widen_factor=1.0):
        super().__init__()
        if depth not in DEPTHS:
            raise ConfigError(f"3D ResNet depth must be one of {sorted(DEPTHS)}, got {depth!r}")
        if shortcut_type not in ("A", "B"):
            raise ConfigError(f"shortcut_type must be 'A' or 'B', got {shortcut_type!r}")
        kind, layers = DEPTHS[depth]
        self.depth, self.kind, self.no_max_pool = depth, kind, bool(no_max_pool)
        block = BasicBlock if kind == "basic" else Bottleneck
        planes = [int(p * widen_factor) for p in BLOCK_INPLANES]
        self.in_planes = planes[0]
        self.conv1 = nn.Conv3D(n_input_channels, self.in_planes, (conv1_t_size, 7, 7),
                               stride=(conv1_t_stride, 2, 2), padding=(conv1_t_size // 2, 3, 3), bias_attr=False)
        self.bn1 = nn.BatchNorm3D(self.in_planes)
        self.layer1 = self._stage(block, planes[0], layers[0], shortcut_type, 1)
        self.layer2 = self._stage(block, planes[1], layers[1], shortcut_type, 2)
        self.layer3 = self._stage(block, planes[2], layers[2], shortcut_type, 2)
        self.layer4 = self._stage(block, planes[3], layers[3], shortcut_type, 2)
        self.feature_dim = planes[3] * EXPANSION[kind]
        self.fc = nn.Linear(self.feature_dim, n_classes)
        self.n_classes = n_classes

    def _stage(self, block, planes, blocks, shortcut_type, stride):
        out_planes = planes * EXPANSION[self.kind]
        downsample = None
        if stride != 1 or self.in_planes != out_planes:
            if shortcut_type == "A":
                downsample = ZeroPadShortcut(out_planes, stride)
            else:
                downsample = nn.Sequential(_conv(self.in_planes, out_planes, 1, stride), nn.BatchNorm3D(out_planes))
        layers = [block(self.in_planes, planes, stride, downsample)]
        self.in_planes = out_planes
        layers += [block(out_planes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def stages(self, x):
        """The outputs of layer1..layer4 (list of 4 tensors) for clips ``x`` [N, C, T, H, W]."""
        x = F.relu(self.bn1(self.conv1(x)))
        if not self.no_max_pool:
            x = F.max_pool3d(x, kernel_size=3, stride=2, padding=1)
        outs = []
        for layer in (self.layer1, self.layer2, self.layer3, self.layer4):
            x = layer(x)
            outs.append(x)
        return outs

    def forward(self, x):
        pooled = self.stages(x)[-1].mean(axis=[2, 3, 4])
        return pooled, self.fc(pooled)


def resnet3d_config(state_shapes):
    """Guess ``ResNet3D`` arguments from a converted state dict's shapes {name: shape}.

    Depth from the block kind and the number of blocks per stage, widen from conv1, the
    conv1 temporal size, classes from ``fc``, shortcut 'A' when no stage has a projection.
    Raises ConfigError if the names do not describe a 3D ResNet.
    """
    if "conv1.weight" not in state_shapes or "fc.weight" not in state_shapes:
        raise ConfigError("not a 3D ResNet state dict: needs 'conv1.weight' and 'fc.weight'")
    kind = "bottleneck" if any(k.startswith("layer1.0.conv3.") for k in state_shapes) else "basic"
    counts = []
    for stage in range(1, 5):
        idx = {int(k.split(".")[1]) for k in state_shapes if k.startswith(f"layer{stage}.")}
        counts.append(max(idx) + 1 if idx else 0)
    matches = [d for d, (k, layers) in DEPTHS.items() if k == kind and tuple(counts) == layers]
    if not matches:
        raise ConfigError(f"no 3D ResNet depth has {kind} blocks {counts} per stage")
    conv1 = state_shapes["conv1.weight"]
    fc = state_shapes["fc.weight"]  # Paddle layout [in, out]
    return {
        "depth": matches[0], "n_classes": int(fc[1]), "n_input_channels": int(conv1[1]),
        "conv1_t_size": int(conv1[2]), "widen_factor": conv1[0] / BLOCK_INPLANES[0],
        "shortcut_type": "B" if any(".downsample." in k for k in state_shapes) else "A",
    }


def preprocess_frames(frames, size=112, mean=KINETICS_MEAN, std=KINETICS_STD):
    """uint8 RGB frames [T, H, W, 3] -> float32 [3, T, size, size], as the public inference does.

    Each frame: short side resized to ``size`` (bilinear, the long side ``int(size * long /
    short)`` as torchvision's Resize), centre crop ``size`` x ``size``, /255, minus ``mean``,
    over ``std`` (per RGB channel).
    """
    from PIL import Image

    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"expected uint8 frames [T, H, W, 3], got {frames.dtype} {list(frames.shape)}")
    _, h, w, _ = frames.shape
    if h <= w:
        new_h, new_w = size, int(size * w / h)
    else:
        new_h, new_w = int(size * h / w), size
    top, left = int(round((new_h - size) / 2.0)), int(round((new_w - size) / 2.0))
    out = np.empty((len(frames), size, size, 3), np.float32)
    for i, frame in enumerate(frames):
        img = Image.fromarray(frame)
        if (new_h, new_w) != (h, w):
            img = img.resize((new_w, new_h), Image.BILINEAR)
        out[i] = np.asarray(img, dtype=np.float32)[top:top + size, left:left + size]
    out = (out / 255.0 - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)
    return np.ascontiguousarray(out.transpose(3, 0, 1, 2))


def load_resnet3d(path, **config):
    """A ``ResNet3D`` in eval mode with the weights of ``path`` (a converted ``.pdparams``).

    ``config`` holds ``ResNet3D`` arguments; the ones not given are the settings the
    converter recorded in the file (``recorded``), else read from the file's shapes
    (``resnet3d_config``). Raises WeightsError (one line, naming a key and both shapes or
    values) when the file does not fit: another depth or width, another model, a missing
    or unexpected key, a missing file, or a setting that contradicts the recorded one
    (e.g. ``conv1_t_stride``, which no shape reveals).
    """
    from ...utils.errors import WeightsError
    from ..weights import _assign, match_state, read_state_dict
    from . import recorded

    path = str(path)
    state = read_state_dict(path)
    settings = recorded.take(state, path, "resnet3d") or {}
    recorded.check(settings, config, path, "the action model config")
    config = {**settings, **config}
    try:
        guessed = resnet3d_config({k: v.shape for k, v in state.items()})
    except ConfigError as exc:
        if not config:
            raise WeightsError(f"{path}: {exc} (convert a 3D ResNet .pth with tools/convert_resnet3d.py)") from None
        guessed = {}
    model = ResNet3D(**{**guessed, **config})
    what = f"{path} (for a 3D ResNet-{model.depth}, widen {_widen(model)}, {model.n_classes} classes)"
    arrays, report = match_state(model, state, what, allow_scratch=False)
    if report.unexpected:
        key = report.unexpected[0]
        raise WeightsError(f"{what} does not fit the model: {len(report.unexpected)} unexpected key(s), first "
                           f"'{key}' {list(state[key].shape)} (another depth or model?)")
    _assign(model, arrays)
    model.eval()
    return model


def _widen(model):
    return model.in_planes / (BLOCK_INPLANES[3] * EXPANSION[model.kind])
