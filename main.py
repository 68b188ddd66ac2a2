"""Train or test ActBERT, with PaddleVideo's command line.

    python main.py -c configs/multimodal/actbert/actbert.yaml --validate
    python main.py -c configs/multimodal/actbert/actbert.yaml --resume            # continue the last run
    python main.py -c configs/multimodal/actbert/actbert_msrvtt.yaml --test -w output/ActBert/ActBert_best.pdparams
    python -m paddle.distributed.launch --nproc_per_node 2 main.py -c ... --validate   # 2 processes (CPU: gloo)
    python -m paddle.distributed.launch --master IP:PORT --nnodes 2 --nproc_per_node 8 main.py -c ...
        (run the same command on every node; --ips is deprecated in Paddle 3)

Every error caused by the input (config, flags, files) is printed as one line
``error: ...`` and exits with status 2, before any work starts when it can be known then.
"""

import argparse
import os
import sys


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description="ActBERT training and MSR-VTT retrieval test (PaddleVideo CLI)")
    parser.add_argument("-c", "--config", required=True, help="YAML config file")
    parser.add_argument("-o", "--override", action="append", default=[], metavar="KEY.PATH=VALUE",
                        help="override a config value (repeatable), e.g. -o DATASET.batch_size=4")
    parser.add_argument("--validate", action="store_true", help="compute the validation loss every val_interval epochs")
    parser.add_argument("--test", action="store_true", help="evaluate MSR-VTT retrieval with the -w weights")
    parser.add_argument("-w", "--weights", help="full-model weights: to start training from, or to test")
    parser.add_argument("--seed", type=int, help="random seed (default: config 'seed', else random)")
    parser.add_argument("--amp", action="store_true", help="mixed precision (GPU only; float32 on CPU)")
    parser.add_argument("--amp_level", choices=["O1", "O2"], default=None, help="mixed-precision level")
    parser.add_argument("--max_iters", type=int, help="stop after this many optimiser steps in total")
    parser.add_argument("--resume", nargs="?", const="", default=None, metavar="CHECKPOINT",
                        help="continue from a resume checkpoint (default: {output_dir}/{model_name}_resume.pdckpt)")
    parser.add_argument("--no_progress", "--no-progress", action="store_true",
                        help="no progress bars (they are drawn only when stderr is a terminal anyway)")
    return parser.parse_args(argv)


def _configured_threads(args):
    """``num_threads`` from the YAML or an override, read without Paddle (0 or None: unset).

    Read with plain PyYAML because the value must be in the environment before Paddle
    is imported; the full config is loaded (and checked) later.
    """
    import yaml

    value = None
    try:
        with open(args.config, encoding="utf-8") as f:
            data = yaml.safe_load(f)
        if isinstance(data, dict):
            value = data.get("num_threads")
    except (OSError, yaml.YAMLError):
        pass  # reported properly by the real config loader
    for item in args.override:
        key, _, text = item.partition("=")
        if key.strip() == "num_threads":
            value = text.strip()
    try:
        return int(value) if value not in (None, "") else None
    except ValueError:
        return None  # the config checker rejects it with a clear message


def set_cpu_threads(configured):
    """Set OMP_NUM_THREADS before Paddle reads it.

    Paddle sets OMP_NUM_THREADS=1 at import when it is unset (and its launcher passes
    that to every worker), which leaves all but one CPU core idle. Default: the cores
    divided among the processes of this node. A ``num_threads`` in the YAML wins; a
    value the user exported (other than the launcher's 1) is kept.
    """
    local_procs = int(os.environ.get("PADDLE_LOCAL_SIZE", 1))
    launched_default = local_procs > 1 or "PADDLE_TRAINER_ID" in os.environ
    current = os.environ.get("OMP_NUM_THREADS")
    if configured:
        os.environ["OMP_NUM_THREADS"] = str(configured)
    elif current is None or (launched_default and current == "1"):
        os.environ["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // local_procs))


def run(args):
    from paddlevideo.utils.config import get_config
    from paddlevideo.utils.errors import ConfigError

    cfg = get_config(args.config, args.override)
    if args.no_progress:
        from paddlevideo.utils.progress import disable_progress

        disable_progress()
    if args.test:
        if not (cfg.get("DATASET") or {}).get("test"):
            raise ConfigError(f"--test needs DATASET.test in {args.config} (an MSRVTTDataset)")
        from paddlevideo.tasks.test import test_model

        test_model(cfg, weights=args.weights, amp=args.amp, amp_level=args.amp_level or "O1")
        return
    from paddlevideo.tasks.train import train_model

    resume = args.resume
    if resume == "":
        from paddlevideo.utils.checkpoint import resume_path
        from paddlevideo.utils.settings import RunSettings

        settings = RunSettings.from_cfg(cfg)
        resume = resume_path(settings.output_dir, settings.model_name)
    train_model(cfg, weights=args.weights, validate=args.validate, amp=args.amp, amp_level=args.amp_level,
                max_iters=args.max_iters, resume=resume, seed=args.seed)


def main(argv=None):
    args = parse_args(argv)
    set_cpu_threads(_configured_threads(args))
    import paddlevideo  # noqa: F401  (fills the registries; imports Paddle)
    from paddlevideo.utils.errors import exit_status

    return exit_status(run, args)


if __name__ == "__main__":
    sys.exit(main())
