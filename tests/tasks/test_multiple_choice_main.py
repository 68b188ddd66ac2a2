"""``main.py --test`` on a multiple-choice config: accuracy, metrics JSON and per-question predictions."""

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import paddle

import main
from paddlevideo.metrics.multiple_choice import choose
from paddlevideo.modeling.builder import build_model
from paddlevideo.retrieval.scoring import brute_force_scores
from paddlevideo.utils.config import get_config

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "configs/multimodal/actbert/actbert_msrvtt_mc_demo.yaml"


def test_mc_test_scores_every_candidate_and_reports_accuracy(tmp_path):
    data = tmp_path / "demo"
    subprocess.run([sys.executable, "tools/make_demo_data.py", "--out", str(data), "--num-train", "10", "--num-val",
                    "10", "--num-test", "12", "--num-finetune", "4"], cwd=ROOT, check=True, capture_output=True)
    overrides = [f"DATASET.test.{k}={data}/{f}" for k, f in
                 (("file_path", "msrvtt_mc_test.json"), ("features_path", "msrvtt_test.lmdb"),
                  ("vocab_file", "vocab.txt"))] + [f"output_dir={tmp_path}/out", "DATASET.test_pair_batch_size=15"]
    cfg = get_config(CONFIG, overrides)
    paddle.seed(4)
    model = build_model(cfg.MODEL)
    paddle.save(model.state_dict(), str(tmp_path / "random.pdparams"))
    args = ["--test", "-c", str(CONFIG), "-w", str(tmp_path / "random.pdparams")]
    assert main.main([*args, *[x for o in overrides for x in ("-o", o)]]) == 0
    out = tmp_path / "out"
    scores = np.load(out / "msrvtt_mc_scores.npy")
    questions = json.loads((data / "msrvtt_mc_test.json").read_text())
    answers = np.array([q["answer"] for q in questions])
    assert scores.shape == (12, 5)
    # The scores are those of full forward passes (a few checked), and accuracy follows from them.
    from paddlevideo.loader.builder import build_dataset

    dataset = build_dataset(cfg.DATASET.test, None, where="DATASET.test")
    model.eval()
    picks = [(q * 5 + c, int(dataset.question_video[q])) for q, c in ((0, 0), (3, 4), (11, 2))]
    diffs, _ = brute_force_scores(model.backbone, dataset, picks)
    np.testing.assert_allclose(diffs, [scores[0, 0], scores[3, 4], scores[11, 2]], rtol=1e-4, atol=1e-5)
    chosen, correct, _ = choose(scores, answers)
    metrics = json.loads((out / "msrvtt_mc_metrics.json").read_text())
    assert metrics["count"] == 12 and metrics["accuracy"] == 100.0 * correct.mean()
    rows = list(csv.DictReader(open(out / "msrvtt_mc_predictions.csv")))
    assert [int(r["chosen"]) for r in rows] == chosen.tolist()
    assert rows[0]["video_id"] == "video0" and len([k for k in rows[0] if k.startswith("score_")]) == 5
