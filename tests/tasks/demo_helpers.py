"""Helpers of the demo end-to-end tests (the ``demo_pretrained`` fixture is in conftest.py)."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ROOT / "configs/multimodal/actbert"
PRETRAIN_EPOCHS = 9  # ~1100 steps: the matching loss leaves its ln 2 plateau after ~900
# The demo model's operations are too small to share between threads: on 2 loaded cores,
# pretraining epochs with 2 threads took 1.6-2.8x as long as with one (measured). One thread also
# makes the demo runs reproducible on a machine (same losses, same R@1 in every run).
ONE_THREAD = {**os.environ, "OMP_NUM_THREADS": "1"}


def run_python(args, cwd=ROOT):
    """Run ``python *args`` on one thread; assert success; its stdout."""
    proc = subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True, env=ONE_THREAD)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout


def demo_test_overrides(data, out):
    """``-o`` pairs pointing actbert_msrvtt_demo.yaml at ``data``'s test set, writing to ``out``."""
    return ["-o", f"output_dir={out}", "-o", f"DATASET.test.file_path={data}/MSRVTT_JSFUSION_test.csv",
            "-o", f"DATASET.test.features_path={data}/msrvtt_test.lmdb",
            "-o", f"DATASET.test.vocab_file={data}/vocab.txt"]
