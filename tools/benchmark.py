"""Benchmarks, one subcommand per measurement.

    OMP_NUM_THREADS=2 MKL_DEBUG_CPU_TYPE=5 python tools/benchmark.py model
    OMP_NUM_THREADS=2 MKL_DEBUG_CPU_TYPE=5 python tools/benchmark.py data
    OMP_NUM_THREADS=2 MKL_DEBUG_CPU_TYPE=5 python tools/benchmark.py train
    OMP_NUM_THREADS=2 MKL_DEBUG_CPU_TYPE=5 python tools/benchmark.py eval
    OMP_NUM_THREADS=2 MKL_DEBUG_CPU_TYPE=5 python tools/benchmark.py infer [--weights DEMO_MODEL]
    OMP_NUM_THREADS=2 MKL_DEBUG_CPU_TYPE=5 python tools/benchmark.py loader
    OMP_NUM_THREADS=2 MKL_DEBUG_CPU_TYPE=5 python tools/benchmark.py extract
    OMP_NUM_THREADS=2 MKL_DEBUG_CPU_TYPE=5 python tools/benchmark.py finetune
    OMP_NUM_THREADS=2 MKL_DEBUG_CPU_TYPE=5 python tools/benchmark.py search [--weights DEMO_MODEL]

Each prints its figures and the ratio to the baseline it names, both measured in the
same run. The code of each lives in ``tools/benchmarks/<subcommand>.py``.
"""

import argparse
import importlib
import sys

if not __package__:  # run as python tools/<tool>.py: the checkout importable (tools/_path.py)
    import _path  # noqa: F401

SUBCOMMANDS = {
    "model": "training step and retrieval scoring against the full reference computation",
    "data": "training pipeline samples/s from the store against PaddleVideo's .npy + caption JSON",
    "train": "samples/s of full training steps, DataLoader included, 1 and 2 processes",
    "eval": "MSR-VTT scoring pairs/s against brute force",
    "infer": "exported predictor pairs/s against dygraph retrieval; search latency; untrained first-stage proxies",
    "loader": "batch loading samples/s of our BatchLoader against Paddle's DataLoader",
    "extract": "video feature extraction: decode frames/s, detector images/s, 3D CNN clips/s, pipeline clips/s",
    "finetune": "retrieval fine-tuning samples/s with K negatives against naive full forwards per pair",
    "search": "two-stage search: first-stage recall and R@1 against exhaustive; index at 100,000 videos; 1000 x 1000",
}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    for name, help_text in SUBCOMMANDS.items():
        sub.add_parser(name, help=help_text, add_help=False)
    args, rest = parser.parse_known_args(argv)
    module = importlib.import_module(f"tools.benchmarks.{args.command}")
    return module.main(rest)


if __name__ == "__main__":
    sys.exit(main())
