"""End to end on the real model and data: ``main.py`` trains ActBERT on generated demo data."""

import subprocess
import sys
from pathlib import Path

import paddle

import main

ROOT = Path(__file__).resolve().parents[2]


def test_main_trains_real_actbert_on_demo_data_then_resumes(tmp_path, capsys):
    data = tmp_path / "demo"
    subprocess.run([sys.executable, "tools/make_demo_data.py", "--out", str(data), "--num-train", "40"], cwd=ROOT,
                   check=True, capture_output=True)
    cfg = str(ROOT / "configs/multimodal/actbert/actbert_demo.yaml")
    paths = [f"DATASET.{s}.{k}={data}/{f}" for s in ("train", "valid") for k, f in
             (("file_path", f"actbert_{s if s == 'train' else 'val'}_data.npy"), ("vocab_file", "vocab.txt"))]
    paths += [f"PIPELINE.train.transform.1.caption_path={data}/caption_train.json",
              f"PIPELINE.valid.transform.1.caption_path={data}/caption_val.json"]
    overrides = [x for p in paths for x in ("-o", p)]
    common = ["-c", cfg, *overrides, "-o", f"output_dir={tmp_path}/out", "-o", "DATASET.batch_size=4",
              "-o", "DATASET.valid_batch_size=8", "-o", "log_interval=1", "--seed", "3"]
    assert main.main([*common, "--max_iters", "2"]) == 0
    assert main.main([*common, "--max_iters", "3", "--resume", "--validate"]) == 0
    out = capsys.readouterr().out
    assert "resumed from" in out and "step:3" in out and "loss_match:" in out
    state = paddle.load(str(tmp_path / "out" / "ActBert_demo_resume.pdckpt"))
    assert state["train_state"]["global_step"] == 3
