"""What a person watching training sees: the fine-tuning baseline before the first step, the
curves on optimiser steps, and a progress bar only on a terminal."""

import io
import re
import subprocess
import sys

import pytest
import standin
from demo_helpers import CONFIGS, ROOT

import main
from paddlevideo.tasks.train import train_model
from paddlevideo.utils import progress
from paddlevideo.utils.config import AttrDict, _to_attr, validate_config
from paddlevideo.utils.plot import parse_log


def test_finetuning_validates_the_starting_weights_before_the_first_step(tmp_path):
    data = tmp_path / "demo"
    subprocess.run([sys.executable, "tools/make_demo_data.py", "--out", str(data), "--num-train", "4", "--num-val",
                    "4", "--num-test", "4", "--num-finetune", "24"], cwd=ROOT, check=True, capture_output=True)
    args = ["--validate", "-c", str(CONFIGS / "actbert_msrvtt_finetune_demo.yaml"), "--no_progress"]
    for split in ("train", "valid"):
        for key, name in (("captions_path", "MSRVTT_data.json"), ("split_path", "MSRVTT_train.9k.csv"),
                          ("features_path", "msrvtt_train.lmdb"), ("vocab_file", "vocab.txt")):
            args += ["-o", f"DATASET.{split}.{key}={data}/{name}"]
        args += ["-o", f"DATASET.{split}.holdout_videos=6"]
    args += ["-o", f"output_dir={tmp_path}/out", "-o", "epochs=1", "-o", "log_interval=1"]
    assert main.main(args) == 0
    log = (tmp_path / "out" / "train.log").read_text()
    baseline = log.index("baseline validation of the starting weights")
    first_val = re.search(r"END epoch:0   val t2v_R1_avg: \S+ .* step: 0\n", log)
    assert baseline < first_val.start() < log.index("train step:1 ")
    steps = int(re.findall(r"train step:(\d+) ", log)[-1])
    assert re.search(rf"END epoch:1   val t2v_R1_avg: \S+ .* step: {steps}\n", log)
    assert log.count("best t2v_R1") == 1 and log.index("best t2v_R1") > log.index("END epoch:1   val")
    curves = parse_log(tmp_path / "out" / "train.log")
    assert curves["val"]["t2v_R1"][0] == [0, steps] and curves["train"]["loss"][0] == list(range(1, steps + 1))
    assert (tmp_path / "out" / "loss_curve.png").stat().st_size > 0


class Terminal(io.StringIO):
    def isatty(self):
        return True


@pytest.mark.parametrize("allowed", [True, False])
def test_the_training_bar_is_drawn_on_a_terminal_unless_turned_off(tmp_path, monkeypatch, allowed):
    monkeypatch.setattr(progress, "_ALLOWED", allowed)
    terminal = Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    cfg = validate_config(AttrDict(_to_attr(standin.tiny_config(tmp_path / "out", epochs=1))))
    train_model(cfg)
    drawn = terminal.getvalue()
    assert ("\r" in drawn and "epoch 1" in drawn) if allowed else drawn == ""
    assert "\r" not in (tmp_path / "out" / "train.log").read_text()
