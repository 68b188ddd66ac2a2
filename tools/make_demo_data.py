"""Generate a small, learnable ActBERT corpus in the released file formats (seconds, CPU).

    python tools/make_demo_data.py                 # -> data/demo/
    python tools/make_demo_data.py --out /tmp/demo --num-train 500 --seed 3

The world: every clip shows one *action* (``slices``, ``pours``, ...) performed on
two *objects* (``tomato``, ``knife``, ...) among background things (``table``,
``hand``, ...). Its captions say so ("a person slices a tomato with a knife"). The
features are built from the classes, so a model can learn the links between words,
regions and actions:

- region feature = prototype vector of the box's object class + Gaussian noise;
  region target = that box's class distribution (most mass on the true class, as a
  detector's soft output);
- action feature = prototype of the clip's action class + noise; action target = the
  action class id.

Files written (formats of the PaddleVideo release, see data/README.md):

- ``actbert_train_data.npy`` / ``actbert_val_data.npy``: object arrays of clips with
  PaddleVideo's 11 fields; ``caption_train.json`` / ``caption_val.json``: their
  caption pools (the reference's source of mismatched captions);
- ``msrvtt_test.lmdb`` + ``MSRVTT_JSFUSION_test.csv``: held-out test videos (new clips
  and new action/object combinations, same classes), one query each, as PaddleVideo's
  MSR-VTT features (pickled dicts; every other video's arrays stored flattened, as
  both occur) and the JSFusion query list;
- ``vocab.txt``: every caption word plus [PAD] [UNK] [CLS] [SEP] [MASK] (a tiny model);
- ``demo_info.json``: the sizes a config needs (vocab_size, v_target_size, ...).

Counts vary as in the released features: 1-5 action segments per clip (padded slots
are zero features, as the pipelines pad them), 2-8 boxes, and now and then a crowded
scene of up to 36 (cut to the config's region slots).
"""

import argparse
import json
import os
import pickle
import shutil
import sys
import time

import lmdb
import numpy as np

ACTIONS = [  # (3rd person, -ing form)
    ("slices", "slicing"), ("washes", "washing"), ("pours", "pouring"), ("stirs", "stirring"),
    ("throws", "throwing"), ("opens", "opening"), ("paints", "painting"), ("folds", "folding"),
    ("fries", "frying"), ("lifts", "lifting"),
]
OBJECTS = ["tomato", "onion", "knife", "board", "bowl", "pan", "cup", "bottle", "ball", "box", "paper", "shirt",
           "egg", "bread", "brush", "door"]
BACKGROUND = ["person", "hand", "table", "wall"]  # in every scene, never discriminative
# One sentence pattern: with several (verb forms, word orders) the tiny model needs many
# more steps before the caption-clip matching task starts to learn.
# A clip's two captions name its objects in both orders.
TEMPLATES = ["a person {verb} a {a} with a {b}", "a person {verb} a {b} with a {a}"]
SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
MAX_ACTIONS = 5
IMAGE_H, IMAGE_W = 360.0, 640.0


def demo_vocab():
    """Tokens of the demo vocabulary: specials first ([PAD] = 0), then all caption words."""
    words = set()
    for template in TEMPLATES:
        words.update(w for w in template.split() if not w.startswith("{"))
    for verb, ing in ACTIONS:  # only the verb forms some template uses
        words.update(form for form, slot in ((verb, "{verb}"), (ing, "{ing}")) if any(slot in t for t in TEMPLATES))
    words.update(OBJECTS)
    return SPECIAL + sorted(words)


class World:
    """Class prototypes and the sampling of clips; all randomness from one Generator."""

    def __init__(self, rng, feature_dim, noise, background=(0, 2), crowded=0.1):
        self.rng, self.noise, self.background, self.crowded = rng, noise, background, crowded
        self.classes = OBJECTS + BACKGROUND  # region class ids: objects first
        # Unit-scale random prototypes: in 64+ dimensions they are nearly orthogonal.
        self.region_proto = rng.normal(size=(len(self.classes), feature_dim)).astype(np.float32)
        self.action_proto = rng.normal(size=(len(ACTIONS), feature_dim)).astype(np.float32)

    def combos(self, count):
        """``count`` distinct (action, object a, object b) triples with a < b (captions name
        the objects in both orders, so (act, a, b) and (act, b, a) are the same content)."""
        free = [(act, a, b) for act in range(len(ACTIONS)) for a in range(len(OBJECTS))
                for b in range(a + 1, len(OBJECTS))]
        if count > len(free) // 2:  # leave at least half of the combinations for training
            raise SystemExit(f"error: at most {len(free) // 2} test videos (distinct action/object combinations)")
        picks = self.rng.choice(len(free), size=count, replace=False)
        return [free[i] for i in picks]

    def random_combo(self, reserved=()):
        """A random (action, object a, object b), its unordered content not in ``reserved``."""
        while True:
            a, b = (int(x) for x in self.rng.choice(len(OBJECTS), size=2, replace=False))
            act = int(self.rng.integers(len(ACTIONS)))
            if (act, min(a, b), max(a, b)) not in reserved:
                return act, a, b

    def captions(self, combo, count):
        """``count`` captions of a clip, from different templates while they last."""
        act, a, b = combo
        verb, ing = ACTIONS[act]
        order = self.rng.permutation(len(TEMPLATES))
        return [TEMPLATES[order[i % len(order)]].format(verb=verb, ing=ing, a=OBJECTS[a], b=OBJECTS[b])
                for i in range(count)]

    def boxes(self, n):
        """``n`` random boxes inside the image: float32 [n, 4] (x1, y1, x2, y2 pixels)."""
        wh = self.rng.uniform(0.1, 0.5, size=(n, 2)) * [IMAGE_W, IMAGE_H]
        x1y1 = self.rng.uniform(0, 1, size=(n, 2)) * ([IMAGE_W, IMAGE_H] - wh)
        return np.concatenate([x1y1, x1y1 + wh], axis=1).astype(np.float32)

    def regions(self, combo):
        """Box classes (int [n]), features [n, D], targets [n, C] of one clip.

        The two named objects fill 1-3 boxes each, background things 0-2 (more of them
        dilute the global region, the mean of all boxes), or in a crowded scene (share
        ``crowded``) as many as make 36 boxes; order shuffled.
        """
        _, a, b = combo
        labels = [a] * int(self.rng.integers(1, 4)) + [b] * int(self.rng.integers(1, 4))
        n_background = int(self.rng.integers(self.background[0], self.background[1] + 1))
        if self.rng.random() < self.crowded:
            n_background = 36 - len(labels)
        labels += list(len(OBJECTS) + self.rng.integers(len(BACKGROUND), size=n_background))
        labels = np.array(labels)[self.rng.permutation(len(labels))]
        feats = self.region_proto[labels] + self.noise * self.rng.normal(size=(len(labels), self.region_proto.shape[1]))
        # A detector's soft output: 0.6-0.9 on the true class, the rest on two others.
        target = np.zeros((len(labels), len(self.classes)), dtype=np.float32)
        for i, label in enumerate(labels):
            top = self.rng.uniform(0.6, 0.9)
            others = self.rng.choice(np.delete(np.arange(len(self.classes)), label), size=2, replace=False)
            target[i, label] = top
            target[i, others] = (1 - top) / 2
        return labels, feats.astype(np.float32), target

    def actions(self, combo):
        """Action features [n, D] (the clip's action + noise) and targets int64 [n], n in 1-5."""
        act, n = combo[0], int(self.rng.integers(1, MAX_ACTIONS + 1))
        feats = self.action_proto[act] + self.noise * self.rng.normal(size=(n, self.action_proto.shape[1]))
        return feats.astype(np.float32), np.full(n, act, dtype=np.int64)


def npy_item(world, combo, image_id, captions_per_clip):
    """One clip in PaddleVideo's 11-field layout."""
    _, feats, target = world.regions(combo)
    action_feat, action_target = world.actions(combo)
    captions = "!".join(world.captions(combo, captions_per_clip))
    return [feats, target, world.boxes(len(feats)), len(feats), IMAGE_H, IMAGE_W, image_id, captions,
            action_feat, action_target, len(action_feat)]


def write_split(world, out, name, count, captions_per_clip, reserved):
    """``actbert_{name}_data.npy`` and ``caption_{name}.json``, avoiding ``reserved`` combos."""
    combos = [world.random_combo(reserved) for _ in range(count)]
    items = np.empty(count, dtype=object)  # filled one by one: np.array would try to broadcast
    for i, combo in enumerate(combos):
        items[i] = npy_item(world, combo, f"demo_{name}_{i:05d}", captions_per_clip)
    np.save(os.path.join(out, f"actbert_{name}_data.npy"), items, allow_pickle=True)
    with open(os.path.join(out, f"caption_{name}.json"), "w", encoding="utf-8") as f:
        json.dump([item[7] for item in items], f, indent=0)


def write_lmdb(path, records):
    """A fresh LMDB at ``path`` holding ``records`` (video id -> pickled bytes), as MSR-VTT's."""
    shutil.rmtree(path, ignore_errors=True)
    env = lmdb.open(path, map_size=max(1 << 22, 4 * sum(map(len, records.values()))))
    with env.begin(write=True) as txn:
        for vid, value in records.items():
            txn.put(vid.encode("ascii"), value)
    env.close()


def write_test(world, out, combos):
    """MSR-VTT-style test set of one video per combo: pickled-dict LMDB + JSFusion CSV, one query each."""
    records, rows = {}, []
    for i, combo in enumerate(combos):
        vid = f"video{i}"
        _, feats, _ = world.regions(combo)
        action_feat, _ = world.actions(combo)
        rec = {"video_id": vid, "image_h": IMAGE_H, "image_w": IMAGE_W, "features": feats,
               "boxes": world.boxes(len(feats)), "action_features": action_feat}
        if i % 2:  # the released file stores some arrays flattened
            rec = {k: (v.reshape(-1) if isinstance(v, np.ndarray) else v) for k, v in rec.items()}
        records[vid] = pickle.dumps(rec, protocol=4)
        rows.append(f"ret{i},msr{i},{vid},{world.captions(combo, 1)[0]}")
    write_lmdb(os.path.join(out, "msrvtt_test.lmdb"), records)
    with open(os.path.join(out, "MSRVTT_JSFUSION_test.csv"), "w", encoding="utf-8") as f:
        f.write("key,vid_key,video_id,sentence\n" + "\n".join(rows) + "\n")


def write_finetune(world, out, count, captions_per_clip, reserved, first_id):
    """MSR-VTT-format fine-tuning data: ``msrvtt_train.lmdb`` (features as the test LMDB),
    ``MSRVTT_data.json`` (``sentences`` of these videos and of the test videos) and the split
    list ``MSRVTT_train.9k.csv``; plus ``msrvtt_mc_test.json``, a multiple-choice set over
    the test videos (true caption among 4 captions of other test videos)."""
    records, sentences, videos = {}, [], []
    for i in range(count):
        combo, vid = world.random_combo(reserved), f"video{first_id + i}"
        _, feats, _ = world.regions(combo)
        action_feat, _ = world.actions(combo)
        records[vid] = pickle.dumps({"video_id": vid, "image_h": IMAGE_H, "image_w": IMAGE_W, "features": feats,
                                     "boxes": world.boxes(len(feats)), "action_features": action_feat}, protocol=4)
        sentences += [{"video_id": vid, "caption": c} for c in world.captions(combo, captions_per_clip)]
        videos.append(vid)
    write_lmdb(os.path.join(out, "msrvtt_train.lmdb"), records)
    with open(os.path.join(out, "MSRVTT_JSFUSION_test.csv"), encoding="utf-8") as f:
        test = [line.rstrip("\n").split(",", 3)[2:] for line in f.readlines()[1:]]
    sentences += [{"video_id": vid, "caption": caption} for vid, caption in test]
    for n, entry in enumerate(sentences):
        entry["sen_id"] = n
    with open(os.path.join(out, "MSRVTT_data.json"), "w", encoding="utf-8") as f:
        json.dump({"sentences": sentences}, f)
    with open(os.path.join(out, "MSRVTT_train.9k.csv"), "w", encoding="utf-8") as f:
        f.write("video_id\n" + "\n".join(videos) + "\n")
    questions = []
    for q, (vid, caption) in enumerate(test):
        others = world.rng.choice([c for j, (_, c) in enumerate(test) if j != q], size=min(4, len(test) - 1),
                                  replace=False)
        answer = int(world.rng.integers(len(others) + 1))
        options = [str(c) for c in others]
        options.insert(answer, caption)
        questions.append({"video": f"{vid}.mp4", "caption": options, "answer": answer})
    with open(os.path.join(out, "msrvtt_mc_test.json"), "w", encoding="utf-8") as f:
        json.dump(questions, f, indent=0)


def make_demo_data(out="data/demo", seed=0, num_train=4000, num_val=200, num_test=100, feature_dim=64,
                   noise=0.2, captions_per_clip=2, num_finetune=300):
    """Write the demo corpus to ``out``; returns the info dict also saved as demo_info.json."""
    os.makedirs(out, exist_ok=True)
    world = World(np.random.default_rng(seed), feature_dim, noise)
    vocab = demo_vocab()
    with open(os.path.join(out, "vocab.txt"), "w", encoding="utf-8") as f:
        f.write("\n".join(vocab) + "\n")
    # Test combinations are reserved first and never trained on: zero-shot retrieval
    # cannot lean on memorised clips.
    test = world.combos(num_test)
    write_split(world, out, "train", num_train, captions_per_clip, reserved=set(test))
    write_split(world, out, "val", num_val, captions_per_clip, reserved=set(test))
    write_test(world, out, test)
    # Last, so that the files above stay the same for a given seed.
    write_finetune(world, out, num_finetune, captions_per_clip, set(test), first_id=num_test)
    info = {
        "seed": seed, "num_train": num_train, "num_val": num_val, "num_test": num_test, "num_finetune": num_finetune,
        "vocab_size": len(vocab), "v_feature_size": feature_dim, "a_feature_size": feature_dim,
        "v_target_size": len(world.classes), "a_target_size": len(ACTIONS),
        "region_classes": world.classes, "action_classes": [verb for verb, _ in ACTIONS],
    }
    with open(os.path.join(out, "demo_info.json"), "w", encoding="utf-8") as f:
        json.dump(info, f, indent=1)
    return info


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", choices=("actbert", "coin", "crosstask", "youcook2"), default="actbert",
                        help="actbert (default): the corpus above; coin, crosstask: step-annotated videos in "
                             "COIN's / CrossTask's layouts with per-second features (tools/demo_steps.py); "
                             "youcook2: captioned segments in YouCook2's layouts with segment features "
                             "(tools/demo_youcook2.py)")
    parser.add_argument("--out", help="output directory (default data/demo, data/demo_coin, data/demo_crosstask, "
                                      "data/demo_youcook2)")
    parser.add_argument("--num-videos", type=int,
                        help="--task coin, youcook2: videos (default 120); crosstask: annotated videos per task "
                             "(default 40)")
    parser.add_argument("--seed", type=int, default=0, help="random seed: same seed, same files")
    parser.add_argument("--num-train", type=int, default=4000, help="pretraining clips")
    parser.add_argument("--num-val", type=int, default=200, help="validation clips")
    parser.add_argument("--num-test", type=int, default=100, help="MSR-VTT-style test videos (one query each)")
    parser.add_argument("--num-finetune", type=int, default=300,
                        help="MSR-VTT-format fine-tuning videos (msrvtt_train.lmdb, MSRVTT_data.json, split list)")
    parser.add_argument("--feature-dim", type=int, default=64,
                        help="region and action feature size (real data: 2048; the demo configs expect 64)")
    parser.add_argument("--noise", type=float, default=0.2, help="feature noise std (prototypes have std 1)")
    args = parser.parse_args(argv)
    for name in ("num_train", "num_val", "num_test", "feature_dim", "num_finetune"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.task != "actbert":
        return steps_main(args)
    args.out = args.out or "data/demo"
    start = time.perf_counter()
    info = make_demo_data(args.out, args.seed, args.num_train, args.num_val, args.num_test, args.feature_dim,
                          args.noise, num_finetune=args.num_finetune)
    print(f"wrote {args.out}/: {info['num_train']} train, {info['num_val']} val clips, {info['num_test']} test "
          f"videos; vocab {info['vocab_size']} tokens, {info['v_target_size']} region classes, "
          f"{info['a_target_size']} actions, features {info['v_feature_size']}-d "
          f"({time.perf_counter() - start:.1f} s)")
    return 0


def steps_main(args):
    """``--task coin|crosstask|youcook2``: the corpora of tools/demo_steps.py, tools/demo_youcook2.py; exit status."""
    if not __package__:  # run as python tools/<tool>.py: the checkout importable (tools/_path.py)
        import _path  # noqa: F401
    from paddlevideo.utils.errors import exit_status
    if args.task == "youcook2":
        from tools.demo_youcook2 import run
    else:
        from tools.demo_steps import run

    return exit_status(run, args)


if __name__ == "__main__":
    sys.exit(main())
