"""Fault injection: retrieval fine-tuning, multiple choice and pretraining class counts through
``main.main``, and a store truncated while a real training process reads it.

Every case ends with exactly one ``error: ...`` line naming the culprit and status 2. The
data are the demo's (made once per module, a few seconds); a dummy checkpoint stands in
for ``-w`` where the data are checked before any weight is read.
"""

import json
import re
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
