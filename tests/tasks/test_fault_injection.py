"""Fault injection: each kind of bad input, written here, against ``main.py`` and the converter.

Every case must end with one line ``error: ...`` naming the culprit and status 2: no
traceback, no hang, no signal. Cases that could hang or kill the process (a bad record
met mid-epoch, a truncated LMDB, a failing rank of a 2-process run) run as real
processes, all started together when the module starts and awaited with a timeout by
their tests; the rest call ``main.main`` in this process.
"""

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import lmdb
import numpy as np
import paddle
import pytest
import standin
import yaml
from test_batch_loader_faults import within

import main
from paddlevideo.loader.store.lmdb_store import record_key
from paddlevideo.utils import checkpoint as ckpt
from tools import howto100m_to_lmdb
from tools.make_demo_data import make_demo_data

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
TRAIN_CFG = str(ROOT / "configs/multimodal/actbert/actbert_demo.yaml")
TEST_CFG = str(ROOT / "configs/multimodal/actbert/actbert_msrvtt_demo.yaml")
ENV = dict(os.environ, OMP_NUM_THREADS="1")
# A bad record read mid-epoch must end a real run within this many seconds (start-up included).
BOUND = 90


# --------------------------------------------------------------------------- bad files


def write_npy_items(path, items):
    array = np.empty(len(items), dtype=object)
    array[:] = [tuple(item) for item in items]
    np.save(path, array, allow_pickle=True)
    return str(path)


def broken_item(items, index, kind):
    """A copy of ``items`` whose item ``index`` has a fault of ``kind``."""
    items = [list(item) for item in items]
    item = items[index]
    if kind == "width":
        item[0] = item[0][:, :7]  # image_feature 7 wide instead of 64
    elif kind == "fields":
        items[index] = item[:9]
    elif kind == "nan":
        item[8] = item[8].copy()
        item[8][0, 3] = np.nan
    elif kind == "boxes":
        item[3] = len(item[0]) + 3  # n_boxes beyond the feature rows
    return items


def flip_record_byte(shard, index):
    """Change one byte of record ``index`` behind the store's back (its CRC no longer matches)."""
    env = lmdb.open(str(shard), map_size=1 << 24)
    with env.begin(write=True) as txn:
        value = bytearray(txn.get(record_key(index)))
        value[-9] ^= 0xFF
        txn.put(record_key(index), bytes(value))
    env.close()


def truncate(path, keep):
    with open(path, "r+b") as f:
        f.truncate(keep)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """The demo corpus (tiny) and every bad file derived from it."""
    root = tmp_path_factory.mktemp("faults")
    demo = root / "demo"
    make_demo_data(str(demo), num_train=24, num_val=8, num_test=4)
    items = list(np.load(demo / "actbert_train_data.npy", allow_pickle=True))
    f = {"demo": demo, "root": root, "npy": str(demo / "actbert_train_data.npy"), "vocab": str(demo / "vocab.txt")}
    for kind in ("fields", "nan", "boxes"):  # (item 0 sets the widths: a narrow one is the mid-epoch case)
        f[f"npy_{kind}_0"] = write_npy_items(root / f"{kind}_0.npy", broken_item(items, 0, kind))
    f["npy_width_9"] = write_npy_items(root / "width_9.npy", broken_item(items, 9, "width"))
    raw = Path(f["npy"]).read_bytes()
    (root / "truncated.npy").write_bytes(raw[: len(raw) // 2])
    (root / "not_pickle.npy").write_bytes(raw[: raw.index(b"\n") + 1] + b"not a pickle at all " * 40)
    f["npy_truncated"], f["npy_not_pickle"] = str(root / "truncated.npy"), str(root / "not_pickle.npy")
    vocab = Path(f["vocab"]).read_text(encoding="utf-8")
    (root / "empty_vocab.txt").write_text("")
    (root / "no_mask_vocab.txt").write_text(vocab.replace("[MASK]\n", ""))
    (root / "latin1_vocab.txt").write_bytes(vocab.replace("tomato", "tomaté").encode("latin-1"))
    (root / "binary_vocab.txt").write_bytes(bytes(range(256)) * 4)
    (root / "bad.json").write_text('["a person slices a tomato", ')
    (root / "dict.json").write_text('{"captions": ["a person slices a tomato"]}')
    # The store, one with a corrupt first record, one with a truncated data.mdb.
    store = root / "store"
    assert howto100m_to_lmdb.main([f["npy"], "--out", str(store), "--no_progress"]) == 0
    shutil.copytree(store, root / "crc_store")
    flip_record_byte(root / "crc_store" / "shard-00000", 0)
    shutil.copytree(store, root / "short_store")
    data = root / "short_store" / "shard-00000" / "data.mdb"
    truncate(data, data.stat().st_size // 2)
    f.update(store=str(store), crc_store=str(root / "crc_store"), short_store=str(root / "short_store"),
             short_mdb=str(data))
    # MSR-VTT: a query list in Latin-1, one without a sentence column, a truncated LMDB.
    csv = (demo / "MSRVTT_JSFUSION_test.csv").read_text(encoding="utf-8")
    lines = csv.splitlines()
    (root / "latin1.csv").write_bytes("\n".join(lines[:2] + [lines[2] + " café"] + lines[3:]).encode("latin-1"))
    (root / "no_sentence.csv").write_text("\n".join([lines[0].replace("sentence", "text")] + lines[1:]))
    shutil.copytree(demo / "msrvtt_test.lmdb", root / "short.lmdb")
    truncate(root / "short.lmdb" / "data.mdb", 4096 * 3)
    # A file that passes as a full-model checkpoint (the data is checked before it is loaded).
    paddle.save({"backbone.bert.embeddings.word_embeddings.weight": paddle.zeros([2, 2])}, str(root / "full.pdparams"))
    return f


# --------------------------------------------------------------------------- real processes


def tiny_faulty_config(path, fault, fail_at):
    cfg = standin.tiny_config(path.parent / "out", epochs=1)
    cfg["DATASET"]["train"] = {"format": "TinyFaultyDataset", "fail_at": fail_at, "fault": fault}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(cfg))
    return str(path)


@pytest.fixture(scope="module")
def processes(files):
    """Start every subprocess case at once; ``wait(name)`` -> (status, output, seconds)."""
    root = files["root"]
    train = [sys.executable, "main.py", "-c", TRAIN_CFG, "-o", "DATASET.batch_size=4", "-o", "epochs=1",
             "-o", f"DATASET.train.vocab_file={files['vocab']}",
             "-o", f"DATASET.train.file_path={files['npy_width_9']}",
             "-o", f"PIPELINE.train.transform.1.RandomCap.caption_path={files['demo']}/caption_train.json"]
    commands = {
        "workers 0": train + ["-o", "DATASET.num_workers=0", "-o", f"output_dir={root}/out0"],
        "workers 1": train + ["-o", "DATASET.num_workers=1", "-o", f"output_dir={root}/out1"],
        "verify truncated": [sys.executable, "tools/howto100m_to_lmdb.py", "--verify", files["short_store"],
                             "--no_progress"],
        "two ranks": [sys.executable, "-m", "paddle.distributed.launch", "--nproc_per_node", "2", "--log_dir",
                      str(root / "launch_logs"), str(HERE / "run_main.py"), "-c",
                      # Item 19 is in rank 0's second batch (seed 7): the launcher names the first failed rank.
                      tiny_faulty_config(root / "dist" / "cfg.yaml", "data", fail_at=19), "-o",
                      "DATASET.batch_size=2"],
    }
    started = {name: (time.monotonic(), subprocess.Popen(cmd, cwd=ROOT, env=ENV, stdout=subprocess.PIPE,
                                                          stderr=subprocess.STDOUT, text=True))
               for name, cmd in commands.items()}

    def wait(name):
        start, proc = started[name]
        try:
            out, _ = proc.communicate(timeout=max(BOUND - (time.monotonic() - start), 1))
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
            pytest.fail(f"{name}: still running after {BOUND} s (a hang):\n{out[-3000:]}")
        return proc.returncode, out, time.monotonic() - start

    yield wait
    for _, proc in started.values():
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def error_lines(out):
    return [line for line in out.splitlines() if line.startswith("error: ")]


@pytest.mark.parametrize("name", ["workers 0", "workers 1"])
def test_a_bad_record_mid_epoch_ends_the_run(processes, name):
    status, out, _ = processes(name)
    assert status == 2, out[-3000:]
    assert error_lines(out) == [error_lines(out)[-1]] and "width_9.npy: item 9" in error_lines(out)[-1], out[-3000:]
    assert "image_feature has size 7, expected 64" in error_lines(out)[-1]
    assert "Traceback" not in out


def test_a_failing_rank_ends_a_two_process_run(processes, files):
    status, out, seconds = processes("two ranks")
    logs = "".join(p.read_text() for p in sorted((files["root"] / "launch_logs").glob("workerlog.*")))
    assert status != 0 and seconds < BOUND
    assert "error: tiny.npy: item 19: image_feature has size 7, expected 8" in logs, out[-2000:] + logs[-3000:]
    # The launcher names the rank that stopped with status 2, then stops the other.
    assert "Container rank 0 status failed" in out and " code 2 " in out, out[-2000:]


def test_verify_of_a_truncated_store_is_an_error_not_a_signal(processes, files):
    status, out, _ = processes("verify truncated")
    assert status == 2, out[-2000:]  # was SIGBUS (-7)
    size = os.path.getsize(files["short_mdb"])
    assert error_lines(out) == [f"error: {files['short_mdb']}: truncated LMDB file ({size} bytes, its meta page "
                                f"counts {2 * size} bytes of pages in use); copy it again or re-run the conversion"]


# --------------------------------------------------------------------------- in this process


def run(capsys, *argv):
    """``main.main(argv)``: (status, the one ``error:`` line); fails on a traceback or several lines."""
    status = main.main([str(a) for a in argv])
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    lines = error_lines(err)
    assert len(lines) <= 1, err
    return status, lines[0] if lines else ""


def train_args(files, *extra, npy=None, vocab=None, captions=None):
    captions = captions or f"{files['demo']}/caption_train.json"
    return ["-c", TRAIN_CFG, "-o", "DATASET.batch_size=4", "-o", f"output_dir={files['root']}/out",
            "-o", f"DATASET.train.vocab_file={vocab or files['vocab']}",
            "-o", f"DATASET.train.file_path={npy or files['npy']}",
            "-o", f"PIPELINE.train.transform.1.RandomCap.caption_path={captions}", *extra]


@pytest.mark.parametrize("change, message", [
    ({"vocab": "{root}/missing_vocab.txt"}, "vocab_file not found: '{root}/missing_vocab.txt'"),
    ({"vocab": "{root}/empty_vocab.txt"}, "vocab_file '{root}/empty_vocab.txt' is empty"),
    ({"vocab": "{root}/no_mask_vocab.txt"}, "lacks the special token(s) [MASK]"),
    ({"vocab": "{root}/latin1_vocab.txt"}, "latin1_vocab.txt' is not UTF-8 text (line 32: byte 0xe9)"),
    ({"vocab": "{root}/binary_vocab.txt"}, "binary_vocab.txt' is not UTF-8 text (line 2: byte 0x80)"),
    ({"captions": "{root}/missing.json"}, "RandomCap.caption_path: file not found: '{root}/missing.json'"),
    ({"captions": "{root}/bad.json"}, "bad.json: cannot read the caption JSON"),
    ({"captions": "{root}/dict.json"}, "dict.json: expected a JSON list of caption strings"),
    ({"npy": "{root}/fields_0.npy"}, "fields_0.npy: item 0: expected an item of 11 fields"),
    ({"npy": "{root}/nan_0.npy"}, "nan_0.npy: item 0 (image_id"),
    ({"npy": "{root}/boxes_0.npy"}, "boxes_0.npy: item 0: more boxes/actions"),
    ({"npy": "{root}/truncated.npy"}, "truncated.npy: not a readable .npy file, or truncated (UnpicklingError"),
    ({"npy": "{root}/not_pickle.npy"}, "not_pickle.npy: not a readable .npy file, or truncated (UnpicklingError"),
    ({"npy": "{root}/crc_store"}, "crc_store/shard-00000: record 000000000000: corrupt record (CRC-32 mismatch)"),
    ({"npy": "{root}/short_store"}, "short_store/shard-00000/data.mdb: truncated LMDB file"),
])
def test_bad_training_input_fails_before_the_model_is_built(files, capsys, monkeypatch, change, message):
    import paddlevideo.modeling.builder as builder

    monkeypatch.setattr(builder, "build_model", lambda cfg: pytest.fail("the model was built before the data check"))
    root = files["root"]
    status, line = run(capsys, *train_args(files, **{k: v.format(root=root) for k, v in change.items()}))
    assert status == 2 and message.format(root=root) in line, line


@pytest.mark.parametrize("extra, message", [
    (["--max_iters", "0"], "--max_iters must be a positive number of steps, got 0"),
    (["--max_iters", "-5"], "--max_iters must be a positive number of steps, got -5"),
    (["-w", "{root}"], "-w {root}: is a directory; give a checkpoint file"),
    (["--resume", "{root}"], "--resume {root}: is a directory"),
    (["-o", "OPTIMIZER.learning_rate=-0.001"], "OPTIMIZER.learning_rate must be positive, got -0.001"),
    (["-o", "OPTIMIZER.learning_rate=0"], "OPTIMIZER.learning_rate must be positive, got 0"),
    (["-o", "OPTIMIZER.learning_rate={{name: CustomPiecewiseDecay, boundaries: [5], values: [0.001, -0.0001]}}"],
     "OPTIMIZER.learning_rate.values.1 must be positive, got -0.0001"),
    (["-o", "OPTIMIZER.learning_rate.learning_rate=-1"], "OPTIMIZER.learning_rate.learning_rate must be positive"),
    (["-o", "OPTIMIZER.learning_rate.warmup_start_lr=-1"], "warmup_start_lr must be >= 0, got -1"),
    (["-o", "DATASET.num_workers=-2"], "DATASET.num_workers must be an integer >= 0, got -2"),
])
def test_bad_flags_and_rates(files, capsys, extra, message):
    root = files["root"]
    status, line = run(capsys, *train_args(files, *[e.format(root=root) for e in extra]))
    assert status == 2 and message.format(root=root) in line, line


@pytest.mark.parametrize("change, message", [
    ("DATASET.test.file_path={root}/latin1.csv", "latin1.csv: not UTF-8 text (line 3: byte 0xe9)"),
    ("DATASET.test.file_path={root}/no_sentence.csv", "no_sentence.csv:1: the header key,vid_key,video_id,text has "
                                                      "no 'sentence' (or 'caption') column"),
    ("DATASET.test.features_path={root}/short.lmdb", "short.lmdb/data.mdb': truncated LMDB file (12288 bytes"),
])
def test_bad_test_input_fails_before_the_weights_load(files, capsys, change, message):
    root, demo = files["root"], files["demo"]
    args = ["-c", TEST_CFG, "--test", "-w", root / "full.pdparams", "-o", f"output_dir={root}/test_out",
            "-o", f"DATASET.test.file_path={demo}/MSRVTT_JSFUSION_test.csv",
            "-o", f"DATASET.test.features_path={demo}/msrvtt_test.lmdb",
            "-o", f"DATASET.test.vocab_file={demo}/vocab.txt",
            "-o", change.format(root=root)]
    status, line = run(capsys, *args)
    assert status == 2 and message.format(root=root) in line, line


def test_test_weights_naming_a_directory(files, capsys):
    status, line = run(capsys, "-c", TEST_CFG, "--test", "-w", files["root"])
    assert status == 2
    assert line == f"error: -w {files['root']}: is a directory; give a checkpoint file (e.g. a .pdparams)"


# --------------------------------------------------------------------------- converter


def test_converter_refuses_a_file_or_a_foreign_folder(files, tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("mine")
    for out, message in ((tmp_path / "notes.txt", "is a file, but a store is a folder of shards"),
                         (tmp_path, "not empty and not a pretraining store (it holds notes.txt)")):
        assert howto100m_to_lmdb.main([files["npy"], "--out", str(out), "--no_progress"]) == 2
        assert capsys.readouterr().err.strip() == f"error: {out}: {message}; give a new or empty folder, or an " \
                                                  "existing store to continue it"
    assert (tmp_path / "notes.txt").read_text() == "mine" and sorted(os.listdir(tmp_path)) == ["notes.txt"]


def test_converter_bad_npy_and_an_interrupted_conversion(files, tmp_path, capsys):
    store = tmp_path / "store"
    assert howto100m_to_lmdb.main([files["npy_truncated"], "--out", str(store), "--no_progress"]) == 2
    assert "truncated.npy: not a readable .npy file, or truncated" in capsys.readouterr().err
    # Stops at the bad item 9: items 0-8 are committed, the store is marked unfinished.
    args = [files["npy_width_9"], "--out", str(store), "--no_progress", "--commit_every", "4"]
    assert howto100m_to_lmdb.main(args) == 2
    assert "width_9.npy: item 9: image_feature has size 7" in capsys.readouterr().err
    assert howto100m_to_lmdb.main(["--verify", str(store), "--no_progress"]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"error: {store}: incomplete: 9 clips so far, all good (the conversion did not finish; run it again to "
        "continue)")
    # Create or continue: the same command with --skip_bad finishes the store.
    assert howto100m_to_lmdb.main(args + ["--skip_bad"]) == 0
    assert "ok: 23 clips" in capsys.readouterr().out
    assert howto100m_to_lmdb.main(["--verify", str(store), "--no_progress"]) == 0


# --------------------------------------------------------------------------- checkpoints


def test_disk_full_names_the_file_and_free_space_and_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    path = str(tmp_path / "Tiny_epoch_00001.pdparams")
    ckpt.atomic_save({"w": paddle.ones([2])}, path)
    real_save = paddle.save

    def full_disk(obj, target):
        Path(target).write_bytes(b"partial")  # a started temporary file
        real_save(obj, "/dev/full")  # the write fails as on a full disk: ENOSPC from Paddle's own writer

    monkeypatch.setattr(ckpt.paddle, "save", full_disk)
    with pytest.raises(ckpt.CheckpointError) as info:
        ckpt.atomic_save({"w": paddle.zeros([2])}, path)
    assert str(info.value).startswith(f"cannot write checkpoint {path}: No space left on device (")
    assert "MiB free in" in str(info.value)
    assert str(info.value).endswith("the previous Tiny_epoch_00001.pdparams, if any, is kept")
    monkeypatch.undo()
    assert paddle.load(path)["w"].numpy().tolist() == [1.0, 1.0]
    assert os.listdir(tmp_path) == ["Tiny_epoch_00001.pdparams"]


def test_stale_temporary_checkpoints_are_removed_at_the_next_save(tmp_path):
    path = tmp_path / "Tiny_resume.pdckpt"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = tmp_path / f"Tiny_resume.pdckpt.tmp{int(dead.stdout)}"  # left by a process killed mid-save
    live = tmp_path / f"Tiny_resume.pdckpt.tmp{os.getppid()}"  # a save still going on elsewhere
    other = tmp_path / f"Tiny_best.pdparams.tmp{int(dead.stdout)}"  # another file's: its own save sweeps it
    for p in (stale, live, other):
        p.write_bytes(b"partial")
    ckpt.atomic_save({"w": paddle.ones([2])}, str(path))
    assert sorted(os.listdir(tmp_path)) == sorted([path.name, live.name, other.name])


def test_skip_bad_records_trains_past_a_bad_record_and_counts_it(files, tmp_path):
    """The other way out of a bad record: logged, skipped, counted at the epoch's end. Also the
    control case (these files train), with a schedule whose warm-up is longer than the epoch count
    (the early check of the schedule must accept it)."""
    schedule = "OPTIMIZER.learning_rate={name: CosineDecay, learning_rate: 0.001, warmup_steps: 3}"
    with within(120):
        status = main.main(train_args(files, "-o", "epochs=1", "-o", schedule, "-o", "DATASET.num_workers=1",
                                      "-o", "DATASET.train.skip_bad_records=true", "-o", f"output_dir={tmp_path}",
                                      npy=files["npy_width_9"]))
    assert status == 0
    log = (tmp_path / "train.log").read_text()
    assert "skipping bad record (1 this epoch): " in log and "width_9.npy: item 9" in log, log
    assert f"epoch 1: skipped 1 bad record(s) of {files['npy_width_9']} (keys logged above)" in log, log
