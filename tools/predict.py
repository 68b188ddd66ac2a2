"""Score captions against videos with an exported ActBERT on Paddle Inference.

    python tools/export_model.py -c configs/multimodal/actbert/actbert_msrvtt.yaml -p ActBERT.pdparams -o inference/
    python tools/predict.py -c configs/multimodal/actbert/actbert_msrvtt.yaml --inference-dir inference/
    python tools/predict.py -c CONFIG --inference-dir inference/ --caption "a man slices a tomato" \
        --videos msrvtt_test.lmdb

Without ``--caption`` it scores every caption of ``DATASET.test`` against its videos (as
``main.py --test``, with the exported graphs) and prints the retrieval metrics; with
``--caption`` (repeatable) those captions against every video of ``--videos`` (default:
``DATASET.test.features_path``). The score of a pair is the matching logit difference.
Writes the score matrix [captions, videos] to ``--output`` (.npy).

Devices: CPU (``--enable_mkldnn`` oneDNN on/off, ``--cpu_threads``) or a GPU
(``--use_gpu``; ``--use_tensorrt`` with ``--precision fp32|fp16``; needs paddlepaddle-gpu).
"""

import argparse
import os
import sys
import time

if not __package__:  # run as python tools/<tool>.py: the checkout importable (tools/_path.py)
    import _path  # noqa: F401

from paddlevideo.retrieval.predictor import add_engine_args, engine_options  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-c", "--config", required=True, help="YAML config the model was exported with")
    p.add_argument("--inference-dir", "--inference_dir", dest="inference_dir", required=True,
                   help="directory written by tools/export_model.py")
    p.add_argument("--override", action="append", default=[], metavar="KEY.PATH=VALUE", help="override a config value")
    p.add_argument("--caption", action="append", default=[], help="a caption to score (repeatable)")
    p.add_argument("--videos", help="videos for --caption: MSR-VTT features LMDB or store (default: DATASET.test's)")
    p.add_argument("--pair_batch_size", type=int, default=None, help="pairs per scoring pass "
                   "(default DATASET.test_pair_batch_size or 256)")
    p.add_argument("--output", default=None, help="score matrix .npy (default <output_dir>/predict_scores.npy)")
    add_engine_args(p)
    return p.parse_args(argv)


def run(args):
    import numpy as np

    from paddlevideo.loader.builder import build_dataset
    from paddlevideo.retrieval.predictor import engine_for_config
    from paddlevideo.retrieval.scoring import score_matrix
    from paddlevideo.retrieval.search import QueriesAgainst, encode_queries, open_collection, pair_batch_size
    from paddlevideo.utils.config import get_config
    from paddlevideo.utils.errors import ConfigError
    from paddlevideo.utils.outfile import atomic_output, check_output_file

    cfg = get_config(args.config, args.override)
    test_cfg = (cfg.get("DATASET") or {}).get("test")
    if not test_cfg:
        raise ConfigError(f"{args.config} has no DATASET.test (the vocabulary and input lengths)")
    pair_batch = pair_batch_size(args.pair_batch_size, cfg)
    output = args.output or os.path.join(cfg.get("output_dir") or "output", "predict_scores.npy")
    check_output_file(output, "--output")
    engine = engine_for_config(args.inference_dir, cfg, **engine_options(args))
    if args.caption:
        videos = open_collection(args.videos or test_cfg["features_path"], test_cfg)
        text = encode_queries(videos, args.caption)
        dataset = QueriesAgainst(text, videos)
    else:
        dataset = build_dataset(test_cfg, None, where="DATASET.test")
    start = time.perf_counter()
    scores = score_matrix(engine, dataset, pair_batch_size=pair_batch, text_batch_size=16)
    elapsed = time.perf_counter() - start
    print(f"scored {scores.shape[0]} captions x {scores.shape[1]} videos in {elapsed:.2f} s "
          f"({scores.size / max(elapsed, 1e-9):.1f} pairs/s, exported model, {engine_options(args)['device']})")
    with atomic_output(output, "--output") as f:
        np.save(f, scores)
    captions = args.caption or list(dataset.captions)
    for i, caption in enumerate(captions[:10]):
        best = int(np.argmax(scores[i]))
        print(f"{caption!r}: best video {dataset.video_ids[best]} (score {scores[i, best]:.4f})")
    if not args.caption:
        from paddlevideo.metrics.retrieval import format_table, retrieval_metrics

        print(format_table(retrieval_metrics(scores, dataset.query_video_index)))
    print(f"scores written to {output}")


def main(argv=None):
    args = parse_args(argv)
    import paddlevideo  # noqa: F401  (fills the registries)
    from paddlevideo.utils.errors import exit_status

    return exit_status(run, args)


if __name__ == "__main__":
    sys.exit(main())
