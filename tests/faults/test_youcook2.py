"""Fault injection for the YouCook2 entry points: ``make_demo_data.py --task youcook2`` (in this
process) and ``main.py`` with the YouCook2 configs (zero, foreign, unwritable, concurrent,
corrupt records, missing features, no Java, a checkpoint of another framework)."""

import json
import os
import subprocess
import sys

import paddle
import pytest
from demo_helpers import CONFIGS, ROOT

import main as main_py
from paddlevideo.modeling import build_model
from paddlevideo.utils.config import get_config
from tools.demo_youcook2 import make_youcook2_demo
from tools.make_demo_data import main

CAPTION = str(CONFIGS / "actbert_youcook2_caption_demo.yaml")
RETRIEVAL = str(CONFIGS / "actbert_youcook2_retrieval_demo.yaml")


def one_error_line(capsys):
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ")
    return err[0]


def test_demo_too_few_videos_foreign_unwritable(tmp_path, capsys):
    for count in ("0", "3", "-1"):
        assert main(["--task", "youcook2", "--out", str(tmp_path / "o"), "--num-videos", count]) == 2
        assert f"--num-videos must be at least 4 for --task youcook2 (one validation video in four), got {count}" \
            in one_error_line(capsys)
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "paper.tex").write_text("draft")
    assert main(["--task", "youcook2", "--out", str(tmp_path / "mine"), "--num-videos", "4"]) == 2
    assert "not empty and not a youcook2 demo corpus" in one_error_line(capsys)
    assert os.listdir(tmp_path / "mine") == ["paper.tex"]
    (tmp_path / "file").write_text("x")  # a path under a regular file: ENOTDIR
    assert main(["--task", "youcook2", "--out", str(tmp_path / "file" / "o"), "--num-videos", "4"]) == 2
    assert "cannot create the output folder" in one_error_line(capsys)
    # A concurrent writer: tests/faults/test_steps.py::test_concurrent_writer_is_refused[youcook2].


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """A small demo corpus and a checkpoint of the caption demo's MODEL (random weights)."""
    root = tmp_path_factory.mktemp("yc2")
    make_youcook2_demo(str(root / "data"), seed=1, num_videos=8, feature_dim=64)
    paddle.seed(0)
    paddle.save(build_model(get_config(CAPTION).MODEL).state_dict(), str(root / "caption.pdparams"))
    paddle.save(build_model(get_config(RETRIEVAL).MODEL).state_dict(), str(root / "actbert.pdparams"))
    return root


@pytest.fixture()
def run_main(capsys):
    """``run_main(config, *args, env=None)`` -> (exit status, ``error:`` lines, stderr) of ``main.py -c
    config *args``: in this process (a new Python with Paddle costs ~4 s a case), or, with another
    environment ``env``, in a new process."""
    def run(config, *args, env=None):
        if env is not None:
            proc = subprocess.run([sys.executable, "main.py", "-c", config, *args], cwd=ROOT, capture_output=True,
                                  text=True, env=env)
            status, err = proc.returncode, proc.stderr
        else:
            status, err = main_py.main(["-c", config, *args]), capsys.readouterr().err
        return status, [line for line in err.splitlines() if line.startswith("error: ")], err
    return run


def caption_test(run_main, corpus, *extra, annotation=None, env=None, weights="caption.pdparams"):
    data = corpus / "data"
    return run_main(CAPTION, "--test", "-w", str(corpus / weights), "-o", f"output_dir={corpus / 'out'}",
                    "-o", f"DATASET.test.file_path={annotation or data / 'youcookii_annotations_trainval.json'}",
                    "-o", f"DATASET.test.features_path={data / 'youcook2.lmdb'}",
                    "-o", f"DATASET.test.vocab_file={data / 'vocab.txt'}", *extra, env=env)


def test_corrupt_annotation_record_is_one_line(run_main, corpus, tmp_path):
    database = json.loads((corpus / "data" / "youcookii_annotations_trainval.json").read_text())["database"]
    vid = next(v for v, r in database.items() if r["subset"] == "validation")
    database[vid]["annotations"][1]["segment"] = [30, float("nan")]
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"database": database}))
    code, errors, _ = caption_test(run_main, corpus, annotation=path)
    assert code == 2 and len(errors) == 1
    assert f"bad.json: video '{vid}', annotation 1: 'segment' must be [start, end] seconds" in errors[0]


def test_segment_without_features_is_named(run_main, corpus, tmp_path):
    database = json.loads((corpus / "data" / "youcookii_annotations_trainval.json").read_text())["database"]
    vid = next(v for v, r in database.items() if r["subset"] == "validation")
    database[vid]["annotations"].append({"segment": [900, 901], "id": 99, "sentence": "not extracted"})
    path = tmp_path / "more.json"
    path.write_text(json.dumps({"database": database}))
    code, errors, _ = caption_test(run_main, corpus, annotation=path)
    assert code == 2 and len(errors) == 1
    assert f"names video '{vid}_900.00_901.00', which is not in the features LMDB" in errors[0]


def test_without_java_the_test_stops_before_any_work(run_main, corpus):
    env = {**os.environ, "PATH": "/nonexistent"}  # no java (python is started by its full path)
    code, errors, log = caption_test(run_main, corpus, env=env)
    assert code == 2 and len(errors) == 1
    assert "caption metrics need Java for pycocoevalcap's PTB tokenizer and METEOR" in errors[0]
    assert "captioned" not in log  # nothing generated before the refusal


def test_bad_metric_keys_and_another_frameworks_checkpoint(run_main, corpus):
    code, errors, _ = caption_test(run_main, corpus, "-o", "METRIC.beam_size=0")
    assert code == 2 and "METRIC.beam_size must be a positive integer, got 0" in errors[0]
    code, errors, _ = caption_test(run_main, corpus, "-o", "METRIC.beams=3")
    assert code == 2 and "unknown key 'METRIC.beams' for YouCook2CaptionMetric (did you mean 'beam_size'?)" \
        in errors[0]
    code, errors, _ = caption_test(run_main, corpus, weights="actbert.pdparams")  # an ActBert (retrieval) checkpoint
    assert code == 2 and len(errors) == 1
    assert "missing key(s) of ActBertCaption" in errors[0] and "decoder." in errors[0]


def test_retrieval_list_row_without_annotated_segment(run_main, corpus, tmp_path):
    data = corpus / "data"
    rows = (data / "validation_youcook.csv").read_text().splitlines()
    end, start, task, text, vid = rows[1].split(",")
    (tmp_path / "v.csv").write_text("\n".join(rows + [f"{int(end) + 500},{end},{task},{text},{vid}"]) + "\n")
    code, errors, _ = run_main(RETRIEVAL, "--test", "-w", str(corpus / "actbert.pdparams"),
                               "-o", f"output_dir={tmp_path / 'out'}",
                               "-o", f"DATASET.test.file_path={tmp_path / 'v.csv'}",
                               "-o", f"DATASET.test.annotation_file={data / 'youcookii_annotations_trainval.json'}",
                               "-o", f"DATASET.test.features_path={data / 'youcook2.lmdb'}",
                               "-o", f"DATASET.test.vocab_file={data / 'vocab.txt'}")
    assert code == 2 and len(errors) == 1
    assert f"v.csv:{len(rows) + 1}: no annotated segment [{end}, {int(end) + 500}] of video '{vid}'" in errors[0]


class _Dead:
    """A METEOR whose Java process died (compute_score reads '' as a score)."""

    def compute_score(self, gts, res):
        raise ValueError("could not convert string to float: ''")


class _NoLines:
    """A PTB tokenizer whose Java produced nothing."""

    def tokenize(self, sentences):
        return {}


def test_java_failures_and_an_unwritable_package_folder_are_one_line(monkeypatch):
    from paddlevideo.metrics import captioning

    refs, hyps = {"a": "slice the tomato"}, {"a": "slice it"}
    real = captioning.scoring_tools()
    monkeypatch.setattr(captioning, "scoring_tools", lambda: (_NoLines, *real[1:]))
    with pytest.raises(captioning.CaptionMetricError, match=r"PTB tokenizer \(Java\) returned 0 of 2 sentences"):
        captioning.caption_scores(refs, hyps)
    identity = type("Identity", (), {"tokenize": lambda self, s: {k: [v[0]["caption"]] for k, v in s.items()}})
    monkeypatch.setattr(captioning, "scoring_tools", lambda: (identity, real[1], _Dead, *real[3:]))
    with pytest.raises(captioning.CaptionMetricError, match=r"METEOR \(Java, meteor-1.5.jar with -Xmx2G\) failed"):
        captioning.caption_scores(refs, hyps)
    monkeypatch.undo()
    # A package folder the user cannot write (we run as root: os.access is monkeypatched).
    access = captioning.os.access
    monkeypatch.setattr(captioning.os, "access", lambda path, mode: mode != captioning.os.W_OK and access(path, mode))
    with pytest.raises(captioning.CaptionMetricError, match="PTB tokenizer writes a temporary file in .*pycocoevalcap"):
        captioning.caption_scores(refs, hyps)
