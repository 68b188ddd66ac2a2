"""Windows of seconds: how a video's T seconds are cut into fixed-size windows for ActBERT
and how per-window outputs are put back onto the seconds (the per-second mode's plan,
data/README.md, "COIN and CrossTask"; not yet used by a dataset).

A window of ``size`` seconds starts every ``stride`` seconds; one more window ends exactly
at the last second when the stride does not land there, so every second is covered. A
video shorter than one window gets a single window from 0, its slots past T padding.
"""

import numpy as np

from ...utils.errors import DataError


def window_starts(num_seconds, size, stride):
    """First second of every window: int64 [W], W >= 1 (T = 0 gives one empty window)."""
    if size < 1 or stride < 1 or stride > size:
        raise DataError(f"windows need 1 <= stride <= size, got size {size}, stride {stride}")
    last = max(num_seconds - size, 0)
    starts = list(range(0, last + 1, stride))
    if starts[-1] != last:
        starts.append(last)
    return np.array(starts, dtype=np.int64)


def merge_windows(window_outputs, starts, num_seconds):
    """Mean over the windows covering each second: [W, size, C] -> [T, C] (float64).

    Slots past ``num_seconds`` (padding of a short video) are ignored.
    """
    outputs = np.asarray(window_outputs, dtype=np.float64)
    if outputs.ndim != 3 or outputs.shape[0] != len(starts):
        raise DataError(f"window outputs must be [windows={len(starts)}, size, classes], got {outputs.shape}")
    total = np.zeros((num_seconds, outputs.shape[2]))
    count = np.zeros((num_seconds, 1))
    for out, start in zip(outputs, starts):
        stop = min(start + outputs.shape[1], num_seconds)
        total[start:stop] += out[:stop - start]
        count[start:stop] += 1
    if num_seconds and not count.all():
        raise DataError(f"windows starting at {starts.tolist()} leave some of {num_seconds} seconds uncovered")
    return total / np.maximum(count, 1)
