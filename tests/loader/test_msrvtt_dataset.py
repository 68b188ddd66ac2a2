"""MSR-VTT retrieval set: query layouts, the safe unpickler, the reference's test-time input."""

import csv
import os
import pickle

import lmdb
import numpy as np
import pytest

from paddlevideo.loader.dataset.msrvtt_dataset import (
    MSRVTTDataset,
    read_queries,
    safe_loads,
    write_msrvtt_lmdb,
)
from paddlevideo.utils.errors import ConfigError, DataError


def make_record(n_boxes, n_actions, dim=3, h=100.0, w=200.0, seed=0):
    rng = np.random.default_rng(seed)
    x1 = rng.uniform(0, w / 2, n_boxes)
    y1 = rng.uniform(0, h / 2, n_boxes)
    boxes = np.stack([x1, y1, x1 + rng.uniform(1, w / 2, n_boxes), y1 + rng.uniform(1, h / 2, n_boxes)], 1)
    return {"image_h": h, "image_w": w, "features": rng.normal(size=(n_boxes, dim)).astype(np.float32),
            "boxes": boxes.astype(np.float32), "action_features": rng.normal(size=(n_actions, dim)).astype(np.float32)}


def write_csv(path, rows, header=None):
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        if header:
            writer.writerow(header)
        writer.writerows(rows)
    return path


@pytest.fixture
def store(tmp_path):
    records = {"video1": make_record(40, 7, seed=1), "video2": make_record(3, 2, seed=2)}
    write_msrvtt_lmdb(tmp_path / "feat.lmdb", records)
    return tmp_path / "feat.lmdb", records


# ------------------------------------------------------------------ queries


def test_jsfusion_csv_real_1k_a_queries(golden_dir, vocab_file, tmp_path):
    path = golden_dir / "msrvtt" / "MSRVTT_JSFUSION_test.csv"
    video_ids, captions = read_queries(path)
    assert len(video_ids) == len(captions) == 1000 and len(set(video_ids)) == 1000
    assert (video_ids[0], captions[0]) == ("video9770", "a person is connecting something to system")
    # Every real video in a tiny store: the dataset indexes them in query order.
    rec = make_record(2, 1)
    write_msrvtt_lmdb(tmp_path / "all.lmdb", {v: rec for v in video_ids})
    ds = MSRVTTDataset(path, tmp_path / "all.lmdb", vocab_file)
    assert ds.num_queries == ds.num_videos == len(ds) == 1000
    assert ds.query_video_index.tolist() == list(range(1000)) and ds.query_video_index.dtype == np.int64
    q = ds.query(0)
    assert q["text_ids"][:3].tolist() == [101, 1037, 2711] and q["text_ids"].shape == (36,)
    # No 1k-A query needs truncation, so every one ends with [SEP] before padding.
    lengths = np.stack([ds.query(i)["text_mask"] for i in range(1000)]).sum(1)
    assert lengths.max() <= 36
    assert all(ds.query(i)["text_ids"][n - 1] == 102 for i, n in enumerate(lengths))


def test_headerless_layout_keeps_commas_and_several_captions_per_video(tmp_path, store, vocab_file):
    path = tmp_path / "q.csv"
    path.write_text('video2,"a man, a plan, a canal"\nvideo1,a dog runs, then sits\nvideo2,a cat\n', encoding="utf-8")
    video_ids, captions = read_queries(path)
    assert captions == ["a man, a plan, a canal", "a dog runs, then sits", "a cat"]
    ds = MSRVTTDataset(path, store[0], vocab_file)
    assert ds.video_ids == ["video2", "video1"] and ds.query_video_index.tolist() == [0, 1, 0]
    assert ds.num_queries == 3 and ds.num_videos == 2


def test_jsfusion_header_with_comma_caption(tmp_path):
    path = write_csv(tmp_path / "q.csv", [["ret0", "msr1", "video1", "x, y and z"]], header=["key", "vid_key",
                                                                                            "video_id", "sentence"])
    assert read_queries(path) == (["video1"], ["x, y and z"])


def test_bad_query_rows_name_the_row(tmp_path, store, vocab_file):
    path = tmp_path / "q.csv"
    path.write_text("video1,a dog\nvideo2,   \n")
    with pytest.raises(DataError, match=r"q.csv:2: empty caption for video 'video2'"):
        read_queries(path)
    path.write_text("video1,a dog\nvideo9,a cat\n")
    with pytest.raises(DataError, match=r"query 1 \('a cat'\) names video 'video9', which is not in the features"):
        MSRVTTDataset(path, store[0], vocab_file)
    with pytest.raises(DataError, match="not found"):
        read_queries(tmp_path / "missing.csv")
    with pytest.raises(ConfigError, match="point `vocab_file` at bert-base-uncased's vocab.txt"):
        MSRVTTDataset(path, store[0])


# ------------------------------------------------------------------ pickle safety


class Custom:
    pass


@pytest.mark.parametrize("payload,name", [(os.system, "system"), (Custom(), "Custom"), (print, "print")])
def test_unpickler_rejects_other_globals(payload, name):
    with pytest.raises(DataError, match=rf"feat.lmdb key 'v': the pickle names class '[\w.]*{name}'"):
        safe_loads(pickle.dumps({"features": payload}), "feat.lmdb key 'v'")


def test_unpickler_rejects_a_reduce_to_os_system():
    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    with pytest.raises(DataError, match="system"):
        safe_loads(pickle.dumps(Evil()), "x")
    with pytest.raises(DataError, match="truncated or corrupt"):
        safe_loads(pickle.dumps({"a": np.ones(3)})[:-5], "x")


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_unpickler_reads_arrays_scalars_and_plain_values(protocol):
    value = {"video_id": "v", "image_h": np.int64(240), "image_w": 320.0, "f": np.arange(6, dtype=np.float16),
             "b": np.ones((2, 4), np.float64), "s": {1, 2}, "t": (1, "a", b"x", None, True)}
    got = safe_loads(pickle.dumps(value, protocol=protocol), "x")
    assert got["image_h"] == 240 and got["s"] == {1, 2} and got["t"] == (1, "a", b"x", None, True)
    np.testing.assert_array_equal(got["f"], value["f"])
    assert got["f"].dtype == np.float16


def test_a_store_with_a_malicious_record_names_file_key_and_class(tmp_path, vocab_file):
    path = tmp_path / "evil.lmdb"
    env = lmdb.open(str(path), map_size=1 << 20)
    with env.begin(write=True) as txn:
        txn.put(b"video1", pickle.dumps({"features": Custom()}))
    env.close()
    q = write_csv(tmp_path / "q.csv", [["video1", "a dog"]])
    ds = MSRVTTDataset(q, path, vocab_file)
    with pytest.raises(DataError, match=r"evil.lmdb key 'video1': the pickle names class '.*Custom'"):
        ds.video(0)


# ------------------------------------------------------------------ test-time input


def test_reference_test_time_input_hand_checked(tmp_path, store, vocab_file):
    path, records = store
    q = write_csv(tmp_path / "q.csv", [["video1", "a dog"], ["video2", "a cat"]])
    ds = MSRVTTDataset(q, path, vocab_file)
    v = ds.video(0)
    rec = records["video1"]
    assert v["image_feat"].shape == (36, 3) and v["image_loc"].shape == (36, 5)
    assert v["image_feat"].dtype == np.float32 and v["image_mask"].dtype == np.int64
    # global region: mean of ALL 40 boxes, although only 35 are kept
    np.testing.assert_allclose(v["image_feat"][0], rec["features"].mean(0), rtol=1e-5, atol=1e-6)
    assert v["image_loc"][0].tolist() == [0, 0, 1, 1, 1]
    np.testing.assert_array_equal(v["image_feat"][1:], rec["features"][:35])
    x1, y1, x2, y2 = rec["boxes"][4]
    np.testing.assert_allclose(v["image_loc"][5], [x1 / 200, y1 / 100, x2 / 200, y2 / 100,
                                                   (x2 - x1) * (y2 - y1) / 20000], rtol=1e-5)
    assert v["image_mask"].tolist() == [1] * 36
    # 7 actions cut to 5; the mask is all ones
    np.testing.assert_array_equal(v["action_feat"], rec["action_features"][:5])
    assert v["action_mask"].tolist() == [1] * 5

    w = ds.video(1)
    assert w["image_mask"].tolist() == [1] * 4 + [0] * 32
    assert not w["image_feat"][4:].any() and not w["image_loc"][4:].any()
    np.testing.assert_allclose(w["image_feat"][0], records["video2"]["features"].mean(0), rtol=1e-5)
    assert not w["action_feat"][2:].any() and w["action_mask"].tolist() == [1] * 5


def test_quirks_are_switchable(tmp_path, store, vocab_file):
    path, records = store
    q = write_csv(tmp_path / "q.csv", [["video1", "a dog"], ["video2", "a cat"]])
    ds = MSRVTTDataset(q, path, vocab_file, global_region_from_all_boxes=False, action_mask_all_ones=False,
                       max_region_num=10, max_action_num=3, max_seq_length=5)
    v = ds.video(0)
    np.testing.assert_allclose(v["image_feat"][0], records["video1"]["features"][:9].mean(0), rtol=1e-5)
    assert v["image_feat"].shape == (10, 3) and v["action_feat"].shape == (3, 3)
    assert ds.video(1)["action_mask"].tolist() == [1, 1, 0]
    assert ds.query(0)["text_ids"].tolist() == [101, 1037, 3899, 102, 0]


def test_flattened_features_and_bad_records(tmp_path, vocab_file):
    good = make_record(4, 2, dim=6)
    flat = {k: (v.reshape(-1) if isinstance(v, np.ndarray) else v) for k, v in good.items()}
    nan = make_record(2, 1, dim=6)
    nan["features"][1, 0] = np.nan
    outside = make_record(2, 1, dim=6)
    outside["boxes"][1] = [10, 10, 500, 50]
    rows_mismatch = make_record(3, 1, dim=6)
    rows_mismatch["features"] = rows_mismatch["features"][:2]
    records = {"flat": flat, "good": good, "nan": nan, "outside": outside, "rows": rows_mismatch,
               "dim": make_record(2, 1, dim=5)}
    write_msrvtt_lmdb(tmp_path / "f.lmdb", records)
    q = write_csv(tmp_path / "q.csv", [[k, "a dog"] for k in records])
    ds = MSRVTTDataset(q, tmp_path / "f.lmdb", vocab_file)
    a, b = ds.video(0), ds.video(1)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
    with pytest.raises(DataError, match=r"f.lmdb key 'nan': 'features' holds non-finite"):
        ds.video(2)
    with pytest.raises(DataError, match=r"key 'outside': box 1 .* outside the 200x100 image"):
        ds.video(3)
    with pytest.raises(DataError, match=r"key 'rows': 2 feature rows for 3 boxes"):
        ds.video(4)
    with pytest.raises(DataError, match=r"key 'dim': 'features' has shape \[2, 5\], expected \[n, 6\]"):
        ds.video(5)


def test_dataset_pickles_without_its_lmdb_handle(tmp_path, store, vocab_file):
    q = write_csv(tmp_path / "q.csv", [["video1", "a dog"]])
    ds = MSRVTTDataset(q, store[0], vocab_file)
    clone = pickle.loads(pickle.dumps(ds))
    np.testing.assert_array_equal(clone.video(0)["image_feat"], ds.video(0)["image_feat"])


# ------------------------------------------------------------------ the LMDB handle


def test_missing_features_lmdb_names_the_setting(tmp_path, vocab_file):
    path = write_csv(tmp_path / "q.csv", [["video1", "a dog"]])
    with pytest.raises(DataError, match=r"features_path \(the MSR-VTT LMDB\) '.*nowhere.lmdb': not found"):
        MSRVTTDataset(path, tmp_path / "nowhere.lmdb", vocab_file)


def test_forked_worker_reads_through_a_handle_of_its_own(tmp_path, store, vocab_file):
    path = write_csv(tmp_path / "q.csv", [["video1", "a dog"], ["video2", "a cat"]])
    ds = MSRVTTDataset(path, store[0], vocab_file)
    inherited, expected = ds._open(), ds.video(1)["image_feat"]
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the worker: its handle must not be the parent's, and reads must work
        ok = ds._open() is not inherited and np.array_equal(ds.video(1)["image_feat"], expected)
        os.write(write, b"1" if ok else b"0")
        os._exit(0)
    os.close(write)
    answer = os.read(read, 1)
    os.waitpid(pid, 0)
    assert answer == b"1"
    assert ds._open() is inherited  # the parent keeps its handle
