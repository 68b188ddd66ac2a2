"""Export -> Paddle Inference -> search, on the demo model's sizes with random weights.

One export (``tools/export_model.py``) serves every test of the module: it is the slow
step (about 10 s on 2 idle cores). Weights are scaled by 10 so that the cross-stream
terms (action contexts) are visible in the scores, as in the retrieval path's tests.
"""

import json
from pathlib import Path

import numpy as np
import paddle
import pytest

from paddlevideo.loader.store import StoreWriter
from paddlevideo.loader.store.synthetic import random_clip
from paddlevideo.retrieval.predictor import InferenceEngine, engine_for_config
from paddlevideo.retrieval.scoring import score_matrix
from paddlevideo.retrieval.search import QueriesAgainst, encode_queries, open_collection
from paddlevideo.utils.config import get_config
from paddlevideo.utils.errors import ConfigError, DataError
from paddlevideo.utils.logger import setup_logger
from tests.modeling.modeling_helpers import build
from tools import export_model, predict, search
from tools.make_demo_data import demo_vocab

ROOT = Path(__file__).resolve().parents[2]
CONFIG = str(ROOT / "configs/multimodal/actbert/actbert_msrvtt_demo.yaml")
# float32 rounding of logits of magnitude ~10 in a different kernel order (oneDNN): ~1e-6 relative
# (1.1e-5 measured once at magnitude 10), so the bound scales with the scores' magnitude.
TOLERANCE = 4e-6


def close(got, expected):
    return np.abs(np.asarray(got) - expected).max() <= TOLERANCE * max(1.0, np.abs(expected).max())
# Demo words; lengths 2 ([CLS] [SEP] around one word) to 16 (the test's max_seq_length), and one longer.
CAPTIONS = [
    "tomato",
    "a person slices a tomato with a knife",
    "a person washes a cup",
    "a person pours a bottle with a cup with a bowl with a pan",
    "paints a door with a brush",
    "a person folds a shirt with a hand a person folds a shirt with a hand a person",  # cut to 14 pieces
    "egg",
]


def write_lmdb(path, clips):
    from paddlevideo.loader.dataset.msrvtt_dataset import write_msrvtt_lmdb

    write_msrvtt_lmdb(path, {c.clip_id: {"image_h": c.image_h, "image_w": c.image_w, "features": c.image_feature,
                                         "boxes": c.boxes, "action_features": c.action_feature} for c in clips})


@pytest.fixture(scope="module")
def deployed(tmp_path_factory):
    """(tmp dir, config, backbone, inference dir, weights, vocab, LMDB, store) shared by the module."""
    tmp = tmp_path_factory.mktemp("deploy")
    (tmp / "vocab.txt").write_text("\n".join(demo_vocab()) + "\n")
    overrides = [f"DATASET.test.vocab_file={tmp / 'vocab.txt'}"]
    cfg = get_config(CONFIG, overrides)
    settings = {k: v for k, v in cfg.MODEL.backbone.items() if k != "name"}
    backbone = build(settings, seed=5, scale=10.0)
    weights = tmp / "model.pdparams"
    paddle.save({f"backbone.{k}": v for k, v in backbone.state_dict().items()}, str(weights))
    # 13 videos: 1-20 boxes (some beyond the 15 kept), 1-7 actions (some beyond the 5 kept);
    # float16-exact features so that the store (float16) holds the same videos as the LMDB.
    rng = np.random.default_rng(3)
    clips = [random_clip(rng, i, feature_size=64, num_classes=20, action_feature_size=64, max_boxes=20,
                         max_actions=7) for i in range(13)]
    for clip in clips:
        clip.image_feature = clip.image_feature.astype(np.float16).astype(np.float32)
        clip.action_feature = clip.action_feature.astype(np.float16).astype(np.float32)
    write_lmdb(tmp / "videos.lmdb", clips)
    with StoreWriter(tmp / "store") as writer:
        for clip in clips:
            writer.add(clip)
    out = tmp / "inference"
    args = ["-c", CONFIG, "-p", str(weights), "-o", str(out)] + [x for o in overrides for x in ("--override", o)]
    assert export_model.main(args) == 0
    return {"tmp": tmp, "cfg": cfg, "overrides": overrides, "backbone": backbone, "inference": out,
            "weights": weights, "lmdb": tmp / "videos.lmdb", "store": tmp / "store"}


def test_export_writes_paddle3_graphs_and_info(deployed):
    out = deployed["inference"]
    for graph in ("text_encoder", "video_encoder", "pair_scorer"):
        assert (out / f"{graph}.json").stat().st_size > 0 and (out / f"{graph}.pdiparams").stat().st_size > 0
        assert not (out / f"{graph}.pdmodel").exists()
    info = json.loads((out / "export_info.json").read_text())
    assert info["limits"] == {"max_seq_length": 16, "max_region_num": 16, "max_action_num": 5}
    assert info["backbone"]["hidden_size"] == 64 and len(info["weights_sha256"]) == 64


@pytest.mark.parametrize("mkldnn", [False, True])
def test_exported_scores_equal_dygraph_score_matrix(deployed, mkldnn):
    collection = open_collection(deployed["lmdb"], deployed["cfg"].DATASET.test)
    data = QueriesAgainst(encode_queries(collection, CAPTIONS), collection)
    lengths = data.text["text_mask"].sum(axis=1)
    assert lengths.min() == 3 and lengths.max() == 16 and len(set(lengths.tolist())) >= 5
    # 5 pairs per pass: chunks of 5, 5 and 3 videos, captions 3 at a time (padded batches).
    expected = score_matrix(deployed["backbone"], data, pair_batch_size=5, text_batch_size=3, progress=False)
    engine = InferenceEngine(str(deployed["inference"]), device="cpu", cpu_threads=2, mkldnn=mkldnn)
    got = score_matrix(engine, data, pair_batch_size=5, text_batch_size=3, progress=False)
    assert close(got, expected)
    assert np.ptp(expected) > 0.1  # scores that differ, not a constant


def test_predict_cli_scores_a_test_set(deployed, tmp_path, capsys):
    tmp = deployed["tmp"]
    rows = [f"ret{i},msr{i},clip{i:07d},{c}" for i, c in enumerate(CAPTIONS)]
    (tmp_path / "queries.csv").write_text("key,vid_key,video_id,sentence\n" + "\n".join(rows) + "\n")
    overrides = deployed["overrides"] + [f"DATASET.test.file_path={tmp_path / 'queries.csv'}",
                                         f"DATASET.test.features_path={deployed['lmdb']}"]
    args = ["-c", CONFIG, "--inference-dir", str(deployed["inference"]), "--output", str(tmp_path / "s.npy"),
            "--enable_mkldnn", "false", "--cpu_threads", "2"] + [x for o in overrides for x in ("--override", o)]
    assert predict.main(args) == 0
    assert "text->video" in capsys.readouterr().out
    from paddlevideo.loader.builder import build_dataset

    dataset = build_dataset(get_config(CONFIG, overrides).DATASET.test, None)
    expected = score_matrix(deployed["backbone"], dataset, progress=False)
    assert close(np.load(tmp_path / "s.npy"), expected)
    assert tmp.exists()


def run_search(deployed, *extra, model=None):
    model = model or ["-w", str(deployed["weights"])]
    args = ["-c", CONFIG, *model, "--no-progress", *extra]
    return search.main(args + [x for o in deployed["overrides"] for x in ("--override", o)])


def test_search_ranks_like_score_matrix_with_cache_and_exported_model(deployed, tmp_path, capsys):
    query = "a person slices a tomato with a knife"
    cache, first, second, exported = (tmp_path / n for n in ("v.npz", "1.json", "2.json", "3.json"))
    common = ["--videos", str(deployed["lmdb"]), "--query", query, "--top", "13", "--cache", str(cache)]
    assert run_search(deployed, *common, "--json", str(first)) == 0
    out = capsys.readouterr().out
    assert "rank  video id" in out and "read from the cache" not in out and cache.exists()
    assert run_search(deployed, *common, "--json", str(second)) == 0
    assert "read from the cache" in capsys.readouterr().out
    # The exported model: its own cache entry (another model key), the same ranking.
    assert run_search(deployed, *common, "--json", str(exported), "--enable_mkldnn", "false",
                      model=["--inference-dir", str(deployed["inference"])]) == 0
    results = [json.loads(p.read_text()) for p in (first, second, exported)]
    assert results[0]["timings_s"]["encode_videos"] > 0 and results[1]["timings_s"]["encode_videos"] == 0
    assert results[2]["model"] == "exported" and results[2]["timings_s"]["encode_videos"] > 0

    collection = open_collection(deployed["lmdb"], deployed["cfg"].DATASET.test)
    expected = score_matrix(deployed["backbone"], QueriesAgainst(encode_queries(collection, [query]), collection),
                            progress=False)[0]
    order = [collection.video_ids[j] for j in np.argsort(-expected, kind="stable")]
    for result in results:
        rows = result["queries"][0]["results"]
        assert [r["rank"] for r in rows] == list(range(1, 14))
        got = {r["video_id"]: r["score"] for r in rows}
        assert close([got[v] for v in got], expected[[collection.video_ids.index(v) for v in got]])
    assert [r["video_id"] for r in results[0]["queries"][0]["results"]] == order


def test_search_over_a_store_equals_the_lmdb(deployed, tmp_path):
    query = ["--query", "a person washes a cup", "--top", "5"]
    assert run_search(deployed, "--videos", str(deployed["lmdb"]), *query, "--json", str(tmp_path / "a.json")) == 0
    assert run_search(deployed, "--videos", str(deployed["store"]), *query, "--json", str(tmp_path / "b.json")) == 0
    a, b = (json.loads((tmp_path / n).read_text())["queries"][0]["results"] for n in ("a.json", "b.json"))
    assert [r["video_id"] for r in a] == [r["video_id"] for r in b]
    assert np.allclose([r["score"] for r in a], [r["score"] for r in b], atol=1e-6)


def test_bad_input_gives_one_line_errors(deployed, tmp_path, capsys):
    setup_logger()  # the project logger writes to this test's stdout (an earlier test may have bound it elsewhere)

    def error(code_and_args):
        assert code_and_args == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error: ")
        return err[0]

    videos = ["--videos", str(deployed["lmdb"])]
    assert "query 1 is empty" in error(run_search(deployed, *videos, "--query", "  "))
    (tmp_path / "q.txt").write_text("\n\n")
    assert "no queries" in error(run_search(deployed, *videos, "--queries", str(tmp_path / "q.txt")))
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "data.mdb").write_bytes(b"not an lmdb" * 100)
    junk = run_search(deployed, "--videos", str(tmp_path / "junk"), "--query", "egg")
    assert "cannot read the collection" in error(junk)
    assert "not found" in error(run_search(deployed, "--videos", str(tmp_path / "nothing"), "--query", "egg"))
    import lmdb

    env = lmdb.open(str(tmp_path / "broken.lmdb"), map_size=1 << 20)
    with env.begin(write=True) as txn:
        txn.put(b"video7", b"\x80\x04garbage")
    env.close()
    assert "key 'video7'" in error(run_search(deployed, "--videos", str(tmp_path / "broken.lmdb"), "--query", "egg"))
    # Over-long: cut with a warning, as the test captions are.
    assert run_search(deployed, *videos, "--query", " ".join(["tomato"] * 40), "--json", str(tmp_path / "r.json")) == 0
    assert "query 1 has 40 word pieces; keeping the first 14" in capsys.readouterr().out

    # Export: a backbone-only file; a config whose sizes differ from the weights.
    backbone_only = tmp_path / "backbone.pdparams"
    paddle.save(deployed["backbone"].state_dict(), str(backbone_only))
    base = ["-c", CONFIG, "-o", str(tmp_path / "never")]
    assert "backbone-only" in error(export_model.main([*base, "-p", str(backbone_only)]))
    assert "shape mismatch" in error(export_model.main(
        [*base, "-p", str(deployed["weights"]), "--override", "MODEL.backbone.intermediate_size=96"]))
    assert not (tmp_path / "never").exists()


def test_inference_dir_must_fit_the_config(deployed, tmp_path):
    out = str(deployed["inference"])
    other = get_config(CONFIG, deployed["overrides"] + ["MODEL.backbone.num_hidden_layers=5"])
    with pytest.raises(ConfigError, match="exported from another config: MODEL.backbone.num_hidden_layers"):
        engine_for_config(out, other)
    longer = get_config(CONFIG, deployed["overrides"] + ["DATASET.test.max_seq_length=20"])
    with pytest.raises(ConfigError, match="max_seq_length=20 is longer"):
        engine_for_config(out, longer)
    with pytest.raises(ConfigError, match="no export_info.json"):
        engine_for_config(str(tmp_path), deployed["cfg"])
    engine = engine_for_config(out, deployed["cfg"], mkldnn=False)
    with pytest.raises(DataError, match="more than the exported model's max_seq_length=16"):
        engine.encode_text(np.ones((1, 17), np.int64))
