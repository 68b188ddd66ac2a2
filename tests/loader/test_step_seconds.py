"""Per-second feature records and the ActBERT inputs of a window of seconds (hand cases)."""

import numpy as np
import pytest

from paddlevideo.loader.steps.seconds import read_seconds, window_inputs
from paddlevideo.utils.errors import DataError


def record():
    """3 seconds; second 0 has 2 boxes, second 1 no frame, second 2 one box."""
    regions = np.zeros((3, 2, 2), dtype=np.float32)
    regions[0] = [[1, 0], [3, 0]]
    regions[2, 0] = [0, 8]
    boxes = np.zeros((3, 2, 4), dtype=np.float32)
    boxes[0] = [[0, 0, 320, 180], [320, 180, 640, 360]]
    boxes[2, 0] = [0, 0, 640, 360]
    return {"action": np.arange(6, dtype=np.float32).reshape(3, 2) + 1, "regions": regions, "boxes": boxes,
            "region_count": np.array([2, 0, 1]), "image_h": np.float32(360), "image_w": np.float32(640)}


def test_window_slots_follow_the_seconds():
    w = window_inputs(record(), 0, size=5, boxes_per_second=2)
    assert w["action_feat"].tolist() == [[1, 2], [3, 4], [5, 6], [0, 0], [0, 0]]
    assert w["action_mask"].tolist() == [1, 1, 1, 0, 0]
    assert w["region_second"].tolist() == [0, 0, 2] + [-1] * 7
    assert w["image_feat"].shape == (11, 2) and w["image_mask"].tolist() == [1, 1, 1, 1] + [0] * 7
    assert np.allclose(w["image_feat"][:4], [[4 / 3, 8 / 3], [1, 0], [3, 0], [0, 8]])  # global = mean of the 3
    assert w["image_loc"][:4].tolist() == [[0, 0, 1, 1, 1], [0, 0, 0.5, 0.5, 0.25], [0.5, 0.5, 1, 1, 0.25],
                                           [0, 0, 1, 1, 1]]
    assert not w["image_loc"][4:].any()


def test_boxes_per_second_cut_and_late_window():
    w = window_inputs(record(), 0, size=2, boxes_per_second=1)
    assert w["region_second"].tolist() == [0, -1] and w["image_mask"].tolist() == [1, 1, 0]
    late = window_inputs(record(), 1, size=2, boxes_per_second=1)  # seconds 1 (no frame) and 2
    assert late["action_feat"].tolist() == [[3, 4], [5, 6]] and late["region_second"].tolist() == [1, -1]
    with pytest.raises(DataError, match="cannot start at second 3 of a 3-second video"):
        window_inputs(record(), 3)


def test_empty_video_gives_an_all_padding_window():
    empty = {k: (v[:0] if isinstance(v, np.ndarray) and v.ndim else v) for k, v in record().items()}
    w = window_inputs(empty, 0, size=5, boxes_per_second=2)
    assert not w["action_mask"].any() and w["image_mask"].tolist() == [1] + [0] * 10  # the global slot only


def test_read_seconds_round_trip_and_bad_files(tmp_path):
    path = tmp_path / "v.npz"
    np.savez(path, **record())
    assert {k: v.tolist() for k, v in read_seconds(path).items()} == {k: np.asarray(v).tolist()
                                                                      for k, v in record().items()}
    with pytest.raises(DataError, match="per-second feature file not found"):
        read_seconds(tmp_path / "absent.npz")
    (tmp_path / "cut.npz").write_bytes(path.read_bytes()[:100])
    with pytest.raises(DataError, match=r"cut\.npz: not a readable \.npz"):
        read_seconds(tmp_path / "cut.npz")
    cases = {"nokey": dict(record(), action=None), "shape": dict(record(), boxes=np.zeros((3, 2, 5))),
             "count": dict(record(), region_count=np.array([0, 3, 0])),
             "nan": dict(record(), action=np.full((3, 2), np.nan, dtype=np.float32))}
    needles = {"nokey": "missing action", "shape": "inconsistent shapes", "count": "region_count must lie in 0..2",
               "nan": "non-finite features"}
    for name, arrays in cases.items():
        np.savez(tmp_path / f"{name}.npz", **{k: v for k, v in arrays.items() if v is not None})
        with pytest.raises(DataError) as err:
            read_seconds(tmp_path / f"{name}.npz")
        assert f"{name}.npz" in str(err.value) and needles[name] in str(err.value)
