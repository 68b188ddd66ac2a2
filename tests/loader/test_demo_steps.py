"""tools/demo_steps.py: COIN and CrossTask corpora in the official layouts, read back by the
readers, with their extremes present and something to learn (pure numpy checks)."""

import json
import math

import numpy as np
import pytest

from paddlevideo.loader.steps import coin, crosstask
from paddlevideo.loader.steps.seconds import read_seconds, window_inputs
from paddlevideo.loader.steps.windows import window_starts
from paddlevideo.metrics.coin import COINFrameAccuracy
from paddlevideo.metrics.crosstask import CrossTaskRecall, localize, uniform_assignment
from paddlevideo.utils.errors import DataError
from tools.demo_steps import make_coin_demo, make_crosstask_demo


def features(out, vid):
    return read_seconds(out / "features" / f"{vid}.npz")


def test_coin_layout_reads_back_with_its_extremes(coin_demo):
    out, info = coin_demo
    videos = coin.read_coin(out / "COIN.json")
    assert len(videos) == info["videos"] == 60 and info["testing"] > 0 and info["training"] > 0
    classes = coin.step_classes(videos)
    assert info["num_classes"] == len(classes) + 1 and sorted(classes.values()) == list(range(1, len(classes) + 1))
    kinds = info["kinds"]
    assert all(len(videos[v].segments) > math.ceil(videos[v].duration) for v in kinds["short"])
    assert any(coin.overlapped_seconds(videos[v]) for v in kinds["overlap"])
    assert all([s.start for s in videos[v].segments] != sorted(s.start for s in videos[v].segments)
               for v in kinds["shuffled"] if len(videos[v].segments) > 1)
    assert all(videos[v].segments[-1].end > videos[v].duration for v in kinds["past_end"])
    assert all(videos[v].segments[0].start == videos[v].segments[0].end for v in kinds["zero_length"])
    assert all(not videos[v].segments for v in kinds["unannotated"])
    missing = set(info["no_features"])
    assert missing and {p.stem for p in (out / "features").glob("*.npz")} == set(videos) - missing


def test_coin_features_follow_the_reader_labels(coin_demo):
    out, info = coin_demo
    videos = coin.read_coin(out / "COIN.json")
    classes = coin.step_classes(videos)
    no_frame = 0
    for vid in set(videos) - set(info["no_features"]):
        f = features(out, vid)
        seconds = len(f["action"])
        assert seconds in (math.floor(videos[vid].duration), math.ceil(videos[vid].duration))
        assert f["regions"].shape == (seconds, info["max_regions"], 16) and f["action"].dtype == np.float32
        empty = f["region_count"] == 0
        assert not f["regions"][empty].any() and not f["boxes"][empty].any()
        assert f["boxes"].shape == (seconds, info["max_regions"], 4)
        assert (f["boxes"][..., 2] <= f["image_w"]).all() and (f["boxes"][..., 3] <= f["image_h"]).all()
        no_frame += int(empty.sum())
    assert no_frame > 0  # seconds with no frame occur
    f = features(out, vid)
    for start in window_starts(len(f["action"]), 5, 2):  # every second has its action slot in some window
        w = window_inputs(f, int(start), 5, 7)
        seconds = slice(start, start + int(w["action_mask"].sum()))
        assert np.array_equal(w["action_feat"][:seconds.stop - start], f["action"][seconds])
        assert w["image_mask"].sum() == 1 + f["region_count"][seconds].sum()  # the global + every box (<= 3 <= 7)
    # Nearest class mean of the action features, fitted on training videos, on the test seconds.
    def seconds_of(subset):
        rows = [(features(out, v)["action"], coin.second_labels(videos[v], classes, len(features(out, v)["action"])))
                for v in videos if videos[v].subset == subset and v not in info["no_features"]]
        return rows
    train = seconds_of("training")
    x, y = np.concatenate([r[0] for r in train]), np.concatenate([r[1] for r in train])
    means = {c: x[y == c].mean(0) for c in np.unique(y)}
    names = list(means)
    metric = COINFrameAccuracy()
    for i, (feats, labels) in enumerate(seconds_of("testing")):
        dist = np.stack([((feats - means[c]) ** 2).sum(1) for c in names], 1)
        metric.update(str(i), np.asarray(names)[dist.argmin(1)], labels)
    m = metric.accumulate()
    assert m["non_background_accuracy"] > 80 and m["frame_accuracy"] > m["background_baseline"]


def test_coin_demo_is_deterministic_and_refuses_foreign_folders(coin_demo, tmp_path):
    out, info = coin_demo
    again = tmp_path / "again"
    assert make_coin_demo(str(again), seed=5, num_videos=60, feature_dim=16) == info
    assert (again / "COIN.json").read_bytes() == (out / "COIN.json").read_bytes()
    small = make_coin_demo(str(again), seed=6, num_videos=10, feature_dim=16)  # its own corpus: replaced
    kept = set(coin.read_coin(again / "COIN.json")) - set(small["no_features"])
    assert {p.stem for p in (again / "features").glob("*.npz")} == kept and len(kept) == 10  # none of the 60 left
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(DataError, match="not empty and not a coin demo corpus"):
        make_coin_demo(str(tmp_path / "mine"))
    with pytest.raises(DataError, match="not empty and not a crosstask demo corpus"):
        make_crosstask_demo(str(again))
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"


def test_crosstask_layout_split_and_extremes(crosstask_demo):
    out, info = crosstask_demo
    root = out / "crosstask_release"
    tasks = crosstask.read_tasks(root / "tasks_primary.txt")
    assert tuple(tasks) == crosstask.PRIMARY_TASKS
    rows = crosstask.read_videos(root / "videos.csv")
    assert {t for t, _, _ in rows} == set(crosstask.PRIMARY_TASKS) | {"99999"}
    split = crosstask.draw_split(root, seed=1, n_train=3)
    assert split["dropped_validation"] == sorted(info["validation"])
    assert split["no_annotation"] == sorted(info["kinds"]["no_annotation"])
    assert all(len(split["train"][t]) == 3 and len(split["test"][t]) == 4 for t in tasks)
    for name in info["kinds"]["short"]:
        task, vid = name.split("_", 1)
        k = len(tasks[task].steps)
        ann = crosstask.read_annotation(crosstask.annotation_path(root, task, vid), k)
        if name not in info["kinds"]["no_features"]:
            assert len(features(out, vid)["action"]) < k
        assert ann[:, 2].max() < k
    shuffled = [crosstask.read_annotation(crosstask.annotation_path(root, *n.split("_", 1)), 6)
                for n in info["kinds"]["shuffled"]]
    assert any((np.diff(a[:, 1]) < 0).any() for a in shuffled)
    repeated = [crosstask.read_annotation(crosstask.annotation_path(root, *n.split("_", 1)), 6)
                for n in info["kinds"]["repeated"]]
    assert all(len(np.unique(a[:, 0])) < len(a) for a in repeated)


def test_crosstask_demo_localizes_above_the_uniform_baseline(crosstask_demo):
    out, info = crosstask_demo
    root = out / "crosstask_release"
    tasks = crosstask.read_tasks(root / "tasks_primary.txt")
    split = crosstask.draw_split(root, seed=1, n_train=3)
    missing = set(info["kinds"]["no_features"])

    def load(task, vid):
        k = len(tasks[task].steps)
        action = features(out, vid)["action"]
        ann = crosstask.read_annotation(crosstask.annotation_path(root, task, vid), k)
        return action, crosstask.step_matrix(ann, k, len(action))

    model, baseline, short = CrossTaskRecall(tasks), CrossTaskRecall(tasks), 0
    for task in tasks:
        train = [load(task, v) for v in split["train"][task] if f"{task}_{v}" not in missing]
        x = np.concatenate([a for a, _ in train])
        y = np.concatenate([t for _, t in train])
        means = np.stack([x[y[:, k]].mean(0) if y[:, k].any() else x.mean(0) for k in range(y.shape[1])])
        for vid in split["test"][task]:
            if f"{task}_{vid}" in missing:
                continue
            action, truth = load(task, vid)
            scores = -((action[:, None, :] - means[None]) ** 2).sum(-1)  # [T, K]
            model.update(task, vid, localize(scores, vid), truth)
            baseline.update(task, vid, uniform_assignment(*truth.shape), truth)
            short += truth.shape[0] < truth.shape[1]
    learned, uniform = model.accumulate(), baseline.accumulate()
    assert learned["recall"] > uniform["recall"] + 20
    assert len(learned["short_videos"]) == short


def test_info_file_is_written(crosstask_demo):
    out, info = crosstask_demo
    assert json.loads((out / "demo_info.json").read_text()) == info and info["task"] == "crosstask"
