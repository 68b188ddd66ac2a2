"""PaddleVideo's released HowTo100M sample (``actbert_train_data.npy``), read unchanged.

The file is a NumPy object array, one item per clip, each a sequence of 11 fields:
``image_feature [N, 2048]``, ``image_target [N, 1601]``, ``image_location [N, 4]``
(x1, y1, x2, y2 pixels), ``n_boxes``, ``image_h``, ``image_w``, ``image_id``,
``caption`` (captions joined by ``!``), ``action_feature [A, 2048]``,
``action_target [A]``, ``n_actions``.

Object arrays are pickles, which can run code: the file is read by
``SafeUnpickler`` (``paddlevideo.utils.safe_pickle.load_npy``), which rebuilds NumPy
arrays and plain values only and refuses a pickle that names anything else.
"""

import numpy as np

from ...utils.errors import DataError
from ...utils.safe_pickle import load_npy
from .record import Clip, validate_clip

NPY_FIELDS = (
    "image_feature", "image_target", "image_location", "n_boxes", "image_h", "image_w", "image_id", "caption",
    "action_feature", "action_target", "n_actions",
)
DEFAULT_ACTION_CLASSES = 700


def split_captions(caption):
    """The captions of a ``!``-joined string (list[str], blanks dropped)."""
    if isinstance(caption, bytes):
        caption = caption.decode("utf-8", errors="replace")
    if not isinstance(caption, str):
        return []
    return [part.strip() for part in caption.split("!") if part.strip()]


def _rows(where, name, value, rows, ndim=2):
    array = np.asarray(value)
    if array.ndim == 1 and ndim == 2 and rows and array.size % rows == 0:
        array = array.reshape(rows, -1)  # some exports flatten per-clip arrays
    if array.ndim != ndim:
        raise DataError(f"{where}: {name} has shape {array.shape}, expected {ndim}-D")
    if array.shape[0] < rows:
        raise DataError(f"{where}: more boxes/actions ({rows}) than {name} rows ({array.shape[0]})")
    return array[:rows]


def clip_from_npy_item(item, where, clip_id=None):
    """A Clip from one 11-field item of PaddleVideo's ``.npy`` (arrays as given, not validated)."""
    if not hasattr(item, "__len__") or len(item) != len(NPY_FIELDS):
        raise DataError(f"{where}: expected an item of {len(NPY_FIELDS)} fields ({', '.join(NPY_FIELDS)}), "
                        f"got {type(item).__name__} of length {len(item) if hasattr(item, '__len__') else '?'}")
    f = dict(zip(NPY_FIELDS, item))
    try:
        n_boxes, n_actions = int(f["n_boxes"]), int(f["n_actions"])
        image_h, image_w = float(f["image_h"]), float(f["image_w"])
    except (TypeError, ValueError) as exc:
        raise DataError(f"{where}: bad n_boxes/n_actions/image size ({exc})") from None
    if n_boxes < 0 or n_actions < 0:
        raise DataError(f"{where}: negative n_boxes ({n_boxes}) or n_actions ({n_actions})")
    image_id = f["image_id"].decode() if isinstance(f["image_id"], bytes) else str(f["image_id"])
    return Clip(
        clip_id=clip_id if clip_id is not None else image_id,
        video_id=image_id,
        captions=split_captions(f["caption"]),
        image_h=image_h,
        image_w=image_w,
        boxes=_rows(where, "image_location", f["image_location"], n_boxes).astype(np.float32),
        image_feature=_rows(where, "image_feature", f["image_feature"], n_boxes),
        image_target=_rows(where, "image_target", f["image_target"], n_boxes),
        action_feature=_rows(where, "action_feature", f["action_feature"], n_actions),
        action_target=_rows(where, "action_target", f["action_target"], n_actions, ndim=1).astype(np.int64),
    )


def npy_dims(item, where):
    """Feature sizes of the file, taken from its first item (the file has no header)."""
    clip = clip_from_npy_item(item, where)
    return {
        "image_feature": int(clip.image_feature.shape[1]),
        "image_target": int(clip.image_target.shape[1]),
        "action_feature": int(clip.action_feature.shape[1]),
        "action_target": DEFAULT_ACTION_CLASSES,
    }


def load_npy_items(path):
    """The object array of clips in PaddleVideo's ``.npy`` at ``path`` (its pickle read by the
    restricted unpickler); DataError naming the file when it is missing, truncated, not a
    ``.npy``, names a global other than NumPy's, or is not a non-empty 1-D array."""
    items = load_npy(path)
    if not isinstance(items, np.ndarray) or items.ndim != 1 or not len(items):
        shape = items.shape if isinstance(items, np.ndarray) else type(items).__name__
        raise DataError(f"{path}: expected a non-empty 1-D object array of clips, got {shape}")
    return items


class NpyClips:
    """Random access to the clips of PaddleVideo's ``.npy`` (whole file in memory, as the reference does).

    Same interface as ``PretrainStore``: ``len``, ``get(i)`` -> checked Clip,
    ``captions(i)``, ``where(i)``, ``dims``.
    """

    def __init__(self, path):
        self.path = str(path)
        self.items = load_npy_items(self.path)
        self.dims = npy_dims(self.items[0], self.where(0))

    def __len__(self):
        return len(self.items)

    def where(self, index):
        return f"{self.path}: item {index}"

    def get(self, index):
        where = self.where(index)
        clip = clip_from_npy_item(self.items[index], where)
        validate_clip(clip, f"{where} (image_id {clip.clip_id})", self.dims)
        return clip

    def captions(self, index):
        item = self.items[index]
        return split_captions(item[7]) if len(item) == len(NPY_FIELDS) else []

    def close(self):
        pass
