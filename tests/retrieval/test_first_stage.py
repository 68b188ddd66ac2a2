"""The first stage (dual encoder): its objectives against hand-computed values, its training on a
planted ranking, NumPy inference equal to the towers, and its file tied to the teacher's hash."""

import math

import numpy as np
import paddle
import pytest

from paddlevideo.retrieval.first_stage import (
    FirstStage,
    FirstStageSettings,
    Tower,
    _tower_numpy,
    in_batch_contrastive,
    listwise_kl,
    load_first_stage,
    mine_candidates,
    recall_of_top,
    save_first_stage,
    text_features,
    train_first_stage,
    video_features,
)
from paddlevideo.utils.errors import ConfigError, DataError, WeightsError

TEACHER = "ab" * 32


def sigmoid(x):
    return 1.0 / (1.0 + math.exp(-x))


def test_listwise_kl_equals_the_hand_computed_divergence():
    # Row 1: teacher [2, 0] at T_t = 1 -> p = (s(2), s(-2)); student equal scores -> q = (1/2, 1/2).
    # Row 2: teacher [0, 0] -> p = (1/2, 1/2); student [0.5, -0.5] at T_s = 0.5 -> logits [1, -1]
    #        -> q = (s(2), s(-2)).  KL(p || q) = sum p log(p / q); the loss is the mean of the rows.
    p1, p2 = sigmoid(2), sigmoid(-2)
    row1 = p1 * math.log(p1 / 0.5) + p2 * math.log(p2 / 0.5)
    row2 = 0.5 * math.log(0.5 / p1) + 0.5 * math.log(0.5 / p2)
    student = paddle.to_tensor([[0.3, 0.3], [0.5, -0.5]])
    teacher = paddle.to_tensor([[2.0, 0.0], [0.0, 0.0]])
    got = float(listwise_kl(student, teacher, student_temperature=0.5, teacher_temperature=1.0))
    assert got == pytest.approx((row1 + row2) / 2, abs=1e-6)
    assert row1 == pytest.approx(0.327813, abs=1e-6)  # 0.880797 ln 1.761594 - 0.119203 ln(1 / 0.238406)
    # Same distribution (teacher / T_t == student / T_s): zero.
    same = listwise_kl(paddle.to_tensor([[0.1, 0.4, -0.2]]), paddle.to_tensor([[1.0, 4.0, -2.0]]), 0.1, 1.0)
    assert float(same) == pytest.approx(0.0, abs=1e-6)


def test_in_batch_contrastive_hand_case_and_copies_left_out():
    text = paddle.to_tensor([[1.0, 0.0], [0.0, 1.0]])
    video = paddle.to_tensor([[1.0, 0.0], [0.0, 1.0]])
    # logits [[1, 0], [0, 1]] at T = 1: each row -log(e / (e + 1)) = log(1 + e^-1).
    got = float(in_batch_contrastive(text, video, np.array([0, 1]), 1.0))
    assert got == pytest.approx(math.log(1 + math.exp(-1)), abs=1e-6)
    # The two rows are the same video: the other row is no negative, the loss is 0.
    assert float(in_batch_contrastive(text, video, np.array([7, 7]), 1.0)) == pytest.approx(0.0, abs=1e-6)


def test_features_read_cls_masked_means_and_pooled_action():
    hidden = np.arange(2 * 3 * 2, dtype=np.float32).reshape(2, 3, 2)
    mask = np.array([[1, 1, 0], [1, 0, 0]], np.float32)
    feats = text_features({"text_hidden": hidden, "text_mask_f": mask}, "basic")
    np.testing.assert_allclose(feats[0], [0, 1, 1, 2])  # [CLS] row (0, 1), mean of rows 0-1 (1, 2)
    np.testing.assert_allclose(feats[1], [6, 7, 6, 7])
    region = np.ones((1, 4, 2), np.float32) * np.array([1, 2, 3, 100], np.float32)[None, :, None]
    video = video_features({"region": region, "region_mask": np.array([[1, 1, 1, 0]]),
                            "pooled_action": np.array([[5.0, 6.0, 7.0]])}, "basic")
    np.testing.assert_allclose(video[0], [1, 1, 2, 2, 5, 6, 7])  # padded region 100 ignored


def test_pooled_features_add_the_max_the_additions_to_the_text_and_the_action_queries():
    hidden = np.array([[[1, 5], [3, -1], [9, 9]]], np.float32)  # row 2 padded
    text = {"text_hidden": hidden, "text_mask_f": np.array([[1, 1, 0]], np.float32)}
    # [CLS] (1, 5), mean (2, 2), max (3, 5): the padded row's 9s ignored.
    np.testing.assert_allclose(text_features(text, "pooled")[0], [1, 5, 2, 2, 3, 5])
    region = np.array([[[50, 50], [1, 7], [4, 2], [99, 99]]], np.float32)  # global row, 2 boxes, 1 padded
    videos = {"region": region, "region_mask": np.array([[1, 1, 1, 0]]), "pooled_action": np.array([[5.0]]),
              "to_text_k": np.array([[[1.0], [2.0]]]), "to_text_v": np.array([[[3.0], [4.0]]]),
              "action_queries": np.array([[[[2.0], [6.0]], [[100.0], [100.0]]]])}  # [V, C, A, Hb]
    # basic (global 50 50, mean of the 3 real rows 55/3 59/3, action 5), max of the boxes only (4, 7),
    # to_text_k per slot (1, 2), to_text_v (3, 4), mean of connection 0's queries (4).
    want = [50, 50, 55 / 3, 59 / 3, 5, 4, 7, 1, 2, 3, 4, 4]
    np.testing.assert_allclose(video_features(videos, "pooled")[0], want, rtol=1e-6)
    # A video whose only rows are padded: zeros, not -inf.
    empty = dict(videos, region_mask=np.array([[1, 0, 0, 0]]))
    assert np.isfinite(video_features(empty, "pooled")).all()
    with pytest.raises(ConfigError, match="FIRST_STAGE.features"):
        FirstStageSettings.from_config({"features": "attention"})


def test_numpy_inference_equals_the_tower():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(5, 6)).astype(np.float32)
    paddle.seed(1)
    tower = Tower(x.mean(0), x.std(0), hidden=8, dim=4).eval()
    want = tower(paddle.to_tensor(x)).numpy()
    np.testing.assert_allclose(_tower_numpy(tower.arrays("t."), "t.", x), want, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(want, axis=1), 1.0, atol=1e-5)


def test_candidates_put_the_own_video_first_and_never_repeat():
    rng = np.random.default_rng(0)
    settings = FirstStageSettings(candidates=5, hard_fraction=0.5)
    pool = np.arange(3, 20)
    student = rng.normal(size=(4, len(pool)))
    cand = mine_candidates(np.array([3, 4, 5, 6]), student, pool, settings, rng, hard=True)
    assert cand.shape == (4, 5) and list(cand[:, 0]) == [3, 4, 5, 6]
    assert all(len(set(row)) == 5 and set(row) <= set(pool) for row in cand)
    hard = [v for v in pool[np.argsort(-student[0], kind="stable")] if v != 3][:2]
    assert list(cand[0, 1:3]) == hard


def planted(num_videos=120, per_video=2, dim=6, seed=0):
    """Captions and videos whose teacher score is a bilinear form of hidden factors, plus the teacher."""
    rng = np.random.default_rng(seed)
    factors = rng.normal(size=(num_videos, dim)).astype(np.float32)
    positives = np.repeat(np.arange(num_videos), per_video)
    text_hidden = factors[positives] + 0.05 * rng.normal(size=(len(positives), dim)).astype(np.float32)
    mix_t, mix_v = rng.normal(size=(dim, 10)), rng.normal(size=(dim, 12))  # features are mixtures of the factors
    text_feats, video_feats = (text_hidden @ mix_t).astype(np.float32), (factors @ mix_v).astype(np.float32)

    def teacher(queries, candidates):
        return np.einsum("bd,bkd->bk", 3 * text_hidden[queries], factors[candidates]).astype(np.float32)

    return text_feats, video_feats, positives, teacher


def test_distillation_learns_the_teachers_ranking_on_held_out_videos():
    text_feats, video_feats, positives, teacher = planted()
    settings = FirstStageSettings(dim=16, hidden=32, candidates=16, rounds=2, epochs=30, batch_size=32,
                                  learning_rate=5e-3, holdout=0.25, seed=0)
    stage = train_first_stage(text_feats, video_feats, positives, teacher, settings, TEACHER, log=lambda _: None)
    held = stage.meta["holdout_videos"]
    assert held == 30 and stage.meta["train_videos"] == 90
    # Chance: N / V = 0.1 of the teacher's top 10; an untrained pair of towers stays near it.
    assert stage.meta["holdout_recall"] >= 0.8, stage.meta
    untrained = recall_of_top(np.ones((3, 30)) * np.arange(30), np.ones((3, 30)) * -np.arange(30), 3)
    assert untrained == 0.0


def tiny_stage(width=6):
    """A version-1 first stage (text input ``width``, video input width + 1, dim 3) of random towers."""
    rng = np.random.default_rng(0)
    arrays = {}
    for side, w in (("text", width), ("video", width + 1)):
        arrays.update({f"{side}.mean": rng.normal(size=w).astype(np.float32),
                       f"{side}.std": np.ones(w, np.float32),
                       f"{side}.fc1.weight": rng.normal(size=(w, 5)).astype(np.float32),
                       f"{side}.fc1.bias": np.zeros(5, np.float32),
                       f"{side}.fc2.weight": rng.normal(size=(5, 3)).astype(np.float32),
                       f"{side}.fc2.bias": np.zeros(3, np.float32)})
    return FirstStage(arrays, {"version": 1, "teacher_sha256": TEACHER, "holdout_recall": 0.97})


def test_file_round_trip_and_refusals(tmp_path):
    stage = tiny_stage()
    arrays = stage.arrays
    path = tmp_path / "first_stage.npz"
    save_first_stage(path, stage)
    loaded = load_first_stage(path, TEACHER)
    assert loaded.dim == 3 and loaded.meta["holdout_recall"] == 0.97
    for name, array in arrays.items():
        np.testing.assert_array_equal(loaded.arrays[name], array)
    with pytest.raises(WeightsError, match="distilled from the ActBERT weights with SHA-256 abab"):
        load_first_stage(path, "cd" * 32)
    # A file that is not ours: refused to read and to overwrite, left as it was.
    foreign = tmp_path / "ActBERT.pdparams"
    foreign.write_bytes(b"not a first stage")
    with pytest.raises(DataError, match="not a actbert-first-stage file"):
        load_first_stage(foreign, TEACHER)
    with pytest.raises(DataError, match="left untouched"):
        save_first_stage(foreign, stage)
    assert foreign.read_bytes() == b"not a first stage"
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(path.read_bytes()[:-40])
    with pytest.raises(DataError, match="truncated"):
        load_first_stage(truncated, TEACHER)


def test_format_versions_and_feature_sets(tmp_path):
    x = np.ones((2, 12), np.float32)
    stage = tiny_stage(width=12)
    path = tmp_path / "v1.npz"
    save_first_stage(path, stage)  # version 1 (no "features"): read, with the basic features it was made with
    assert load_first_stage(path, TEACHER).features == "basic"
    stage.meta.update(version=2, features="pooled")
    save_first_stage(path, stage)
    loaded = load_first_stage(path, TEACHER)
    assert loaded.features == "pooled" and loaded.text_vectors_from_features(x).shape == (2, 3)
    for meta, message in (({"version": 2, "features": "attention"}, "features 'attention'"),
                          ({"version": 3}, "format version 3, this code reads 1 and 2")):
        stage.meta.update(meta)
        save_first_stage(path, stage)
        with pytest.raises(WeightsError, match=message):
            load_first_stage(path, TEACHER)
    with pytest.raises(DataError, match="text tower reads 12 features, the encodings give 5"):
        loaded.text_vectors_from_features(np.ones((2, 5), np.float32))


def test_settings_from_config_name_the_bad_key():
    assert FirstStageSettings.from_config({"dim": 64}).dim == 64
    with pytest.raises(ConfigError, match="unknown key"):
        FirstStageSettings.from_config({"dims": 64})
    with pytest.raises(ConfigError, match="FIRST_STAGE.candidates"):
        FirstStageSettings.from_config({"candidates": 1})
    with pytest.raises(ConfigError, match="FIRST_STAGE.student_temperature"):
        FirstStageSettings.from_config({"student_temperature": float("nan")})
