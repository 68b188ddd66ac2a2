"""Batch loading: our ``BatchLoader`` against Paddle's DataLoader, same dataset and sampler.

    OMP_NUM_THREADS=2 MKL_DEBUG_CPU_TYPE=5 python tools/benchmark.py loader [--rounds 3] [--batches 20]

``BatchLoader`` replaced Paddle's DataLoader so that an error in data loading ends the
run instead of hanging it; this checks that it costs nothing. Both sides iterate the same
``SeededDataset`` of synthetic full-size pretraining samples (37 regions x 2048 features,
36 x 1601 region targets, ~530 KB a sample) through the same ``ShardedBatchSampler``,
batches of 32, with 0, 1 and 2 workers, and turn every batch into Paddle tensors. The
sides alternate within each round; the median of the rounds is printed.
"""

import argparse
import statistics
import time

import paddle

from paddlevideo.loader.dataloader import BatchLoader, SeededDataset, ShardedBatchSampler, _worker_init
from paddlevideo.loader.registry import DATASETS
from tools.benchmarks.train import synthetic_dataset_class

BATCH = 32


def make_loader(side, dataset, workers, batches):
    sampler = ShardedBatchSampler(batches * BATCH, BATCH, shuffle=False, drop_last=True, seed=0)
    init = _worker_init(0, 0) if workers else None
    if side == "paddle":
        return paddle.io.DataLoader(dataset, batch_sampler=sampler, num_workers=workers, worker_init_fn=init)
    return BatchLoader(dataset, sampler, workers, worker_init_fn=init)


def samples_per_second(loader):
    start, n = time.perf_counter(), 0
    for batch in loader:
        n += int(batch["image_feat"].shape[0])
    return n / (time.perf_counter() - start)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3, help="rounds (each times both sides once)")
    parser.add_argument("--batches", type=int, default=20, help="batches of 32 per timing")
    args = parser.parse_args(argv)
    synthetic_dataset_class()
    dataset = SeededDataset(DATASETS.get("BenchSyntheticPretrain")(num_samples=args.batches * BATCH), seed=0)
    print(f"batches of {BATCH} full-size synthetic samples, {args.batches} batches per timing, "
          f"median of {args.rounds} alternating rounds")
    for workers in (0, 1, 2):
        rates = {"ours": [], "paddle": []}
        for _ in range(args.rounds):
            for side in ("ours", "paddle"):
                rates[side].append(samples_per_second(make_loader(side, dataset, workers, args.batches)))
        ours, base = statistics.median(rates["ours"]), statistics.median(rates["paddle"])
        print(f"num_workers {workers}: BatchLoader {ours:7.1f} samples/s, Paddle DataLoader {base:7.1f} samples/s, "
              f"ratio {ours / base:.2f}x")
    return 0
