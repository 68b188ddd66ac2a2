"""Retrieval metrics against hand-computed ranks (ties, several captions per video)."""

import csv
import json

import numpy as np
import pytest

from paddlevideo.metrics import METRICS
from paddlevideo.metrics.retrieval import (
    MSRVTTMetric,
    format_table,
    rank_summary,
    retrieval_metrics,
    text_to_video_ranks,
    video_to_text_ranks,
)
from paddlevideo.utils.errors import DataError

# 4 captions x 3 videos; captions 0 and 1 describe video 0, caption 2 video 1, caption 3 video 2.
SCORES = np.array(
    [
        [0.9, 0.1, 0.5],  # true v0 is top                           -> t2v rank 1
        [0.2, 0.7, 0.2],  # true v0 ties with v2, v1 above           -> t2v rank 3 (tie counts against)
        [0.3, 0.3, 0.3],  # all equal                                -> t2v rank 3 (worst, not best)
        [0.0, 0.8, 0.6],  # true v2 under v1                         -> t2v rank 2
    ]
)
INDEX = np.array([0, 0, 1, 2])
# v2t, by column:
#   v0: correct captions 0 (0.9) and 1 (0.2); best 0.9, no wrong caption >= 0.9      -> rank 1
#   v1: correct caption 2 (0.3); wrong captions 0.1, 0.7, 0.8: two are above         -> rank 3
#   v2: correct caption 3 (0.6); wrong captions 0.5, 0.2, 0.3: none above             -> rank 1


def test_text_to_video_ranks_hand_computed():
    assert text_to_video_ranks(SCORES, INDEX).tolist() == [1, 3, 3, 2]


def test_video_to_text_best_caption():
    ranks, videos = video_to_text_ranks(SCORES, INDEX)
    assert videos.tolist() == [0, 1, 2]
    assert ranks.tolist() == [1, 3, 1]


def test_ties_never_help():
    # A constant matrix: every item ties, so every rank is the worst possible.
    scores = np.zeros((5, 5))
    index = np.arange(5)
    assert text_to_video_ranks(scores, index).tolist() == [5] * 5
    assert video_to_text_ranks(scores, index)[0].tolist() == [5] * 5
    assert retrieval_metrics(scores, index)["t2v"]["R@1"] == 0.0


def test_v2t_tie_between_correct_captions_is_harmless():
    # Both captions of v0 tie at the top; a wrong caption ties with them too.
    scores = np.array([[0.5, 0.0], [0.5, 0.0], [0.5, 0.9]])
    ranks, _ = video_to_text_ranks(scores, [0, 0, 1])
    # v0: wrong caption 2 ties with the best correct one -> rank 2; v1: caption 2 top -> 1.
    assert ranks.tolist() == [2, 1]


def test_v2t_skips_videos_without_captions():
    scores = np.array([[0.1, 0.9, 0.2], [0.8, 0.3, 0.4]])
    ranks, videos = video_to_text_ranks(scores, [1, 0])
    assert videos.tolist() == [0, 1]
    assert ranks.tolist() == [1, 1]
    assert retrieval_metrics(scores, [1, 0])["v2t"]["count"] == 2


def test_nan_scores_rank_last():
    scores = np.array([[np.nan, 0.1, 0.2], [0.0, 0.5, np.nan]])
    assert text_to_video_ranks(scores, [0, 1]).tolist() == [3, 1]


def test_summary_both_medians():
    # 0-based ranks 0, 1, 2, 5 -> median 1.5: conventional MedR (1-based) 2.5,
    # reference floor(1.5) + 1 = 2.
    s = rank_summary([1, 2, 3, 6])
    assert s["MedR"] == 2.5
    assert s["MedR_floor"] == 2.0
    assert s["MeanR"] == 3.0
    assert s["R@1"] == 25.0 and s["R@5"] == 75.0 and s["R@10"] == 100.0
    # Odd count: both agree.
    s = rank_summary([1, 4, 20])
    assert s["MedR"] == s["MedR_floor"] == 4.0


def test_retrieval_metrics_hand_computed():
    m = retrieval_metrics(SCORES, INDEX)
    # t2v ranks 1, 3, 3, 2
    assert m["t2v"]["R@1"] == 25.0
    assert m["t2v"]["R@5"] == 100.0
    assert m["t2v"]["MedR"] == 2.5
    assert m["t2v"]["MedR_floor"] == 2.0
    assert m["t2v"]["MeanR"] == pytest.approx(9 / 4)
    # v2t ranks 1, 3, 1
    assert m["v2t"]["R@1"] == pytest.approx(200 / 3)
    assert m["v2t"]["MedR"] == 1.0
    assert m["v2t"]["MeanR"] == pytest.approx(5 / 3)


def test_bad_inputs():
    with pytest.raises(DataError, match="outside the 3 videos"):
        text_to_video_ranks(SCORES, [0, 0, 1, 3])
    with pytest.raises(DataError, match="one per query"):
        text_to_video_ranks(SCORES, [0, 0, 1])
    with pytest.raises(DataError, match="matrix"):
        text_to_video_ranks(np.zeros(3), [0])


def test_metric_registered_and_writes_outputs(tmp_path):
    assert METRICS.get("MSRVTTMetric") is MSRVTTMetric
    metric = MSRVTTMetric(output_dir=str(tmp_path))
    metric.video_ids = ["video7", "video8", "video9"]
    metric.captions = ["a", "b", "c", "d"]
    metric.update(SCORES[:2], INDEX[:2])  # rows may arrive in blocks
    metric.update(SCORES[2:], INDEX[2:])
    result = metric.accumulate()
    on_disk = json.loads((tmp_path / "msrvtt_metrics.json").read_text())
    assert set(on_disk) == {"t2v", "v2t"}
    for direction in ("t2v", "v2t"):
        assert {"R@1", "R@5", "R@10", "MedR", "MeanR", "MedR_floor"} <= set(on_disk[direction])
    assert on_disk == result
    rows = list(csv.DictReader(open(tmp_path / "msrvtt_ranks_t2v.csv")))
    assert [int(r["rank"]) for r in rows] == [1, 3, 3, 2]
    assert rows[3]["video_id"] == "video9" and rows[3]["top1_video_id"] == "video8"
    rows = list(csv.DictReader(open(tmp_path / "msrvtt_ranks_v2t.csv")))
    assert [int(r["rank"]) for r in rows] == [1, 3, 1]
    assert rows[0]["num_captions"] == "2"
    assert (tmp_path / "msrvtt_ranks.png").stat().st_size > 0
    assert "text->video" in format_table(result)


def test_youcook2_metric_names_its_own_files(tmp_path, caplog):
    """YouCook2's test files carry its own prefix; none is named after MSR-VTT."""
    from paddlevideo.metrics.youcook2_retrieval import YouCook2RetrievalMetric

    metric = METRICS.get("YouCook2RetrievalMetric")(output_dir=str(tmp_path))
    assert isinstance(metric, YouCook2RetrievalMetric)
    metric.update(SCORES, INDEX)
    with caplog.at_level("INFO"):
        result = metric.accumulate()
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["youcook2_metrics.json", "youcook2_ranks.png", "youcook2_ranks_t2v.csv", "youcook2_ranks_v2t.csv"]
    assert json.loads((tmp_path / "youcook2_metrics.json").read_text()) == result
    assert "YouCook2 retrieval, 4 queries x 3 videos" in caplog.text and "MSR-VTT" not in caplog.text


def test_metric_without_scores():
    with pytest.raises(DataError, match="no scores"):
        MSRVTTMetric().accumulate()
