"""YouCook2 through main.py, from the demo configs: captioning trains and its test beats the
trivial captioner (the most frequent training sentence for every segment) clearly on the
held-out segments, writing the metrics JSON and the captions CSV; zero-shot retrieval runs
the MSR-VTT scoring path over the clip list, printing the clip count and the projected time."""

import csv
import json
import shutil

import paddle
import pytest
from demo_helpers import CONFIGS

import main
from paddlevideo.loader.youcook2 import segment_key
from paddlevideo.utils.logger import setup_logger
from tools import make_demo_data

CAPTION = str(CONFIGS / "actbert_youcook2_caption_demo.yaml")
RETRIEVAL = str(CONFIGS / "actbert_youcook2_retrieval_demo.yaml")


def run(capsys, entry, *argv):
    """``entry(argv)`` (main.main, make_demo_data.main: the command lines, in this process rather
    than a new Python with Paddle, ~4 s each); asserts status 0; stdout + stderr (the log)."""
    setup_logger()  # on the stream capsys captures now (an earlier in-process run set it on its own)
    status = entry([str(a) for a in argv])
    out = capsys.readouterr()
    assert status in (0, None), out.out[-3000:] + out.err[-3000:]
    return out.out + out.err


def data_overrides(data, *splits):
    pairs = []
    for split in splits:
        pairs += ["-o", f"DATASET.{split}.file_path={data}/youcookii_annotations_trainval.json",
                  "-o", f"DATASET.{split}.features_path={data}/youcook2.lmdb",
                  "-o", f"DATASET.{split}.vocab_file={data}/vocab.txt"]
    return pairs


@pytest.mark.skipif(shutil.which("java") is None, reason="needs Java (installed by .ci/run)")
def test_caption_demo_trains_and_beats_the_most_frequent_sentence(tmp_path, capsys):
    data, out = tmp_path / "data", tmp_path / "out"
    run(capsys, make_demo_data.main, "--task", "youcook2", "--out", data)
    run(capsys, main.main, "-c", CAPTION, "-o", f"output_dir={out}", *data_overrides(data, "train"))
    log = run(capsys, main.main, "-c", CAPTION, "--test", "-w", out / "ActBertCaption_demo_epoch_00008.pdparams",
              "-o", f"output_dir={out}", *data_overrides(data, "test"))
    report = json.loads((out / "caption_metrics.json").read_text())
    model, baseline = report["metrics"], report["baseline_most_frequent_sentence"]
    print("\n" + "\n".join(f"{k:8s} model {model[k]:7.1f}   most frequent sentence {baseline[k]:7.1f}" for k in model))
    assert model["CIDEr"] > baseline["CIDEr"] + 200 and model["CIDEr"] > 5 * baseline["CIDEr"]
    assert model["METEOR"] > baseline["METEOR"] + 15 and model["BLEU-4"] > baseline["BLEU-4"] + 20
    assert report["freeze_encoder"] is True and report["beam_size"] == 2 and report["java"]
    with open(out / "captions.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == report["segments"] > 100
    assert sum(r["generated"] == r["reference"] for r in rows) > len(rows) / 3
    assert "most frequent training sentence" in log  # the side-by-side table


def test_retrieval_demo_scores_every_clip_and_projects_the_time(tmp_path, capsys):
    data, out = tmp_path / "data", tmp_path / "out"
    run(capsys, make_demo_data.main, "--task", "youcook2", "--out", data, "--num-videos", "12")
    import paddlevideo  # noqa: F401  (registries)
    from paddlevideo.modeling import build_model
    from paddlevideo.utils.config import get_config

    paddle.seed(1)
    weights = tmp_path / "random.pdparams"
    paddle.save(build_model(get_config(RETRIEVAL).MODEL).state_dict(), str(weights))
    log = run(capsys, main.main, "-c", RETRIEVAL, "--test", "-w", weights, "-o", f"output_dir={out}",
              "-o", f"DATASET.test.file_path={data}/validation_youcook.csv",
              "-o", f"DATASET.test.annotation_file={data}/youcookii_annotations_trainval.json",
              "-o", f"DATASET.test.features_path={data}/youcook2.lmdb",
              "-o", f"DATASET.test.vocab_file={data}/vocab.txt")
    info = json.loads((data / "demo_info.json").read_text())
    clips = info["retrieval_clips"]
    metrics = json.loads((out / "youcook2_metrics.json").read_text())
    assert metrics["t2v"]["count"] == clips and set(metrics["t2v"]) >= {"R@1", "R@5", "R@10", "MedR", "MeanR"}
    with open(data / "validation_youcook.csv", newline="") as f:
        first = next(csv.DictReader(f))
    assert (out / "youcook2_scores.npy").is_file() and not list(out.glob("msrvtt_*"))  # its own names
    with open(out / "youcook2_ranks_t2v.csv", newline="") as f:  # clips named by their segment keys
        assert next(csv.DictReader(f))["video_id"] == segment_key(first["video_id"], first["start"], first["end"])
    assert f"YouCook2 retrieval: {clips} clips of " in log and f"projected scoring time for {clips} x {clips}" in log
