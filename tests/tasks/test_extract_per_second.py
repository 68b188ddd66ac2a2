"""Raw videos -> ``tools/extract_features.py --per_second --smoke`` -> the step datasets.

Two short videos named as COIN / CrossTask (YouTube) ids: one of 3.4 s at 15 fps (4 seconds,
the last partial) and one of 0.6 s (a single second, shorter than an action window). The
records must be what ``read_seconds`` reads and what COINDataset and CrossTaskDataset turn
into windows.
"""

import json

import numpy as np
import pytest

from paddlevideo.extraction.seconds import SECONDS_PER_PASS, plan_second, second_count
from paddlevideo.extraction.smoke import SMOKE_FEATURE_DIM
from paddlevideo.loader.dataset.coin_dataset import COINDataset
from paddlevideo.loader.dataset.crosstask_dataset import CrossTaskDataset
from paddlevideo.loader.steps.seconds import read_seconds
from paddlevideo.loader.store.synthetic import write_video
from tools import extract_features

IDS = {"longvid0001": 3.4, "shortvid001": 0.6}


@pytest.fixture(scope="module")
def extracted(tmp_path_factory):
    """(output folder, video folder) of one per-second smoke extraction."""
    tmp = tmp_path_factory.mktemp("per_second")
    videos = tmp / "videos"
    videos.mkdir()
    for seed, (vid, seconds) in enumerate(IDS.items()):
        write_video(videos / f"{vid}.mp4", seconds=seconds, fps=15, seed=seed)
    out = tmp / "out"
    status = extract_features.main([str(videos), "--out", str(out), "--smoke", "--per_second", "--no_progress",
                                    "--boxes_per_second", "3"])
    assert status == 0
    return out, videos


def test_records_have_one_row_per_second(extracted):
    out, _ = extracted
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == ["extraction.json", "progress.lmdb",
                                                                                  "seconds"]
    for vid, seconds in IDS.items():
        record = read_seconds(out / "seconds" / f"{vid}.npz")
        T = second_count(seconds)
        assert record["action"].shape == (T, SMOKE_FEATURE_DIM)
        assert record["regions"].shape == (T, 3, SMOKE_FEATURE_DIM) and record["boxes"].shape == (T, 3, 4)
        assert (record["region_count"] >= 1).all() and (record["region_count"] <= 3).all()
        assert float(record["image_h"]) == 120 and float(record["image_w"]) == 160
        # padded box slots are exact zeros; real boxes lie inside the image
        for t, n in enumerate(record["region_count"]):
            assert not record["regions"][t, n:].any() and not record["boxes"][t, n:].any()
            assert (record["boxes"][t, :n, 2:] <= [160.5, 120.5]).all()
        assert np.abs(record["action"]).sum(axis=1).min() > 0  # every second has its window's feature
    assert second_count(3.4) == 4 and second_count(3.0) == 3 and second_count(0) == 0
    identity = json.loads((out / "extraction.json").read_text())["models"]
    assert identity["per_second"] == {"boxes_per_second": 3}


def test_second_plan_is_centred_and_inside_the_video():
    plan = plan_second(3, 3.4, 15)  # the partial last second [3, 3.4)
    assert plan.region_times == [pytest.approx(3.2)]
    times = plan.window_times[0]
    # the 16-frame window (1.07 s at 15 fps) is moved back to end with the video
    assert len(times) == 16 and times[-1] < 3.4 and times[0] == pytest.approx(3.4 - 16 / 15)
    short = plan_second(0, 0.6, 15).window_times[0]  # a video shorter than a window: its own frames only
    assert short[0] == 0 and len(short) == 9 and short[-1] < 0.6
    middle = plan_second(10, 60.0, 30).window_times[0]
    assert len(middle) == 16 and middle[0] + middle[-1] == pytest.approx(2 * 10.5 - 1 / 30)
    assert SECONDS_PER_PASS >= 1


def test_coin_dataset_reads_the_extraction(extracted, tmp_path):
    out, _ = extracted
    coin = {"database": {
        "longvid0001": {"duration": 3.4, "subset": "testing", "annotation": [{"id": "7", "segment": [1.2, 2.5]}]},
        "shortvid001": {"duration": 0.6, "subset": "testing", "annotation": []},
        "nofeatures1": {"duration": 9.0, "subset": "testing", "annotation": [{"id": "3", "segment": [0, 1]}]}}}
    (tmp_path / "COIN.json").write_text(json.dumps(coin))
    (tmp_path / "vocab.txt").write_text("[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\n")
    ds = COINDataset(tmp_path / "COIN.json", out / "seconds", tmp_path / "vocab.txt", subset="testing",
                     stride=2, boxes_per_second=3)
    assert ds.video_ids == ["longvid0001", "shortvid001"] and ds.missing == ["nofeatures1"]
    inputs, starts, labels = ds.video(0)
    assert starts.tolist() == [0] and labels.tolist() == [0, 2, 2, 0]  # id 7 is class 2 (ids 3, 7)
    assert inputs["action_feat"].shape == (1, 5, SMOKE_FEATURE_DIM)
    assert inputs["action_mask"].tolist() == [[1, 1, 1, 1, 0]]
    assert inputs["image_feat"].shape == (1, 16, SMOKE_FEATURE_DIM)
    item = ds[1]  # the one-second video
    assert item["labels"].tolist() == [0, -1, -1, -1, -1] and item["text_ids"].tolist() == [2, 3]


def test_crosstask_dataset_reads_the_extraction(extracted, tmp_path):
    out, _ = extracted
    root = tmp_path / "crosstask_release"
    (root / "annotations").mkdir(parents=True)
    (root / "tasks_primary.txt").write_text("16815\nJack Up a Car\nhttp://x\n2\nlift car,lower car\n")
    (root / "videos.csv").write_text("16815,longvid0001,u\n16815,shortvid001,u\n")
    (root / "videos_val.csv").write_text("")
    (root / "annotations" / "16815_longvid0001.csv").write_text("1,0.5,1.5\n2,2.2,3.0\n")
    (root / "annotations" / "16815_shortvid001.csv").write_text("2,0.0,0.4\n")
    (tmp_path / "vocab.txt").write_text("[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nlift\nlower\ncar\n")
    common = dict(root=root, features_dir=out / "seconds", vocab_file=tmp_path / "vocab.txt", n_train=1, seed=3,
                  split_file=tmp_path / "split.json", boxes_per_second=3, max_seq_length=5)
    with pytest.raises(Exception, match="tasks_primary.txt: no task"):
        CrossTaskDataset(**common, part="test")  # the 18 primary tasks are required by default
    # one task only: the split of the real release needs all 18, a test may name its own
    from paddlevideo.loader.steps import crosstask

    split = crosstask.draw_split(root, seed=3, n_train=1, tasks=("16815",))
    crosstask.write_split(split, tmp_path / "split.json")
    test = CrossTaskDataset(**common, part="test")
    train = CrossTaskDataset(**common, part="train")
    assert len(test.videos) == len(train.videos) == 1 and test.videos != train.videos
    windows, texts, truth, task = test.video(0)
    assert task == "16815" and texts["text_ids"].shape == (2, 5)
    assert windows["action_feat"].shape == (truth.shape[0], 5, SMOKE_FEATURE_DIM) and truth.shape[1] == 2
    for i in range(len(train)):
        item = train[i]
        assert item["step_mask"].tolist() == [1, 1] and item["label"] in (0, 1)


def test_passes_of_seconds_give_the_record_of_one_pass(tmp_path, monkeypatch):
    """A 12 s video is decoded in two passes (the second one seeks): the record equals the one
    decoded in a single pass (the same frames; the detector's batches differ, hence 1e-5)."""
    from paddlevideo.extraction import seconds as seconds_module

    (tmp_path / "videos").mkdir()
    write_video(tmp_path / "videos" / "twelvesecs1.mp4", seconds=12, fps=5, height=64, width=96, seed=4)
    records = []
    for per_pass in (10, 100):
        monkeypatch.setattr(seconds_module, "SECONDS_PER_PASS", per_pass)
        out = tmp_path / f"out{per_pass}"
        assert extract_features.main([str(tmp_path / "videos"), "--out", str(out), "--smoke", "--per_second",
                                      "--no_progress"]) == 0
        records.append(read_seconds(out / "seconds" / "twelvesecs1.npz"))
    assert len(records[0]["action"]) == 12 and (records[0]["region_count"] > 0).all()
    np.testing.assert_array_equal(records[0]["region_count"], records[1]["region_count"])
    for key in ("action", "regions", "boxes"):
        np.testing.assert_allclose(records[0][key], records[1][key], rtol=1e-5, atol=1e-5)
