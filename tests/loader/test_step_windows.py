"""Windows of seconds and the averaging of their outputs back onto seconds."""

import numpy as np
import pytest

from paddlevideo.loader.steps.windows import merge_windows, window_starts
from paddlevideo.utils.errors import DataError


@pytest.mark.parametrize("seconds, size, stride, starts", [
    (12, 5, 5, [0, 5, 7]),      # 0-4, 5-9, then one ending at the last second: 7-11
    (10, 5, 5, [0, 5]),
    (10, 5, 2, [0, 2, 4, 5]),
    (5, 5, 1, [0]),
    (3, 5, 2, [0]),             # shorter than a window: one window, slots 3-4 padding
    (0, 5, 5, [0]),
])
def test_window_starts_cover_every_second(seconds, size, stride, starts):
    assert window_starts(seconds, size, stride).tolist() == starts


def test_window_starts_refuse_bad_sizes():
    for size, stride in ((0, 1), (5, 0), (5, 6), (5, -1)):
        with pytest.raises(DataError, match="1 <= stride <= size"):
            window_starts(10, size, stride)


def test_merge_averages_overlaps_and_ignores_padding():
    starts = window_starts(7, 4, 3)  # [0, 3]: seconds 3 in both windows
    outputs = np.zeros((2, 4, 2))
    outputs[0, :, 0] = [1, 2, 3, 4]
    outputs[1, :, 0] = [10, 20, 30, 40]
    merged = merge_windows(outputs, starts, 7)
    assert merged[:, 0].tolist() == [1, 2, 3, 7, 20, 30, 40]  # second 3: (4 + 10) / 2
    short = merge_windows(np.arange(8.0).reshape(1, 4, 2), [0], 2)  # T = 2 < size: slots 2, 3 dropped
    assert short.tolist() == [[0, 1], [2, 3]]
    assert merge_windows(np.zeros((1, 4, 3)), [0], 0).shape == (0, 3)


def test_merge_refuses_mismatched_windows():
    with pytest.raises(DataError, match="window outputs must be"):
        merge_windows(np.zeros((2, 4)), [0, 3], 7)
    with pytest.raises(DataError, match="uncovered"):
        merge_windows(np.zeros((1, 4, 2)), np.array([0]), 7)
