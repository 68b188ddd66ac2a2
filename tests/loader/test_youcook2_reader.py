"""YouCook2 readers on the official layouts (the demo corpus and hand-written records): clip
keys, the retrieval CSV matched to the annotations, one-line errors naming file and record."""

import json
import pickle

import lmdb
import numpy as np
import pytest

from paddlevideo.loader.youcook2 import read_annotations, read_retrieval_csv, segment_key, subset_segments
from paddlevideo.utils.errors import DataError
from tools.demo_youcook2 import LONG_TAIL, make_youcook2_demo


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("youcook2")
    return out, make_youcook2_demo(str(out), seed=3, num_videos=24, feature_dim=8)


def test_demo_corpus_reads_back_with_its_extremes(demo):
    out, info = demo
    videos = read_annotations(out / "youcookii_annotations_trainval.json")
    train, val = subset_segments(videos, "training"), subset_segments(videos, "validation")
    assert len(videos) == 24 and len(train) + len(val) == info["segments"] and val and train
    lengths = [s.duration for s in train + val]
    assert min(lengths) == 1 and max(lengths) >= 120  # a 1 s segment and one of minutes
    assert any(len(s.sentence.split()) >= 30 and LONG_TAIL in s.sentence for s in val)  # long sentences
    overlaps = [(a, b) for v in videos.values() for a, b in zip(v.segments, v.segments[1:]) if b.start < a.end]
    assert overlaps
    twice = [s for s in train + val if s.occurrence == 2]  # a span annotated twice
    assert twice and all(s.key == s.span + "_2" for s in twice)
    # Every segment's features are in the LMDB under its key, action slots growing with the length.
    env = lmdb.open(str(out / "youcook2.lmdb"), readonly=True, lock=False)
    with env.begin() as txn:
        assert txn.stat()["entries"] == info["segments"]
        for seg in train + val:
            rec = pickle.loads(txn.get(seg.key.encode()))
            assert rec["video_id"] == seg.key and rec["features"].shape[1] == 8
            assert len(rec["action_features"]) == (1 if seg.duration == 1 else min(5, int(np.ceil(seg.duration / 6))))
        for seg in twice:  # one clip: the same features under both keys
            np.testing.assert_array_equal(pickle.loads(txn.get(seg.key.encode()))["features"],
                                          pickle.loads(txn.get(seg.span.encode()))["features"])
    env.close()


def test_retrieval_csv_rows_match_annotated_segments(demo):
    out, info = demo
    videos = read_annotations(out / "youcookii_annotations_trainval.json")
    clips = read_retrieval_csv(out / "validation_youcook.csv", videos)
    assert len(clips) == info["retrieval_clips"]
    by_key = {s.key: s for s in subset_segments(videos, "validation")}
    for clip in clips:
        seg = by_key[clip.key]
        assert (clip.index, clip.sentence, clip.video_id) == (seg.index, seg.sentence, seg.video_id)
    # One validation video is left out, as the 21 videos found in HowTo100M are.
    assert len({c.video_id for c in clips}) == info["validation"] - 1


def test_keys_are_the_same_from_both_files(tmp_path):
    assert segment_key("xHr8X2Wpmno", 47, 60) == "xHr8X2Wpmno_47.00_60.00"
    (tmp_path / "a.json").write_text(json.dumps({"database": {"xHr8X2Wpmno": {
        "duration": 241.62, "subset": "validation", "recipe_type": "226", "video_url": "u",
        "annotations": [{"segment": [90, 102], "id": 0, "sentence": "spread margarine"},
                        {"segment": [47, 60], "id": 1, "sentence": "pick the ends off the verdalago"}]}}}))
    (tmp_path / "v.csv").write_text('end,start,task,text,video_id\n60,47,226,"pick the ends off the verdalago",'
                                    'xHr8X2Wpmno\n')
    videos = read_annotations(tmp_path / "a.json")
    (clip,) = read_retrieval_csv(tmp_path / "v.csv", videos)
    assert clip.key == videos["xHr8X2Wpmno"].segments[1].key and clip.index == 1 and clip.recipe_type == "226"
    assert read_retrieval_csv(tmp_path / "v.csv")[0].index == -1  # without the annotations: no index


def test_a_span_annotated_twice_gets_two_keys_in_both_files(tmp_path):
    # The real case: oJZUxU9szWA annotates [120, 252] twice (MIL-NCE's list, lines 765-766).
    (tmp_path / "a.json").write_text(json.dumps({"database": {"oJZUxU9szWA": {
        "duration": 400.0, "subset": "validation", "recipe_type": "416", "video_url": "u", "annotations": [
            {"segment": [120, 252], "id": 0, "sentence": "soak gram and place water salt and turmeric powder in "
                                                          "pressure cooker"},
            {"segment": [120, 252], "id": 1, "sentence": "pressure cook the dal and grind"},
            {"segment": [252, 275], "id": 2, "sentence": "heat ghee in a pan"}]}}}))
    rows = ["252,120,416,soak gram and place water salt and turmeric powder in pressure cooker,oJZUxU9szWA",
            "252,120,416,pressure cook the dal and grind,oJZUxU9szWA", "275,252,416,heat ghee in a pan,oJZUxU9szWA"]
    (tmp_path / "v.csv").write_text("end,start,task,text,video_id\n" + "\n".join(rows) + "\n")
    keys = ["oJZUxU9szWA_120.00_252.00", "oJZUxU9szWA_120.00_252.00_2", "oJZUxU9szWA_252.00_275.00"]
    videos = read_annotations(tmp_path / "a.json")
    assert [s.key for s in videos["oJZUxU9szWA"].segments] == keys
    assert [c.key for c in read_retrieval_csv(tmp_path / "v.csv")] == keys
    # Rows in another order are matched by their sentence, not their position.
    (tmp_path / "w.csv").write_text("end,start,task,text,video_id\n" + "\n".join(rows[::-1]) + "\n")
    matched = read_retrieval_csv(tmp_path / "w.csv", videos)
    assert [(c.key, c.index) for c in matched] == [(keys[2], 2), (keys[1], 1), (keys[0], 0)]


def video(annotations, **extra):
    return {"duration": 100.0, "subset": "training", "recipe_type": "101", "video_url": "u",
            "annotations": annotations, **extra}


@pytest.mark.parametrize("database, message", [
    ({"v1": video([{"segment": [5, 3], "id": 0, "sentence": "x"}])},
     r"video 'v1', annotation 0: 'segment' must be \[start, end\] seconds with 0 <= start < end, got \[5, 3\]"),
    ({"v1": video([{"segment": [1, 3], "id": 0, "sentence": " "}])}, r"video 'v1', annotation 0: 'sentence' must be"),
    ({"v1": video([], subset="train")}, r"video 'v1': 'subset' must be one of"),
    ({"v1": {"subset": "training", "annotations": []}}, r"video 'v1': missing 'duration'"),
    ({"v1": video([{"segment": [1, float("nan")], "sentence": "a"}])}, r"video 'v1', annotation 0: 'segment' must "),
    # COIN's reader shares these checks but takes both (annotation_file): YouCook2's rules are stricter
    ({"v1": video([{"segment": [3, 3], "id": 0, "sentence": "x"}])}, r"video 'v1', annotation 0: 'segment' must be "
                                                                     r"\[start, end\] seconds with 0 <= start < end"),
    ({"v1": video([], duration=0)}, r"video 'v1': 'duration' must be a number of seconds > 0, got 0"),
])
def test_bad_annotation_records_name_file_video_and_annotation(tmp_path, database, message):
    path = tmp_path / "ann.json"
    path.write_text(json.dumps({"database": database}))
    with pytest.raises(DataError, match=f"{path}: " + message):
        read_annotations(path)


def test_bad_annotation_files(tmp_path):
    with pytest.raises(DataError, match="YouCook2 annotation file not found"):
        read_annotations(tmp_path / "missing.json")
    (tmp_path / "t.json").write_text("{\"database\": {\"a\": 1, \"a\": 2}}")
    with pytest.raises(DataError, match="not a JSON file .*'a' appears twice"):
        read_annotations(tmp_path / "t.json")
    (tmp_path / "l.json").write_text("[]")
    with pytest.raises(DataError, match="expected .*database"):
        read_annotations(tmp_path / "l.json")


@pytest.mark.parametrize("body, message", [
    ("video_id,start,end,text\n", r"expected the header 'end,start,task,text,video_id'"),
    ("end,start,task,text,video_id\n60,47,226,pick\n", r":2: expected 5 fields"),
    ("end,start,task,text,video_id\n60,x,226,pick,v\n", r":2: start/end must be seconds"),
    ("end,start,task,text,video_id\n40,47,226,pick,v\n", r":2: need 0 <= start < end, got start 47, end 40"),
    ("end,start,task,text,video_id\n60,47,226,,v\n", r":2: empty text"),
    ("end,start,task,text,video_id\n60,47,226,a,v\n\n60,47.0,226,a,v\n", r":4: the clip v_47.00_60.00 \('a'\) is "
                                                                          r"listed twice \(first on line 2\)"),
    ("end,start,task,text,video_id\n", r"no clips"),
])
def test_bad_retrieval_rows_name_file_and_line(tmp_path, body, message):
    path = tmp_path / "validation_youcook.csv"
    path.write_text(body)
    with pytest.raises(DataError, match=message):
        read_retrieval_csv(path)


def test_retrieval_row_without_an_annotated_segment(tmp_path, demo):
    out, _ = demo
    videos = read_annotations(out / "youcookii_annotations_trainval.json")
    vid = next(iter(videos))
    path = tmp_path / "v.csv"
    path.write_text(f"end,start,task,text,video_id\n9999,9998,101,x,{vid}\n")
    with pytest.raises(DataError, match=rf"v.csv:2: no annotated segment \[9998, 9999\] of video '{vid}'"):
        read_retrieval_csv(path, videos)
