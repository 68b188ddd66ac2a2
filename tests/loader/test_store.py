"""The LMDB pretraining store: round trip, shards, crash restart, verify, bad records."""

import json
import subprocess
import sys
import textwrap

import lmdb
import numpy as np
import pytest

from paddlevideo.loader.store import PretrainStore, StoreWriter, encode_clip, top_k, verify_store
from paddlevideo.loader.store.lmdb_store import HEADER_KEY, record_key, release_readers
from paddlevideo.loader.store.synthetic import random_clip
from paddlevideo.utils.errors import ConfigError, DataError

ROOT = __import__("pathlib").Path(__file__).resolve().parents[2]
SMALL = dict(feature_size=16, num_classes=20, action_feature_size=8)


def clips(n, seed=0):
    rng = np.random.default_rng(seed)
    return [random_clip(rng, i, **SMALL) for i in range(n)]


def write_store(path, items, **kwargs):
    kwargs.setdefault("max_shard_bytes", 1 << 20)
    with StoreWriter(path, top_k=kwargs.pop("top_k", 5), **kwargs) as writer:
        for clip in items:
            writer.add(clip)
    return path


def assert_same_clip(got, want, top):
    assert got.clip_id == want.clip_id and got.video_id == want.video_id and got.captions == want.captions
    assert (got.image_h, got.image_w) == (want.image_h, want.image_w)
    np.testing.assert_array_equal(got.boxes, want.boxes)
    np.testing.assert_allclose(got.image_feature.astype(np.float32), want.image_feature, rtol=1e-3, atol=1e-3)
    np.testing.assert_allclose(got.action_feature.astype(np.float32), want.action_feature, rtol=1e-3, atol=1e-3)
    np.testing.assert_array_equal(got.action_target, want.action_target)
    dense = want.dense_target()
    index, value = top_k(dense, top)
    kept = np.zeros_like(dense)
    np.put_along_axis(kept, index.astype(np.int64), value.astype(np.float32), axis=1)
    np.testing.assert_allclose(got.dense_target(), kept, rtol=1e-3, atol=1e-4)


def test_round_trip_float16_and_top_k(tmp_path):
    items = clips(6)
    store = PretrainStore(write_store(tmp_path / "s", items))
    assert len(store) == 6
    assert store.header["version"] == 1 and store.header["top_k"] == 5
    assert store.dims == {"image_feature": 16, "image_target": 20, "action_feature": 8, "action_target": 700}
    for i, want in enumerate(items):
        got = store.get(i)
        assert got.image_feature.dtype == np.float16 and got.target_index.shape == (want.n_boxes, 5)
        assert_same_clip(got, want, 5)
    assert store.captions(3) == items[3].captions


def test_top_k_keeps_largest_and_optionally_renormalises():
    target = np.array([[0.1, 0.5, 0.05, 0.35], [0.25, 0.25, 0.25, 0.25]], dtype=np.float32)
    index, value = top_k(target, 2)
    assert index[0].tolist() == [1, 3] and np.allclose(value[0].astype(np.float32), [0.5, 0.35], atol=1e-3)
    _, value = top_k(target, 2, renormalise=True)
    assert np.allclose(value.astype(np.float32).sum(axis=1), 1.0, atol=1e-3)
    index, value = top_k(target, 10)  # k larger than the classes: everything, exactly
    assert index.shape == (2, 4)


def test_shards_stay_below_the_cap_and_index_globally(tmp_path):
    rng = np.random.default_rng(1)
    items = [random_clip(rng, i, feature_size=512, num_classes=20, action_feature_size=8) for i in range(60)]
    path = write_store(tmp_path / "s", items, max_shard_bytes=1 << 20, commit_every=7)
    shards = sorted(path.glob("shard-*"))  # (the folder also holds the writer lock file)
    assert len(shards) >= 2
    assert all((p / "data.mdb").stat().st_size <= 1 << 20 for p in shards)
    store = PretrainStore(path)
    assert sum(store.counts) == 60 and len(store) == 60
    assert [store.get(i).clip_id for i in range(60)] == [c.clip_id for c in items]
    # a list of shards opens the same store
    assert [PretrainStore([str(p) for p in shards]).get(i).clip_id for i in (0, 59)] == ["clip0000000", "clip0000059"]
    report = verify_store(path)
    assert report["clips"] == 60 and report["shards"] == len(shards)


def test_writer_skips_committed_ids_and_rejects_bad_clips(tmp_path):
    items = clips(5)
    path = write_store(tmp_path / "s", items[:3])
    with StoreWriter(path, top_k=5, max_shard_bytes=1 << 20) as writer:
        assert writer.num_committed == 3
        assert [writer.add(c) for c in items] == [False, False, False, True, True]
        bad = clips(1, seed=9)[0]
        bad.captions = []
        bad.clip_id = "broken"
        with pytest.raises(DataError, match=r"s: clip broken: empty caption list"):
            writer.add(bad)
    assert len(PretrainStore(path)) == 5
    with pytest.raises(ConfigError, match="top_k=5"):
        StoreWriter(path, top_k=7)


CRASH_SCRIPT = textwrap.dedent("""
    import os, sys
    import numpy as np
    sys.path.insert(0, {root!r})
    from paddlevideo.loader.store import StoreWriter
    from paddlevideo.loader.store.synthetic import random_clip
    rng = np.random.default_rng(0)
    clips = [random_clip(rng, i, feature_size=16, num_classes=20, action_feature_size=8) for i in range(30)]
    writer = StoreWriter({path!r}, top_k=5, max_shard_bytes=1 << 20, commit_every=4)
    for clip in clips[:{stop}]:
        writer.add(clip)
    os._exit(1)  # die without committing the queued clips or closing anything
""")


def test_crashed_writer_restarts_without_loss_or_duplicates(tmp_path):
    path = tmp_path / "s"
    script = CRASH_SCRIPT.format(root=str(ROOT), path=str(path), stop=23)
    assert subprocess.run([sys.executable, "-c", script], capture_output=True).returncode == 1
    assert len(PretrainStore(path)) == 20  # 5 full transactions of 4; the last 3 clips were only queued
    verify_store(path)
    items = clips(30)
    with StoreWriter(path, top_k=5, max_shard_bytes=1 << 20, commit_every=4) as writer:
        added = [writer.add(c) for c in items]
    assert added == [False] * 20 + [True] * 10
    store = PretrainStore(path)
    assert verify_store(path)["clips"] == 30
    assert [store.get(i).clip_id for i in range(30)] == [c.clip_id for c in items]


# ---------------------------------------------------------------- bad records


def put_raw(shard, key, value):
    """Write ``value`` under ``key`` behind the writer's back (to plant bad records)."""
    release_readers(shard)
    env = lmdb.open(str(shard), map_size=1 << 20)
    with env.begin(write=True) as txn:
        txn.put(key, value)
    env.close()


def bad_clip(kind):
    clip = clips(1, seed=3)[0]
    if kind == "feature size":
        clip.image_feature = clip.image_feature[:, :12]
    elif kind == "more boxes":
        clip.image_feature = clip.image_feature[:1]
        clip.boxes = np.concatenate([clip.boxes, clip.boxes])
        clip.image_target = np.concatenate([clip.image_target, clip.image_target])
    elif kind == "non-finite":
        clip.action_feature[0, 1] = np.inf
    elif kind == "empty captions":
        clip.captions = []
    elif kind == "box outside":
        clip.boxes[0] = [10, 10, clip.image_w + 50, 20]
    return encode_clip(clip, 5)


@pytest.mark.parametrize("kind, message", [
    ("feature size", "image_feature has size 12, expected 16"),
    ("more boxes", r"more boxes \(\d+\) than feature rows"),
    ("non-finite", "action_feature has non-finite values"),
    ("empty captions", "empty caption list"),
    ("box outside", "lies outside the 640x360 image"),
    ("truncated", "truncated record"),
    ("corrupt", "CRC-32 mismatch"),
])
def test_bad_record_names_file_and_key(tmp_path, kind, message):
    path = write_store(tmp_path / "s", clips(4))
    shard = path / "shard-00000"
    good = bytes(PretrainStore(path)._env(0).begin().get(record_key(2)))
    if kind == "truncated":
        value = good[: len(good) // 2]
    elif kind == "corrupt":
        value = bytearray(good)
        value[-20] ^= 0xFF
        value = bytes(value)
    else:
        value = bad_clip(kind)
    put_raw(shard, record_key(2), value)
    store = PretrainStore(path)
    store.get(1)  # neighbours still read
    with pytest.raises(DataError, match=rf"{shard}: record 000000000002.*{message}"):
        store.get(2)
    with pytest.raises(DataError, match="record 000000000002"):
        verify_store(path)


def test_wrong_format_version_is_refused(tmp_path):
    path = write_store(tmp_path / "s", clips(2))
    shard = path / "shard-00000"
    header = json.loads(bytes(PretrainStore(path)._env(0).begin().get(HEADER_KEY)))
    header["version"] = 2
    put_raw(shard, HEADER_KEY, json.dumps(header).encode())
    with pytest.raises(DataError, match=rf"{shard}: record __header__: store format version 2.*version 1"):
        PretrainStore(path)


def test_verify_counts_records_against_header(tmp_path):
    path = write_store(tmp_path / "s", clips(3))
    put_raw(path / "shard-00000", record_key(3), bytes(bad_clip("none")))
    with pytest.raises(DataError, match="header counts 3 clips, found 4 records"):
        verify_store(path)


def test_missing_store_is_a_clear_error(tmp_path):
    with pytest.raises(DataError, match="no pretraining store here"):
        PretrainStore(tmp_path)
