"""ActBertDataset and its pipelines: sample layout, masking, store and .npy sources, workers, ranks."""

import json

import numpy as np
import paddle
import pytest
from test_store import bad_clip, put_raw  # tests/loader is on sys.path under pytest

from paddlevideo.loader import build_dataset
from paddlevideo.loader.pipelines import multimodal
from paddlevideo.loader.pipelines.multimodal import FeaturePadding, RandomMask, normalised_locations
from paddlevideo.loader.store import StoreWriter
from paddlevideo.loader.store.lmdb_store import record_key
from paddlevideo.loader.store.synthetic import random_clip, write_npy
from paddlevideo.loader.tokenizer import load_tokenizer
from paddlevideo.utils.config import get_config
from paddlevideo.utils.errors import ConfigError, DataError

SMALL = dict(feature_size=16, num_classes=20, action_feature_size=8)
PIPELINE = {"transform": [{"FeaturePadding": None}, {"RandomCap": None}, {"Tokenize": None}, {"RandomMask": None}]}
# PaddleVideo's configs/multimodal/actbert/actbert.yaml (DATASET and PIPELINE), as shipped.
PADDLEVIDEO_YAML = """
DATASET:
    num_workers: 0
    batch_size: 8
    train:
        format: "ActBertDataset"
        file_path: "{npy}"
PIPELINE:
    train:
        transform:
        - FeaturePadding:
        - RandomCap:
            caption_path: "{captions}"
        - Tokenize:
        - RandomMask:
"""


@pytest.fixture(scope="module")
def items():
    rng = np.random.default_rng(0)
    return [random_clip(rng, i, **SMALL) for i in range(16)]


@pytest.fixture(scope="module")
def store(tmp_path_factory, items):
    path = tmp_path_factory.mktemp("store") / "s"
    with StoreWriter(path, top_k=20, max_shard_bytes=1 << 20, commit_every=5) as writer:
        for clip in items:
            writer.add(clip)
    return path


def dataset(path, vocab_file, **kwargs):
    return build_dataset({"format": "ActBertDataset", "file_path": str(path), "vocab_file": str(vocab_file),
                          **kwargs}, PIPELINE)


def test_sample_matches_the_contract(store, vocab_file):
    sample = dataset(store, vocab_file)[3]
    shapes = {
        "text_ids": (36,), "token_type_ids": (36,), "text_mask": (36,), "text_labels": (36,),
        "image_feat": (37, 16), "image_loc": (37, 5), "image_mask": (37,), "image_label": (36,),
        "image_target": (36, 20), "action_feat": (5, 8), "action_mask": (5,), "action_label": (5,),
        "next_sentence_label": (),
    }
    assert {k: v.shape for k, v in sample.items()} == shapes
    for key, value in sample.items():
        want = np.float32 if key in ("image_feat", "image_loc", "image_target") or key == "action_feat" else np.int64
        assert value.dtype == want, key


def test_store_and_npy_give_the_same_inputs(store, items, vocab_file, tmp_path):
    npy = write_npy(tmp_path / "train.npy", items)
    a, b = dataset(store, vocab_file), dataset(npy, vocab_file)
    assert len(a) == len(b) == 16
    for i in (0, 7):
        np.random.seed(5)
        sa = a[i]
        np.random.seed(5)
        sb = b[i]
        for key in ("text_ids", "image_label", "image_mask", "action_label", "image_loc"):
            np.testing.assert_array_equal(sa[key], sb[key], err_msg=key)
        np.testing.assert_allclose(sa["image_feat"], sb["image_feat"], atol=2e-3)


def test_padding_locations_and_global_region(items, vocab_file):
    clip = items[2]
    n, a = clip.n_boxes, clip.n_actions
    results = FeaturePadding()({"clip": clip})
    assert results["num_boxes"] == n and not results["image_feat"][n:].any() and not results["image_target"][n:].any()
    x1, y1, x2, y2 = clip.boxes[0]
    w, h = clip.image_w, clip.image_h
    want = [x1 / w, y1 / h, x2 / w, y2 / h, (y2 - y1) * (x2 - x1) / (w * h)]
    np.testing.assert_allclose(results["image_loc"][0], want, rtol=1e-6)
    np.testing.assert_allclose(normalised_locations([[0, 0, 64, 36]], 36, 64), [[0, 0, 1, 1, 1]])
    tok = load_tokenizer(vocab_file)
    results.update(caption_ids=tok.encode("stir the onion"), tokenizer=tok, is_next=1)
    out = RandomMask()(results)
    feat = out["image_feat"]
    np.testing.assert_allclose(feat[0], feat[1 : n + 1].sum(0) / n, rtol=1e-5)  # after masking
    np.testing.assert_array_equal(out["image_loc"][0], [0, 0, 1, 1, 1])
    assert out["image_mask"].tolist() == [1] * (n + 1) + [0] * (36 - n)
    assert out["action_mask"].tolist() == [1] * a + [0] * (5 - a)
    assert (out["image_label"][n:] == -1).all() and (out["action_label"][a:] == -1).all()
    ids = out["text_ids"]
    assert ids[0] == tok.cls_id and ids[4] == tok.sep_id and not ids[5:].any()
    assert out["text_mask"].tolist() == [1] * 5 + [0] * 31
    assert out["text_labels"][0] == -1 and out["text_labels"][4] == -1 and out["next_sentence_label"] == 1


def test_more_boxes_than_slots_keep_the_first(items):
    results = FeaturePadding(max_region_num=4, max_action_num=1)({"clip": items[0]})
    assert results["image_feat"].shape[0] == 4 and results["num_boxes"] == min(4, items[0].n_boxes)


def test_masking_statistics(vocab_file):
    tok = load_tokenizer(vocab_file)
    mask = RandomMask()
    np.random.seed(0)
    ids = np.arange(1000, 1034)
    texts = [mask.mask_text(ids, tok) for _ in range(3000)]
    labels = np.stack([t["text_labels"][1:35] for t in texts])
    out = np.stack([t["text_ids"][1:35] for t in texts])
    chosen = labels != -1
    assert abs(chosen.mean() - 0.15) < 0.01
    assert (labels[chosen] == np.broadcast_to(ids, labels.shape)[chosen]).all()
    masked, kept = out[chosen] == tok.mask_id, out[chosen] == labels[chosen]
    assert abs(masked.mean() - 0.8) < 0.03 and abs(kept.mean() - 0.1) < 0.02
    swapped = out[chosen][~masked & ~kept]
    assert abs(len(swapped) / chosen.sum() - 0.1) < 0.02 and swapped.max() < tok.vocab_size
    assert (out[~chosen] == np.broadcast_to(ids, out.shape)[~chosen]).all()
    feats = np.ones((36 * 200, 4), dtype=np.float32)
    feats, label = RandomMask.mask_units(feats, len(feats) - 100)
    picked = label[:-100] == 1
    assert abs(picked.mean() - 0.15) < 0.015 and (label[-100:] == -1).all() and (feats[-100:] == 1).all()
    assert abs((feats[:-100][picked] == 0).all(axis=1).mean() - 0.9) < 0.04
    assert (feats[:-100][~picked] == 1).all()


def test_random_token_stays_inside_the_vocabulary(vocab_file, monkeypatch):
    tok = load_tokenizer(vocab_file)
    draws = []
    real = np.random.randint
    monkeypatch.setattr(np.random, "randint", lambda *a, **k: draws.append(a) or real(*a, **k))
    np.random.seed(1)
    for _ in range(200):
        RandomMask().mask_text(list(range(2000, 2034)), tok)
    assert draws and all(a[:2] == (0, tok.vocab_size) for a in draws)  # high end exclusive


def test_negative_captions_come_from_other_clips(store, items, vocab_file):
    ds = dataset(store, vocab_file)
    own = set(items[4].captions)
    seen = {0: 0, 1: 0}
    for seed in range(60):
        np.random.seed(seed)
        results = ds.pipeline({"clip": ds.source.get(4), "index": 4, "vocab_file": str(vocab_file),
                               "other_caption": lambda: ds.other_caption(4)})
        seen[results["is_next"]] += 1
        assert (results["caption"] in own) == (results["is_next"] == 0)
    assert seen[0] > 10 and seen[1] > 10


def test_paddlevideo_yaml_runs_as_shipped_and_reads_captions_once(items, vocab_file, tmp_path):
    npy = write_npy(tmp_path / "actbert_train_data.npy", items)
    captions = tmp_path / "caption_train.json"
    captions.write_text(json.dumps(["cut the paper!fold it", "pour water", "whisk eggs"]))
    cfg_file = tmp_path / "actbert.yaml"
    cfg_file.write_text(PADDLEVIDEO_YAML.format(npy=npy, captions=captions))
    cfg = get_config(str(cfg_file), [f"DATASET.train.vocab_file={vocab_file}"], validate=False)
    ds = build_dataset(cfg.DATASET.train, cfg.PIPELINE.train)
    multimodal._caption_pool.cache_clear()
    pool = {"cut the paper", "fold it", "pour water", "whisk eggs"}
    for i in range(40):
        sample = ds[i % 16]
        assert sample["text_ids"].shape == (36,)
    assert multimodal._caption_pool.cache_info().misses == 1
    tok = load_tokenizer(vocab_file)
    np.random.seed(3)
    negatives = [ds.pipeline({"clip": ds.source.get(0), "vocab_file": str(vocab_file)}) for _ in range(30)]
    assert {tok.decode(r["caption_ids"]) for r in negatives if r["is_next"] == 1} <= pool


def test_vocab_file_is_required_and_in_one_place(store, vocab_file):
    cfg = {"format": "ActBertDataset", "file_path": str(store), "bert_model": "bert-base-uncased"}
    with pytest.raises(ConfigError, match=r"set DATASET.train.vocab_file to the vocab.txt of bert-base-uncased"):
        build_dataset(cfg, PIPELINE)
    pipeline = {"transform": [{"FeaturePadding": None}, {"RandomCap": None},
                              {"Tokenize": {"vocab_file": "other.txt"}}, {"RandomMask": None}]}
    with pytest.raises(ConfigError, match="differs from DATASET.train.vocab_file"):
        build_dataset({**cfg, "vocab_file": str(vocab_file)}, pipeline)
    with pytest.raises(ConfigError, match="unknown key 'PIPELINE.train.transform.1.RandomCap.captions'"):
        build_dataset({**cfg, "vocab_file": str(vocab_file)},
                      {"transform": [{"FeaturePadding": None}, {"RandomCap": {"captions": "x"}}]})


def test_bad_npy_item_names_file_and_item(items, vocab_file, tmp_path):
    broken = [random_clip(np.random.default_rng(1), i, **SMALL) for i in range(3)]
    broken[1].image_feature[0, 0] = np.nan
    npy = write_npy(tmp_path / "bad.npy", broken)
    with pytest.raises(DataError, match=rf"{npy}: item 1 \(image_id video000000\): image_feature has non-finite"):
        dataset(npy, vocab_file)[1]


def test_skip_bad_records_logs_key_and_count(items, vocab_file, tmp_path, capture_log):
    path = tmp_path / "s"
    with StoreWriter(path, top_k=5, max_shard_bytes=1 << 20) as writer:
        for clip in items[:6]:
            writer.add(clip)
    put_raw(path / "shard-00000", record_key(2), bad_clip("box outside"))
    with pytest.raises(DataError, match="record 000000000002"):
        dataset(path, vocab_file)[2]
    ds = dataset(path, vocab_file, skip_bad_records=True)
    samples = [ds[i] for i in range(6)]
    assert len(samples) == 6
    messages = [r.getMessage() for r in capture_log]
    assert any("record 000000000002" in m and "skipping bad record (1 this epoch)" in m for m in messages)
    assert ds.end_epoch(epoch=1) == 1
    assert "epoch 1: skipped 1 bad record(s)" in capture_log[-1].getMessage()
    assert ds.end_epoch() == 0


def test_action_class_ids_beyond_the_model_name_the_record(store, items, vocab_file):
    """Told the model's action class count, a sample whose clip holds a larger id is refused,
    naming the record, even with skip_bad_records (the model and the data disagree)."""
    top = int(items[3].action_target.max())
    for skip in (False, True):
        ds = dataset(store, vocab_file, skip_bad_records=skip)
        ds[3]  # not told: nothing checked
        ds.expect_action_classes(top, "MODEL.backbone.a_target_size")
        with pytest.raises(ConfigError) as caught:
            ds[3]
        assert str(caught.value) == (
            f"the data holds action class id {top} (at least {top + 1} action classes), but "
            f"MODEL.backbone.a_target_size is {top}; set it to the data's number of action classes "
            f"({ds.source.where(3)} holds id {top})")
    ds.expect_action_classes(top + 1, "MODEL.backbone.a_target_size")
    assert ds[3]["action_label"].max() <= top  # the largest id fits: the sample is built


def test_dataloader_with_workers(store, vocab_file):
    ds = dataset(store, vocab_file)
    loader = paddle.io.DataLoader(ds, batch_size=4, num_workers=2, shuffle=False, drop_last=False)
    batches = list(loader)
    assert len(batches) == 4
    assert tuple(batches[0]["image_feat"].shape) == (4, 37, 16)
    assert tuple(batches[0]["next_sentence_label"].shape) == (4,)
    # The workers decoded the clips in order: the region masks give each clip's box count.
    counts = np.concatenate([b["image_mask"].numpy().sum(1) - 1 for b in batches])
    assert counts.tolist() == [ds.source.get(i).n_boxes for i in range(16)]


def test_distributed_batch_sampler_shards_are_disjoint(store, vocab_file):
    ds = dataset(store, vocab_file)
    seen = []
    for rank in range(2):
        sampler = paddle.io.DistributedBatchSampler(ds, batch_size=3, num_replicas=2, rank=rank, shuffle=True)
        sampler.set_epoch(4)
        indices = [i for batch in sampler for i in batch]
        seen.append(indices)
        ds[indices[0]]
    assert not set(seen[0]) & set(seen[1])
    assert set(seen[0]) | set(seen[1]) == set(range(16))
