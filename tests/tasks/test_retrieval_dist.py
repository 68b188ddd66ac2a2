"""``main.py --test`` under ``paddle.distributed.launch`` with two gloo processes: each rank
scores its block of captions, ``all_gather`` joins the blocks, and rank 0 writes the same
matrix and metrics as one process does."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import paddle
import yaml

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "configs" / "multimodal" / "actbert" / "actbert_msrvtt_demo.yaml"
ENV = dict(os.environ, OMP_NUM_THREADS="1")


def test_two_processes_score_the_same_matrix_as_one(tmp_path):
    from paddlevideo.modeling.builder import build_model
    from paddlevideo.utils.config import get_config

    data = tmp_path / "demo"
    subprocess.run([sys.executable, str(ROOT / "tools" / "make_demo_data.py"), "--out", str(data), "--num-train", "8",
                    "--num-val", "4", "--num-test", "9"], cwd=ROOT, check=True, capture_output=True)
    cfg = yaml.safe_load(CONFIG.read_text())
    for key in ("file_path", "features_path", "vocab_file"):
        cfg["DATASET"]["test"][key] = str(data / Path(cfg["DATASET"]["test"][key]).name)
    config = tmp_path / "msrvtt.yaml"
    config.write_text(yaml.safe_dump(cfg))
    # Random weights of the demo model, scaled up so that the caption matters (at the
    # reference's std 0.02 rows would differ by ~1e-5 and a row mix-up could go unnoticed).
    paddle.seed(5)
    state = build_model(get_config(str(config)).MODEL).state_dict()
    tied = ("embeddings", "decoder_weight")  # the word embeddings are also the LM decoder
    state = {k: v * 10.0 if v.ndim == 2 and not any(t in k for t in tied) else v for k, v in state.items()}
    weights = tmp_path / "model.pdparams"
    paddle.save(state, str(weights))

    def run(*prefix, out):
        cmd = [*prefix, str(ROOT / "main.py"), "--test", "-c", str(config), "-w", str(weights),
               "-o", f"output_dir={tmp_path / out}", "-o", "DATASET.test_pair_batch_size=4"]
        done = subprocess.run(cmd, cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=240)
        logs = "".join(p.read_text() for p in sorted((tmp_path / "logs").glob("workerlog.*")))
        assert done.returncode == 0, done.stdout + done.stderr + logs
        return done.stdout + done.stderr + logs

    two = run(sys.executable, "-m", "paddle.distributed.launch", "--nproc_per_node", "2", "--log_dir",
              str(tmp_path / "logs"), out="two")
    run(sys.executable, out="one")
    assert "9 captions x 9 videos" in two and "2 process(es)" in two
    one_scores = np.load(tmp_path / "one" / "msrvtt_scores.npy")
    two_scores = np.load(tmp_path / "two" / "msrvtt_scores.npy")
    assert one_scores.shape == (9, 9)
    row_gaps = np.abs(one_scores[:, None] - one_scores[None]).max(-1)[~np.eye(9, dtype=bool)]
    assert row_gaps.min() > 1e-3  # every caption's row differs from every other one
    np.testing.assert_allclose(two_scores, one_scores, atol=1e-5, rtol=0)
    one_metrics = json.loads((tmp_path / "one" / "msrvtt_metrics.json").read_text())
    assert json.loads((tmp_path / "two" / "msrvtt_metrics.json").read_text()) == one_metrics
