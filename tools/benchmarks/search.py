"""Two-stage search: the distilled first stage and its index against ActBERT's exhaustive ranking.

1. ``quality`` (``--weights``: a trained demo ActBERT, the teacher): trains a first stage
   on the demo's MSR-VTT-format training split (``--train-videos`` videos, 2 captions each;
   none of the test combinations), then on (a) the demo's 100 held-out test videos and
   (b) a 600-video corpus of near-duplicates (each test combination drawn 6 times, one
   caption per video): recall of the exhaustive top 10 among the first stage's top N
   (N = 10 %, 20 %, 30 % of the collection), the first stage's own R@1, ActBERT's R@1
   exhaustive and after reranking the top N (the reranked scores are ActBERT's scores of
   those pairs), and the time of a two-stage query against an exhaustive one.
2. ``scale``: a synthetic collection of ``--collection`` (100,000) first-stage vectors
   (clustered, so that near neighbours exist): build time and size of the exact
   (IndexFlatIP) and approximate (HNSW) index, recall of the exact top N by HNSW, and one
   cached query at full model size (random weights): caption encoding, index search,
   ActBERT on the N = ``--rerank-top`` candidates (their encodings cached), against a linear
   scan of every video by ActBERT (the measured pairs/s x the collection: extrapolated).
   ``query``: that cached query alone, by the path before each caption's encoding was shared
   by both stages and by today's (also in passes of N / 2 pairs), alternating.
3. ``eval1000``: the full-size 1000 x 1000 MSR-VTT-shaped evaluation, extrapolated from
   measured rates (labelled): exhaustive (every pair) against two-stage (first stage, then
   N = 100 pairs per caption), both from pairs/s measured in this run at full size.
4. ``eval1000full``: that evaluation run whole (``--full-captions`` x ``--full-videos``) through
   ``main.py --test``'s evaluator with ``FIRST_STAGE.rerank_top`` = N, video encoding included;
   the first stage has random towers (its picks are not ActBERT's, but the rerank costs the
   same for any N videos). The exhaustive path's pairs/s is measured on a sample
   (``--sample-captions`` x 256 videos) before and after it and multiplied to every pair
   (labelled extrapolated). Progress is printed every 5 % of the captions.

Every part prints the load average it ran under (the machine is shared).
"""

import argparse
import contextlib
import os
import statistics
import tempfile
import time

import numpy as np
import paddle

from paddlevideo.retrieval.distill import distill, encode_caption_features
from paddlevideo.retrieval.first_stage import FirstStageSettings, recall_of_top
from paddlevideo.retrieval.index import IndexSettings, build_index, search_index
from paddlevideo.retrieval.scoring import DygraphScorer
from paddlevideo.retrieval.search import encode_collection, score_encoded, score_queries
from paddlevideo.retrieval.two_stage import caption_arrays, rerank

from .infer import DEMO_CONFIG, demo_backbone, timed


def load():
    return "load average {:.1f} {:.1f} {:.1f}".format(*os.getloadavg())


# --------------------------------------------------------------------------- 1. quality


def demo_corpora(tmp, train_videos):
    """(training split, the 100 held-out videos, the 600-video near-duplicate corpus) as datasets."""
    from paddlevideo.loader.dataset.msrvtt_dataset import MSRVTTDataset
    from paddlevideo.loader.dataset.msrvtt_train_dataset import MSRVTTTrainDataset
    from paddlevideo.utils.config import get_config
    from tools.make_demo_data import make_demo_data

    out = os.path.join(tmp, "demo")
    make_demo_data(out, num_train=10, num_val=10, num_test=100, num_finetune=train_videos)
    sizes = {k: get_config(DEMO_CONFIG).DATASET.test[k] for k in ("max_seq_length", "max_region_num",
                                                                   "max_action_num")}
    vocab = os.path.join(out, "vocab.txt")
    train = MSRVTTTrainDataset(os.path.join(out, "MSRVTT_data.json"), os.path.join(out, "MSRVTT_train.9k.csv"),
                               os.path.join(out, "msrvtt_train.lmdb"), vocab, **sizes)
    test = MSRVTTDataset(os.path.join(out, "MSRVTT_JSFUSION_test.csv"), os.path.join(out, "msrvtt_test.lmdb"),
                         vocab, **sizes)
    near = os.path.join(tmp, "near")
    write_near_duplicates(near, copies=6)
    dup = MSRVTTDataset(os.path.join(near, "queries.csv"), os.path.join(near, "videos.lmdb"), vocab, **sizes)
    return train, test, dup


def write_near_duplicates(out, copies, seed=0, num_test=100):
    """Each of the demo's ``num_test`` test combinations (seed ``seed``) drawn ``copies`` times."""
    from paddlevideo.loader.dataset.msrvtt_dataset import write_msrvtt_lmdb
    from tools.make_demo_data import IMAGE_H, IMAGE_W, World

    world = World(np.random.default_rng(seed), 64, 0.2)  # the demo's prototypes, then its test combinations
    combos = world.combos(num_test)
    records, rows = {}, []
    for c, combo in enumerate(combos):
        for k in range(copies):
            vid = f"video{c}_{k}"
            _, feats, _ = world.regions(combo)
            action, _ = world.actions(combo)
            records[vid] = {"image_h": IMAGE_H, "image_w": IMAGE_W, "features": feats,
                            "boxes": world.boxes(len(feats)), "action_features": action}
            rows.append(f"{vid},{world.captions(combo, 1)[0]}")
    os.makedirs(out, exist_ok=True)
    write_msrvtt_lmdb(os.path.join(out, "videos.lmdb"), records)
    with open(os.path.join(out, "queries.csv"), "w", encoding="utf-8") as f:
        f.write("\n".join(rows) + "\n")


def quality(args, tmp):
    if not args.weights:
        print("[quality] skipped: needs --weights (a trained demo model)")
        return
    backbone, _ = demo_backbone(args.weights)
    engine = DygraphScorer(backbone)
    train, test, dup = demo_corpora(tmp, args.train_videos)
    settings = FirstStageSettings(seed=args.seed)
    print(f"[quality] {load()}; teacher {args.weights}")
    stage, t_train = timed(distill, engine, train, settings, "benchmark", progress=False)
    print(f"  first stage trained in {t_train:.1f} s on {train.num_queries} captions x {train.num_videos} videos "
          f"(held-out recall {stage.meta['holdout_recall']:.3f} at N = {stage.meta['holdout_n']} of "
          f"{stage.meta['holdout_videos']})")
    for name, data in (("demo held-out", test), ("near-duplicates", dup)):
        evaluate_corpus(engine, stage, name, data, args)
    print(f"  ({load()})")


def evaluate_corpus(engine, stage, name, data, args):
    videos = encode_collection(engine, data, progress=False)
    text = caption_arrays(data)
    exact, t_exact = timed(score_queries, engine, text, videos, progress=False)
    index = build_index(stage.video_vectors(videos))
    text_vec = stage.text_vectors_from_features(encode_caption_features(engine, text, features=stage.features))
    fs_scores = text_vec @ stage.video_vectors(videos).T
    truth = data.query_video_index
    v = data.num_videos

    def r1(scores):
        return float(np.mean(np.argmax(scores, axis=1) == truth))

    print(f"  {name}: {data.num_queries} captions x {v} videos; R@1 exhaustive {r1(exact):.3f}, first stage alone "
          f"{r1(fs_scores):.3f}")
    for fraction in (0.1, 0.2, 0.3):
        n = max(10, int(round(fraction * v)))
        _, picked = search_index(index, text_vec, n)
        reranked = np.full_like(exact, -np.inf)
        np.put_along_axis(reranked, picked, np.take_along_axis(exact, picked, 1), 1)
        found = float(np.mean([truth[q] in picked[q] for q in range(len(truth))]))
        recall = recall_of_top(exact, fs_scores, n)
        print(f"    N = {n:>3} ({fraction:.0%}): recall of the exhaustive top 10 {recall:.3f}; R@1 after rerank "
              f"{r1(reranked):.3f} (exhaustive {r1(exact):.3f}); right video among the N: "
              f"{found:.3f}")
    n = max(10, int(round(0.1 * v)))
    rows = np.arange(min(args.timed_queries, len(truth)))
    _, picked = search_index(index, text_vec[rows], n)
    sub = {k: a[rows] for k, a in text.items()}
    _, t_two = timed(rerank, score_encoded, engine, sub, videos, picked, 256, v)
    _, t_all = timed(score_queries, engine, sub, videos, progress=False)
    print(f"    time per query ({len(rows)} queries, ActBERT part): two-stage N = {n}: "
          f"{t_two / len(rows) * 1e3:.1f} ms, exhaustive: {t_all / len(rows) * 1e3:.1f} ms "
          f"(whole matrix {t_exact:.1f} s)")


# --------------------------------------------------------------------------- 2. scale


def clustered_vectors(count, dim, seed=0, clusters=2000):
    """Unit vectors around ``clusters`` centres (near-duplicates exist, as in real collections)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(clusters, dim)).astype(np.float32)
    x = centres[rng.integers(clusters, size=count)] + 0.3 * rng.normal(size=(count, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def rss_mb():
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) / 1024 for line in f if line.startswith("VmRSS:"))


def scale(args, tmp):
    import faiss

    print(f"[scale] {load()}; {args.collection} synthetic first-stage vectors of dim {args.dim}, N = "
          f"{args.rerank_top}")
    vectors, queries = clustered_vectors(args.collection, args.dim), clustered_vectors(20, args.dim, seed=1)
    exact_ids, built = None, {}
    sides = [("flat (exact)", IndexSettings(approximate_above=args.collection + 1))]
    # search_index visits max(ef_search, 10 N) candidates: the efSearch actually used is named.
    efs = sorted({max(ef, 10 * args.rerank_top) for ef in (256, 1024, 4096)})
    sides += [(f"HNSW efSearch {ef}", IndexSettings(approximate_above=1, ef_search=ef)) for ef in efs]
    for kind, settings in sides:
        family = kind.split()[0]
        if family not in built:  # one HNSW graph; ef_search only changes the search
            before = rss_mb()
            index, t_build = timed(build_index, vectors, settings)
            built[family] = (index, t_build, len(faiss.serialize_index(index)) / 2**20, rss_mb() - before)
        index, t_build, size, grown = built[family]
        search_index(index, queries[:1], args.rerank_top, settings)
        times = [timed(search_index, index, queries[i : i + 1], args.rerank_top, settings)[1] for i in range(20)]
        _, ids = search_index(index, queries, args.rerank_top, settings)
        exact_ids = ids if exact_ids is None else exact_ids
        recall = np.mean([len(np.intersect1d(a, b)) / args.rerank_top for a, b in zip(ids, exact_ids)])
        print(f"  {kind:<20} build {t_build:6.2f} s; index {size:7.1f} MB (process grew {grown:6.1f} MB); search "
              f"{statistics.median(times) * 1e3:7.2f} ms/query (median of 20); recall of the exact top "
              f"{args.rerank_top}: {recall:.3f}")
    full_size_query(args, tmp)
    print(f"  ({load()})")


def query(args, tmp):
    """The cached query of ``scale`` alone (without the index table)."""
    print(f"[query] {load()}; N = {args.rerank_top}, {args.collection} synthetic first-stage vectors")
    full_size_query(args, tmp)


def full_size_query(args, tmp):
    """One cached query at full size: caption encoding + index search + ActBERT on N candidates,
    on the dygraph model and (``--exported``) the exported predictor (oneDNN off), by the path
    before the caption's encoding was shared by both stages and now (also in passes of N / 2
    pairs), all alternating round by round; against ActBERT on every video (extrapolated from
    the pairs/s)."""
    from paddlevideo.fields import DEFAULT_LIMITS
    from paddlevideo.modeling.backbones.actbert import BertForMultiModalPreTraining
    from paddlevideo.retrieval.export import export_retrieval
    from paddlevideo.retrieval.predictor import InferenceEngine

    from .eval import make_inputs

    paddle.seed(0)
    backbone = BertForMultiModalPreTraining().eval()
    engines = {"dygraph": DygraphScorer(backbone)}
    if args.exported:
        export_retrieval(backbone, os.path.join(tmp, "full"), DEFAULT_LIMITS)
        engines["exported"] = InferenceEngine(os.path.join(tmp, "full"), device="cpu", mkldnn=False,
                                              cpu_threads=int(os.environ.get("OMP_NUM_THREADS", 2)))
    data = make_inputs(2, args.rerank_top, seed=1)
    queries, cached = data.queries, encode_collection(engines["dygraph"], data, progress=False)
    mb = sum(a.nbytes for a in cached.values()) / len(cached["region"]) / 2**20
    index = build_index(clustered_vectors(args.collection, args.dim), IndexSettings())
    text = {k: v[:1] for k, v in queries.items()}
    query_vector, every = clustered_vectors(1, args.dim, seed=5), np.arange(args.rerank_top)[None]

    def pick(prefix):  # the index searched; the N cached videos are the candidates
        search_index(index, query_vector, args.rerank_top)
        return every

    def previous(engine, _):
        """The path before: the caption encoded for the first stage, then again by ``score_queries``,
        which also hashed the N candidates' encodings; Paddle's dropout op run in eval mode."""
        from paddlevideo.modeling.backbones import actbert

        own, actbert.Dropout.forward = actbert.Dropout.forward, paddle.nn.Dropout.forward
        try:
            with engine.session():
                _, t_text = timed(engine.encode_text, **{k: paddle.to_tensor(v) for k, v in text.items()})
            _, t_index = timed(search_index, index, query_vector, args.rerank_top)
            return t_text, t_index, timed(score_queries, engine, text, cached, progress=False)[1]
        finally:
            actbert.Dropout.forward = own

    def now(engine, pair_batch_size):
        timings = {}
        rerank(score_encoded, engine, text, cached, pick, pair_batch_size, args.rerank_top, timings)
        return timings["encode_captions"], timings["first_stage"], timings["rerank"]

    paths = {"before": (previous, 256), "now": (now, 256)}
    paths.update({f"now, passes of {n}": (now, n) for n in (args.rerank_top // 2, args.rerank_top // 4)})
    rounds = {(name, path): [] for name in engines for path in paths}
    for engine in engines.values():
        now(engine, 256)  # warm-up
    for _ in range(args.rounds):  # every engine and path in turn, so that all see the same load
        for name, engine in engines.items():
            for path, (run, pair_batch_size) in paths.items():
                cpu = time.process_time()  # this process's CPU seconds: less moved by other processes
                rounds[name, path].append((*run(engine, pair_batch_size), time.process_time() - cpu))
    for (name, path), rows in rounds.items():
        t_text, t_index, t_rerank, t_cpu = (statistics.median(r[i] for r in rows) for i in range(4))
        rate = args.rerank_top / t_rerank
        print(f"  full-size cached query ({name}, {path}), median of {args.rounds}: caption {t_text:.2f} s + index "
              f"{t_index * 1e3:.1f} ms + ActBERT on {args.rerank_top} cached videos {t_rerank:.2f} s "
              f"({rate:.1f} pairs/s) = {t_text + t_index + t_rerank:.2f} s; totals "
              f"{' '.join(f'{sum(r[:3]):.2f}' for r in rows)} s, CPU {t_cpu:.2f} s (median)")
        if path == "now":
            print(f"  linear scan by ActBERT ({name}) of {args.collection} videos (extrapolated from those "
                  f"pairs/s): {args.collection / rate / 60:.1f} min per query")
    print(f"  ({load()})")
    print(f"  cached encodings {mb:.2f} MB per video ({mb * args.collection / 1024:.0f} GB for the collection)")


# --------------------------------------------------------------------------- 3. the 1000 x 1000 evaluation


def eval1000(args, tmp):
    """Extrapolated 1000 x 1000 evaluation at full size from rates measured here."""
    from paddlevideo.modeling.backbones.actbert import BertForMultiModalPreTraining

    from .eval import make_inputs

    print(f"[eval1000] {load()}; full-size ActBERT (random weights), MSR-VTT-shaped inputs")
    paddle.seed(0)
    engine = DygraphScorer(BertForMultiModalPreTraining().eval())
    data = make_inputs(args.eval_captions, args.rerank_top, seed=2)
    queries = data.queries
    cached, t_videos = timed(encode_collection, engine, data, progress=False)
    score_queries(engine, {k: v[:1] for k, v in queries.items()}, cached, progress=False)  # warm-up
    pairs = args.eval_captions * args.rerank_top
    every = np.tile(np.arange(args.rerank_top), (args.eval_captions, 1))
    t_pairs, t_rerank = [], []
    for _ in range(args.rounds):  # the two paths alternate, so that both see the same load
        t_pairs.append(timed(score_queries, engine, queries, cached, progress=False)[1])
        t_rerank.append(timed(rerank, score_encoded, engine, queries, cached, every, 256, args.rerank_top)[1])
    rate, rerank_rate = pairs / statistics.median(t_pairs), pairs / statistics.median(t_rerank)
    per_video = t_videos / args.rerank_top
    exhaustive = 1000 * per_video + 1e6 / rate
    two_stage = 1000 * per_video + 1000 * args.rerank_top / rerank_rate
    print(f"  measured (median of {args.rounds}): exhaustive scoring {rate:.1f} pairs/s ({args.eval_captions} captions "
          f"x {args.rerank_top} videos), the rerank path {rerank_rate:.1f} pairs/s ({args.rerank_top} candidates per "
          f"caption), video encoding {per_video:.3f} s/video")
    print(f"  EXTRAPOLATED 1000 x 1000: exhaustive {exhaustive / 3600:.2f} h; two-stage N = {args.rerank_top} "
          f"{two_stage / 3600:.2f} h ({two_stage / 60:.0f} min; first stage and index: milliseconds)")
    print(f"  ({load()})")


# --------------------------------------------------------------------------- 4. the 1000 x 1000 evaluation, run


class _Net:
    """What the evaluator reads of a model (``net.backbone``)."""

    def __init__(self, backbone):
        self.backbone = backbone


def synthetic_first_stage(engine, data, settings):
    """A first stage with untrained random towers sized for ``engine``'s encodings: it picks
    N candidates per caption like a trained one (the rerank's cost does not depend on which)."""
    from paddlevideo.retrieval.first_stage import FirstStage, Tower, text_arrays, text_features, video_features

    with engine.session():
        text = text_features(text_arrays(engine.encode_text(**{k: paddle.to_tensor(v[:1])
                                                                for k, v in data.queries.items()})), "basic")
    video = video_features(encode_collection(engine, _subset(data, 1, 1), progress=False), "basic")
    paddle.seed(settings.seed)
    arrays = {}
    for side, width in (("text.", text.shape[1]), ("video.", video.shape[1])):
        tower = Tower(np.zeros(width), np.ones(width), settings.hidden, settings.dim)
        arrays.update(tower.arrays(side))
    return FirstStage(arrays, {"teacher_sha256": "synthetic (random towers)"})


def _subset(data, captions, videos):
    """The first ``captions`` captions against the first ``videos`` videos of an ArrayRetrievalSet."""
    from paddlevideo.retrieval.scoring import ArrayRetrievalSet

    return ArrayRetrievalSet({k: v[:captions] for k, v in data.queries.items()},
                             {k: v[:videos] for k, v in data.videos.items()},
                             np.asarray(data.query_video_index[:captions]) % videos)


def exhaustive_sample(engine, data, args):
    """pairs/s of the exhaustive loop (``score_matrix``'s: passes of one caption against 256 videos,
    as ``--test`` with ``test_batch_size`` 1) on the first ``--sample-captions`` captions x 256
    videos, their encodings cached (timed apart: s per video)."""
    sample = _subset(data, args.sample_captions, 256)
    cached, t_videos = timed(encode_collection, engine, sample, progress=False)
    _, t_pairs = timed(score_queries, engine, sample.queries, cached, 256, False, 1)
    return sample.num_queries * sample.num_videos / t_pairs, t_videos / sample.num_videos


@contextlib.contextmanager
def reranked_counter(every):
    """Print the captions reranked so far every ``every`` captions (a long run's progress, in a log):
    ``two_stage_matrix`` reranks each caption by one ``search.score_encoded``, counted here."""
    from paddlevideo.retrieval import search

    original, start, done = search.score_encoded, time.perf_counter(), [0]

    def counted(*args, **kwargs):
        out = original(*args, **kwargs)
        done[0] += 1
        if done[0] % every == 0:
            print(f"    reranked {done[0]} captions, {time.perf_counter() - start:.0f} s since the run began "
                  f"({load()})", flush=True)
        return out

    search.score_encoded = counted
    try:
        yield
    finally:
        search.score_encoded = original


def eval1000full(args, tmp):
    """The whole 1000 x 1000 evaluation at full size, run through ``main.py --test``'s evaluator with
    ``FIRST_STAGE.rerank_top`` (video encoding included), the exhaustive path's rate measured
    on a sample before and after it."""
    from paddlevideo.evaluation import EvalSettings, build_evaluator
    from paddlevideo.modeling.backbones.actbert import BertForMultiModalPreTraining
    from paddlevideo.retrieval.two_stage import TwoStagePlan
    from paddlevideo.utils.logger import setup_logger

    from .eval import make_inputs

    setup_logger()
    print(f"[eval1000full] {load()}; full-size ActBERT (random weights), {args.full_captions} x {args.full_videos} "
          f"MSR-VTT-shaped inputs, N = {args.rerank_top}")
    paddle.seed(0)
    backbone = BertForMultiModalPreTraining().eval()
    engine = DygraphScorer(backbone)
    data = make_inputs(args.full_captions, args.full_videos, seed=3)
    plan = TwoStagePlan(args.rerank_top, synthetic_first_stage(engine, data, FirstStageSettings(seed=args.seed)),
                        "synthetic", IndexSettings())
    before = exhaustive_sample(engine, data, args)
    print(f"  exhaustive sample before: {before[0]:.1f} pairs/s, video encoding {before[1]:.4f} s/video ({load()})")
    settings = EvalSettings(output_dir=os.path.join(tmp, "eval1000full"), progress=False, two_stage=plan)
    evaluator = build_evaluator(None, data, settings)
    with reranked_counter(max(1, args.full_captions // 20)):
        metrics, t_run = timed(evaluator.evaluate, _Net(backbone), data)
    timings = metrics["search"]["timings_s"]
    encoding = timings["encode_videos"]
    print(f"  MEASURED two-stage N = {args.rerank_top}, whole run: {t_run:.0f} s = {t_run / 3600:.2f} h "
          f"({args.full_captions * args.rerank_top / timings['rerank']:.1f} pairs/s in the rerank); "
          + ", ".join(f"{k} {v:.1f} s" for k, v in timings.items())
          + f"; the rest (metrics, files) {t_run - sum(timings.values()):.1f} s ({load()})")
    after = exhaustive_sample(engine, data, args)
    print(f"  exhaustive sample after: {after[0]:.1f} pairs/s, video encoding {after[1]:.4f} s/video ({load()})")
    for name, (rate, _) in (("before", before), ("after", after)):
        total = encoding + args.full_captions * args.full_videos / rate
        print(f"  EXTRAPOLATED exhaustive {args.full_captions} x {args.full_videos} from the rate {name} "
              f"({rate:.1f} pairs/s x {args.full_captions * args.full_videos} pairs + the run's video encoding): "
              f"{total / 3600:.2f} h")


def main(argv=None):
    parser = argparse.ArgumentParser(prog="benchmark.py search", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", help="trained demo model: the teacher of the quality part")
    parser.add_argument("--train-videos", type=int, default=1000, help="demo training videos of the first stage")
    parser.add_argument("--timed-queries", type=int, default=20)
    parser.add_argument("--collection", type=int, default=100_000)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--rerank-top", type=int, default=100)
    parser.add_argument("--eval-captions", type=int, default=4)
    parser.add_argument("--full-captions", type=int, default=1000, help="captions of eval1000full")
    parser.add_argument("--full-videos", type=int, default=1000, help="videos of eval1000full")
    parser.add_argument("--sample-captions", type=int, default=8,
                        help="eval1000full: captions (x 256 videos) of each exhaustive sample")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--exported", action="store_true", help="also the exported predictor in the scale part")
    parser.add_argument("--parts", default="quality,scale,eval1000", help="comma-separated parts to run")
    args = parser.parse_args(argv)
    paddle.set_device("cpu")
    print(f"CPU, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}, "
          f"MKL_DEBUG_CPU_TYPE={os.environ.get('MKL_DEBUG_CPU_TYPE', 'unset')}")
    with tempfile.TemporaryDirectory() as tmp:
        for part in args.parts.split(","):
            start = time.perf_counter()
            {"quality": quality, "scale": scale, "query": query, "eval1000": eval1000,
             "eval1000full": eval1000full}[part](args, tmp)
            print(f"  [{part}: {time.perf_counter() - start:.0f} s]")
    return 0
