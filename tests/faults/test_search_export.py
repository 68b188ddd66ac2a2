"""Fault injection for export, predict and search (``tools/export_model.py``, ``tools/predict.py``,
``tools/search.py``), the search cache, and the vocabulary / length checks every entry point
shares. Each hostile input must end in one ``error: ...`` line with status 2 (or a documented
warning), and leave every file the tool did not write untouched.

One tiny export (2 text layers, demo sizes, random weights; 6-11 s measured) serves the module; the
cases that damage an export work on copies of it. "Unwritable" is a path under a regular file
(ENOTDIR) or under /proc (we run as root, so permissions would not stop us); a full disk is
simulated by monkeypatching the writer to raise ENOSPC.
"""

import errno
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import paddle
import pytest
from test_deploy import CONFIG, write_lmdb

import main
from paddlevideo.loader.store import PretrainStore
from paddlevideo.loader.store.synthetic import random_clip, write_npy
from paddlevideo.retrieval import search as search_task
from paddlevideo.retrieval.export import check_export_target
from paddlevideo.utils.config import get_config
from paddlevideo.utils.logger import setup_logger
from tests.modeling.modeling_helpers import build
from tools import export_model, howto100m_to_lmdb, predict, search
from tools.make_demo_data import demo_vocab

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ROOT / "configs/multimodal/actbert"
# The demo model, cut to 2 text layers so that the export is quick.
TINY = ["MODEL.backbone.num_hidden_layers=2", "MODEL.backbone.t_ent_attention_id=[0,1]"]


def flags(overrides, flag="--override"):
    return [x for o in overrides for x in (flag, o)]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """{tmp, overrides, weights, inference, lmdb, vocab, big_vocab}: a tiny exported model and 6 videos."""
    tmp = tmp_path_factory.mktemp("search_export")
    vocab = demo_vocab()
    (tmp / "vocab.txt").write_text("\n".join(vocab) + "\n")
    (tmp / "big_vocab.txt").write_text("\n".join(vocab + [f"extra{i}" for i in range(6)]) + "\n")
    # output_dir: the tools' default --json / --output land there, never in the checkout.
    overrides = [f"DATASET.test.vocab_file={tmp / 'vocab.txt'}", f"output_dir={tmp / 'out'}", *TINY]
    cfg = get_config(CONFIG, overrides)
    backbone = build({k: v for k, v in cfg.MODEL.backbone.items() if k != "name"}, seed=7)
    weights = tmp / "model.pdparams"
    paddle.save({f"backbone.{k}": v for k, v in backbone.state_dict().items()}, str(weights))
    rng = np.random.default_rng(4)
    write_lmdb(tmp / "videos.lmdb", [random_clip(rng, i, feature_size=64, num_classes=20, action_feature_size=64,
                                                 max_boxes=6, max_actions=3) for i in range(6)])
    out = tmp / "inference"
    assert export_model.main(["-c", CONFIG, "-p", str(weights), "-o", str(out), *flags(overrides)]) == 0
    return {"tmp": tmp, "overrides": overrides, "weights": weights, "inference": out, "lmdb": tmp / "videos.lmdb",
            "vocab": tmp / "vocab.txt", "big_vocab": tmp / "big_vocab.txt"}


@pytest.fixture
def one_line(capsys):
    """Check a tool's result: status 2 and exactly one stderr line ``error: ...``; returns that line."""

    def check(status):
        captured = capsys.readouterr()
        err = captured.err.strip().splitlines()
        assert status == 2, captured.out[-2000:] + captured.err[-2000:]
        assert len(err) == 1 and err[0].startswith("error: "), err
        return err[0]

    return check


def tool(entry, args):
    """``entry(args)`` with the project logger writing to this test's (captured) stdout."""
    setup_logger()
    return entry(args)


def run_search(tiny, *extra, model=None, overrides=()):
    model = model or ["-w", str(tiny["weights"])]
    args = ["-c", CONFIG, *model, "--no-progress", "--videos", str(tiny["lmdb"]), *extra]
    return tool(search.main, args + flags([*tiny["overrides"], *overrides]))


def run_predict(tiny, *extra, inference=None, overrides=()):
    args = ["-c", CONFIG, "--inference-dir", str(inference or tiny["inference"]), "--videos", str(tiny["lmdb"]),
            "--enable_mkldnn", "false", *extra]
    return tool(predict.main, args + flags([*tiny["overrides"], *overrides]))


def exported_copy(tiny, tmp_path):
    copy = tmp_path / "inference"
    shutil.copytree(tiny["inference"], copy)
    return copy


# --------------------------------------------------------------------------- the search cache


def test_cache_never_overwrites_a_file_it_did_not_write(tiny, tmp_path, one_line):
    weights = tmp_path / "model.pdparams"  # a checkpoint given as --cache by mistake
    shutil.copy(tiny["weights"], weights)
    foreign_npz = tmp_path / "mine.npz"  # an .npz archive of someone else's
    np.savez(foreign_npz, a=np.arange(3))
    text = tmp_path / "notes.txt"
    text.write_text("mine")
    for path in (weights, foreign_npz, text):
        before = path.read_bytes()
        line = one_line(run_search(tiny, "--query", "egg", "--cache", str(path), "--json", str(tmp_path / "r.json")))
        assert f"--cache {path}: " in line and "left untouched" in line
        assert path.read_bytes() == before
    assert not (tmp_path / "r.json").exists()  # refused before any work
    assert "is a directory" in one_line(run_search(tiny, "--query", "egg", "--cache", str(tmp_path)))


def test_cache_truncated_or_damaged_is_an_error_and_kept(tiny, tmp_path, one_line, capsys):
    cache = tmp_path / "videos.npz"
    assert run_search(tiny, "--query", "egg", "--cache", str(cache), "--json", str(tmp_path / "r.json")) == 0
    capsys.readouterr()
    whole = cache.read_bytes()
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(whole[: len(whole) // 2])
    damaged = tmp_path / "damaged.npz"  # the archive's directory intact, a member's bytes flipped (CRC)
    raw = bytearray(whole)
    raw[len(raw) // 3] ^= 0xFF
    damaged.write_bytes(bytes(raw))
    for path, why in ((truncated, "truncated"), (damaged, "damaged")):
        before = path.read_bytes()
        assert why in one_line(run_search(tiny, "--query", "egg", "--cache", str(path)))
        assert path.read_bytes() == before


def test_a_stale_cache_of_ours_is_replaced(tiny, tmp_path, capsys):
    cache, store = tmp_path / "videos.npz", tmp_path / "store"
    assert run_search(tiny, "--query", "egg", "--cache", str(cache), "--json", str(tmp_path / "r.json")) == 0
    first = json.loads(str(np.load(cache)["__meta__"]))
    assert first["format"] == search_task.CACHE_FORMAT
    # The same videos as a store: another collection, so the cache is re-encoded and replaced.
    from paddlevideo.loader.store import StoreWriter

    collection = search_task.open_collection(tiny["lmdb"], get_config(CONFIG, tiny["overrides"]).DATASET.test)
    with StoreWriter(store) as writer:
        for i, vid in enumerate(collection.video_ids):
            rng = np.random.default_rng(i)
            clip = random_clip(rng, i, feature_size=64, num_classes=20, action_feature_size=64)
            clip.clip_id = vid
            writer.add(clip)
    capsys.readouterr()
    assert run_search(tiny, "--query", "egg", "--cache", str(cache), "--videos", str(store),
                      "--json", str(tmp_path / "r.json")) == 0
    assert "made for another model or collection: encoding again" in capsys.readouterr().out
    assert json.loads(str(np.load(cache)["__meta__"]))["fingerprint"] != first["fingerprint"]
    # A cache of the first layout (version 1, no marker) is ours too: replaced, not refused.
    meta = {"version": 1, "fingerprint": "old", "video_ids": ["x"]}
    with open(cache, "wb") as f:
        np.savez(f, __meta__=np.array(json.dumps(meta)), region=np.zeros((1, 2)))
    assert run_search(tiny, "--query", "egg", "--cache", str(cache), "--json", str(tmp_path / "r.json")) == 0
    assert json.loads(str(np.load(cache)["__meta__"]))["version"] == search_task.CACHE_VERSION


def test_cache_unwritable_or_disk_full(tiny, tmp_path, one_line, monkeypatch):
    (tmp_path / "file").write_text("x")
    under_a_file = tmp_path / "file" / "videos.npz"  # ENOTDIR
    assert "is a file, not a folder" in one_line(run_search(tiny, "--query", "egg", "--cache", str(under_a_file)))
    assert "cannot write in /proc" in one_line(run_search(tiny, "--query", "egg", "--cache", "/proc/videos.npz"))
    # A full disk while the cache is written: one line, the old cache kept, no temporary left.
    cache = tmp_path / "videos.npz"
    meta = {"format": search_task.CACHE_FORMAT, "version": search_task.CACHE_VERSION, "fingerprint": "old",
            "video_ids": []}
    with open(cache, "wb") as f:
        np.savez(f, __meta__=np.array(json.dumps(meta)))
    before = cache.read_bytes()

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(search_task.np, "savez", full)
    line = one_line(run_search(tiny, "--query", "egg", "--cache", str(cache), "--json", str(tmp_path / "r.json")))
    assert f"--cache {cache}: cannot write (No space left on device)" in line
    assert cache.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["file", "videos.npz"]


# --------------------------------------------------------------------------- search and predict flags


def test_unwritable_json_and_output_refused_before_the_work(tiny, tmp_path, one_line):
    (tmp_path / "file").write_text("x")
    for where in (tmp_path / "file" / "r.json", "/proc/r.json", tmp_path):
        line = one_line(run_search(tiny, "--query", "egg", "--json", str(where)))
        assert line.startswith(f"error: --json {where}: ")
    for where in (tmp_path / "file" / "s.npy", "/proc/s.npy", tmp_path):
        line = one_line(run_predict(tiny, "--caption", "egg", "--output", str(where)))
        assert line.startswith(f"error: --output {where}: ")
    assert (tmp_path / "file").read_text() == "x"


def test_predict_output_disk_full_keeps_the_previous_file(tiny, tmp_path, capsys, monkeypatch):
    out = tmp_path / "s.npy"
    out.write_bytes(b"previous")

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(np, "save", full)
    assert run_predict(tiny, "--caption", "egg", "--output", str(out)) == 2
    err = capsys.readouterr().err.strip().splitlines()  # (after predict's progress bar, which has no switch)
    assert err[-1] == f"error: --output {out}: cannot write (No space left on device); the file is left as it was"
    assert out.read_bytes() == b"previous" and [p.name for p in tmp_path.iterdir()] == ["s.npy"]


@pytest.mark.parametrize("value", ["0", "-5"])
def test_pair_batch_size_below_one_refused(tiny, tmp_path, one_line, value):
    line = one_line(run_search(tiny, "--query", "egg", "--pair_batch_size", value))
    assert f"--pair_batch_size must be a whole number of pairs, at least 1; got {value}" in line
    line = one_line(run_predict(tiny, "--caption", "egg", "--pair_batch_size", value))
    assert "--pair_batch_size must be" in line
    line = one_line(run_search(tiny, "--query", "egg", overrides=[f"DATASET.test_pair_batch_size={value}"]))
    assert f"DATASET.test_pair_batch_size must be a whole number of pairs, at least 1; got {value}" in line


def test_cpu_threads_below_one_refused(tiny, one_line):
    assert "--cpu_threads must be at least 1" in one_line(run_predict(tiny, "--caption", "egg", "--cpu_threads", "-3"))
    exported = ["--inference-dir", str(tiny["inference"])]
    line = one_line(run_search(tiny, "--query", "egg", "--cpu_threads", "0", model=exported))
    assert "--cpu_threads must be at least 1" in line
    assert "--cpu_threads must be at least 1" in one_line(run_search(tiny, "--query", "egg", "--cpu_threads", "-3"))
    assert "--gpu_id must be 0 or more, got -1" in one_line(run_predict(tiny, "--caption", "egg", "--gpu_id", "-1"))


def test_unknown_words_are_named_and_an_all_unknown_query_warned(tiny, tmp_path, capsys):
    out = tmp_path / "r.json"
    assert run_search(tiny, "--query", "a person slices a zebra", "--query", "xylophone quokka",
                      "--json", str(out)) == 0
    log = capsys.readouterr().out
    assert "query 1: word(s) not in the vocabulary, read as [UNK]: 'zebra'" in log
    assert "query 2 ('xylophone quokka'): no word of it is in the vocabulary" in log and "ranking is arbitrary" in log
    assert len(json.loads(out.read_text())["queries"]) == 2  # still ranked, with the warning
    assert run_predict(tiny, "--caption", "quokka", "--output", str(tmp_path / "s.npy")) == 0
    assert "query 1 ('quokka'): no word of it is in the vocabulary" in capsys.readouterr().out


def test_long_query_on_a_shorter_export(tiny, tmp_path, capsys, one_line):
    exported = ["--inference-dir", str(tiny["inference"]), "--enable_mkldnn", "false"]
    long_query = " ".join(["tomato"] * 30)
    assert run_search(tiny, "--query", long_query, "--json", str(tmp_path / "r.json"), model=exported) == 0
    assert "query 1 has 30 word pieces; keeping the first 14 (max_seq_length=16)" in capsys.readouterr().out
    # Longer inputs than the export was made for: refused, not cut silently.
    line = one_line(run_search(tiny, "--query", long_query, model=exported,
                               overrides=["DATASET.test.max_seq_length=24"]))
    assert "DATASET.test.max_seq_length=24 is longer than --inference-dir" in line


# --------------------------------------------------------------------------- damaged exports


def test_truncated_or_garbage_export_files(tiny, tmp_path, one_line):
    copy = exported_copy(tiny, tmp_path)
    params = copy / "video_encoder.pdiparams"
    params.write_bytes(params.read_bytes()[: params.stat().st_size // 2])
    line = one_line(run_predict(tiny, "--caption", "egg", inference=copy))
    assert "video_encoder.pdiparams is" in line and "truncated or replaced" in line
    # Garbage of the recorded size gets past the size check: Paddle's parser refuses it.
    shutil.rmtree(copy)
    copy = exported_copy(tiny, tmp_path)
    graph = copy / "text_encoder.json"
    graph.write_bytes(b"{" * graph.stat().st_size)
    assert "cannot load text_encoder" in one_line(run_predict(tiny, "--caption", "egg", inference=copy))
    # An old-format graph (.pdmodel) in place of the .json.
    graph.rename(copy / "text_encoder.pdmodel")
    assert "graph file(s) missing: text_encoder.json" in one_line(run_predict(tiny, "--caption", "egg",
                                                                              inference=copy))


def test_interrupted_export_refused(tiny, tmp_path, one_line):
    copy = exported_copy(tiny, tmp_path)
    info = json.loads((copy / "export_info.json").read_text())
    (copy / "export_info.json").write_text(json.dumps({**info, "complete": False}))
    assert "the export was interrupted" in one_line(run_predict(tiny, "--caption", "egg", inference=copy))


def test_export_output_refused(tiny, tmp_path, one_line):
    base = ["-c", CONFIG, "-p", str(tiny["weights"]), *flags(tiny["overrides"])]
    (tmp_path / "file").write_text("mine")
    assert "is a file; give a folder" in one_line(tool(export_model.main, [*base, "-o", str(tmp_path / "file")]))
    assert "is a file, not a folder" in one_line(tool(export_model.main, [*base, "-o", str(tmp_path / "file" / "x")]))
    assert "cannot write in /proc" in one_line(tool(export_model.main, [*base, "-o", "/proc/inference"]))
    foreign = tmp_path / "theirs"
    foreign.mkdir()
    (foreign / "text_encoder.json").write_text("someone else's graph")
    line = one_line(tool(export_model.main, [*base, "-o", str(foreign)]))
    assert "holds text_encoder.json but no export_info.json" in line
    assert (foreign / "text_encoder.json").read_text() == "someone else's graph"
    assert (tmp_path / "file").read_text() == "mine" and not (tmp_path / "file").is_dir()
    # An earlier export, finished or interrupted, is ours: exporting over it is allowed.
    copy = exported_copy(tiny, tmp_path)
    check_export_target(copy)
    info = json.loads((copy / "export_info.json").read_text())
    (copy / "export_info.json").write_text(json.dumps({**info, "complete": False}))
    check_export_target(copy)


# --------------------------------------------------------------------------- vocabulary and lengths vs the model


def _main(args):
    return tool(main.main, args)


def test_a_vocabulary_larger_than_the_model_is_refused_everywhere(tiny, tmp_path, one_line):
    big = str(tiny["big_vocab"])
    expected = f"'{big}' has 40 tokens, more than the model's MODEL.backbone.vocab_size=34"
    test_vocab = [f"DATASET.test.vocab_file={big}"]
    exported = ["--inference-dir", str(tiny["inference"])]
    cases = {
        "search -w": lambda: run_search(tiny, "--query", "egg", overrides=test_vocab),
        "search exported": lambda: run_search(tiny, "--query", "egg", model=exported, overrides=test_vocab),
        "predict": lambda: run_predict(tiny, "--caption", "egg", overrides=test_vocab),
        "export": lambda: tool(export_model.main, ["-c", CONFIG, "-p", str(tiny["weights"]), "-o", str(tmp_path / "x"),
                                             *flags([*tiny["overrides"], *test_vocab])]),
        "--test": lambda: _main(["-c", CONFIG, "--test", "-w", str(tiny["weights"]), *flags(test_vocab, "-o")]),
        "training": lambda: _main(["-c", str(CONFIGS / "actbert_demo.yaml"), "-o",
                                   f"output_dir={tmp_path / 'out'}", "-o", f"DATASET.train.vocab_file={big}"]),
        "validation": lambda: _main(["-c", str(CONFIGS / "actbert_demo.yaml"), "--validate", "-o",
                                     f"output_dir={tmp_path / 'out'}", "-o", f"DATASET.valid.vocab_file={big}"]),
        "fine-tuning": lambda: _main(["-c", str(CONFIGS / "actbert_msrvtt_finetune_demo.yaml"), "-o",
                                      f"output_dir={tmp_path / 'out'}", "-o", f"DATASET.train.vocab_file={big}"]),
        "multiple choice": lambda: _main(["-c", str(CONFIGS / "actbert_msrvtt_mc_demo.yaml"), "--test", "-w",
                                          str(tiny["weights"]), "-o", f"DATASET.test.vocab_file={big}"]),
    }
    for name, run in cases.items():
        line = one_line(run())
        assert expected in line, (name, line)
    assert not (tmp_path / "x").exists() and not (tmp_path / "out").exists()


def test_max_seq_length_above_the_position_table_is_refused(tiny, tmp_path, one_line):
    longer = ["DATASET.test.max_seq_length=80"]  # the demo model has 64 positions
    expected = "DATASET.test.max_seq_length=80 is more than the model's MODEL.backbone.max_position_embeddings=64"
    assert expected in one_line(run_search(tiny, "--query", "egg", overrides=longer))
    assert expected in one_line(tool(export_model.main, ["-c", CONFIG, "-p", str(tiny["weights"]), "-o",
                                                   str(tmp_path / "x"), *flags([*tiny["overrides"], *longer])]))
    line = one_line(_main(["-c", str(CONFIGS / "actbert_demo.yaml"), "-o", f"output_dir={tmp_path / 'out'}",
                           "-o", "PIPELINE.train.transform.3.RandomMask.max_seq_length=65"]))
    assert "PIPELINE.train.transform.3.RandomMask.max_seq_length=65 is more than" in line


# --------------------------------------------------------------------------- two writers on one store

HOLD_WRITER = textwrap.dedent("""
    import sys
    sys.path.insert(0, {root!r})
    from paddlevideo.loader.store import StoreWriter
    with StoreWriter({store!r}, top_k=20) as writer:
        print("holding", flush=True)
        sys.stdin.readline()  # hold the store until the test says so
""")


def test_a_second_conversion_into_one_store_is_refused(tmp_path, capsys):
    """Two real processes: one writer holds the store; the converter run meanwhile is refused with
    one line and writes nothing; readers still read; once the first ends, the conversion runs."""
    rng = np.random.default_rng(2)
    clips = [random_clip(rng, i, feature_size=16, num_classes=20, action_feature_size=8) for i in range(7)]
    npy = write_npy(tmp_path / "actbert_train_data.npy", clips)
    store = tmp_path / "store"
    convert = [str(npy), "--out", str(store), "--top_k", "20", "--no_progress"]
    assert howto100m_to_lmdb.main(convert) == 0
    shard = store / "shard-00000" / "data.mdb"
    before = shard.read_bytes()
    env = dict(os.environ, OMP_NUM_THREADS="1")
    holder = subprocess.Popen([sys.executable, "-c", HOLD_WRITER.format(root=str(ROOT), store=str(store))],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert holder.stdout.readline().strip() == "holding"
        second = subprocess.run([sys.executable, str(ROOT / "tools/howto100m_to_lmdb.py"), *convert], env=env,
                                capture_output=True, text=True, timeout=120)
        assert second.returncode == 2, second.stderr[-2000:]
        assert second.stderr.strip() == (f"error: store {store} is being written by pid {holder.pid}; wait for it "
                                         "to end or choose another output")
        assert shard.read_bytes() == before  # the refused writer wrote nothing
        assert len(PretrainStore(store)) == 7  # readers take no lock
    finally:
        holder.communicate("\n", timeout=60)
    assert holder.returncode == 0
    capsys.readouterr()
    assert howto100m_to_lmdb.main(convert) == 0  # the lock went with its holder
    assert "ok: 7 clips" in capsys.readouterr().out
