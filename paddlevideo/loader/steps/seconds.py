"""Per-second features of one video and the ActBERT inputs of a window of seconds.

Record (final; one ``<video_id>.npz`` per video, written by ``tools/extract_features.py
--per_second`` as ``OUT/seconds/<video_id>.npz``, see ``paddlevideo/extraction/seconds.py``,
and by the demo corpora as ``features/<video_id>.npz``):
``action`` float32 [T, Da] (the action feature of a window centred on second t),
``regions`` float32 [T, R, Dv] and ``boxes`` float32 [T, R, 4] (x1, y1, x2, y2 pixels) of the
frame in the middle of second t, zero-padded; ``region_count`` int [T] (0: no frame);
``image_h``, ``image_w``. Other keys are ignored.

A window of ``size`` seconds starting at ``start`` maps onto ActBERT's inputs so:
action slot i is second start + i (mask 0 past the video's end); the box slots hold up to
``boxes_per_second`` boxes of each second in time order, after the global region (the mean
of the window's boxes, as in pretraining); a second with no frame gives no box but keeps
its action slot. The label of second start + i is read at action slot i.
"""

import os
import zipfile

import numpy as np

from ...utils.errors import DataError
from ..pipelines.multimodal import RandomMask, normalised_locations

KEYS = ("action", "regions", "boxes", "region_count", "image_h", "image_w")


def read_seconds(path):
    """The per-second record at ``path``: dict of the arrays above, checked for consistent
    shapes; DataError naming the file otherwise."""
    try:
        with np.load(path, allow_pickle=False) as data:
            record = {k: data[k] for k in KEYS if k in data.files}
    except FileNotFoundError:
        raise DataError(f"{path}: per-second feature file not found") from None
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise DataError(f"{path}: not a readable .npz of per-second features ({exc})") from None
    missing = [k for k in KEYS if k not in record]
    if missing:
        raise DataError(f"{path}: missing {', '.join(missing)}")
    seconds = len(record["action"])
    shapes = {k: record[k].shape for k in KEYS[:4]}
    regions, boxes, count = record["regions"], record["boxes"], record["region_count"]
    if (record["action"].ndim != 2 or regions.ndim != 3 or boxes.shape != regions.shape[:2] + (4,)
            or count.shape != (seconds,) or len(regions) != seconds):
        raise DataError(f"{path}: inconsistent shapes {shapes} (expected [T, Da], [T, R, Dv], [T, R, 4], [T])")
    if seconds and (count.min() < 0 or count.max() > regions.shape[1]):
        raise DataError(f"{path}: region_count must lie in 0..{regions.shape[1]}")
    if not (np.isfinite(record["action"]).all() and np.isfinite(regions).all()):
        raise DataError(f"{path}: non-finite features")
    return record


def window_inputs(record, start, size=5, boxes_per_second=7):
    """ActBERT's video inputs for seconds start .. start+size-1 of ``record``.

    Returns a dict: ``action_feat`` float32 [size, Da], ``action_mask`` int64 [size] (1 on the
    video's seconds), ``image_feat`` float32 [1 + size*B, Dv], ``image_loc`` float32
    [1 + size*B, 5], ``image_mask`` int64 [1 + size*B], ``region_second`` int64 [size*B]
    (the window slot of each box slot, -1 for padding); B = ``boxes_per_second``.
    """
    seconds = len(record["action"])
    if start < 0 or (seconds and start >= seconds):
        raise DataError(f"a window cannot start at second {start} of a {seconds}-second video")
    stop = min(start + size, seconds)
    action = np.zeros((size, record["action"].shape[1]), dtype=np.float32)
    action[:stop - start] = record["action"][start:stop]
    feat = np.zeros((size * boxes_per_second, record["regions"].shape[2]), dtype=np.float32)
    boxes = np.zeros((size * boxes_per_second, 4), dtype=np.float32)
    owner = np.full(size * boxes_per_second, -1, dtype=np.int64)
    used = 0
    for slot, t in enumerate(range(start, stop)):
        n = min(int(record["region_count"][t]), boxes_per_second)
        feat[used:used + n] = record["regions"][t, :n]
        boxes[used:used + n] = record["boxes"][t, :n]
        owner[used:used + n] = slot
        used += n
    loc = normalised_locations(boxes, record["image_h"], record["image_w"])  # zero boxes stay zero
    image_feat, image_loc, image_mask = RandomMask.add_global_region(feat, loc, used)
    return {"action_feat": action, "action_mask": (np.arange(size) < stop - start).astype(np.int64),
            "image_feat": image_feat, "image_loc": image_loc, "image_mask": image_mask, "region_second": owner}


def centred_start(t, num_seconds, size):
    """First second of the ``size``-second window centred on second ``t`` (moved inside the video)."""
    return int(min(max(t - size // 2, 0), max(num_seconds - size, 0)))


def stack_windows(record, starts, size, boxes_per_second):
    """``window_inputs`` of each start, stacked: dict of arrays [W, ...]."""
    windows = [window_inputs(record, int(s), size, boxes_per_second) for s in starts]
    return {k: np.stack([w[k] for w in windows]) for k in windows[0]}


class SecondFeatures:
    """A folder of per-second records, ``<folder>/<video_id>.npz``, read on demand.

    ``vision_dim`` / ``action_dim``: the feature sizes every record must have (None: those of
    the first record read); a record of other sizes is a DataError naming it. The last
    ``cache`` records read are kept (a training epoch visits a video's windows many times).
    """

    def __init__(self, folder, vision_dim=None, action_dim=None, cache=64):
        self.folder, self.dims, self.cache = str(folder), [vision_dim, action_dim], cache
        self._records = {}

    def path(self, video_id):
        return os.path.join(self.folder, f"{video_id}.npz")

    def has(self, video_id):
        return os.path.isfile(self.path(video_id))

    def num_seconds(self, video_id):
        """T of a record, read from its small ``region_count`` array only (the index of a large
        set is built without reading every feature)."""
        if video_id in self._records:
            return len(self._records[video_id]["action"])
        path = self.path(video_id)
        try:
            with np.load(path, allow_pickle=False) as data:
                return len(data["region_count"])
        except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError) as exc:
            raise DataError(f"{path}: not a readable .npz of per-second features ({exc})") from None

    def get(self, video_id):
        """The checked record of ``video_id`` (dict of arrays)."""
        if video_id in self._records:
            return self._records[video_id]
        path = self.path(video_id)
        record = read_seconds(path)
        for i, (name, width) in enumerate((("regions", record["regions"].shape[2]),
                                          ("action", record["action"].shape[1]))):
            if self.dims[i] is None:
                self.dims[i] = width
            elif width != self.dims[i]:
                raise DataError(f"{path}: {name} features of size {width}, but {self.dims[i]} expected "
                                f"(the other records' size or the dataset's {('vision', 'action')[i]}_feature_dim)")
        if len(self._records) >= self.cache:
            self._records.pop(next(iter(self._records)))
        self._records[video_id] = record
        return record
