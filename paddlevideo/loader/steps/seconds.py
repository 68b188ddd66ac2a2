"""Per-second features of one video and the ActBERT inputs of a window of seconds (the
per-second mode's plan, data/README.md "COIN and CrossTask"; not yet used by a dataset).

Record (provisional, as ``tools/demo_steps.py`` writes it; one ``.npz`` per video):
``action`` float32 [T, Da] (the action feature of a window centred on second t),
``regions`` float32 [T, R, Dv] and ``boxes`` float32 [T, R, 4] (x1, y1, x2, y2 pixels) of the
frame in the middle of second t, zero-padded; ``region_count`` int [T] (0: no frame);
``image_h``, ``image_w``.

A window of ``size`` seconds starting at ``start`` maps onto ActBERT's inputs so:
action slot i is second start + i (mask 0 past the video's end); the box slots hold up to
``boxes_per_second`` boxes of each second in time order, after the global region (the mean
of the window's boxes, as in pretraining); a second with no frame gives no box but keeps
its action slot. The label of second start + i is read at action slot i.
"""

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
