"""Retrieval fine-tuning throughput: ``ActBertRetrieval`` against naive full forward passes, same run.

Full-size default ActBERT (random weights), CPU, batches of ``--batch`` MSR-VTT-shaped
positives (captions of 8-20 tokens padded to 36, 10-36 region slots of 2048-d features,
5 actions; ``tools/benchmarks/eval.py``'s inputs), K = ``--negatives`` negatives per
direction from the batch, listwise loss; one step = forward + backward + Adam.

- ours: ``ActBertRetrieval.forward`` (each caption's text prefix and each video's inputs
  computed once per batch, then the B (1 + 2K) pairs through ``match_logits``);
- naive: the same B (1 + 2K) pairs (positive, K other videos per caption, K other
  captions per video), each through ``backbone.forward`` (all streams, every head), in
  one batched call, the same loss on their matching logits.

The two alternate step by step after a warm-up step each, so both see the same load.
Prints samples/s (positives per second) of both and the ratio (target >= 3x).
"""

import argparse
import time

import numpy as np
import paddle

from paddlevideo.fields import TEXT_KEYS, VIDEO_KEYS
from paddlevideo.modeling.framework.actbert_retrieval import ActBertRetrieval
from tools.benchmarks.eval import make_inputs


def make_batch(data, B):
    batch = {k: paddle.to_tensor(data.queries[k][:B]) for k in TEXT_KEYS}
    batch.update({k: paddle.to_tensor(data.videos[k][:B]) for k in VIDEO_KEYS})
    batch["video_index"] = paddle.to_tensor(np.arange(B, dtype=np.int64))
    return batch


def naive_loss(model, batch, B, K):
    """The objective's pairs, each through a full forward pass (batched in one call)."""
    rng = np.random.default_rng(0)
    others = [np.delete(np.arange(B), i) for i in range(B)]
    neg_v = np.stack([rng.choice(o, K, replace=False) for o in others])
    neg_c = np.stack([rng.choice(o, K, replace=False) for o in others])
    text_rows = np.concatenate([np.arange(B), np.repeat(np.arange(B), K), neg_c.reshape(-1)])
    video_rows = np.concatenate([np.arange(B), neg_v.reshape(-1), np.repeat(np.arange(B), K)])
    t, v = paddle.to_tensor(text_rows), paddle.to_tensor(video_rows)
    inputs = {k: paddle.index_select(batch[k], t) for k in TEXT_KEYS}
    inputs.update({k: paddle.index_select(batch[k], v) for k in VIDEO_KEYS})
    logits = model.backbone(**inputs)[3]
    return model.loss(logits[:B], logits[B : B + B * K].reshape([B, K, 2]), logits[B + B * K :].reshape([B, K, 2]))


def step(model, optimizer, loss_fn):
    start = time.perf_counter()
    loss = loss_fn()["loss"]
    loss.backward()
    optimizer.step()
    optimizer.clear_grad()
    return time.perf_counter() - start, float(loss)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=8, help="positives per step (B)")
    parser.add_argument("--negatives", type=int, default=7, help="K negatives per direction (the config's 7)")
    parser.add_argument("--rounds", type=int, default=2, help="timed steps per side (alternating)")
    parser.add_argument("--small", action="store_true", help="a 4-layer 256-wide model instead of full size")
    args = parser.parse_args(argv)
    paddle.set_device("cpu")
    paddle.seed(0)
    backbone = {"name": "BertForMultiModalPreTraining"}
    if args.small:
        backbone.update(hidden_size=256, num_hidden_layers=4, intermediate_size=512, v_hidden_size=256,
                        v_intermediate_size=512, a_hidden_size=256, a_intermediate_size=512, bi_hidden_size=256,
                        t_ent_attention_id=[2, 3], num_attention_heads=4, v_num_attention_heads=4,
                        a_num_attention_heads=4, bi_num_attention_heads=4)
    B, K = args.batch, args.negatives
    model = ActBertRetrieval(backbone, {"name": "RetrievalMatchingLoss", "kind": "listwise", "num_negatives": K})
    model.train()
    optimizer = paddle.optimizer.Adam(learning_rate=1e-5, parameters=model.parameters())
    batch = make_batch(make_inputs(B, B, seed=0), B)
    sides = {"ours": lambda: model(batch), "naive": lambda: naive_loss(model, batch, B, K)}
    times = {name: [] for name in sides}
    for fn in sides.values():  # warm-up
        step(model, optimizer, fn)
    for _ in range(args.rounds):
        for name, fn in sides.items():
            times[name].append(step(model, optimizer, fn)[0])
    pairs = B * (1 + 2 * K)
    print(f"fine-tuning step, batch {B} positives x (1 + 2 x {K}) = {pairs} scored pairs, forward + backward + Adam, "
          f"{'small' if args.small else 'full-size'} model, median of {args.rounds} alternating steps")
    rate = {}
    for name in sides:
        median = float(np.median(times[name]))
        rate[name] = B / median
        print(f"  {name:6s} {median:8.2f} s/step  {rate[name]:8.3f} samples/s  (steps: "
              f"{', '.join(f'{t:.2f}' for t in times[name])})")
    print(f"  speed-up ours / naive: {rate['ours'] / rate['naive']:.2f}x (target >= 3x)")
    return 0
