"""Helpers of the demo end-to-end tests (the ``demo_pretrained`` fixture is in conftest.py)."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ROOT / "configs/multimodal/actbert"
PRETRAIN_EPOCHS = 9  # ~1100 steps: the matching loss leaves its ln 2 plateau after ~800


def run_python(args, cwd=ROOT):
    """Run ``python *args``; assert success; its stdout."""
    proc = subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout


def demo_test_overrides(data, out):
    """``-o`` pairs pointing actbert_msrvtt_demo.yaml at ``data``'s test set, writing to ``out``."""
    return ["-o", f"output_dir={out}", "-o", f"DATASET.test.file_path={data}/MSRVTT_JSFUSION_test.csv",
            "-o", f"DATASET.test.features_path={data}/msrvtt_test.lmdb",
            "-o", f"DATASET.test.vocab_file={data}/vocab.txt"]
