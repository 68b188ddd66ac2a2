"""Train the first stage of two-stage search from a trained ActBERT (the teacher).

    python tools/train_first_stage.py -c configs/multimodal/actbert/actbert_first_stage_demo.yaml \\
        -w output/ActBert_demo/ActBert_demo_best.pdparams --out output/ActBert_demo/first_stage.npz

The teacher (``-w``, a full checkpoint of the config's MODEL) scores, for each caption of
``DATASET.train`` (an MSR-VTT-format training split, ``MSRVTTTrainDataset``), K candidate
videos; a caption tower and a video tower on the teacher's own encodings learn that ranking
(``paddlevideo/retrieval/first_stage.py``; settings: ``FIRST_STAGE`` of the config). A
fraction of the videos is held out and the recall of the teacher's top 10 among the first
stage's top 10 % is measured there, printed and saved in the file. The file records the
teacher weights' SHA-256: search refuses it with any other weights. ``--out`` must be new or
a first stage this tool wrote (anything else is refused and left as it is); it is written
atomically, and two trainings into one ``--out`` are refused.
"""

import argparse
import sys

if not __package__:  # run as python tools/<tool>.py: the checkout importable (tools/_path.py)
    import _path  # noqa: F401


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-c", "--config", required=True, help="YAML config: MODEL, DATASET.train, FIRST_STAGE")
    p.add_argument("-w", "--weights", required=True, help="the teacher: a full ActBERT checkpoint")
    p.add_argument("--out", required=True, help="first-stage file to write (.npz)")
    p.add_argument("--pair_batch_size", type=int, default=1024, help="teacher pairs per matching pass")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bars")
    p.add_argument("--override", action="append", default=[], metavar="KEY.PATH=VALUE", help="override a config value")
    return p.parse_args(argv)


def first_stage_settings(cfg):
    from paddlevideo.retrieval.first_stage import FirstStageSettings
    from paddlevideo.retrieval.two_stage import SEARCH_KEYS

    section = dict(cfg.get("FIRST_STAGE") or {})
    return FirstStageSettings.from_config({k: v for k, v in section.items() if k not in SEARCH_KEYS})


def run(args):
    from paddlevideo.loader.builder import build_dataset
    from paddlevideo.retrieval.distill import distill
    from paddlevideo.retrieval.export import file_digest
    from paddlevideo.retrieval.first_stage import RECALL_TARGET, check_first_stage_target, save_first_stage
    from paddlevideo.retrieval.scoring import DygraphScorer
    from paddlevideo.tasks.test import build_test_model, check_weights_file
    from paddlevideo.utils.config import get_config
    from paddlevideo.utils.errors import ConfigError
    from paddlevideo.utils.writer_lock import writer_lock

    cfg = get_config(args.config, args.override)
    settings = first_stage_settings(cfg)
    if args.pair_batch_size < 1:
        raise ConfigError(f"--pair_batch_size must be at least 1, got {args.pair_batch_size}")
    train_cfg = (cfg.get("DATASET") or {}).get("train")
    if not train_cfg:
        raise ConfigError(f"{args.config} has no DATASET.train (the captions and videos to distil on)")
    check_first_stage_target(args.out)
    check_weights_file(args.weights, flag="-w", task="train_first_stage")
    with writer_lock(args.out, "--out"):
        dataset = build_dataset(train_cfg, None, where="DATASET.train")
        engine = DygraphScorer(build_test_model(cfg.MODEL, args.weights).backbone)
        stage = distill(engine, dataset, settings, file_digest(args.weights), args.pair_batch_size, args.progress)
        save_first_stage(args.out, stage)
    recall = stage.meta.get("holdout_recall")
    verdict = ""
    if recall is not None:
        verdict = (f" (below the target {RECALL_TARGET}: rerank more candidates)" if recall < RECALL_TARGET
                   else f" (target {RECALL_TARGET} reached)")
    print(f"first stage written to {args.out}: {stage.describe()}{verdict}")


def main(argv=None):
    args = parse_args(argv)
    import paddlevideo  # noqa: F401  (fills the registries)
    from paddlevideo.utils.errors import exit_status

    return exit_status(run, args)


if __name__ == "__main__":
    sys.exit(main())
