"""COIN frame accuracy: pooled over seconds, background included, with its baseline and the
non-background accuracy beside it; missing videos counted and named."""

import logging

import numpy as np
import pytest

from paddlevideo.metrics.coin import COINFrameAccuracy
from paddlevideo.utils.errors import DataError


def test_hand_computed_pooled_figures(caplog):
    caplog.set_level(logging.INFO, logger="paddlevideo")
    metric = COINFrameAccuracy(expected=["a", "b", "c"])
    metric.update("a", [0, 1, 1, 0], [0, 1, 2, 2])        # right: 0, 1
    metric.update("b", [3, 0, 0, 0, 0, 0], [3, 3, 0, 0, 0, 0])  # right: 3, four backgrounds
    m = metric.accumulate()
    # 10 seconds, 7 right; background seconds: 1 (a) + 4 (b) = 5; step seconds 5, right 1 + 1 = 2.
    assert m["frame_accuracy"] == pytest.approx(70.0)
    assert m["background_baseline"] == pytest.approx(50.0)
    assert m["non_background_accuracy"] == pytest.approx(40.0)
    assert (m["seconds"], m["background_seconds"], m["videos"]) == (10, 5, 2)
    assert m["missing_videos"] == 1 and m["missing"] == ["c"]
    assert "all-background baseline 50.00%" in caplog.text and "without features" in caplog.text
    assert ": c" in caplog.text


def test_pooling_is_over_seconds_not_videos():
    metric = COINFrameAccuracy()
    metric.update("long", np.ones(9, int), np.ones(9, int))  # 9 of 9
    metric.update("short", [0], [1])                         # 0 of 1
    assert metric.accumulate()["frame_accuracy"] == pytest.approx(90.0)  # a per-video mean would say 50


def test_scores_are_argmaxed_and_all_background_prediction_equals_baseline():
    target = np.array([0, 0, 5, 5, 0])
    scores = np.zeros((5, 6))
    scores[:, 0] = 1.0
    metric = COINFrameAccuracy()
    metric.update("v", scores, target)
    m = metric.accumulate()
    assert m["frame_accuracy"] == m["background_baseline"] == pytest.approx(60.0)
    assert m["non_background_accuracy"] == 0.0


def test_only_background_gives_no_step_accuracy():
    metric = COINFrameAccuracy()
    metric.update("v", [0, 0], [0, 0])
    assert metric.accumulate()["non_background_accuracy"] is None


def test_bad_updates_name_the_video():
    metric = COINFrameAccuracy(expected=["a"])
    with pytest.raises(DataError, match="COIN video a: 3 predicted seconds for 2 labelled"):
        metric.update("a", [0, 0, 0], [0, 0])
    with pytest.raises(DataError, match="COIN video z is not one of the 1 test videos"):
        metric.update("z", [0], [0])
    with pytest.raises(DataError, match="COIN video a: non-finite scores"):
        metric.update("a", np.full((2, 3), np.nan), [0, 0])
    metric.update("a", [0, 0], [0, 0])
    with pytest.raises(DataError, match="scored twice"):
        metric.update("a", [0, 0], [0, 0])
    with pytest.raises(DataError, match="no second was scored"):
        COINFrameAccuracy().accumulate()
