"""Model benchmark: the cheaper computation paths against the full reference computation.

    OMP_NUM_THREADS=2 MKL_DEBUG_CPU_TYPE=5 python tools/benchmark.py model

Full-size default configuration, float32, CPU. Two measurements, each against its baseline:
- training step (forward, backward, Adam) at batch 8 x (36 tokens, 37 regions, 5 actions):
  heads only at labelled positions (``ActBert.train_step``) vs every head at every position
  (``backbone(...)`` + ``ActBertLoss`` on the full outputs);
- scoring 1 caption against 100 videos: ``encode_text`` once, ``encode_video`` for the 100
  videos, ``match_logits`` (first tokens only after the last connection) vs full forward passes
  over the 100 pairs, one pair per pass (and, for reference, 20 pairs per pass).
Each side runs in its own process, so its peak resident memory (VmHWM) is its own.
"""

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

SIDES = {
    "train-efficient": "train step, heads at labelled positions",
    "train-full": "train step, every head at every position",
    "score-efficient": "1 caption x 100 videos, prefixes reused + first tokens",
    "score-full": "100 full forward passes, 1 pair each",
    "score-full-batched": "full forward, 20 pairs per pass",
}
BATCH, TEXT_LEN, REGIONS, ACTIONS = 8, 36, 37, 5


def peak_memory_mb():
    """This process's peak resident set (VmHWM) in MB, from /proc."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def pretraining_batch(rng, cfg, batch=BATCH):
    """A pretraining batch shaped as the data pipeline makes it (about 15% of positions labelled)."""
    text_mask = np.ones([batch, TEXT_LEN], "int64")
    text_mask[:, 20:] = 0
    text_ids = rng.integers(1000, cfg.vocab_size, [batch, TEXT_LEN]) * text_mask
    text_labels = np.where((rng.random([batch, TEXT_LEN]) < 0.15) & (text_mask == 1), text_ids, -1)
    target = rng.random([batch, REGIONS - 1, cfg.v_target_size]).astype("float32")
    classes = rng.integers(0, cfg.a_target_size, [batch, ACTIONS])
    return {
        "text_ids": text_ids, "token_type_ids": np.zeros_like(text_ids), "text_mask": text_mask,
        "text_labels": text_labels,
        "image_feat": rng.random([batch, REGIONS, cfg.v_feature_size], dtype="float32"),
        "image_loc": rng.random([batch, REGIONS, 5], dtype="float32"),
        "image_mask": np.ones([batch, REGIONS], "int64"),
        "image_label": np.where(rng.random([batch, REGIONS - 1]) < 0.15, 1, -1),
        "image_target": target / target.sum(-1, keepdims=True),
        "action_feat": rng.random([batch, ACTIONS, cfg.a_feature_size], dtype="float32"),
        "action_mask": np.ones([batch, ACTIONS], "int64"),
        "action_label": np.where(rng.random([batch, ACTIONS]) < 0.15, classes, -1),
        "next_sentence_label": rng.integers(0, 2, [batch]),
    }


def run_side(side, steps):
    """Time one side in this process; returns {"seconds": per step/pass, "peak_mb": ...}."""
    import paddle

    from paddlevideo.modeling.framework.actbert import INPUT_KEYS, ActBert

    paddle.seed(0)
    model = ActBert(backbone={"name": "BertForMultiModalPreTraining"})
    backbone = model.backbone
    rng = np.random.default_rng(0)
    batch = {k: paddle.to_tensor(v) for k, v in pretraining_batch(rng, backbone.config).items()}
    if side.startswith("train"):
        optimizer = paddle.optimizer.Adam(learning_rate=1e-5, parameters=model.parameters())
        model.train()

        def step():
            if side == "train-efficient":
                loss = model.train_step(batch)["loss"]
            else:
                outputs = backbone(**{k: batch[k] for k in INPUT_KEYS})
                labels = [batch[k] for k in ("text_labels", "image_label", "image_target", "action_label",
                                             "next_sentence_label")]
                loss = model.loss(*outputs, *labels)["loss"]
            loss.backward()
            optimizer.step()
            optimizer.clear_grad()
    else:
        model.eval()
        videos = {k: paddle.to_tensor(v) for k, v in pretraining_batch(rng, backbone.config, batch=100).items()}
        caption = {k: batch[k][:1] for k in ("text_ids", "token_type_ids", "text_mask")}

        def step():
            with paddle.no_grad():
                if side == "score-efficient":
                    text = backbone.encode_text(**caption)
                    video = backbone.encode_video(videos["image_feat"], videos["image_loc"], videos["image_mask"],
                                                  videos["action_feat"], videos["action_mask"])
                    backbone.match_logits(text, video, paddle.zeros([100], "int64"), paddle.arange(100))
                else:
                    per_pass = 1 if side == "score-full" else 20
                    for start in range(0, 100, per_pass):
                        part = {k: videos[k][start:start + per_pass]
                                for k in ("image_feat", "image_loc", "image_mask", "action_feat", "action_mask")}
                        part.update({k: paddle.tile(v, [per_pass, 1]) for k, v in caption.items()})
                        backbone(**part)[3].numpy()

    step()  # warm-up: first-call allocations and kernel selection
    walls, cpus = [], []
    for _ in range(steps):
        wall, cpu = time.perf_counter(), time.process_time()
        step()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return {"seconds": float(np.median(walls)), "cpu_seconds": float(np.median(cpus)), "peak_mb": peak_memory_mb()}


def measure(side, steps):
    """Run one side in a child process and read its JSON result."""
    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", "2")
    env.setdefault("MKL_DEBUG_CPU_TYPE", "5")
    script = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "benchmark.py")
    done = subprocess.run(
        [sys.executable, script, "model", "--side", side, "--steps", str(steps)],
        env=env, capture_output=True, text=True, check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"benchmark side {side} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def report(results):
    print(f"{'side':<20} {'wall s':>8} {'cpu s':>8} {'peak MB':>8}  what")
    for side, r in results.items():
        print(f"{side:<20} {r['seconds']:>8.2f} {r['cpu_seconds']:>8.2f} {r['peak_mb']:>8.0f}  {SIDES[side]}")

    def ratio(slow, fast):
        wall = results[slow]["seconds"] / results[fast]["seconds"]
        cpu = results[slow]["cpu_seconds"] / results[fast]["cpu_seconds"]
        return f"{wall:.2f}x (cpu time {cpu:.2f}x)"

    print(f"training step: {ratio('train-full', 'train-efficient')} faster than every head at every position "
          "(target >= 1.15x)")
    print(f"retrieval scoring: {ratio('score-full', 'score-efficient')} faster than 100 full forward passes "
          f"(target >= 3x); {ratio('score-full-batched', 'score-efficient')} against full passes of 20 pairs")
    # Process CPU time is the steadier figure when other jobs share the cores.


def main(argv=None):
    parser = argparse.ArgumentParser(prog="benchmark.py model", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=3, help="timed repetitions per side (median reported)")
    parser.add_argument("--side", choices=list(SIDES), help=argparse.SUPPRESS)  # internal: one child process
    args = parser.parse_args(argv)
    if args.side:
        sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
        print(json.dumps(run_side(args.side, args.steps)))
        return 0
    print(f"ActBERT full-size default, float32, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', '2 (set)')} "
          f"MKL_DEBUG_CPU_TYPE={os.environ.get('MKL_DEBUG_CPU_TYPE', '5 (set)')}; median of {args.steps} runs")
    results = {side: measure(side, args.steps) for side in SIDES}
    report(results)
    return 0
