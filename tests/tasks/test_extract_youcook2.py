"""paddlevideo/extraction inputs from YouCook2's annotation JSON and MIL-NCE's retrieval CSV:
one clip per segment, keyed <video_id>_<start>_<end> whatever the video's real length."""

import json
import logging
from types import SimpleNamespace

import pytest

from paddlevideo.extraction.inputs import list_videos
from paddlevideo.extraction.pipeline import Extractor
from paddlevideo.loader.youcook2 import segment_key
from paddlevideo.utils.errors import ConfigError


def corpus(tmp_path):
    """The official layout: the JSON beside raw_videos/<subset>/<recipe>/<id>.<ext>; one video missing."""
    for rel in ("raw_videos/training/101/vidA.mp4", "raw_videos/validation/226/vidB.webm"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"x")
    database = {
        "vidA": {"duration": 50.0, "subset": "training", "recipe_type": "101", "video_url": "u", "annotations": [
            {"segment": [3, 4], "id": 0, "sentence": "crack an egg"},
            {"segment": [3, 40], "id": 1, "sentence": "whisk the eggs , then fry"},  # overlaps the first
            {"segment": [3, 40], "id": 4, "sentence": "the same span again"},  # as oJZUxU9szWA's [120, 252]
            {"segment": [45, 60], "id": 2, "sentence": "serve"},  # ends past the downloaded video
            {"segment": [46, 70], "id": 3, "sentence": "serve again"}]},  # the same span once cut
        "vidB": {"duration": 30.0, "subset": "validation", "recipe_type": "226", "video_url": "u",
                 "annotations": [{"segment": [0, 30], "id": 0, "sentence": "the whole video"}]},
        "gone": {"duration": 9.0, "subset": "validation", "recipe_type": "226", "video_url": "u",
                 "annotations": [{"segment": [1, 2], "id": 0, "sentence": "x"}]}}
    (tmp_path / "youcookii_annotations_trainval.json").write_text(json.dumps({"database": database}))
    (tmp_path / "validation_youcook.csv").write_text("end,start,task,text,video_id\n30,0,226,the whole video,vidB\n"
                                                    "2,1,226,x,gone\n")
    return tmp_path


def test_annotation_json_segments_become_keyed_clips(tmp_path, caplog):
    root = corpus(tmp_path)
    with caplog.at_level(logging.WARNING):
        jobs = list_videos([root / "youcookii_annotations_trainval.json"])
    assert "1 of its 3 videos are not under" in caplog.text and "gone" in caplog.text
    assert [(j.video_id, j.path) for j in jobs] == [("vidA", str(root / "raw_videos/training/101/vidA.mp4")),
                                                   ("vidB", str(root / "raw_videos/validation/226/vidB.webm"))]
    assert [c.clip_id for c in jobs[0].clips] == ["vidA_3.00_4.00", "vidA_3.00_40.00", "vidA_3.00_40.00_2",
                                                 "vidA_45.00_60.00", "vidA_46.00_70.00"]
    # The extractor keeps the keys: a segment past the real end (video of 55 s) is cut but keeps its
    # key; two segments of the same span (annotated or cut) stay two clips; a whole-video segment keeps
    # its key too.
    extractor = Extractor(None, None, SimpleNamespace(subtitle_encoding="utf-8", window=10.0))
    specs = extractor.clip_specs(jobs[0], 55.0)
    assert [(s.clip_id, s.start, s.end, s.captions) for s in specs] == [
        ("vidA_3.00_4.00", 3, 4, ["crack an egg"]), ("vidA_3.00_40.00", 3, 40, ["whisk the eggs , then fry"]),
        ("vidA_3.00_40.00_2", 3, 40, ["the same span again"]),
        ("vidA_45.00_60.00", 45, 55.0, ["serve"]), ("vidA_46.00_70.00", 46, 55.0, ["serve again"])]
    (whole,) = extractor.clip_specs(jobs[1], 30.0)
    assert whole.clip_id == segment_key("vidB", 0, 30) == "vidB_0.00_30.00"


def test_retrieval_csv_rows_get_the_same_keys(tmp_path):
    root = corpus(tmp_path)
    (job,) = list_videos([root / "validation_youcook.csv"])
    assert job.video_id == "vidB" and [(c.clip_id, c.caption) for c in job.clips] == [
        ("vidB_0.00_30.00", "the whole video")]
    # Both files at once: one job per video, the CSV's clip listed again under the same key.
    jobs = list_videos([root / "youcookii_annotations_trainval.json", root / "validation_youcook.csv"])
    assert [j.video_id for j in jobs] == ["vidA", "vidB"]
    keys = [c.clip_id for c in jobs[1].clips]
    assert keys == ["vidB_0.00_30.00"] * 2
    assert len(Extractor(None, None, SimpleNamespace()).clip_specs(jobs[1], 30.0)) == 1  # one clip


def test_no_video_found_is_one_line(tmp_path):
    (tmp_path / "validation_youcook.csv").write_text("end,start,task,text,video_id\n2,1,226,x,gone\n")
    with pytest.raises(ConfigError, match=r"validation_youcook.csv: none of its 1 YouCook2 videos is under"):
        list_videos([tmp_path / "validation_youcook.csv"])
    with pytest.raises(ConfigError, match="input list not found"):
        list_videos([tmp_path / "missing.json"])
