"""Fault injection: retrieval fine-tuning, multiple choice and pretraining class counts through
``main.main``, and a store truncated while a real training process reads it.

Every case ends with exactly one ``error: ...`` line naming the culprit and status 2. The
data are the demo's (made once per module, a few seconds); a dummy checkpoint stands in
for ``-w`` where the data are checked before any weight is read.
"""

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import paddle
import pytest
from test_fault_injection import error_lines

import main
from tools.make_demo_data import make_demo_data

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ROOT / "configs/multimodal/actbert"


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    root = tmp_path_factory.mktemp("finetune_mc")
    make_demo_data(str(root / "demo"), num_train=12, num_val=4, num_test=6, num_finetune=20)
    paddle.save({"backbone.bert.embeddings.word_embeddings.weight": paddle.zeros([2, 2])}, str(root / "w.pdparams"))
    return root


def run(capsys, *argv):
    """``main.main(argv)`` -> (status, the one ``error:`` line); fails on a traceback or several lines."""
    status = main.main([str(a) for a in argv])
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    lines = error_lines(err)
    assert len(lines) == 1, err
    return status, lines[0]


def finetune_args(root, *extra, captions=None):
    data = root / "demo"
    paths = [f"DATASET.{s}.{k}={data}/{f}" for s in ("train", "valid") for k, f in
             (("split_path", "MSRVTT_train.9k.csv"), ("features_path", "msrvtt_train.lmdb"),
              ("vocab_file", "vocab.txt"))]
    paths += [f"DATASET.{s}.captions_path={captions or data / 'MSRVTT_data.json'}" for s in ("train", "valid")]
    paths += [f"output_dir={root}/ft_out", "DATASET.valid.holdout_videos=5", "DATASET.train.holdout_videos=5",
              *extra]
    return ["--validate", "-c", CONFIGS / "actbert_msrvtt_finetune_demo.yaml", "-w", root / "w.pdparams",
            *[x for p in paths for x in ("-o", p)]]


def edited_copy(root, source, name, change):
    """``root/name``: a copy of the demo's JSON file ``source`` with ``change(data)`` applied."""
    data = json.loads((root / "demo" / source).read_text())
    change(data)
    path = root / name
    path.write_text(json.dumps(data))
    return path


def set_caption(n, value):
    def change(data):
        data["sentences"][n]["caption"] = value
    return change


def test_holdout_videos_differing_between_train_and_valid(demo, capsys):
    status, line = run(capsys, *finetune_args(demo, "DATASET.valid.holdout_videos=8"))
    split = demo / "demo" / "MSRVTT_train.9k.csv"
    assert status == 2
    assert line == (f"error: DATASET.train.holdout_videos is 5 but DATASET.valid.holdout_videos is 8 for the same "
                    f"list {split}: they must be equal, or validation videos are trained on (or held out unused)")


def test_validation_videos_in_another_training_list(demo, capsys):
    """Two lists that overlap (the training list is the whole list, not held out)."""
    whole = demo / "whole.csv"
    whole.write_text((demo / "demo" / "MSRVTT_train.9k.csv").read_text())
    status, line = run(capsys, *finetune_args(demo, f"DATASET.train.split_path={whole}",
                                              "DATASET.train.holdout_videos=0"))
    assert status == 2
    assert "5 of the 5 validation videos of DATASET.valid" in line and "are also training videos of DATASET.train" \
        in line, line


@pytest.mark.parametrize("name, change, message", [
    ("empty.json", set_caption(3, "  "), "sentences[3] (video '{v3}', sen_id {s3}): empty caption"),
    ("numeric.json", set_caption(4, 17), "sentences[4] (video '{v4}', sen_id {s4}): the caption must be a string, "
                                         "got int 17"),
    ("null.json", set_caption(2, None), "sentences[2] (video '{v2}', sen_id {s2}): the caption must be a string, "
                                        "got NoneType None"),
    ("dict.json", lambda d: d.update(sentences={"video0": ["a caption"]}),
     "'sentences' must be a list of {{video_id, caption}} records, got dict"),
    ("string.json", lambda d: d["sentences"].__setitem__(1, "video1 a person cuts"),
     "sentences[1] must be an object with 'video_id' and 'caption', got str 'video1 a person cuts'"),
    # ints and strings mixed in one file were a TypeError from the sort
    ("sen_id_word.json", lambda d: d["sentences"][3].update(sen_id="third"),
     "sentences[3] (video '{v3}'): 'sen_id' must be an integer (or a string of digits), got str 'third'"),
    ("sen_id_null.json", lambda d: d["sentences"][2].update(sen_id=None),
     "sentences[2] (video '{v2}'): 'sen_id' must be an integer (or a string of digits), got NoneType None"),
    ("sen_id_nan.json", lambda d: d["sentences"][4].update(sen_id=float("nan")),
     "sentences[4] (video '{v4}'): 'sen_id' must be an integer (or a string of digits), got float nan"),
])
def test_bad_captions_name_the_record(demo, capsys, name, change, message):
    path = edited_copy(demo, "MSRVTT_data.json", name, change)
    original = json.loads((demo / "demo" / "MSRVTT_data.json").read_text())["sentences"]
    fields = {f"{k}{n}": original[n][key] for n in range(5) for k, key in (("v", "video_id"), ("s", "sen_id"))}
    status, line = run(capsys, *finetune_args(demo, captions=path))
    assert status == 2 and line == f"error: {path}: " + message.format(**fields), line


# --------------------------------------------------------------------------- multiple choice


def mc_args(root, path):
    data = root / "demo"
    overrides = [f"DATASET.test.file_path={path}", f"DATASET.test.features_path={data}/msrvtt_test.lmdb",
                 f"DATASET.test.vocab_file={data}/vocab.txt", f"output_dir={root}/mc_out"]
    return ["--test", "-c", CONFIGS / "actbert_msrvtt_mc_demo.yaml", "-w", root / "w.pdparams",
            *[x for o in overrides for x in ("-o", o)]]


def add_qids(questions):
    for n, q in enumerate(questions):
        q["qid"] = f"q{n}"


@pytest.mark.parametrize("name, change, message", [
    ("repeated_id.json", lambda qs: (add_qids(qs), qs[4].update(qid="q1")),
     "question 4: question id 'q1' repeats that of {path}: question 1; question ids must be unique"),
    ("repeated_question.json", lambda qs: qs.__setitem__(3, dict(qs[1])),
     "question 3: repeats the question of {path}: question 1 (video 'video1', the same candidates); each question "
     "must appear once"),
    ("unknown_video.json", lambda qs: (add_qids(qs), qs[2].update(video="video999.mp4")),
     "question 2 (question id 'q2') names video 'video999', which is not in the features LMDB '{lmdb}'"),
    ("numeric_candidate.json", lambda qs: qs[5]["caption"].__setitem__(3, 42),
     "question 5: candidate 3 must be a caption string, got int 42"),
    ("empty_candidate.json", lambda qs: qs[0]["caption"].__setitem__(2, ""),
     "question 0: candidate 2 is an empty caption"),
])
def test_bad_multiple_choice_files(demo, capsys, name, change, message):
    path = edited_copy(demo, "msrvtt_mc_test.json", name, change)
    status, line = run(capsys, *mc_args(demo, path))
    lmdb = demo / "demo" / "msrvtt_test.lmdb"
    assert status == 2 and line == f"error: {path}: " + message.format(path=path, lmdb=lmdb), line


# --------------------------------------------------------------------------- class counts


@pytest.mark.parametrize("override, message", [
    ("MODEL.backbone.v_target_size=30", "the data's region class distributions have 20 classes, but "
                                        "MODEL.backbone.v_target_size is 30; set it to 20"),
    ("MODEL.backbone.a_target_size=5", "the data holds action class id {id} (at least {n} action classes), but "
                                       "MODEL.backbone.a_target_size is 5; set it to the data's number of action "
                                       "classes"),
])
def test_class_count_of_the_data_and_the_model(demo, capsys, tmp_path, override, message):
    """The demo has 20 region classes and 10 actions; a model with other heads was a traceback."""
    data = demo / "demo"
    args = ["-c", CONFIGS / "actbert_demo.yaml", "--max_iters", "1", "-o", "DATASET.batch_size=8",
            "-o", f"DATASET.train.file_path={data}/actbert_train_data.npy",
            "-o", f"DATASET.train.vocab_file={data}/vocab.txt",
            "-o", f"PIPELINE.train.transform.1.RandomCap.caption_path={data}/caption_train.json",
            "-o", f"output_dir={tmp_path}", "-o", override]
    status, line = run(capsys, *args)
    found = re.search(r"action class id (\d+) ", line)  # the largest masked action label of the first batch
    top = int(found.group(1)) if found else 0
    assert status == 2 and line.startswith("error: " + message.format(id=top, n=top + 1)), line
    assert 5 <= top <= 9 or not found


# --------------------------------------------------------------------------- a store truncated mid-run

ENV = dict(os.environ, OMP_NUM_THREADS="1")
BOUND = 120  # seconds a truncated-store run may take, start-up included


def start_training(root, store, workers):
    """A real training process on ``store`` (20 steps an epoch, a checkpoint after each)."""
    data = root / "demo"
    out = root / f"truncated_{workers}"
    cmd = [sys.executable, "main.py", "-c", str(CONFIGS / "actbert_demo.yaml"), "-o", "DATASET.batch_size=4",
           "-o", "epochs=50", "-o", "save_interval=1", "-o", "log_interval=1", "-o", f"DATASET.num_workers={workers}",
           "-o", f"DATASET.train.file_path={store}", "-o", f"DATASET.train.vocab_file={data}/vocab.txt",
           "-o", f"PIPELINE.train.transform.1.RandomCap.caption_path={data}/caption_train.json",
           "-o", f"output_dir={out}"]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    return proc, out


@pytest.fixture(scope="module")
def truncated_runs(tmp_path_factory):
    """Two trainings (reader thread; one worker process) on copies of an 80-clip store; each
    copy's data.mdb is cut to 40 KiB once its run is inside epoch 2 (after the epoch-1
    checkpoint). -> {workers: (status, stderr, output_dir, data file)}."""
    from tools import howto100m_to_lmdb

    root = tmp_path_factory.mktemp("truncated")
    make_demo_data(str(root / "demo"), num_train=80, num_val=4, num_test=4, num_finetune=4)
    runs = {}
    for workers in (0, 1):
        store = root / f"store_{workers}"
        assert howto100m_to_lmdb.main([str(root / "demo" / "actbert_train_data.npy"), "--out", str(store),
                                       "--no_progress"]) == 0
        runs[workers] = (*start_training(root, store, workers), store / "shard-00000" / "data.mdb")
    start, results, cut = time.monotonic(), {}, set()
    while len(results) < len(runs) and time.monotonic() - start < BOUND:
        for workers, (proc, out, data_file) in runs.items():
            log = out / "train.log"
            if workers not in cut and log.is_file() and re.search(r"epoch:\[ *2/50 *\] train step:", log.read_text()):
                os.truncate(data_file, 40960)
                cut.add(workers)
            if workers not in results and proc.poll() is not None:
                results[workers] = (proc.returncode, proc.stderr.read(), out, data_file)
        time.sleep(0.05)
    for proc, *_ in runs.values():
        if proc.poll() is None:
            proc.kill()
    assert cut == {0, 1} and len(results) == 2, f"not cut inside epoch 2 or still running: {cut}, {results}"
    return results


@pytest.mark.parametrize("workers", [0, 1])
def test_a_store_truncated_during_training_ends_with_one_line(truncated_runs, workers):
    status, err, out, data_file = truncated_runs[workers]
    assert status == 2, err[-3000:]  # was a SIGBUS (-7) after Paddle's C++ report
    assert error_lines(err) == [f"error: the data file {data_file} changed or was truncated while being read "
                                f"(SIGBUS)"], err[-3000:]
    assert "Traceback" not in err
    # The last checkpoints (epoch 1, resume) were written before the fault and still load.
    from paddlevideo.utils import checkpoint as ckpt

    weights = paddle.load(str(out / "ActBert_demo_epoch_00001.pdparams"))
    assert "backbone.bert.embeddings.word_embeddings.weight" in weights
    state = ckpt.load_resume(str(out / "ActBert_demo_resume.pdckpt"))
    assert state["model_name"] == "ActBert_demo" and state["train_state"]["epoch"] >= 1
    assert not list(out.glob("*.tmp*"))


FOREIGN_FAULT = """
import mmap, os, sys
sys.path.insert(0, {root!r})
from paddlevideo.loader.store import lmdb_store
from paddlevideo.loader.store.lmdb_store import reader_env
reader_env({lmdb!r})  # a watched file: ours is the SIGBUS handler now
with open({other!r}, "r+b") as f:
    m = mmap.mmap(f.fileno(), 8192)
    os.truncate({other!r}, 0)
    m[5000]  # a fault in a file nobody watches: the handler that was there before takes it
"""


def test_a_fault_outside_the_data_files_goes_to_the_previous_handler(demo, tmp_path):
    other = tmp_path / "other.bin"
    other.write_bytes(b"x" * 8192)
    code = FOREIGN_FAULT.format(root=str(ROOT), lmdb=str(demo / "demo" / "msrvtt_test.lmdb"), other=str(other))
    proc = subprocess.run([sys.executable, "-c", code], env=ENV, capture_output=True, text=True, timeout=60)
    assert proc.returncode in (-7, 135) and "changed or was truncated" not in proc.stderr, proc.stderr[-2000:]
