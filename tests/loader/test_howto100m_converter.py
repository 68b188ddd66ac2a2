"""tools/howto100m_to_lmdb.py on a tiny fake PaddleVideo .npy."""

import json

import numpy as np

from paddlevideo.loader.store import NpyClips, PretrainStore
from paddlevideo.loader.store.synthetic import random_clip, write_npy
from tools import howto100m_to_lmdb

SMALL = dict(feature_size=16, num_classes=20, action_feature_size=8)


def fake_release(tmp_path, n=9, bad=None):
    rng = np.random.default_rng(2)
    clips = [random_clip(rng, i, **SMALL) for i in range(n)]
    if bad is not None:
        clips[bad].captions = []
    npy = write_npy(tmp_path / "actbert_train_data.npy", clips)
    captions = tmp_path / "caption_train.json"
    captions.write_text(json.dumps(["!".join(c.captions) for c in clips if c.captions]))
    return npy, captions, clips


def test_convert_verify_and_rerun(tmp_path, capsys):
    npy, captions, clips = fake_release(tmp_path)
    out = tmp_path / "store"
    args = [str(npy), "--captions", str(captions), "--out", str(out), "--top_k", "20", "--no_progress"]
    assert howto100m_to_lmdb.main(args) == 0
    assert "ok: 9 clips in 1 shard(s)" in capsys.readouterr().out
    store, source = PretrainStore(out), NpyClips(npy)
    for i in range(9):
        got, want = store.get(i), source.get(i)
        assert got.clip_id == f"{want.video_id}#{i}" and got.captions == want.captions
        np.testing.assert_allclose(got.dense_target(), want.image_target, atol=1e-3)
        np.testing.assert_array_equal(got.boxes, want.boxes)
    # A rerun (e.g. after a crash) adds nothing twice.
    assert howto100m_to_lmdb.main(args) == 0
    assert len(PretrainStore(out)) == 9
    assert howto100m_to_lmdb.main(["--verify", str(out), "--no_progress"]) == 0


def test_bad_item_stops_or_is_skipped(tmp_path, capsys):
    npy, captions, _ = fake_release(tmp_path, bad=4)
    out = tmp_path / "store"
    assert howto100m_to_lmdb.main([str(npy), "--out", str(out), "--no_progress"]) == 2
    assert f"error: {npy}: item 4: empty caption list" in capsys.readouterr().err
    assert howto100m_to_lmdb.main([str(npy), "--out", str(out), "--no_progress", "--skip_bad"]) == 0
    assert len(PretrainStore(out)) == 8
