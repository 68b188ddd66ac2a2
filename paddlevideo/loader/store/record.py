"""One pretraining clip: its in-memory form, its checks, and its byte layout in the store.

A record value is self-describing and needs no pickle::

    bytes 0..4    magic  b"ABC1"
    bytes 4..8    CRC-32 (little-endian uint32) of every byte from offset 8 to the end
    bytes 8..12   length L of the JSON meta (little-endian uint32)
    bytes 12..    meta: UTF-8 JSON {clip_id, video_id, captions, image_h, image_w,
                  n_boxes, n_actions, arrays: {name: [dtype, shape, offset]}}
    (zero padding to a multiple of 8)
    raw little-endian arrays at the offsets the meta gives

Arrays (N boxes, A actions, k = the store's top-k):
``boxes`` <f4 [N, 4] (x1, y1, x2, y2 pixels), ``image_feature`` <f2 [N, Df],
``target_index`` <u2 [N, k] and ``target_value`` <f2 [N, k] (the k most probable
classes of each box's distribution), ``action_feature`` <f2 [A, Da],
``action_target`` <i4 [A].

The captions sit in the meta, before the arrays, so a negative caption can be read
from the first page of a record without touching its features.
"""

import json
import struct
import zlib
from dataclasses import dataclass, field

import numpy as np

from ...utils.errors import DataError

MAGIC = b"ABC1"
_PREFIX = struct.Struct("<4sII")  # magic, crc32, meta length
# Only plain little-endian numeric dtypes may come out of a record: anything else in
# a meta is corruption or a hostile file.
ALLOWED_DTYPES = {"<f2", "<f4", "<u2", "<i2", "<i4"}
RECORD_DTYPES = {
    "boxes": "<f4",
    "image_feature": "<f2",
    "target_index": "<u2",
    "target_value": "<f2",
    "action_feature": "<f2",
    "action_target": "<i4",
}
# Boxes may poke this many pixels past the image border (detectors round to pixels).
BOX_TOLERANCE = 1.0


@dataclass
class Clip:
    """One clip's features, in the form the pipelines consume.

    Region targets are either dense (``image_target`` [N, C]) or top-k sparse
    (``target_index`` int [N, k] + ``target_value`` float [N, k], ``num_classes`` = C).

    Attributes:
        clip_id, video_id: identifiers (strings).
        captions: list[str], at least one non-empty caption.
        image_h, image_w: frame size in pixels.
        boxes: float32 [N, 4] x1, y1, x2, y2 in pixels.
        image_feature: float16/32 [N, Df].
        action_feature: float16/32 [A, Da]; action_target: int [A] class ids.
    """

    clip_id: str
    captions: list
    image_h: float
    image_w: float
    boxes: np.ndarray
    image_feature: np.ndarray
    action_feature: np.ndarray
    action_target: np.ndarray
    image_target: np.ndarray = None
    target_index: np.ndarray = None
    target_value: np.ndarray = None
    num_classes: int = None
    video_id: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def n_boxes(self):
        return int(self.boxes.shape[0])

    @property
    def n_actions(self):
        return int(self.action_feature.shape[0])

    def dense_target(self):
        """Region class distributions, float32 [N, C] (zeros outside the stored top-k)."""
        if self.image_target is not None:
            return np.asarray(self.image_target, dtype=np.float32)
        dense = np.zeros((self.n_boxes, self.num_classes), dtype=np.float32)
        np.put_along_axis(dense, self.target_index.astype(np.int64), self.target_value.astype(np.float32), axis=1)
        return dense


def top_k(target, k, renormalise=False):
    """The k largest entries of each row of ``target`` [N, C].

    Returns (index uint16 [N, min(k, C)], value float16 [N, min(k, C)]), entries in
    descending order. With ``renormalise`` the kept values are rescaled to sum to the
    row's total; otherwise the mass of the dropped classes is simply lost.
    """
    target = np.asarray(target, dtype=np.float32)
    k = min(k, target.shape[1])
    if k < target.shape[1]:
        part = np.argpartition(-target, k - 1, axis=1)[:, :k]
    else:
        part = np.broadcast_to(np.arange(k), target.shape)
    vals = np.take_along_axis(target, part, axis=1)
    order = np.argsort(-vals, axis=1, kind="stable")
    index, vals = np.take_along_axis(part, order, axis=1), np.take_along_axis(vals, order, axis=1)
    if renormalise:
        kept = vals.sum(axis=1, keepdims=True)
        vals = vals * np.divide(target.sum(axis=1, keepdims=True), kept, out=np.ones_like(kept), where=kept > 0)
    return index.astype(np.uint16), vals.astype(np.float16)


# ---------------------------------------------------------------- validation


def _fail(where, problem):
    raise DataError(f"{where}: {problem}")


def _check_rows(where, name, array, rows, width=None):
    if array.ndim != 2:
        _fail(where, f"{name} must be 2-D, got shape {tuple(array.shape)}")
    if array.shape[0] < rows:
        _fail(where, f"more boxes/actions ({rows}) than {name} rows ({array.shape[0]})")
    if width is not None and array.shape[1] != width:
        _fail(where, f"{name} has size {array.shape[1]}, expected {width} (from the store header)")


def _all_finite(array):
    if array.dtype == np.float16:
        # NumPy's float16 ufuncs are slow; inf/nan are exactly the all-ones exponents.
        return not ((array.view(np.uint16) & 0x7C00) == 0x7C00).any()
    return bool(np.isfinite(array).all())


def _check_finite(where, name, array):
    if not _all_finite(array):
        bad = int(np.argwhere(~np.isfinite(array))[0][0])
        _fail(where, f"{name} has non-finite values (first in row {bad})")


def validate_clip(clip, where, dims=None):
    """Raise DataError naming ``where`` (file + record key) if ``clip`` is unusable.

    ``dims`` maps ``image_feature`` / ``image_target`` / ``action_feature`` to the
    expected sizes (from the store header); ``action_target`` to the number of action
    classes. Missing entries are not checked.
    """
    dims = dims or {}
    if not isinstance(clip.captions, list) or not any(isinstance(c, str) and c.strip() for c in clip.captions):
        _fail(where, f"empty caption list (got {clip.captions!r})")
    h, w = float(clip.image_h), float(clip.image_w)
    if not (np.isfinite(h) and np.isfinite(w) and h > 0 and w > 0):
        _fail(where, f"image size must be positive, got image_h={clip.image_h}, image_w={clip.image_w}")
    n, a = clip.n_boxes, clip.n_actions
    _check_rows(where, "boxes", clip.boxes, n, 4)
    _check_rows(where, "image_feature", clip.image_feature, n, dims.get("image_feature"))
    if clip.image_target is not None:
        _check_rows(where, "image_target", clip.image_target, n, dims.get("image_target"))
        _check_finite(where, "image_target", clip.image_target)
    else:
        _check_rows(where, "target_index", clip.target_index, n)
        _check_rows(where, "target_value", clip.target_value, n)
        if clip.target_index.size and int(clip.target_index.max()) >= clip.num_classes:
            _fail(where, f"target class index {int(clip.target_index.max())} >= {clip.num_classes} classes")
        _check_finite(where, "target_value", clip.target_value)
    _check_rows(where, "action_feature", clip.action_feature, a, dims.get("action_feature"))
    if clip.action_target.shape != (a,):
        _fail(where, f"action_target has shape {tuple(clip.action_target.shape)}, expected ({a},)")
    classes = dims.get("action_target")
    if a and (clip.action_target.min() < 0 or (classes and clip.action_target.max() >= classes)):
        _fail(where, f"action class ids must lie in [0, {classes}), got {clip.action_target.tolist()}")
    for name in ("boxes", "image_feature", "action_feature"):
        _check_finite(where, name, getattr(clip, name))
    _check_boxes(where, clip.boxes, h, w)


def _check_boxes(where, boxes, h, w):
    if not len(boxes):
        return
    x1, y1, x2, y2 = boxes.T.astype(np.float64)
    tol = BOX_TOLERANCE
    bad = (x1 < -tol) | (y1 < -tol) | (x2 > w + tol) | (y2 > h + tol) | (x2 < x1) | (y2 < y1)
    if bad.any():
        i = int(np.argmax(bad))
        _fail(where, f"box {i} {boxes[i].tolist()} lies outside the {w:g}x{h:g} image (x1<=x2<=w, y1<=y2<=h)")


# ---------------------------------------------------------------- encoding


def encode_clip(clip, top_k_classes, renormalise=False):
    """Bytes of ``clip`` in the record layout (features cast to float16, targets top-k)."""
    if clip.image_target is not None:
        index, value = top_k(clip.image_target, top_k_classes, renormalise)
    else:
        index, value = clip.target_index, clip.target_value
    arrays = {
        "boxes": clip.boxes,
        "image_feature": clip.image_feature,
        "target_index": index,
        "target_value": value,
        "action_feature": clip.action_feature,
        "action_target": clip.action_target,
    }
    arrays = {name: np.ascontiguousarray(arr, dtype=RECORD_DTYPES[name]) for name, arr in arrays.items()}
    layout, offset = {}, 0
    for name, arr in arrays.items():
        layout[name] = [RECORD_DTYPES[name], list(arr.shape), offset]
        offset += -(-arr.nbytes // 8) * 8
    meta = {
        "clip_id": str(clip.clip_id),
        "video_id": str(clip.video_id),
        "captions": [str(c) for c in clip.captions],
        "image_h": float(clip.image_h),
        "image_w": float(clip.image_w),
        "n_boxes": clip.n_boxes,
        "n_actions": clip.n_actions,
        "arrays": layout,
    }
    meta_bytes = json.dumps(meta, ensure_ascii=False).encode("utf-8")
    body = bytearray(meta_bytes)
    body += b"\0" * (-(_PREFIX.size + len(body)) % 8)
    for arr in arrays.values():
        body += arr.tobytes()
        body += b"\0" * (-arr.nbytes % 8)
    tail = struct.pack("<I", len(meta_bytes)) + bytes(body)
    return MAGIC + struct.pack("<I", zlib.crc32(tail)) + tail


def _read_meta(buf, where):
    if len(buf) < _PREFIX.size:
        _fail(where, f"truncated record ({len(buf)} bytes, shorter than its {_PREFIX.size}-byte prefix)")
    magic, crc, meta_len = _PREFIX.unpack_from(buf, 0)
    if magic != MAGIC:
        _fail(where, f"not a clip record (magic {bytes(magic)!r}, expected {MAGIC!r})")
    end = _PREFIX.size + meta_len
    if end > len(buf):
        _fail(where, f"truncated record (meta of {meta_len} bytes, value of {len(buf)} bytes)")
    try:
        meta = json.loads(bytes(buf[_PREFIX.size:end]).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        _fail(where, f"corrupt record meta ({exc})")
    if not isinstance(meta, dict):
        _fail(where, "corrupt record meta (not a JSON object)")
    return meta, crc, -(-end // 8) * 8


def decode_captions(buf, where):
    """Only the captions of a record (list[str]); reads the meta, not the arrays."""
    meta, _, _ = _read_meta(buf, where)
    captions = meta.get("captions")
    if not isinstance(captions, list) or not captions:
        _fail(where, f"empty caption list (got {captions!r})")
    return captions


def _array(buf, base, spec, name, where):
    try:
        dtype, shape, offset = spec
        count = int(np.prod(shape, dtype=np.int64))
        if dtype not in ALLOWED_DTYPES or any(int(s) < 0 for s in shape):
            raise ValueError(f"dtype {dtype!r}, shape {shape}")
        nbytes = count * np.dtype(dtype).itemsize
        if base + int(offset) + nbytes > len(buf) or int(offset) < 0:
            _fail(where, f"truncated record: array {name} needs {nbytes} bytes at {base + int(offset)}, "
                         f"value has {len(buf)}")
        return np.frombuffer(buf, dtype=dtype, count=count, offset=base + int(offset)).reshape(shape)
    except (TypeError, ValueError) as exc:
        _fail(where, f"corrupt record: bad array spec for {name} ({exc})")


def decode_clip(buf, where, num_classes, check_crc=True):
    """The Clip stored in ``buf`` (bytes or memoryview) — arrays are copied out.

    Features stay float16 (the pipelines cast once while padding). Raises DataError
    naming ``where`` on a truncated or corrupt value.
    """
    meta, crc, base = _read_meta(buf, where)
    if check_crc and zlib.crc32(buf[8:]) != crc:
        _fail(where, "corrupt record (CRC-32 mismatch)")
    layout = meta.get("arrays")
    if not isinstance(layout, dict) or set(layout) != set(RECORD_DTYPES):
        _fail(where, f"corrupt record: arrays {sorted(layout) if isinstance(layout, dict) else layout}, "
                     f"expected {sorted(RECORD_DTYPES)}")
    arrays = {name: _array(buf, base, layout[name], name, where).copy() for name in RECORD_DTYPES}
    try:
        n_boxes, n_actions = int(meta["n_boxes"]), int(meta["n_actions"])
        clip = Clip(
            clip_id=str(meta["clip_id"]), video_id=str(meta.get("video_id", "")), captions=meta["captions"],
            image_h=float(meta["image_h"]), image_w=float(meta["image_w"]), num_classes=num_classes, **arrays,
        )
    except (KeyError, TypeError, ValueError) as exc:
        _fail(where, f"corrupt record meta (missing or bad field {exc})")
    if n_boxes > clip.image_feature.shape[0] or n_boxes != clip.n_boxes:
        _fail(where, f"more boxes ({n_boxes}) than feature rows ({clip.image_feature.shape[0]})")
    if n_actions != clip.n_actions:
        _fail(where, f"n_actions {n_actions} differs from action_feature rows ({clip.n_actions})")
    return clip
