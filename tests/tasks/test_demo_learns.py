"""The newcomer demo, shortened: pretraining on the demo corpus lifts zero-shot
retrieval on its held-out test videos far above chance; the demo's closing search
(``tools/demo_search.sh``) then ranks the right video first for a held-out caption.

Runs ``main.py`` as a user would (train, then ``--test``) on freshly generated demo
data. The matching loss sits at ln 2 for roughly 800 steps before it falls, so this
test cannot be much shorter than ~1100 steps (about 4 minutes on 2 CPU cores); it is
the slowest test of the suite on purpose.
"""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ROOT / "configs/multimodal/actbert"
CHANCE_R1 = 1.0  # %, 100 test videos


def run(args, cwd):
    proc = subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout


def test_demo_pretraining_lifts_retrieval_far_above_chance(tmp_path):
    data, out = tmp_path / "demo", tmp_path / "out"
    run(["tools/make_demo_data.py", "--out", str(data)], ROOT)
    train = ["-o", f"output_dir={out}", "-o", "epochs=9", "-o", "save_interval=9"]
    for split, npy, captions in (("train", "actbert_train_data.npy", "caption_train.json"),
                                 ("valid", "actbert_val_data.npy", "caption_val.json")):
        train += ["-o", f"DATASET.{split}.file_path={data / npy}", "-o", f"DATASET.{split}.vocab_file={data}/vocab.txt",
                  "-o", f"PIPELINE.{split}.transform.1.caption_path={data / captions}"]
    log = run(["main.py", "-c", str(CONFIGS / "actbert_demo.yaml"), *train], ROOT)
    assert "loss_match:" in log
    test = ["-o", f"output_dir={out}", "-o", f"DATASET.test.file_path={data}/MSRVTT_JSFUSION_test.csv",
            "-o", f"DATASET.test.features_path={data}/msrvtt_test.lmdb",
            "-o", f"DATASET.test.vocab_file={data}/vocab.txt"]
    run(["main.py", "--test", "-c", str(CONFIGS / "actbert_msrvtt_demo.yaml"), "-w",
         str(out / "ActBert_demo_epoch_00009.pdparams"), *test], ROOT)
    metrics = json.loads((out / "msrvtt_metrics.json").read_text())
    assert metrics["t2v"]["R@1"] >= 10 * CHANCE_R1, metrics
    assert metrics["t2v"]["R@5"] >= 20 * CHANCE_R1, metrics
    assert (out / "loss_curve.png").stat().st_size > 0 and (out / "msrvtt_ranks.png").stat().st_size > 0
    check_demo_search(data, out, out / "ActBert_demo_epoch_00009.pdparams")


def check_demo_search(data, out, weights):
    """The demo's last step (tools/demo_search.sh): its top 5 has the right video first, with the
    score --test gave that pair."""
    proc = subprocess.run(["bash", "tools/demo_search.sh", str(out), str(data), str(weights)], cwd=ROOT,
                          capture_output=True, text=True, env={**os.environ, "PYTHON": sys.executable})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    expected = re.search(r"\(it describes (\S+)\)", proc.stdout).group(1)
    result = json.loads((out / "search_results.json").read_text())["queries"][0]
    rows = result["results"]
    assert len(rows) == 5 and rows[0]["video_id"] == expected, proc.stdout
    assert re.search(rf"^\s+1\s+{expected}\s", proc.stdout, re.M), proc.stdout
    queries = (data / "MSRVTT_JSFUSION_test.csv").read_text().splitlines()[1:]
    q = next(i for i, line in enumerate(queries) if line.split(",", 3)[3] == result["query"])
    videos = list(dict.fromkeys(line.split(",")[2] for line in queries))
    scores = np.load(out / "msrvtt_scores.npy")
    assert abs(rows[0]["score"] - scores[q, videos.index(expected)]) <= 1e-5
