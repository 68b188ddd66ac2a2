"""MSR-VTT fine-tuning data: MSRVTT_data.json + split list + features LMDB, and the MC files."""

import json

import numpy as np
import pytest

from paddlevideo.loader.dataset.msrvtt_dataset import write_msrvtt_lmdb
from paddlevideo.loader.dataset.msrvtt_mc_dataset import MSRVTTMCDataset, read_mc_questions
from paddlevideo.loader.dataset.msrvtt_train_dataset import MSRVTTTrainDataset
from paddlevideo.utils.errors import ConfigError, DataError

DIM = 8


def record(rng, boxes, actions):
    return {"image_h": 240, "image_w": 320, "features": rng.random((boxes, DIM)).astype(np.float32),
            "boxes": np.tile(np.array([[0, 0, 100, 80]], np.float32), (boxes, 1)),
            "action_features": rng.random((actions, DIM)).astype(np.float32)}


def write_set(tmp_path, videos, in_lmdb=None, captions_per_video=3, split=None):
    """videos: ids; in_lmdb: those with features (default all). Box counts 1..36, actions 1..5."""
    rng = np.random.default_rng(0)
    in_lmdb = videos if in_lmdb is None else in_lmdb
    write_msrvtt_lmdb(tmp_path / "feat.lmdb",
                      {v: record(rng, 1 + (7 * i) % 36, 1 + i % 5) for i, v in enumerate(in_lmdb)})
    sentences = [{"video_id": v, "caption": f"caption {c} of {v} " + "word " * (c * 20), "sen_id": 100 - c}
                 for v in videos for c in range(captions_per_video)]
    (tmp_path / "data.json").write_text(json.dumps({"info": {}, "sentences": sentences}))
    (tmp_path / "split.csv").write_text("video_id,extra\n" + "".join(f"{v},x\n" for v in (split or videos)))
    return tmp_path


def build(tmp_path, vocab_file, **kw):
    args = dict(captions_path=tmp_path / "data.json", split_path=tmp_path / "split.csv",
                features_path=tmp_path / "feat.lmdb", vocab_file=vocab_file, max_seq_length=12)
    args.update(kw)
    return MSRVTTTrainDataset(**args)


def test_every_caption_is_a_positive_and_holdout_is_disjoint(tmp_path, vocab_file):
    videos = [f"video{i}" for i in range(10)]
    write_set(tmp_path, videos)
    train = build(tmp_path, vocab_file, holdout_videos=3)
    held = build(tmp_path, vocab_file, holdout_videos=3, part="holdout")
    assert train.num_videos == 7 and train.num_queries == 21 and train.default_metric is None
    assert held.video_ids == videos[7:] and held.num_queries == 3 and held.default_metric == "MSRVTTMetric"
    # the held-out caption is the lowest sen_id (sen_id 98 = caption 2 here), as the 1k-A list takes one per video
    assert held.captions[0].startswith("caption 2 of video7")
    sample = train[4]  # caption 1 of video1 (video1: 8 boxes, 2 actions)
    assert int(sample["video_index"]) == 1 and sample["text_ids"].shape == (12,)
    assert sample["text_mask"].sum() == 12  # a long caption is cut to max_seq_length
    assert sample["image_feat"].shape == (36, DIM) and sample["image_mask"].sum() == 9  # global + 8 boxes
    assert sample["action_feat"].shape == (5, DIM) and np.all(sample["action_feat"][2:] == 0)


def test_set_negatives_and_masked_text(tmp_path, vocab_file):
    write_set(tmp_path, [f"video{i}" for i in range(6)], captions_per_video=2)
    data = build(tmp_path, vocab_file, negatives_per_sample=5, mask_text=True)
    np.random.seed(3)
    for i in range(len(data)):
        sample = data[i]
        own = int(sample["video_index"])
        assert sorted(sample["neg_video_index"].tolist()) == sorted(set(range(6)) - {own})  # all the others
        assert sample["neg_text_ids"].shape == (5, 12) and sample["neg_image_feat"].shape == (5, 36, DIM)
        for k, v in enumerate(sample["neg_video_index"]):  # each drawn caption belongs to its drawn video
            assert data.query_video_index[list(map(tuple, data._text["text_ids"])).index(
                tuple(sample["neg_text_ids"][k]))] == v
        assert "text_labels" in sample and sample["masked_text_ids"].shape == (12,)
    with pytest.raises(ConfigError, match="negatives_per_sample 6 is larger than the 5 other videos"):
        build(tmp_path, vocab_file, negatives_per_sample=6)


def test_features_from_the_project_store(tmp_path, vocab_file):
    from paddlevideo.loader.store.lmdb_store import StoreWriter
    from paddlevideo.loader.store.synthetic import random_clip

    videos = [f"video{i}" for i in range(4)]
    write_set(tmp_path, videos)
    rng = np.random.default_rng(1)
    clips = []
    with StoreWriter(tmp_path / "store", top_k=4, max_shard_bytes=1 << 20, commit_every=2) as writer:
        for i, vid in enumerate(reversed(videos)):  # stored in another order than the list
            clip = random_clip(rng, i, feature_size=DIM, num_classes=10, action_feature_size=DIM)
            clip.clip_id = vid
            clips.append(clip)
            writer.add(clip)
    data = build(tmp_path, vocab_file, features_path=tmp_path / "store")
    sample = data[3 * 1]  # first caption of video1 = the third clip written
    clip = clips[2]
    n = min(clip.n_boxes, 35)
    np.testing.assert_allclose(sample["image_feat"][1 : n + 1], clip.image_feature[:n].astype(np.float16), rtol=1e-3)
    assert sample["image_mask"].sum() == n + 1
    write_set(tmp_path, videos + ["video9"], in_lmdb=videos)
    with pytest.raises(DataError, match=r"1 of 5 videos are not in the features LMDB .*store.*\(video9\)"):
        build(tmp_path, vocab_file, features_path=tmp_path / "store")


def test_missing_videos_are_counted_and_named(tmp_path, vocab_file):
    videos = [f"video{i}" for i in range(8)]
    write_set(tmp_path, videos, in_lmdb=videos[:3])
    with pytest.raises(DataError, match=r"split.csv: 5 of 8 videos are not in the features LMDB .*\(video3, video4, "
                                        r"video5, \.\.\.\); set skip_bad_records"):
        build(tmp_path, vocab_file)
    data = build(tmp_path, vocab_file, skip_bad_records=True)
    assert data.video_ids == videos[:3] and data.num_queries == 9


def test_bad_caption_files(tmp_path, vocab_file):
    write_set(tmp_path, ["video0", "video1"], split=["video0", "video1", "video9"])
    with pytest.raises(DataError, match=r"1 of 3 videos have no caption in .*data.json \(video9\)"):
        build(tmp_path, vocab_file)
    (tmp_path / "data.json").write_text(json.dumps({"videos": []}))
    with pytest.raises(DataError, match="expected MSRVTT_data.json with a 'sentences' list, got videos"):
        build(tmp_path, vocab_file)
    (tmp_path / "split.csv").write_text("vid\nvideo0\n")
    with pytest.raises(DataError, match="no 'video_id' column"):
        build(tmp_path, vocab_file)


def test_sen_ids_mixing_ints_and_digit_strings_sort_by_number(tmp_path):
    """A file mixing 9 and "10" was a TypeError from the sort; a string of digits is that number."""
    from paddlevideo.loader.dataset.msrvtt_train_dataset import read_sentences

    sentences = [{"video_id": "video0", "caption": c, "sen_id": s} for c, s in
                 (("ten", "10"), ("nine", 9), ("eleven", " 11 "), ("two", "2"))]
    sentences.append({"video_id": "video1", "caption": "no sen_id: its position"})
    (tmp_path / "data.json").write_text(json.dumps({"sentences": sentences}))
    read = read_sentences(tmp_path / "data.json")
    assert read == {"video0": [(2, "two"), (9, "nine"), (10, "ten"), (11, "eleven")],
                    "video1": [(4, "no sen_id: its position")]}
    sentences[1]["sen_id"] = "9th"
    (tmp_path / "data.json").write_text(json.dumps({"sentences": sentences}))
    with pytest.raises(DataError, match=r"data.json: sentences\[1\] \(video 'video0'\): 'sen_id' must be an "
                                        r"integer \(or a string of digits\), got str '9th'$"):
        read_sentences(tmp_path / "data.json")


# ---------------------------------------------------------------------------- multiple choice

MC = [("video0", ["a dog runs", "a cat sleeps", "a man cooks", "a car drives", "a girl sings"], 2),
      ("video1", ["one", "two", "three", "four", "five"], 0)]


def write_mc(tmp_path, layout):
    if layout == "csv":  # JSFusion's MSR_MC_test.csv: tab-separated, msr<N> video keys
        rows = ["key\tvid_key\ta1\ta2\ta3\ta4\ta5\tanswer"]
        rows += [f"mc{n}\t{v.replace('video', 'msr')}\t" + "\t".join(c) + f"\t{a}" for n, (v, c, a) in enumerate(MC)]
        path = tmp_path / "MSR_MC_test.csv"
        path.write_text("\n".join(rows) + "\n")
    elif layout == "json":  # ClipBERT / VindLU
        path = tmp_path / "msrvtt_mc_test.json"
        path.write_text(json.dumps([{"video": f"{v}.mp4", "caption": c, "answer": a} for v, c, a in MC]))
    else:  # JSONL
        path = tmp_path / "msrvtt_mc_test.jsonl"
        path.write_text("".join(json.dumps({"clip_name": v, "options": c, "answer": a, "qid": f"q{n}"}) + "\n"
                                for n, (v, c, a) in enumerate(MC)))
    return path


@pytest.mark.parametrize("layout", ["csv", "json", "jsonl"])
def test_mc_layouts_read_alike(tmp_path, vocab_file, layout):
    write_set(tmp_path, ["video0", "video1"])
    data = MSRVTTMCDataset(write_mc(tmp_path, layout), tmp_path / "feat.lmdb", vocab_file, max_seq_length=12)
    assert data.num_questions == 2 and data.num_choices == 5 and data.answers.tolist() == [2, 0]
    assert data.video_ids == ["video0", "video1"] and data.question_video.tolist() == [0, 1]
    assert data.captions[7] == "three" and data.pairs()[7].tolist() == [7, 1]


def test_mc_bad_answer_index_and_missing_video(tmp_path, vocab_file):
    path = tmp_path / "msrvtt_mc_test.jsonl"
    path.write_text(json.dumps({"clip_name": "video0", "options": MC[0][1], "answer": 5}) + "\n")
    with pytest.raises(DataError, match=r"msrvtt_mc_test.jsonl:1: answer index 5 is out of range 0..4"):
        read_mc_questions(str(path))
    write_set(tmp_path, ["video0"])
    with pytest.raises(DataError, match="names video 'video1', which is not in the features LMDB"):
        MSRVTTMCDataset(write_mc(tmp_path, "json"), tmp_path / "feat.lmdb", vocab_file)
