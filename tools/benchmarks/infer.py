"""Deployment: the exported predictor against the dygraph retrieval path, and search latency.

1. Throughput (``--size full`` default: actbert.yaml's sizes, random weights; ``demo``: the
   demo model's): pairs/s of ``score_matrix`` on the exported graphs through Paddle
   Inference on CPU, oneDNN on and off, against ``score_matrix`` on the dygraph backbone;
   the same MSR-VTT-shaped captions and videos, the sides alternating round by round in
   one process (median of ``--rounds``), and the largest score difference.
2. Search latency (demo model: ``--weights``, else random weights of its sizes): one query
   over ``--collections`` demo videos (default 100 and 1000), cold (every video encoded,
   then scored) and with the video encodings read from the cache file, on the dygraph and
   the exported model; with where the time goes (video encoding, cache read, query).
3. The approximate first stage (with ``--weights``, a trained demo model): recall of the
   exhaustive top 10 among the top N = 10 % of the collection by a cheap pair-independent
   similarity, on the demo test corpus (its 100 videos and a 600-video one).
"""

import argparse
import os
import statistics
import tempfile
import time

import numpy as np
import paddle

from paddlevideo.fields import DEFAULT_LIMITS
from paddlevideo.modeling.backbones.actbert import BertForMultiModalPreTraining
from paddlevideo.retrieval.export import export_retrieval
from paddlevideo.retrieval.predictor import InferenceEngine
from paddlevideo.retrieval.scoring import DygraphScorer, score_matrix
from paddlevideo.retrieval.search import (
    QueriesAgainst,
    encode_collection,
    encode_queries,
    open_collection,
    score_queries,
    search,
)
from paddlevideo.utils.config import get_config

from .eval import make_inputs

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEMO_CONFIG = os.path.join(ROOT, "configs/multimodal/actbert/actbert_msrvtt_demo.yaml")


def timed(fn, *args, **kwargs):
    """(fn(*args, **kwargs), seconds it took)."""
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - start


def demo_backbone(weights=None):
    """The demo model (trained weights from ``weights``, else random) and its config."""
    cfg = get_config(DEMO_CONFIG)
    if weights:
        from paddlevideo.tasks.test import build_test_model

        return build_test_model(cfg.MODEL, weights).backbone, cfg
    settings = {k: v for k, v in cfg.MODEL.backbone.items() if k != "name"}
    paddle.seed(0)
    return BertForMultiModalPreTraining(**settings).eval(), cfg


# --------------------------------------------------------------------------- 1. throughput


def throughput(args, tmp):
    if args.size == "full":
        paddle.seed(0)
        backbone, limits = BertForMultiModalPreTraining().eval(), DEFAULT_LIMITS
        data = make_inputs(args.captions, args.videos, seed=1)
    else:
        backbone, cfg = demo_backbone(args.weights)
        test_cfg = demo_test_cfg(cfg, tmp)
        limits = {k: test_cfg[k] for k in DEFAULT_LIMITS}
        path = os.path.join(tmp, "throughput.lmdb")
        write_demo_collection(path, args.videos)
        collection = open_collection(path, test_cfg)
        data = QueriesAgainst(encode_queries(collection, demo_captions(args.captions)), collection)
    _, t_export = timed(export_retrieval, backbone, os.path.join(tmp, "model"), limits)
    sides = {"dygraph score_matrix": backbone}
    for mkldnn in (True, False):
        engine = InferenceEngine(os.path.join(tmp, "model"), device="cpu", mkldnn=mkldnn,
                                 cpu_threads=int(os.environ.get("OMP_NUM_THREADS", 2)))
        sides[f"exported, oneDNN {'on' if mkldnn else 'off'}"] = engine
    pairs = data.num_queries * data.num_videos
    print(f"[throughput] ActBERT {args.size} size, {data.num_queries} captions x {data.num_videos} videos = {pairs} "
          f"pairs per round, {args.pair_batch} pairs per pass; export took {t_export:.1f} s")
    times, scores = {name: [] for name in sides}, {}
    for model in sides.values():  # warm-up
        score_matrix(model, data, pair_batch_size=args.pair_batch, progress=False)
    for _ in range(args.rounds):
        for name, model in sides.items():
            scores[name], t = timed(score_matrix, model, data, pair_batch_size=args.pair_batch,
                                    text_batch_size=args.captions, progress=False)
            times[name].append(t)
    base = "dygraph score_matrix"
    base_rate = pairs / statistics.median(times[base])
    print(f"{'side':<26}{'median s':>10}{'pairs/s':>10}{'vs dygraph':>12}{'max |diff|':>12}")
    for name in sides:
        median = statistics.median(times[name])
        diff = float(np.abs(scores[name] - scores[base]).max())
        print(f"{name:<26}{median:>10.2f}{pairs / median:>10.1f}{pairs / median / base_rate:>11.2f}x{diff:>12.1e}")


# --------------------------------------------------------------------------- 2. search latency


def write_demo_collection(path, count, seed=0):
    """``count`` demo test videos (random action/object combinations, repeats allowed)."""
    from paddlevideo.loader.dataset.msrvtt_dataset import write_msrvtt_lmdb
    from tools.make_demo_data import IMAGE_H, IMAGE_W, World

    world = World(np.random.default_rng(seed), 64, 0.2)
    records = {}
    for i in range(count):
        combo = world.random_combo()
        _, feats, _ = world.regions(combo)
        action, _ = world.actions(combo)
        records[f"video{i}"] = {"image_h": IMAGE_H, "image_w": IMAGE_W, "features": feats,
                                "boxes": world.boxes(len(feats)), "action_features": action}
    write_msrvtt_lmdb(path, records)


def demo_test_cfg(cfg, tmp):
    """DATASET.test of the demo config with the demo vocabulary written to ``tmp``."""
    from tools.make_demo_data import demo_vocab

    vocab = os.path.join(tmp, "vocab.txt")
    with open(vocab, "w", encoding="utf-8") as f:
        f.write("\n".join(demo_vocab()) + "\n")
    return dict(cfg.DATASET.test, vocab_file=vocab)


def demo_captions(count, seed=1):
    """``count`` demo captions (random action and objects)."""
    from tools.make_demo_data import World

    world = World(np.random.default_rng(seed), 64, 0.2)
    return [world.captions(world.random_combo(), 1)[0] for _ in range(count)]


def search_latency(args, tmp):
    backbone, cfg = demo_backbone(args.weights)
    test_cfg = demo_test_cfg(cfg, tmp)
    model_dir = os.path.join(tmp, "demo_model")
    export_retrieval(backbone, model_dir, {k: test_cfg[k] for k in DEFAULT_LIMITS})
    threads = int(os.environ.get("OMP_NUM_THREADS", 2))
    engines = {"dygraph": DygraphScorer(backbone),
               "exported oneDNN on": InferenceEngine(model_dir, cpu_threads=threads, mkldnn=True),
               "exported oneDNN off": InferenceEngine(model_dir, cpu_threads=threads, mkldnn=False)}
    query = ["a person slices a tomato with a knife"]
    print(f"[search] one query, demo model ({'trained' if args.weights else 'random'} weights), "
          f"{args.pair_batch} pairs per pass; seconds, median of {args.rounds} (cold: no cache file; "
          "cached: encodings read from it)")
    print(f"{'videos':>7}  {'model':<20}{'cold total':>11}{'encode':>9}{'query':>8}{'cached total':>13}"
          f"{'read':>7}{'query':>8}")
    for count in args.collections:
        path = os.path.join(tmp, f"videos{count}.lmdb")
        write_demo_collection(path, count)
        collection = open_collection(path, test_cfg)
        for engine in engines.values():  # warm-up: first calls of each shape are slow on every side
            search(engine, collection, query, progress=False, pair_batch_size=args.pair_batch)
        cold, cached = {name: [] for name in engines}, {name: [] for name in engines}
        for r in range(args.rounds):  # the models alternate within each round
            for name, engine in engines.items():
                cache = os.path.join(tmp, f"cache_{count}_{name.replace(' ', '_')}_{r}.npz")
                options = {"cache": cache, "model_key": name, "progress": False, "pair_batch_size": args.pair_batch}
                (_, t1), w1 = timed(search, engine, collection, query, **options)
                (_, t2), w2 = timed(search, engine, collection, query, **options)
                assert t2["encode_videos"] == 0
                cold[name].append((w1, t1["encode_videos"], t1["score"]))
                cached[name].append((w2, t2["load_cache"], t2["score"]))
        for name in engines:
            c, h = (tuple(statistics.median(x[i] for x in rows[name]) for i in range(3)) for rows in (cold, cached))
            print(f"{count:>7}  {name:<20}{c[0]:>11.2f}{c[1]:>9.2f}{c[2]:>8.2f}{h[0]:>13.2f}{h[1]:>7.2f}{h[2]:>8.2f}")


# --------------------------------------------------------------------------- 3. first stage


def pooled_proxy_scores(backbone, text, videos):
    """Cheap similarity from pair-independent vectors: the matching head applied to the text
    pooler of the caption's prefix first token and the region pooler of the video's prefix
    global region (the tangled layers skipped), with the video's pooled action:
    (w0 - w1) . (p_t * p_v + p_a) for fusion 'mul'. float32 [Q, V]."""
    bert, head = backbone.bert, backbone.cls.seq_relationship
    with paddle.no_grad():
        prefix = backbone.encode_text(**{k: paddle.to_tensor(v) for k, v in text.items()})
        p_t = bert.t_pooler(prefix.hidden[:, 0]).numpy()
        p_v = bert.v_pooler(paddle.to_tensor(videos["region"][:, 0])).numpy()
    w = head.weight.numpy()
    d = w[:, 0] - w[:, 1]
    return (p_t * d) @ p_v.T + (videos["pooled_action"] @ d)[None]


def attention_affinity_scores(backbone, text, videos):
    """Cheap similarity from pair-independent vectors: how strongly the video's action
    queries of the first connection layer attend to the caption's text keys there
    (mean over actions and heads of the log-sum-exp over real tokens). float32 [Q, V]."""
    heads = backbone.config.bi_num_attention_heads
    with paddle.no_grad():
        prefix = backbone.encode_text(**{k: paddle.to_tensor(v) for k, v in text.items()})
    keys, mask = prefix.qkv[1].numpy(), prefix.mask.numpy()  # [Q, T, Hb], [Q, T]
    queries = videos["action_queries"][:, 0]  # [V, A, Hb]
    q_, t_, hb = keys.shape
    d = hb // heads
    k = keys.reshape(q_, t_, heads, d)
    q = queries.reshape(queries.shape[0], queries.shape[1], heads, d)
    logits = np.einsum("qthd,vahd->qvaht", k, q) / np.sqrt(d) + ((mask - 1) * 1e4)[:, None, None, None, :]
    top = logits.max(-1, keepdims=True)
    lse = (top[..., 0] + np.log(np.exp(logits - top).sum(-1)))  # [Q, V, A, h]
    return lse.mean(axis=(2, 3))


def first_stage(args, tmp):
    if not args.weights:
        print("[first stage] skipped: needs --weights (a trained demo model)")
        return
    from tools.make_demo_data import make_demo_data

    backbone, cfg = demo_backbone(args.weights)
    engine = DygraphScorer(backbone)
    print("[first stage] recall of the exhaustive top 10 among the top N of a cheap similarity "
          "(mean over the queries; R@1 = right video first after re-scoring the N)")
    for num_test in (100, 600):
        out = os.path.join(tmp, f"demo{num_test}")
        make_demo_data(out, num_train=10, num_val=10, num_test=num_test)
        test_cfg = dict(cfg.DATASET.test, vocab_file=os.path.join(out, "vocab.txt"),
                        file_path=os.path.join(out, "MSRVTT_JSFUSION_test.csv"),
                        features_path=os.path.join(out, "msrvtt_test.lmdb"))
        from paddlevideo.loader.builder import build_dataset

        dataset = build_dataset(test_cfg, None)
        videos = encode_collection(engine, dataset, progress=False)
        queries = np.arange(min(args.first_queries, dataset.num_queries))  # the first captions (random combos)
        text = encode_queries(dataset, [dataset.captions[i] for i in queries])
        exact, t_exact = timed(score_queries, engine, text, videos, progress=False)
        top10 = np.argsort(-exact, axis=1, kind="stable")[:, :10]
        truth = dataset.query_video_index[queries]
        exact_r1 = float(np.mean(top10[:, 0] == truth))
        for name, fn in (("pooled proxy", pooled_proxy_scores), ("attention affinity", attention_affinity_scores)):
            cheap, t_cheap = timed(fn, backbone, text, videos)
            for fraction in (0.1, 0.2, 0.3):
                n = max(10, int(round(fraction * num_test)))
                picked = np.argsort(-cheap, axis=1, kind="stable")[:, :n]
                recall = np.mean([len(set(top10[i]) & set(picked[i])) / 10 for i in range(len(top10))])
                rescored = np.where(np.isin(np.arange(num_test)[None], picked), exact, -np.inf)
                r1 = float(np.mean(np.argmax(rescored, axis=1) == truth))
                print(f"  {num_test:>4} videos, {name:<19} N = {n:>3} ({fraction:.0%}): recall {recall:.3f}; "
                      f"R@1 {r1:.2f} (exhaustive {exact_r1:.2f}); cheap stage {t_cheap * 1e3 / len(truth):.2f} ms"
                      f"/query, exhaustive {t_exact * 1e3 / len(truth):.1f} ms/query")


def main(argv=None):
    parser = argparse.ArgumentParser(prog="benchmark.py infer", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", choices=["full", "demo"], default="full", help="model of the throughput part")
    parser.add_argument("--captions", type=int, default=4)
    parser.add_argument("--videos", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--pair-batch", type=int, default=256)
    parser.add_argument("--weights", help="trained demo model (search latency and the first stage)")
    parser.add_argument("--collections", type=lambda s: [int(x) for x in s.split(",")], default=[100, 1000])
    parser.add_argument("--first-queries", type=int, default=100, help="queries of the first-stage evaluation")
    parser.add_argument("--parts", default="throughput,search,first", help="comma-separated parts to run")
    args = parser.parse_args(argv)
    paddle.set_device("cpu")
    print(f"CPU, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}, "
          f"MKL_DEBUG_CPU_TYPE={os.environ.get('MKL_DEBUG_CPU_TYPE', 'unset')}")
    parts = args.parts.split(",")
    with tempfile.TemporaryDirectory() as tmp:
        if "throughput" in parts:
            throughput(args, tmp)
        if "search" in parts:
            search_latency(args, tmp)
        if "first" in parts:
            first_stage(args, tmp)
    return 0
