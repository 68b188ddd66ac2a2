"""MSR-VTT multiple-choice accuracy: hand-computed cases (ties count against the model)."""

import csv
import json

import numpy as np
import pytest

from paddlevideo.metrics.multiple_choice import MSRVTTMCMetric, choose
from paddlevideo.utils.errors import DataError

# 6 questions x 5 candidates, answers below. By hand:
#   q0 answer 1 scores 0.9, strictly best            -> correct, chosen 1
#   q1 answer 0 ties with candidate 3 at the top     -> wrong (tie), chosen 3
#   q2 answer 4 is below candidate 2                 -> wrong, chosen 2
#   q3 all five equal                                -> wrong (tie), chosen 0 (first wrong among equals)
#   q4 answer 2 best by a hair (1e-6)                -> correct, chosen 2
#   q5 answer 3 best, another candidate is NaN        -> correct (NaN ranks last), chosen 3
# accuracy 3 / 6 = 50 %, 2 ties.
SCORES = np.array([
    [0.1, 0.9, 0.2, 0.3, -1.0],
    [2.0, 1.0, 0.0, 2.0, -5.0],
    [0.0, 0.1, 3.0, 0.2, 1.0],
    [0.5, 0.5, 0.5, 0.5, 0.5],
    [0.0, 0.0, 1.000001, 1.0, 0.0],
    [0.0, np.nan, 0.1, 0.4, 0.3],
], dtype=np.float32)
ANSWERS = np.array([1, 0, 4, 2, 2, 3])


def test_choose_by_hand():
    chosen, correct, tied = choose(SCORES, ANSWERS)
    assert chosen.tolist() == [1, 3, 2, 0, 2, 3]
    assert correct.tolist() == [True, False, False, False, True, True]
    assert tied.tolist() == [False, True, False, True, False, False]


def test_metric_writes_accuracy_and_predictions(tmp_path):
    metric = MSRVTTMCMetric(output_dir=str(tmp_path))
    metric.question_ids = [f"q{i}" for i in range(6)]
    metric.video_ids = [f"video{7010 + i}" for i in range(6)]
    metric.update(SCORES[:4], ANSWERS[:4])  # in two blocks
    metric.update(SCORES[4:], ANSWERS[4:])
    result = metric.accumulate()
    assert result == {"accuracy": 50.0, "correct": 3, "count": 6, "ties": 2}
    assert json.loads((tmp_path / "msrvtt_mc_metrics.json").read_text()) == result
    rows = list(csv.DictReader(open(tmp_path / "msrvtt_mc_predictions.csv")))
    assert [r["chosen"] for r in rows] == ["1", "3", "2", "0", "2", "3"]
    assert rows[1]["question_id"] == "q1" and rows[1]["video_id"] == "video7011" and rows[1]["correct"] == "0"
    assert [float(rows[2][f"score_{c}"]) for c in range(5)] == pytest.approx(SCORES[2].tolist())


def test_bad_shapes_and_answers():
    with pytest.raises(DataError, match="outside the 5 candidates"):
        choose(SCORES, np.array([1, 0, 5, 2, 2, 3]))
    with pytest.raises(DataError, match="one answer per question"):
        choose(SCORES, ANSWERS[:5])
