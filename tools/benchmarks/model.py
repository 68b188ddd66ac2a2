"""Model benchmark: the cheaper computation paths against the full reference computation.

    OMP_NUM_THREADS=2 MKL_DEBUG_CPU_TYPE=5 python tools/benchmark.py model [--rounds 5]

Full-size default configuration, float32, CPU. Two measurements, each against its baseline:
- training step (forward, backward, Adam) at batch 8 x (36 tokens of which 20 real, 37 regions,
  5 actions): ``ActBert.train_step`` (heads only at labelled positions, and trailing padding not
  computed) vs every head at every position (``backbone(...)`` + ``ActBertLoss`` on the full
  outputs); ``train-heads`` is the same step with the padding cut switched off, to show what each
  part gives;
- scoring 1 caption against 100 videos: ``encode_text`` once, ``encode_video`` for the 100
  videos, ``match_logits`` (first tokens only after the last connection) vs full forward passes
  over the 100 pairs, one pair per pass (and 20 pairs per pass); ``score-prefixes`` without the
  padding cut.
All sides are timed in one process, alternating round by round after warm-up runs; each side's
peak resident memory (VmHWM) comes from a process of its own that runs only that side.
"""

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

SIDES = {
    "train-full": "train step, every head at every position (the baseline)",
    "train-heads": "train step, heads at labelled positions, padding not cut",
    "train-efficient": "train step as training runs it: heads at labelled positions, padding cut",
    "score-full": "100 full forward passes, 1 pair each (the baseline)",
    "score-full-batched": "full forward, 20 pairs per pass",
    "score-prefixes": "1 caption x 100 videos, prefixes reused + first tokens, padding not cut",
    "score-efficient": "1 caption x 100 videos as retrieval runs it: prefixes reused, padding cut",
}
BATCH, TEXT_LEN, REAL_TOKENS, REGIONS, ACTIONS = 8, 36, 20, 37, 5  # 20 of the 36 tokens are real


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
    text_mask[:, REAL_TOKENS:] = 0
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


def make_steps(sides):
    """Build the full-size model and one callable per side (each runs one step or pass)."""
    import paddle

    from paddlevideo.modeling.framework.actbert import INPUT_KEYS, ActBert

    paddle.seed(0)
    model = ActBert(backbone={"name": "BertForMultiModalPreTraining"})
    backbone = model.backbone
    rng = np.random.default_rng(0)
    batch = {k: paddle.to_tensor(v) for k, v in pretraining_batch(rng, backbone.config).items()}
    videos = {k: paddle.to_tensor(v) for k, v in pretraining_batch(rng, backbone.config, batch=100).items()}
    caption = {k: batch[k][:1] for k in ("text_ids", "token_type_ids", "text_mask")}
    optimizer = paddle.optimizer.Adam(learning_rate=1e-5, parameters=model.parameters())
    labels = [batch[k] for k in ("text_labels", "image_label", "image_target", "action_label", "next_sentence_label")]

    def train(side):
        model.train()
        backbone.trim_padding = side == "train-efficient"
        if side == "train-full":
            loss = model.loss(*backbone(**{k: batch[k] for k in INPUT_KEYS}), *labels)["loss"]
        else:
            loss = model.train_step(batch)["loss"]
        loss.backward()
        optimizer.step()
        optimizer.clear_grad()

    def score(side):
        model.eval()
        backbone.trim_padding = side == "score-efficient"
        with paddle.no_grad():
            if side in ("score-efficient", "score-prefixes"):
                text = backbone.encode_text(**caption)
                video = backbone.encode_video(videos["image_feat"], videos["image_loc"], videos["image_mask"],
                                              videos["action_feat"], videos["action_mask"])
                backbone.match_logits(text, video, paddle.zeros([100], "int64"), paddle.arange(100)).numpy()
                return
            per_pass = 1 if side == "score-full" else 20
            for start in range(0, 100, per_pass):
                part = {k: videos[k][start:start + per_pass]
                        for k in ("image_feat", "image_loc", "image_mask", "action_feat", "action_mask")}
                part.update({k: paddle.tile(v, [per_pass, 1]) for k, v in caption.items()})
                backbone(**part)[3].numpy()

    return {side: (lambda side=side: (train if side.startswith("train") else score)(side)) for side in sides}


def time_sides(sides, rounds, warmup):
    """Time the sides in one process, alternating them round by round (so a slower spell of a
    shared machine hits every side alike), after ``warmup`` untimed runs of each (the first steps
    of a process allocate the optimiser state and the allocator's pools).
    Returns {side: {"seconds", "cpu_seconds"}} (medians over the rounds)."""
    steps = make_steps(sides)
    for _ in range(warmup):
        for side in sides:
            steps[side]()
    walls, cpus = {side: [] for side in sides}, {side: [] for side in sides}
    for _ in range(rounds):
        for side in sides:
            wall, cpu = time.perf_counter(), time.process_time()
            steps[side]()
            walls[side].append(time.perf_counter() - wall)
            cpus[side].append(time.process_time() - cpu)
    return {side: {"seconds": float(np.median(walls[side])), "cpu_seconds": float(np.median(cpus[side]))}
            for side in sides}


def side_peak_memory(side):
    """Peak resident memory (MB) of a process that builds the model and runs one side twice."""
    step = make_steps([side])[side]
    step()
    step()
    return peak_memory_mb()


def child(args, env):
    """Run this script in a child process and read its last line as JSON."""
    script = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "benchmark.py")
    done = subprocess.run([sys.executable, script, "model", *args], env=env, capture_output=True, text=True,
                          check=False)
    if done.returncode != 0:
        raise RuntimeError(f"benchmark child {' '.join(args)} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def report(results, rounds):
    print(f"{'side':<20} {'wall s':>8} {'cpu s':>8} {'peak MB':>8}  what")
    for side, r in results.items():
        print(f"{side:<20} {r['seconds']:>8.2f} {r['cpu_seconds']:>8.2f} {r['peak_mb']:>8.0f}  {SIDES[side]}")

    def ratio(slow, fast):
        if slow not in results or fast not in results:
            return "n/a (side not run)"
        wall = results[slow]["seconds"] / results[fast]["seconds"]
        cpu = results[slow]["cpu_seconds"] / results[fast]["cpu_seconds"]
        return f"{wall:.2f}x (cpu time {cpu:.2f}x)"

    print(f"(median of {rounds} alternating rounds; batch {BATCH} x ({TEXT_LEN} tokens of which {REAL_TOKENS} real, "
          f"{REGIONS} regions, {ACTIONS} actions))")
    print(f"training step: {ratio('train-full', 'train-efficient')} faster than every head at every position "
          f"(target >= 1.15x); heads alone, padding not cut: {ratio('train-full', 'train-heads')}")
    print(f"retrieval scoring: {ratio('score-full', 'score-efficient')} faster than 100 full forward passes "
          f"(target >= 3x); padding not cut: {ratio('score-full', 'score-prefixes')}; "
          f"against full passes of 20 pairs: {ratio('score-full-batched', 'score-efficient')}")


def main(argv=None):
    parser = argparse.ArgumentParser(prog="benchmark.py model", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds over all sides (median reported)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed runs of each side first")
    parser.add_argument("--sides", default=",".join(SIDES),
                        help="comma-separated subset of: " + ", ".join(SIDES))
    # internal: the child processes
    parser.add_argument("--time", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--memory", choices=list(SIDES), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    sides = [side.strip() for side in args.sides.split(",") if side.strip()]
    unknown = [side for side in sides if side not in SIDES]
    if unknown:
        parser.error(f"unknown side {unknown[0]!r}; the sides are {', '.join(SIDES)}")
    if args.time or args.memory:
        result = side_peak_memory(args.memory) if args.memory else time_sides(sides, args.rounds, args.warmup)
        print(json.dumps(result))
        return 0
    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", "2")
    env.setdefault("MKL_DEBUG_CPU_TYPE", "5")
    print(f"ActBERT full-size default, float32, OMP_NUM_THREADS={env['OMP_NUM_THREADS']} "
          f"MKL_DEBUG_CPU_TYPE={env['MKL_DEBUG_CPU_TYPE']}")
    results = child(["--time", "--sides", ",".join(sides), "--rounds", str(args.rounds),
                     "--warmup", str(args.warmup)], env)
    for side in sides:  # each side's peak memory in a process of its own
        results[side]["peak_mb"] = child(["--memory", side], env)
    report(results, args.rounds)
    return 0
