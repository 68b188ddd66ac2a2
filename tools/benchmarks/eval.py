"""MSR-VTT scoring throughput: ``score_matrix`` against brute force, same run, same weights.

Full-size default ActBERT (random weights), CPU, 20 captions x 100 videos of
MSR-VTT-shaped inputs (36 tokens, 36 regions of 2048-d features, 5 actions).

- fast: ``paddlevideo.retrieval.scoring.score_matrix`` (text prefix once per caption,
  video-only work, the whole action stream included, once per video; only the
  matching head; many pairs per pass);
- brute force: ``backbone.forward`` of every pair with all heads, then softmax, as the
  reference does (batched ``--brute-batch`` pairs per call, which only helps it).

The two alternate block by block of captions so that both see the same load of the
shared CPUs.

Prints pairs/s of both, the speed-up, the max abs difference of the logit difference
and whether the rankings agree, linear-layer GFLOP per pair of both paths (counted
with forward hooks), and projected times of the full 1000 x 1000 evaluation on 1 and
8 GPUs, labelled as estimates with their assumptions.
"""

import argparse
import os
import time

import numpy as np
import paddle

from paddlevideo.modeling.backbones.actbert import BertForMultiModalPreTraining
from paddlevideo.retrieval.scoring import (
    TEXT_KEYS,
    VIDEO_KEYS,
    ArrayRetrievalSet,
    _stack,
    brute_force_scores,
    score_matrix,
)

# Assumed sustained matmul throughput of one V100-class GPU, for the projection only:
# about half of peak (15.7 TFLOP/s fp32, 125 TFLOP/s fp16 tensor cores), since a
# 36-token transformer at a few hundred pairs per pass does not reach peak.
GPU_TFLOPS = {"fp32": 7.5, "fp16 (--amp)": 30.0}
FULL_PAIRS = 1000 * 1000


def make_inputs(num_queries, num_videos, seed=0, tokens=36, regions=36, actions=5, feat=2048, vocab=30522):
    """MSR-VTT-shaped random captions (8-20 tokens) and videos (10-36 region slots)."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(8, 21, num_queries)
    text_mask = (np.arange(tokens)[None] < lengths[:, None]).astype(np.int64)
    text_ids = rng.integers(1000, vocab, (num_queries, tokens)) * text_mask
    text_ids[:, 0] = 101  # [CLS]
    text_ids[np.arange(num_queries), lengths - 1] = 102  # [SEP]
    slots = rng.integers(10, regions + 1, num_videos)
    image_mask = (np.arange(regions)[None] < slots[:, None]).astype(np.int64)
    corners = np.sort(rng.random((num_videos, regions, 4)), axis=-1)
    area = (corners[..., 2] - corners[..., 0]) * (corners[..., 3] - corners[..., 1])
    videos = {
        # Detector features are post-ReLU: non-negative, sparse-ish.
        "image_feat": (np.maximum(rng.standard_normal((num_videos, regions, feat)), 0) * image_mask[..., None]),
        "image_loc": np.concatenate([corners, area[..., None]], axis=-1) * image_mask[..., None],
        "image_mask": image_mask,
        "action_feat": np.maximum(rng.standard_normal((num_videos, actions, feat)), 0),
        "action_mask": np.ones((num_videos, actions), dtype=np.int64),
    }
    videos = {k: v.astype(np.float32) if v.dtype == np.float64 else v for k, v in videos.items()}
    queries = {"text_ids": text_ids, "token_type_ids": np.zeros_like(text_ids), "text_mask": text_mask}
    return ArrayRetrievalSet(queries, videos, np.arange(num_queries) % num_videos)


class LinearFlops:
    """Counts 2 * in * out FLOPs per row of every nn.Linear call (attention matmuls excluded)."""

    def __init__(self, model):
        self.total = 0
        self.handles = [m.register_forward_post_hook(self._hook) for m in model.sublayers()
                        if isinstance(m, paddle.nn.Linear)]

    def _hook(self, layer, inputs, output):
        rows = int(np.prod(inputs[0].shape[:-1]))
        self.total += 2 * rows * layer.weight.shape[0] * layer.weight.shape[1]

    def remove(self):
        for h in self.handles:
            h.remove()


def counted(model, fn):
    """(fn(), linear-layer FLOPs it spent)."""
    counter = LinearFlops(model)
    try:
        out = fn()
    finally:
        counter.remove()
    return out, counter.total


def fast_flops(model, num_queries, num_videos):
    """Linear-layer FLOPs per pair of score_matrix on a Q x V matrix: the matching pass of
    each pair plus its share of the caption prefix (1/V) and video embedding (1/Q)."""
    data = make_inputs(1, 4, seed=2)
    with paddle.no_grad():
        prefix, f_text = counted(model, lambda: model.encode_text(**_stack([data.query(0)], TEXT_KEYS)))
        video, f_video = counted(model, lambda: model.encode_video(
            **_stack([data.video(j) for j in range(4)], VIDEO_KEYS)))
        index = paddle.zeros([4], "int64"), paddle.arange(4, dtype="int64")
        _, f_match = counted(model, lambda: model.match_logits(prefix, video, *index))
    return f_match / 4 + f_text / num_videos + f_video / 4 / num_queries


def brute_flops(model):
    """Linear-layer FLOPs of one full forward pass (all heads) per pair."""
    data = make_inputs(1, 4, seed=2)
    return counted(model, lambda: brute_force_scores(model, data, [(0, j) for j in range(4)], batch_size=4))[1] / 4


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def fmt_hours(seconds):
    return f"{seconds / 3600:.2f} h" if seconds >= 3600 else f"{seconds / 60:.1f} min"


def query_subset(data, rows):
    """The captions ``rows`` of ``data`` against all of its videos."""
    queries = {k: v[rows] for k, v in data.queries.items()}
    return ArrayRetrievalSet(queries, data.videos, data.query_video_index[rows])


def run_interleaved(model, data, args):
    """Both methods on every pair, alternating block by block of captions.

    The CPUs are shared, so the load may change during the run; alternating gives both
    methods the same conditions. score_matrix re-encodes the videos for every block (a
    cost the single full-matrix call pays once), which only counts against it.
    Returns (fast [Q, V], brute [Q, V], brute probabilities [Q, V], fast s, brute s,
    per-block speed-ups).
    """
    fast, brute, prob, t_fast, t_brute, ratios = [], [], [], 0.0, 0.0, []
    for rows in np.array_split(np.arange(data.num_queries), args.blocks):
        sub = query_subset(data, rows)
        scores, tf = timed(lambda sub=sub: score_matrix(model, sub, pair_batch_size=args.pair_batch,
                                                        text_batch_size=args.text_batch, progress=False))
        pairs = [(i, j) for i in range(len(rows)) for j in range(data.num_videos)]
        (diffs, probs), tb = timed(lambda sub=sub, pairs=pairs: brute_force_scores(model, sub, pairs,
                                                                                    batch_size=args.brute_batch))
        fast.append(scores)
        brute.append(diffs.reshape(scores.shape))
        prob.append(probs)
        t_fast, t_brute = t_fast + tf, t_brute + tb
        ratios.append(tb / tf)
    return np.concatenate(fast), np.concatenate(brute), np.concatenate(prob), t_fast, t_brute, ratios


def main(argv=None):
    parser = argparse.ArgumentParser(prog="benchmark.py eval", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--queries", type=int, default=20)
    parser.add_argument("--videos", type=int, default=100)
    parser.add_argument("--pair-batch", type=int, default=100, help="pairs per matching pass of score_matrix")
    parser.add_argument("--text-batch", type=int, default=1, help="captions encoded together (test_batch_size)")
    parser.add_argument("--brute-batch", type=int, default=25, help="pairs per full forward call of the baseline")
    parser.add_argument("--blocks", type=int, default=4, help="caption blocks, the two methods alternating")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    paddle.set_device("cpu")
    paddle.seed(args.seed)
    model = BertForMultiModalPreTraining()  # full-size defaults of actbert.yaml
    model.eval()
    data = make_inputs(args.queries, args.videos, seed=args.seed)
    pairs = [(i, j) for i in range(data.num_queries) for j in range(data.num_videos)]
    n = len(pairs)
    print(f"ActBERT full size (actbert.yaml defaults, random weights), CPU, OMP_NUM_THREADS="
          f"{os.environ.get('OMP_NUM_THREADS', 'unset')}; {data.num_queries} captions x {data.num_videos} videos "
          f"= {n} pairs")

    # Warm-up (allocator, kernel selection) on a few pairs, not timed.
    warm = make_inputs(2, 3, seed=1)
    score_matrix(model, warm, pair_batch_size=args.pair_batch, progress=False)
    brute_force_scores(model, warm, [(0, 0), (1, 2)], batch_size=2)

    fast, brute, prob, t_fast, t_brute, ratios = run_interleaved(model, data, args)

    f_fast, f_brute = fast_flops(model, data.num_queries, data.num_videos), brute_flops(model)
    f_full = fast_flops(model, 1000, 1000)  # prefix and video shares shrink on the full matrix

    rate_fast, rate_brute = n / t_fast, n / t_brute
    diff = float(np.max(np.abs(fast - brute)))
    same_t2v = bool(np.array_equal(np.argsort(-fast, axis=1, kind="stable"), np.argsort(-brute, axis=1, kind="stable")))
    saturated = int(np.sum(prob == 1.0))
    print(f"{'method':<34}{'time s':>10}{'pairs/s':>10}{'GFLOP/pair':>12}")
    print(f"{'brute force (forward, all heads)':<34}{t_brute:>10.1f}{rate_brute:>10.2f}{f_brute / 1e9:>12.2f}")
    print(f"{'score_matrix (prefix + match)':<34}{t_fast:>10.1f}{rate_fast:>10.2f}{f_fast / 1e9:>12.2f}")
    print(f"speed-up: {rate_fast / rate_brute:.2f}x (target >= 3x; per block {min(ratios):.2f}x to "
          f"{max(ratios):.2f}x); linear-layer FLOP ratio {f_brute / f_fast:.2f}x here, "
          f"{f_brute / f_full:.2f}x on 1000 x 1000")
    print(f"max |logit diff(score_matrix) - logit diff(brute force)| = {diff:.2e} over {n} pairs; "
          f"identical ranking of videos per caption: {same_t2v}")
    print(f"brute-force softmax probabilities saturated to exactly 1.0: {saturated} of {n} "
          "(ties that the logit difference avoids)")
    print(f"CPU projection, full 1000 x 1000 ({FULL_PAIRS} pairs) at the fast rate: {fmt_hours(FULL_PAIRS / rate_fast)}"
          f" (brute force: {fmt_hours(FULL_PAIRS / rate_brute)})")
    print("ESTIMATES for the full 1000 x 1000 evaluation on GPUs (not measured; assumptions: a V100-class GPU "
          "sustaining the TFLOP/s below on the linear layers, which are > 95% of the FLOPs; 8 GPUs split the "
          "captions evenly and scale linearly, gathering the matrix is negligible):")
    for label, tflops in GPU_TFLOPS.items():
        one_fast = FULL_PAIRS * f_full / (tflops * 1e12)
        one_brute = FULL_PAIRS * f_brute / (tflops * 1e12)
        print(f"  {label:<13} @ {tflops:>4.1f} TFLOP/s: score_matrix 1 GPU ~{fmt_hours(one_fast)}, "
              f"8 GPUs ~{fmt_hours(one_fast / 8)}; brute force 1 GPU ~{fmt_hours(one_brute)}, "
              f"8 GPUs ~{fmt_hours(one_brute / 8)}")
    return 0
