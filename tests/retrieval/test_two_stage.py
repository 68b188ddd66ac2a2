"""Two-stage search and evaluation: with every video reranked it is the exhaustive search (the
search, ``main.py --test``); with fewer, only the first stage's top N carry scores and every
output says the ranking is approximate; a first stage of other weights is refused.

A random-weight demo-size model (2 text layers) over 12 demo test videos; the first stage is
untrained (random towers of the right sizes): these tests check the plumbing, the benchmark
(``tools/benchmark.py search``) the quality.
"""

import json
from pathlib import Path

import numpy as np
import paddle
import pytest

from paddlevideo.retrieval.export import file_digest
from paddlevideo.retrieval.first_stage import FirstStage, save_first_stage
from paddlevideo.retrieval.scoring import DygraphScorer
from paddlevideo.retrieval.search import open_collection, search
from paddlevideo.retrieval.two_stage import plan_from_config
from paddlevideo.tasks.test import test_model as run_test
from paddlevideo.utils.config import get_config
from paddlevideo.utils.errors import ConfigError
from tests.modeling.modeling_helpers import build
from tools import search as search_tool
from tools.make_demo_data import make_demo_data

ROOT = Path(__file__).resolve().parents[2]
CONFIG = str(ROOT / "configs/multimodal/actbert/actbert_first_stage_demo.yaml")
TINY = ["MODEL.backbone.num_hidden_layers=2", "MODEL.backbone.t_ent_attention_id=[0,1]"]
NUM_VIDEOS = 12


def random_stage(teacher_sha, text_dim=128, video_dim=192, seed=0):
    rng = np.random.default_rng(seed)
    arrays = {}
    for side, width in (("text", text_dim), ("video", video_dim)):
        arrays.update({f"{side}.mean": np.zeros(width, np.float32), f"{side}.std": np.ones(width, np.float32),
                       f"{side}.fc1.weight": rng.normal(size=(width, 16)).astype(np.float32),
                       f"{side}.fc1.bias": np.zeros(16, np.float32),
                       f"{side}.fc2.weight": rng.normal(size=(16, 8)).astype(np.float32),
                       f"{side}.fc2.bias": np.zeros(8, np.float32)})
    return FirstStage(arrays, {"version": 1, "teacher_sha256": teacher_sha, "holdout_recall": 0.5})


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("two_stage")
    data = tmp / "demo"
    make_demo_data(str(data), num_train=4, num_val=2, num_test=NUM_VIDEOS, num_finetune=4)
    overrides = [*TINY, f"output_dir={tmp / 'out'}", f"DATASET.test.vocab_file={data / 'vocab.txt'}",
                 f"DATASET.test.file_path={data / 'MSRVTT_JSFUSION_test.csv'}",
                 f"DATASET.test.features_path={data / 'msrvtt_test.lmdb'}"]
    cfg = get_config(CONFIG, overrides)
    backbone = build({k: v for k, v in cfg.MODEL.backbone.items() if k != "name"}, seed=2, scale=10.0)
    weights = tmp / "model.pdparams"
    paddle.save({f"backbone.{k}": v for k, v in backbone.state_dict().items()}, str(weights))
    stage_path = tmp / "stage.npz"
    save_first_stage(stage_path, random_stage(file_digest(weights)))
    return {"tmp": tmp, "cfg": cfg, "overrides": overrides, "backbone": backbone, "weights": weights,
            "stage": stage_path, "lmdb": data / "msrvtt_test.lmdb"}


def plan(world, n, **kwargs):
    return plan_from_config({"rerank_top": n, "file": str(world["stage"])}, file_digest(world["weights"]), **kwargs)


def test_search_with_every_video_reranked_equals_exhaustive_search(world):
    collection = open_collection(world["lmdb"], world["cfg"].DATASET.test)
    engine = DygraphScorer(world["backbone"].eval())
    queries = ["a person slices a tomato with a knife", "a person washes a cup", "egg"]
    exact, _ = search(engine, collection, queries, top=NUM_VIDEOS, progress=False)
    two, _ = search(engine, collection, queries, top=NUM_VIDEOS, progress=False, two_stage=plan(world, NUM_VIDEOS))
    for a, b in zip(exact, two):
        assert [v for _, v, _ in a] == [v for _, v, _ in b]
        np.testing.assert_allclose([s for *_, s in a], [s for *_, s in b], atol=1e-5)
    # N = 4: only the first stage's top 4 are ranked, with the exhaustive scores of those pairs.
    small = plan(world, 4)
    part, _ = search(engine, collection, queries, top=NUM_VIDEOS, progress=False, two_stage=small)
    assert all(len(rows) == 4 for rows in part) and small.last["candidates"].shape == (3, 4)
    full = {v: s for v, s in ((v, s) for rows in exact[:1] for _, v, s in rows)}
    for _, vid, score in part[0]:
        assert score == pytest.approx(full[vid], abs=1e-5)


def test_main_test_two_stage_records_the_approximation(world):
    cfg = get_config(CONFIG, [*world["overrides"], f"output_dir={world['tmp'] / 'exact'}"])
    exact = run_test(cfg, str(world["weights"]), progress=False)
    everything = get_config(CONFIG, [*world["overrides"], f"output_dir={world['tmp'] / 'all'}",
                                     f"FIRST_STAGE.rerank_top={NUM_VIDEOS}", f"FIRST_STAGE.file={world['stage']}"])
    reranked = run_test(everything, str(world["weights"]), progress=False)
    for direction in ("t2v", "v2t"):
        assert reranked[direction] == exact[direction]
    assert reranked["search"]["mode"].startswith("two-stage (every video reranked")
    approx = get_config(CONFIG, [*world["overrides"], f"output_dir={world['tmp'] / 'approx'}",
                                 "FIRST_STAGE.rerank_top=3", f"FIRST_STAGE.file={world['stage']}"])
    run_test(approx, str(world["weights"]), progress=False)
    written = json.loads((world["tmp"] / "approx" / "msrvtt_metrics.json").read_text())
    record = written["search"]
    assert record["mode"] == "two-stage (approximate)" and record["rerank_top"] == 3
    assert record["first_stage"] == str(world["stage"]) and record["index"] == "flat"
    assert 0 <= record["queries_whose_video_was_not_reranked"] <= NUM_VIDEOS
    assert "search" not in json.loads((world["tmp"] / "exact" / "msrvtt_metrics.json").read_text())
    typo = get_config(CONFIG, [*world["overrides"], "FIRST_STAGE.rerank_tpo=3"])
    with pytest.raises(ConfigError, match=r"FIRST_STAGE: unknown key\(s\) \['rerank_tpo'\]"):
        run_test(typo, str(world["weights"]), progress=False)  # never the exhaustive test in silence


def test_search_tool_says_approximate_and_refuses_another_teachers_stage(world, capsys, tmp_path):
    args = ["-c", CONFIG, "-w", str(world["weights"]), "--videos", str(world["lmdb"]), "--query", "egg",
            "--no-progress", "--json", str(tmp_path / "r.json"), "--first-stage", str(world["stage"]),
            "--index-cache", str(tmp_path / "index.npz")]
    for o in world["overrides"]:
        args += ["--override", o]
    assert search_tool.main(args + ["--rerank-top", "5"]) == 0
    assert "APPROXIMATE: ActBERT reranked the top 5 of 12 videos" in capsys.readouterr().out
    result = json.loads((tmp_path / "r.json").read_text())
    assert result["search"]["rerank_top"] == 5 and len(result["queries"][0]["results"]) == 5
    assert (tmp_path / "index.npz").exists()
    assert search_tool.main(args + ["--rerank-top", "5"]) == 0  # the index read from its cache
    assert json.loads((tmp_path / "r.json").read_text())["search"]["timings_s"]["build_index"] == 0
    other = tmp_path / "other.npz"
    save_first_stage(other, random_stage("f" * 64))
    bad = [a if a != str(world["stage"]) else str(other) for a in args]
    assert search_tool.main(bad + ["--rerank-top", "5"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "distilled from the ActBERT weights" in err[0]
    assert search_tool.main(args + ["--rerank-top", "0"]) == 2
    assert "--rerank-top must be a whole number" in capsys.readouterr().err


def test_teacher_pair_scores_equal_the_exhaustive_scores(world):
    """The distillation's teacher (listed pairs, several captions per pass) scores as the search does."""
    from paddlevideo.retrieval.search import encode_collection, encode_queries, score_queries
    from paddlevideo.retrieval.two_stage import pair_scores

    collection = open_collection(world["lmdb"], world["cfg"].DATASET.test)
    engine = DygraphScorer(world["backbone"].eval())
    queries = ["a person slices a tomato with a knife", "a person washes a cup", "egg", "a person folds a shirt"]
    text = encode_queries(collection, queries)
    videos = encode_collection(engine, collection, progress=False)
    exact = score_queries(engine, text, videos, progress=False)
    rng = np.random.default_rng(0)
    cand = np.stack([rng.permutation(NUM_VIDEOS)[:5] for _ in queries])
    got = pair_scores(engine, text, videos, np.array([2, 0, 3, 1]), cand, pair_batch_size=10)  # 2 captions a pass
    np.testing.assert_allclose(got, np.take_along_axis(exact[[2, 0, 3, 1]], cand, 1), atol=1e-5)


def test_rerank_shares_each_captions_encoding_and_scores_as_the_exhaustive_pass(world, monkeypatch):
    """Each caption is encoded once for both stages and each candidate video hashed once per run;
    the scores are bit for bit those of ``score_queries`` on the same candidates (the path before),
    and a copy of a video (12, a copy of 3) gets the same score as the video."""
    from paddlevideo.retrieval import two_stage
    from paddlevideo.retrieval.search import encode_collection, encode_queries, score_encoded, score_queries

    collection = open_collection(world["lmdb"], world["cfg"].DATASET.test)
    engine = DygraphScorer(world["backbone"].eval())
    text = encode_queries(collection, ["a person slices a tomato with a knife", "egg", "a person washes a cup"])
    videos = {k: np.concatenate([a, a[[3]]]) for k, a in encode_collection(engine, collection, False).items()}
    cand = np.array([[12, 3, 0, 7, -1], [5, 12, 3, 1, 2], [11, 10, 9, 8, 3]])
    encoded, hashed = [], []
    encode_text, digest = engine.encode_text, two_stage.record_digest
    monkeypatch.setattr(engine, "encode_text", lambda **kw: encoded.append(1) or encode_text(**kw))
    monkeypatch.setattr(two_stage, "record_digest", lambda *a: hashed.append(1) or digest(*a))
    timings = {}
    got = two_stage.rerank(score_encoded, engine, text, videos, lambda _: cand[len(encoded) - 1][None], 256,
                           NUM_VIDEOS + 1, timings)
    assert len(encoded) == 3 and len(hashed) == len(np.unique(cand[cand >= 0]))
    assert np.array_equal(timings["candidates"], cand) and timings["rerank"] > 0
    for q, row in enumerate(cand):
        picked = np.unique(row[row >= 0])
        before = score_queries(engine, {k: v[q : q + 1] for k, v in text.items()},
                               {k: a[picked] for k, a in videos.items()}, progress=False)[0]
        assert np.array_equal(got[q, picked], before)
        assert np.all(np.isneginf(np.delete(got[q], picked)))
    assert got[0, 12] == got[0, 3] and got[1, 12] == got[1, 3]
