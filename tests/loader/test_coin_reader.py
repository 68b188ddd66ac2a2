"""COIN.json reader and per-second labels, on hand-computed cases."""

import json

import numpy as np
import pytest

from paddlevideo.loader.steps.coin import class_names, overlapped_seconds, read_coin, second_labels, step_classes
from paddlevideo.utils.errors import DataError


def write(tmp_path, database, name="COIN.json"):
    path = tmp_path / name
    path.write_text(json.dumps({"database": database}))
    return path


def video(annotation, duration=10.0, subset="testing"):
    return {"duration": duration, "class": "MakeTea", "recipe_type": 7, "subset": subset, "video_url": "u",
            "start": 0.0, "end": duration, "annotation": annotation}


def ann(step, start, end, label="x"):
    return {"id": step, "segment": [start, end], "label": label}


def test_classes_sort_the_global_ids_as_integers_over_both_subsets(tmp_path):
    videos = read_coin(write(tmp_path, {
        "a": video([ann("212", 1, 2, "cut"), ann("9", 3, 4, "boil")], subset="training"),
        "b": video([ann("10", 1, 2, "pour"), ann("212", 5, 6, "cut again")])}))
    classes = step_classes(videos)
    assert classes == {"9": 1, "10": 2, "212": 3}  # as strings "10" < "212" < "9"
    assert class_names(videos, classes) == ["background", "boil", "pour", "cut"]
    assert [v.subset for v in videos.values()] == ["training", "testing"]
    assert videos["a"].recipe_type == "7" and videos["a"].task == "MakeTea"


def test_second_labels_floor_start_to_ceil_end_background_elsewhere(tmp_path):
    videos = read_coin(write(tmp_path, {"v": video([ann("5", 1.5, 3.2), ann("7", 6.0, 6.0), ann("8", 7.0, 12.0)],
                                                   duration=9.4)}))
    classes = step_classes(videos)  # 5 -> 1, 7 -> 2, 8 -> 3
    # [1.5, 3.2] covers seconds 1, 2, 3; [6, 6] nothing; [7, 12] seconds 7..9, cut at T = ceil(9.4) = 10.
    assert second_labels(videos["v"], classes).tolist() == [0, 1, 1, 1, 0, 0, 0, 3, 3, 3]
    # T from the features: 8 rows cut the last step; 12 rows leave seconds 10, 11 of [7, 12] labelled.
    assert second_labels(videos["v"], classes, 8).tolist() == [0, 1, 1, 1, 0, 0, 0, 3]
    assert second_labels(videos["v"], classes, 12).tolist()[7:] == [3] * 5


def test_overlaps_later_annotation_in_file_order_wins(tmp_path):
    # Out of order in the file: the step starting later is listed first; the later *listed* one wins.
    videos = read_coin(write(tmp_path, {"v": video([ann("2", 3, 6), ann("1", 0, 4)], duration=7)}))
    classes = step_classes(videos)
    assert second_labels(videos["v"], classes).tolist() == [1, 1, 1, 1, 2, 2, 0]
    assert overlapped_seconds(videos["v"]) == 1  # second 3


def test_integer_ids_and_leading_zeros_name_the_same_step(tmp_path):
    videos = read_coin(write(tmp_path, {"v": video([ann(3, 0, 1), ann("003", 1, 2)], duration=2)}))
    assert step_classes(videos) == {"3": 1}
    assert second_labels(videos["v"], step_classes(videos)).tolist() == [1, 1]


def test_empty_video_and_zero_duration(tmp_path):
    videos = read_coin(write(tmp_path, {"v": video([], duration=0.0)}))
    assert second_labels(videos["v"], {}).shape == (0,)


@pytest.mark.parametrize("record, needle", [
    (video([ann("5", 4, 2)]), "annotation 0: 'segment' must be [start, end]"),
    (video([ann("5", -1, 2)]), "0 <= start <= end"),
    (video([ann("5", 1, float("nan"))]), "annotation 0: 'segment'"),
    (video([{"id": "5", "segment": [1], "label": "x"}]), "'segment' must be"),
    (video([ann("five", 1, 2)]), "'id' must be a global step id"),
    (video([ann(None, 1, 2)]), "'id' must be a global step id"),
    (video([ann("1", 0, 1), "oops"]), "annotation 1: expected an object"),
    (video([], subset="validation"), "'subset' must be one of training, testing, got 'validation'"),
    (video([], duration="long"), "'duration' must be a number"),
    ({"subset": "testing", "annotation": []}, "missing 'duration'"),
    (video("none"), "'annotation' must be a list"),
    ([1, 2], "expected an object"),
])
def test_bad_records_name_the_file_video_and_annotation(tmp_path, record, needle):
    path = write(tmp_path, {"vid1": record})
    with pytest.raises(DataError) as err:
        read_coin(path)
    message = str(err.value)
    assert str(path) in message and "'vid1'" in message and needle in message and "\n" not in message


def test_bad_files(tmp_path):
    with pytest.raises(DataError, match="COIN annotation file not found"):
        read_coin(tmp_path / "absent.json")
    (tmp_path / "cut.json").write_text('{"database": {"v": {"duration": 3')
    with pytest.raises(DataError, match=r"cut\.json: not a JSON file"):
        read_coin(tmp_path / "cut.json")
    (tmp_path / "twice.json").write_text('{"database": {"v": {"duration": 1}, "v": {"duration": 2}}}')
    with pytest.raises(DataError, match=r"twice\.json: not a JSON file \(key 'v' appears twice in one object\)"):
        read_coin(tmp_path / "twice.json")
    (tmp_path / "list.json").write_text("[]")
    with pytest.raises(DataError, match="at the top level"):
        read_coin(tmp_path / "list.json")
    (tmp_path / "bin.json").write_bytes(b"\xff\xfe\x00")
    with pytest.raises(DataError, match="not a JSON file"):
        read_coin(tmp_path / "bin.json")
    with pytest.raises(DataError, match="cannot read"):  # a path under a regular file: ENOTDIR
        read_coin(tmp_path / "list.json" / "COIN.json")


def test_labels_are_int64_and_background_is_zero(tmp_path):
    videos = read_coin(write(tmp_path, {"v": video([ann("1", 0.2, 0.9)], duration=2)}))
    labels = second_labels(videos["v"], step_classes(videos))
    assert labels.dtype == np.int64 and labels.tolist() == [1, 0]
