"""COINDataset and CrossTaskDataset on small demo corpora (tools/demo_steps.py): windows,
labels on the readers' rules, the videos without features named, the split recorded."""

import json
import re

import numpy as np
import pytest

from paddlevideo.loader.builder import build_dataset
from paddlevideo.loader.steps import coin, crosstask
from paddlevideo.loader.steps.seconds import centred_start, read_seconds
from paddlevideo.utils.errors import ConfigError, DataError


def coin_set(out, **kw):
    cfg = {"format": "COINDataset", "file_path": str(out / "COIN.json"), "features_dir": str(out / "features"),
           "vocab_file": str(out / "vocab.txt"), "boxes_per_second": 2, **kw}
    return build_dataset(cfg)


def test_coin_windows_carry_the_labels_of_their_seconds(coin_demo):
    out, info = coin_demo
    ds = coin_set(out, subset="training")
    videos = coin.read_coin(out / "COIN.json")
    classes = coin.step_classes(videos)
    assert ds.num_classes == info["num_classes"] == len(classes) + 1
    wanted = [v for v, r in videos.items() if r.subset == "training"]
    assert sorted(ds.video_ids + ds.missing) == sorted(wanted)
    assert set(ds.missing) == set(info["no_features"]) & set(wanted) and ds.missing
    seen = {}
    for i in range(len(ds)):
        j, start = ds._index[i]
        item = ds[i]
        T = ds.seconds(j)
        expected = coin.second_labels(videos[ds.video_ids[j]], classes, T)[start:start + 5]
        assert item["labels"][:len(expected)].tolist() == expected.tolist()
        assert (item["labels"][len(expected):] == -1).all()
        assert item["action_mask"].sum() == len(expected)
        assert item["image_feat"].shape == (11, 16) and item["region_second"].shape == (10,)
        seen.setdefault(int(j), []).append(int(start))
    for j, starts in seen.items():  # every second of every video in exactly one training window
        assert starts == list(range(0, max(ds.seconds(j) - 5, 0) + 1, 5)) + (
            [ds.seconds(j) - 5] if ds.seconds(j) > 5 and (ds.seconds(j) - 5) % 5 else [])


def test_coin_test_video_windows_cover_every_second(coin_demo):
    out, _ = coin_demo
    ds = coin_set(out, subset="testing", stride=2)
    for j in range(len(ds.videos)):
        inputs, starts, labels = ds.video(j)
        record = read_seconds(out / "features" / f"{ds.video_ids[j]}.npz")
        assert len(labels) == len(record["action"]) and len(starts) == len(inputs["action_feat"])
        covered = np.zeros(len(labels), bool)
        for s in starts:
            covered[s:s + 5] = True
        assert covered.all()
        assert inputs["text_ids"].shape == (len(starts), 2)


@pytest.mark.parametrize("kw, expected", [
    ({"subset": "validation"}, "subset must be one of training, testing"),
    ({"stride": 6}, "stride 6 is larger than window_size 5"),
    ({"window_size": 0}, "window_size must be a whole number >= 1, got 0"),
    ({"boxes_per_second": -1}, "boxes_per_second must be a whole number >= 1, got -1"),
    ({"features_dir": "/nonexistent"}, "no training video has per-second features in /nonexistent"),
    ({"vision_feature_dim": 32}, "regions features of size 16, but 32 expected"),
])
def test_coin_bad_settings(coin_demo, kw, expected):
    out, _ = coin_demo
    with pytest.raises((ConfigError, DataError), match=re.escape(expected)):
        ds = coin_set(out, **kw)
        ds[0]


def test_crosstask_split_recorded_and_items_labelled(crosstask_demo, tmp_path):
    out, info = crosstask_demo
    common = {"format": "CrossTaskDataset", "root": str(out / "crosstask_release"),
              "features_dir": str(out / "features"), "vocab_file": str(out / "vocab.txt"), "n_train": 3,
              "split_file": str(tmp_path / "split.json"), "boxes_per_second": 2, "max_seq_length": 6, "max_steps": 7}
    train = build_dataset({**common, "part": "train"})
    split = json.loads((tmp_path / "split.json").read_text())
    assert split["seed"] == 0 and all(len(v) == 3 for v in split["train"].values())
    assert set(split["dropped_validation"]) == set(info["validation"])
    test = build_dataset({**common, "part": "test"}, where="DATASET.test")
    assert not set(train.video_ids) & set(test.video_ids)
    assert len(train.missing) + len(test.missing) == sum(1 for k in info["kinds"]["no_features"]
                                                         if k.split("_", 1)[1] not in split["dropped_validation"])
    for i in range(0, len(train), 7):
        j, t, label = train._items[i]
        item = train[i]
        task, vid = train.videos[j]
        K = len(train.tasks[task].steps)
        assert item["step_mask"].tolist() == [1] * K + [0] * (7 - K)
        assert train.truth(j)[t, label] and not train.truth(j)[t, :label].any()
        assert item["step_text_ids"].shape == (7, 6) and not item["step_text_ids"][K:].any()
        T = train.features.num_seconds(vid)
        assert item["action_mask"].sum() == min(5, T) and centred_start(t, T, 5) <= t
    windows, texts, truth, task = test.video(0)
    assert windows["action_feat"].shape[0] == truth.shape[0] and texts["text_ids"].shape[0] == truth.shape[1]
    with pytest.raises(ConfigError, match="records the split of seed 0, n_train 3, not seed 1"):
        build_dataset({**common, "part": "test", "seed": 1})
    with pytest.raises(ConfigError, match="max_steps 2 is below a task's"):
        build_dataset({**common, "part": "test", "max_steps": 2})
    with pytest.raises(DataError, match="read per video"):
        test[0]


def test_centred_start():
    assert [centred_start(t, 9, 5) for t in range(9)] == [0, 0, 0, 1, 2, 3, 4, 4, 4]
    assert [centred_start(t, 3, 5) for t in range(3)] == [0, 0, 0]
    assert crosstask.N_TRAIN == 30

