"""tools/make_demo_data.py: fast, deterministic, in the released formats, consistent with the demo configs."""

import json
import time
from pathlib import Path

import numpy as np
import pytest

from paddlevideo.loader.dataset.msrvtt_dataset import MSRVTTDataset
from paddlevideo.loader.store.npy_source import NPY_FIELDS
from paddlevideo.loader.tokenizer import load_tokenizer
from paddlevideo.utils.config import get_config
from tools.make_demo_data import ACTIONS, OBJECTS, main, make_demo_data

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ROOT / "configs" / "multimodal" / "actbert"


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    start = time.perf_counter()
    info = make_demo_data(out, seed=7, num_train=300, num_val=30, num_test=40)
    return out, info, time.perf_counter() - start


def test_generation_is_fast_and_writes_every_file(demo):
    out, info, seconds = demo
    assert seconds < 10
    for name in ("actbert_train_data.npy", "actbert_val_data.npy", "caption_train.json", "caption_val.json",
                 "MSRVTT_JSFUSION_test.csv", "vocab.txt", "demo_info.json", "msrvtt_test.lmdb/data.mdb"):
        assert (out / name).is_file(), name
    assert json.loads((out / "demo_info.json").read_text()) == info


def test_npy_has_paddlevideo_11_fields_and_captions_name_the_classes(demo):
    out, info, _ = demo
    items = np.load(out / "actbert_train_data.npy", allow_pickle=True)
    assert items.shape == (300,) and len(NPY_FIELDS) == 11
    feats, target, boxes, n_boxes, h, w, image_id, caption, action_feat, action_target, n_actions = items[0]
    assert feats.shape == (n_boxes, info["v_feature_size"]) and feats.dtype == np.float32
    assert target.shape == (n_boxes, info["v_target_size"]) and np.allclose(target.sum(1), 1)
    assert boxes.shape == (n_boxes, 4) and (boxes[:, 2] <= w).all() and (boxes[:, 3] <= h).all()
    assert action_feat.shape == (n_actions, info["a_feature_size"]) and action_target.shape == (n_actions,)
    assert image_id == "demo_train_00000" and caption.count("!") == 1
    # The caption names the clip's action and its two most frequent non-background objects.
    verbs = [v for v, ing in ACTIONS if v in caption.split() or ing in caption.split()]
    assert verbs == [ACTIONS[action_target[0]][0]]
    named = {OBJECTS[c] for c in target.argmax(1) if c < len(OBJECTS)}
    assert named and named <= set(caption.replace("!", " ").split())
    pool = json.loads((out / "caption_train.json").read_text())
    assert len(pool) == 300 and pool[0] == caption


def test_clips_vary_their_action_and_box_counts_as_released_clips_do(demo):
    out, _, _ = demo
    items = np.load(out / "actbert_train_data.npy", allow_pickle=True)
    assert {int(item[10]) for item in items} == {1, 2, 3, 4, 5}
    boxes = {int(item[3]) for item in items}
    assert min(boxes) == 2 and 36 in boxes and len(boxes) > 6


def test_generation_is_deterministic(tmp_path, demo):
    out, _, _ = demo
    assert main(["--out", str(tmp_path), "--seed", "7", "--num-train", "300", "--num-val", "30",
                 "--num-test", "40"]) == 0
    for name in ("caption_train.json", "MSRVTT_JSFUSION_test.csv", "vocab.txt"):
        assert (tmp_path / name).read_bytes() == (out / name).read_bytes()
    a = np.load(out / "actbert_val_data.npy", allow_pickle=True)[3][0]
    b = np.load(tmp_path / "actbert_val_data.npy", allow_pickle=True)[3][0]
    np.testing.assert_array_equal(a, b)


def test_vocab_covers_every_caption_with_specials_first(demo):
    out, info, _ = demo
    tok = load_tokenizer(out / "vocab.txt")
    assert tok.vocab_size == info["vocab_size"]
    assert (tok.pad_id, tok.unk_id, tok.cls_id, tok.sep_id, tok.mask_id) == (0, 1, 2, 3, 4)
    for caption in json.loads((out / "caption_val.json").read_text()):
        assert tok.unk_id not in tok.encode(caption.replace("!", " "))


def test_test_set_reads_as_msrvtt_and_is_held_out(demo):
    out, info, _ = demo
    ds = MSRVTTDataset(out / "MSRVTT_JSFUSION_test.csv", out / "msrvtt_test.lmdb", out / "vocab.txt")
    assert ds.num_queries == ds.num_videos == 40
    for j in (0, 1):  # video1 is stored flattened
        v = ds.video(j)
        assert v["image_feat"].shape == (36, info["v_feature_size"]) and v["action_mask"].tolist() == [1] * 5
        # 1-5 real actions first, then zero padding (its mask 1: the reference's test input).
        real = v["action_feat"].any(axis=1)
        assert v["action_feat"].shape == (5, info["a_feature_size"]) and real[0]
        assert real.tolist() == sorted(real.tolist(), reverse=True)
    train_captions = {c for joined in json.loads((out / "caption_train.json").read_text()) for c in joined.split("!")}
    assert not set(ds.captions) & train_captions


@pytest.mark.parametrize("name", ["actbert_demo.yaml", "actbert_msrvtt_demo.yaml"])
def test_demo_configs_match_the_generated_sizes(name, demo):
    _, info, _ = demo
    cfg = get_config(CONFIGS / name)
    backbone = cfg.MODEL.backbone
    for key in ("vocab_size", "v_feature_size", "a_feature_size", "v_target_size", "a_target_size"):
        assert backbone[key] == info[key], key
