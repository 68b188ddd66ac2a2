"""CrossTask: the ordered assignment against brute force, and the recall on hand-computed cases."""

import itertools
import logging

import numpy as np
import pytest

from paddlevideo.metrics.crosstask import CrossTaskRecall, localize, log_softmax, ordered_assignment, uniform_assignment
from paddlevideo.utils.errors import DataError


def brute_force(scores, strict):
    """Best total over every ordered choice of one second per step."""
    seconds, steps = scores.shape
    choose = itertools.combinations if strict else itertools.combinations_with_replacement
    return max(sum(scores[t, k] for k, t in enumerate(ts)) for ts in choose(range(seconds), steps))


@pytest.mark.parametrize("seconds, steps", [(1, 1), (4, 1), (3, 3), (5, 2), (6, 3), (7, 4), (8, 5), (9, 3),
                                            (2, 3), (1, 4), (3, 5)])
def test_dp_equals_brute_force(seconds, steps):
    rng = np.random.default_rng(seconds * 10 + steps)
    for _ in range(20):
        scores = log_softmax(rng.normal(size=(seconds, steps)) * 3)
        picked = ordered_assignment(scores)
        strict = seconds >= steps
        assert picked.shape == (steps,) and picked.dtype == np.int64
        assert ((np.diff(picked) > 0) if strict else (np.diff(picked) >= 0)).all()
        assert 0 <= picked.min() and picked.max() < seconds
        total = scores[picked, np.arange(steps)].sum()
        assert total == pytest.approx(brute_force(scores, strict), abs=1e-9)


def test_dp_hand_case_order_beats_the_per_step_best():
    # Step 0 is best at second 2 and step 1 at second 0; in order, one of them must give way.
    scores = np.array([[0.0, 5.0], [1.0, 1.0], [4.0, 0.0], [0.0, 2.0]])
    assert ordered_assignment(scores).tolist() == [2, 3]  # 4 + 2 = 6; step 1's best second (0) follows nothing
    assert ordered_assignment(np.zeros((4, 2))).tolist() == [0, 1]  # ties: earliest seconds


def test_short_and_empty_videos():
    assert ordered_assignment(np.array([[1.0, 0.0, 2.0]])).tolist() == [0, 0, 0]  # T = 1 < K = 3: shared
    assert ordered_assignment(np.zeros((0, 3))).tolist() == [-1, -1, -1]
    assert ordered_assignment(np.zeros((4, 0))).tolist() == []
    with pytest.raises(DataError, match="vid7: non-finite step scores"):
        ordered_assignment(np.array([[0.0, np.nan], [1.0, 2.0]]), name="vid7")
    with pytest.raises(DataError, match="must be \\[seconds, steps\\]"):
        ordered_assignment(np.zeros(3))


def test_log_softmax_rows_and_localize():
    scores = np.array([[1000.0, 1000.0], [0.0, np.log(3.0)]])
    out = log_softmax(scores)
    assert np.allclose(np.exp(out).sum(1), 1) and out[0].tolist() == pytest.approx([np.log(0.5)] * 2)
    assert out[1].tolist() == pytest.approx([np.log(0.25), np.log(0.75)])
    assert localize(np.array([[5.0, 0.0], [0.0, 5.0], [0.0, 0.0]])).tolist() == [0, 1]
    assert localize(np.zeros((0, 2))).tolist() == [-1, -1]


def test_uniform_assignment_centres_of_equal_parts():
    assert uniform_assignment(10, 2).tolist() == [2, 7]
    assert uniform_assignment(9, 3).tolist() == [1, 4, 7]
    assert uniform_assignment(2, 4).tolist() == [0, 0, 1, 1]
    assert uniform_assignment(0, 2).tolist() == [-1, -1]


def truth(seconds, steps, intervals):
    y = np.zeros((seconds, steps), dtype=bool)
    for k, a, b in intervals:
        y[a:b, k] = True
    return y


def test_recall_pools_videos_within_a_task_then_plain_mean_over_tasks(caplog):
    caplog.set_level(logging.INFO, logger="paddlevideo")
    metric = CrossTaskRecall(["A", "B"], expected=[("A", "v1"), ("A", "v2"), ("B", "w1"), ("B", "gone")])
    # A/v1: 3 steps, all present; predictions hit steps 0 and 2 -> 2 of 3.
    metric.update("A", "v1", [1, 4, 8], truth(10, 3, [(0, 0, 2), (1, 5, 7), (2, 8, 10)]))
    # A/v2: step 1 absent from the truth (predicted, not counted); step 0 missed, step 2 hit -> 1 of 2.
    metric.update("A", "v2", [0, 1, 2], truth(4, 3, [(0, 3, 4), (2, 2, 3)]))
    # B/w1: 2 steps, one hit -> 1 of 2; a -1 (no second) never hits.
    metric.update("B", "w1", [0, -1], truth(3, 2, [(0, 0, 1), (1, 0, 3)]))
    m = metric.accumulate()
    assert m["matched"] == {"A": 3, "B": 1} and m["present"] == {"A": 5, "B": 2}
    assert m["per_task"] == pytest.approx({"A": 60.0, "B": 50.0})
    assert m["recall"] == pytest.approx(55.0)  # per-video averaging would give ((2/3 + 1/2) / 2 + 1/2) / 2
    assert m["videos"] == 3 and m["missing"] == ["B_gone"] and m["missing_videos"] == 1
    assert "55.00%" in caplog.text and "B_gone" in caplog.text


def test_recall_counts_short_videos_and_a_repeated_step_once():
    metric = CrossTaskRecall(["A"])
    y = truth(2, 3, [(0, 0, 1), (1, 1, 2), (2, 1, 2)])
    metric.update("A", "short", ordered_assignment(np.log(np.full((2, 3), 1 / 3))), y)  # [0, 0, 0]
    metric.update("A", "rep", [1, 3], truth(6, 2, [(0, 0, 2), (0, 4, 6), (1, 3, 4)]))  # step 0 twice: counted once
    m = metric.accumulate()
    assert m["short_videos"] == ["A_short"]
    assert m["matched"]["A"] == 1 + 2 and m["present"]["A"] == 3 + 2


def test_recall_bad_input():
    metric = CrossTaskRecall(["A", "B"])
    with pytest.raises(DataError, match="task C is not one of A, B"):
        metric.update("C", "v", [0], truth(2, 1, []))
    with pytest.raises(DataError, match="A_v: 2 predicted steps for a ground truth of shape \\(2, 1\\)"):
        metric.update("A", "v", [0, 1], truth(2, 1, []))
    metric.update("A", "v", [0], truth(2, 1, [(0, 0, 1)]))
    with pytest.raises(DataError, match="scored twice"):
        metric.update("A", "v", [0], truth(2, 1, [(0, 0, 1)]))
    with pytest.raises(DataError, match="task\\(s\\) B; the mean over tasks would be undefined"):
        metric.accumulate()
