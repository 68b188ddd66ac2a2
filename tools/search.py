"""Text -> video search: rank the videos of a collection for a text query.

    python tools/search.py -c configs/multimodal/actbert/actbert_msrvtt.yaml -w ActBERT.pdparams \\
        --videos data/msrvtt/msrvtt_test.lmdb --query "a man slices a tomato" --top 10
    python tools/search.py -c CONFIG --inference-dir inference/ --videos STORE --queries queries.txt \\
        --cache output/videos.npz

``--videos``: an MSR-VTT-format features LMDB (every video in it) or a pretraining store
(every clip). Videos are built into the model's input with ``DATASET.test``'s settings
(lengths, vocabulary, test-time quirks), as ``main.py --test`` builds them. Runs the
dygraph model (``-w``, a full checkpoint) or the exported one (``--inference-dir``, from
``tools/export_model.py``; predictor options as ``tools/predict.py``).

Every video is encoded once per run; ``--cache FILE`` keeps those encodings, so the next
run over the same collection and model skips that stage. The cache file is marked as one
and written atomically; a cache of ours for another model or collection is replaced, any
other file (a checkpoint given by mistake, a truncated cache) is an error and left as it is. Each query is then scored
against every video by the matching head (exhaustive; the same scores as ``main.py
--test``). Prints a ranked table per query and writes them as JSON (``--json``).
"""

import argparse
import json
import os
import sys
import time

if not __package__:  # run as python tools/<tool>.py: the checkout importable (tools/_path.py)
    import _path  # noqa: F401

from paddlevideo.retrieval.predictor import add_engine_args, engine_options  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-c", "--config", required=True, help="YAML config (MODEL; DATASET.test's vocabulary and lengths)")
    p.add_argument("-w", "--weights", help="full-model checkpoint (dygraph)")
    p.add_argument("--inference-dir", "--inference_dir", dest="inference_dir",
                   help="exported model (tools/export_model.py) instead of -w")
    p.add_argument("--videos", required=True, help="MSR-VTT features LMDB or pretraining store to search")
    p.add_argument("--query", action="append", default=[], help="a text query (repeatable)")
    p.add_argument("--queries", help="a text file of queries, one per line")
    p.add_argument("--top", type=int, default=10, help="videos listed per query (default 10)")
    p.add_argument("--cache", help="file of the videos' encodings: read when it fits, else written "
                                   "(a file this tool did not write is refused, never overwritten)")
    p.add_argument("--json", dest="json_path", help="results JSON (default <output_dir>/search_results.json)")
    p.add_argument("--pair_batch_size", type=int, default=None, help="pairs per matching pass")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bars")
    p.add_argument("--override", action="append", default=[], metavar="KEY.PATH=VALUE", help="override a config value")
    add_engine_args(p)
    return p.parse_args(argv)


def build_engine(args, cfg):
    """(engine, model key for the cache) of -w or --inference-dir."""
    from paddlevideo.utils.errors import ConfigError

    if bool(args.weights) == bool(args.inference_dir):
        raise ConfigError("give the model either as -w WEIGHTS (dygraph) or as --inference-dir DIR (exported)")
    options = engine_options(args)  # checked with -w too, where the predictor options do not apply
    if args.inference_dir:
        from paddlevideo.retrieval.predictor import engine_for_config

        engine = engine_for_config(args.inference_dir, cfg, **options)
        return engine, "exported:" + str(engine.info.get("weights_sha256"))
    from paddlevideo.retrieval.export import file_digest
    from paddlevideo.retrieval.scoring import DygraphScorer
    from paddlevideo.tasks.test import build_test_model, check_weights_file

    if args.use_gpu:
        import paddle

        paddle.set_device(f"gpu:{args.gpu_id}")
    check_weights_file(args.weights, flag="-w", task="search")
    model = build_test_model(cfg.MODEL, args.weights)
    return DygraphScorer(model.backbone), "dygraph:" + file_digest(args.weights)


def print_results(queries, results):
    for query, rows in zip(queries, results):
        print(f"\nquery: {query}")
        width = max(len("video id"), *(len(str(vid)) for _, vid, _ in rows))
        print(f"{'rank':>4}  {'video id':<{width}}  {'score':>9}")
        for rank, vid, score in rows:
            print(f"{rank:>4}  {vid:<{width}}  {score:>9.4f}")


def run(args):
    from paddlevideo.retrieval.search import (
        check_cache_target,
        check_top,
        open_collection,
        pair_batch_size,
        read_queries_file,
        search,
    )
    from paddlevideo.utils.config import get_config
    from paddlevideo.utils.errors import ConfigError, DataError
    from paddlevideo.utils.outfile import atomic_output, check_output_file

    cfg = get_config(args.config, args.override)
    test_cfg = (cfg.get("DATASET") or {}).get("test")
    if not test_cfg:
        raise ConfigError(f"{args.config} has no DATASET.test (the vocabulary and input lengths of the videos)")
    top = check_top(args.top)
    queries = list(args.query) + (read_queries_file(args.queries) if args.queries else [])
    if not queries:
        raise DataError("no query: give --query TEXT or --queries FILE")
    pair_batch = pair_batch_size(args.pair_batch_size, cfg)
    out = args.json_path or os.path.join(cfg.get("output_dir") or "output", "search_results.json")
    check_output_file(out, "--json")
    if args.cache:
        check_cache_target(args.cache)  # before the model loads: a file that is not our cache is refused now
    engine, model_key = build_engine(args, cfg)
    collection = open_collection(args.videos, test_cfg)
    start = time.perf_counter()
    results, timings = search(engine, collection, queries, top=top, pair_batch_size=pair_batch, cache=args.cache,
                              model_key=model_key, progress=args.progress)
    total = time.perf_counter() - start
    print_results(queries, results)
    cached = " (read from the cache)" if timings["encode_videos"] == 0 else ""
    print(f"\n{len(queries)} quer{'y' if len(queries) == 1 else 'ies'} x {collection.num_videos} videos on the "
          f"{engine.kind} model in {total:.2f} s: videos encoded in {timings['encode_videos']:.2f} s{cached}, "
          f"scored in {timings['score']:.2f} s")
    payload = {
        "videos": args.videos, "num_videos": collection.num_videos, "model": engine.kind,
        "timings_s": {**timings, "total": total},
        "queries": [{"query": q, "results": [{"rank": r, "video_id": v, "score": s} for r, v, s in rows]}
                    for q, rows in zip(queries, results)],
    }
    with atomic_output(out, "--json") as f:
        f.write(json.dumps(payload, indent=1).encode("utf-8"))
    print(f"results written to {out}")


def main(argv=None):
    args = parse_args(argv)
    import paddlevideo  # noqa: F401  (fills the registries)
    from paddlevideo.utils.errors import exit_status

    return exit_status(run, args)


if __name__ == "__main__":
    sys.exit(main())
