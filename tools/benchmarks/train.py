"""Samples/s of full training steps (DataLoader, forward, backward, optimiser), 1 and 2 processes.

    OMP_NUM_THREADS=2 MKL_DEBUG_CPU_TYPE=5 python tools/benchmark.py train [--steps 3] [--only small]

Each case runs ``main.py`` (one process, or two under ``paddle.distributed.launch`` with
gloo) on synthetic pretraining samples of the contract's shapes, with ``num_workers: 1``,
and reads the per-step ``batch_cost`` / ``reader_cost`` from its log lines, dropping the
first step (start-up). Baseline: the 1-process run of the same configuration; the
2-process ratio is samples/s (global batch) against it. ``reader_cost`` is the time the
step waited for data: it should be a small share of ``batch_cost``.
"""

import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[2]
T, V, A = 36, 37, 5

SMALL = dict(vocab_size=1000, v_feature_size=64, a_feature_size=64, v_target_size=20, a_target_size=10,
             hidden_size=64, num_hidden_layers=4, num_attention_heads=4, intermediate_size=128, v_hidden_size=64,
             v_num_hidden_layers=2, v_num_attention_heads=4, v_intermediate_size=128, a_hidden_size=64,
             a_num_hidden_layers=2, a_num_attention_heads=4, a_intermediate_size=128, bi_hidden_size=64,
             bi_num_attention_heads=4, t_ent_attention_id=[2, 3], v_ent_attention_id=[0, 1],
             a_ent_attention_id=[0, 1])
FULL = {}  # the backbone's defaults are actbert.yaml's full size
CASES = {"small": (SMALL, 16), "full": (FULL, 2)}  # backbone, batch per process


def synthetic_dataset_class():
    """A dataset of random samples with the pretraining batch layout (registered in the worker)."""
    import paddle

    from paddlevideo.loader.registry import DATASETS

    @DATASETS.register()
    class BenchSyntheticPretrain(paddle.io.Dataset):
        def __init__(self, num_samples=256, vocab_size=30522, v_feature_size=2048, a_feature_size=2048,
                     v_target_size=1601, a_target_size=700):
            self.n, self.vocab, self.vf, self.af = num_samples, vocab_size, v_feature_size, a_feature_size
            self.vt, self.at = v_target_size, a_target_size

        def __len__(self):
            return self.n

        def __getitem__(self, i):
            r = np.random  # seeded per sample by the DataLoader wrapper
            label = lambda n, hi: np.where(r.rand(n) < 0.15, r.randint(0, hi, n), -1).astype("int64")
            target = r.rand(V - 1, self.vt).astype("float32")
            return {
                "text_ids": r.randint(1, self.vocab, T).astype("int64"), "token_type_ids": np.zeros(T, "int64"),
                "text_mask": np.ones(T, "int64"), "text_labels": label(T, self.vocab),
                "image_feat": r.rand(V, self.vf).astype("float32"), "image_loc": r.rand(V, 5).astype("float32"),
                "image_mask": np.ones(V, "int64"), "image_label": np.where(r.rand(V - 1) < 0.15, 1, -1),
                "image_target": target / target.sum(-1, keepdims=True),
                "action_feat": r.rand(A, self.af).astype("float32"), "action_mask": np.ones(A, "int64"),
                "action_label": label(A, self.at), "next_sentence_label": np.int64(r.randint(0, 2)),
            }


def write_config(workdir, backbone, batch):
    data = {k: backbone[k] for k in ("vocab_size", "v_feature_size", "a_feature_size", "v_target_size",
                                      "a_target_size") if k in backbone}
    cfg = {
        "MODEL": {"framework": "ActBert", "backbone": {"name": "BertForMultiModalPreTraining", **backbone}},
        "DATASET": {"batch_size": batch, "num_workers": 1,
                    "train": {"format": "BenchSyntheticPretrain", "num_samples": 512, **data}},
        "OPTIMIZER": {"name": "Adam", "learning_rate": 0.0001},
        "model_name": "bench", "epochs": 1, "log_interval": 1, "output_dir": str(workdir / "out"), "seed": 0,
    }
    path = workdir / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


STEP = re.compile(r"batch_cost: ([\d.]+) sec, reader_cost: ([\d.]+) sec")


def run_case(name, procs, steps):
    backbone, batch = CASES[name]
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        cfg = write_config(workdir, backbone, batch)
        args = [str(Path(__file__).resolve()), "--worker", "-c", str(cfg), "--max_iters", str(steps + 1)]
        if procs > 1:
            args = ["-m", "paddle.distributed.launch", "--nproc_per_node", str(procs), "--log_dir",
                    str(workdir / "logs"), *args]
        # The cores are shared by the processes: same total thread count in every case.
        threads = int(os.environ.get("OMP_NUM_THREADS", os.cpu_count() or 1))
        env = dict(os.environ, OMP_NUM_THREADS=str(max(1, threads // procs)))
        proc = subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True)
        text = proc.stdout + proc.stderr
        if procs > 1 and (workdir / "logs" / "workerlog.0").exists():
            text = (workdir / "logs" / "workerlog.0").read_text()
        if proc.returncode != 0:
            raise SystemExit(f"{name} x{procs} failed:\n{text[-3000:]}")
    costs = np.array([[float(a), float(b)] for a, b in STEP.findall(text)][1:])  # drop the start-up step
    batch_cost, reader_cost = costs.mean(axis=0)
    return {"samples_s": batch * procs / batch_cost, "batch_cost": batch_cost, "reader_cost": reader_cost,
            "global_batch": batch * procs, "steps": len(costs)}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=4, help="measured steps per case (after one warm-up step)")
    parser.add_argument("--only", choices=sorted(CASES), help="run one configuration")
    args = parser.parse_args(argv)
    print(f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')} cpus={os.cpu_count()} num_workers=1 "
          f"(steps measured: {args.steps}, first step dropped)")
    print(f"{'config':6} {'procs':>5} {'global batch':>12} {'samples/s':>10} {'batch_cost s':>12} "
          f"{'reader_cost s':>13} {'reader/batch':>12} {'vs 1 proc':>9}")
    for name in [args.only] if args.only else ["small", "full"]:
        base = None
        for procs in (1, 2):
            r = run_case(name, procs, args.steps)
            base = base or r["samples_s"]
            print(f"{name:6} {procs:5d} {r['global_batch']:12d} {r['samples_s']:10.2f} {r['batch_cost']:12.4f} "
                  f"{r['reader_cost']:13.4f} {r['reader_cost'] / r['batch_cost']:11.1%} "
                  f"{r['samples_s'] / base:8.2f}x", flush=True)
    return 0


def worker(argv):
    """Inside each training process: register the synthetic dataset, then run main.py."""
    sys.path.insert(0, str(ROOT))
    import main as entry

    args = entry.parse_args(argv)
    entry.set_cpu_threads(entry._configured_threads(args))
    synthetic_dataset_class()
    return entry.main(argv)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--worker"]:
        sys.exit(worker(sys.argv[2:]))
    sys.exit(main())
