"""A synthetic YouCook2 corpus in the official layouts, with segment features (seconds, CPU).
Run through ``tools/make_demo_data.py --task youcook2``.

The world: a segment shows a cooking verb applied to one or two ingredients, sometimes in
a utensil; its sentence says so in a fixed pattern ("fry the onion and tomato in the pan"),
the two ingredients in alphabetical order. Features: the regions are the prototypes of the
named ingredients and utensil (1-3 boxes each) among kitchen background (hand, counter,
...) plus noise; the actions, the verb's prototype plus noise, one slot per started 6 s
(1-5). A captioner can learn the words from the features; the most frequent training
sentence cannot.

Extremes, as in the real file: 1 s segments (one action slot), segments of minutes (all
five), segments overlapping the previous one, a span annotated twice with two sentences
(same features under keys ``..._<start>_<end>`` and ``..._<start>_<end>_2``), long sentences (two steps joined, 30-45
words), integer-second bounds, a validation video left out of the retrieval list (as the
21 HowTo100M videos are), recipes of several types.

Files (in ``--out``, default data/demo_youcook2):
- ``youcookii_annotations_trainval.json``: the official annotation layout;
- ``validation_youcook.csv``: MIL-NCE's retrieval list (``end,start,task,text,video_id``);
- ``youcook2.lmdb``: MSR-VTT-style features (pickled dicts), one record per segment, key
  ``<video_id>_<start>_<end>`` (``paddlevideo.loader.youcook2.segment_key``);
- ``vocab.txt`` (specials + every word), ``demo_info.json`` (sizes a config needs).
"""

import json
import os
import time

import numpy as np

from paddlevideo.loader.dataset.msrvtt_dataset import write_msrvtt_lmdb
from paddlevideo.loader.youcook2 import segment_key
from paddlevideo.utils.errors import DataError
from paddlevideo.utils.writer_lock import writer_lock
from tools.demo_steps import clear_previous, prepare_out, write_info, youtube_id

VERBS = ["chop", "slice", "fry", "boil", "stir", "mix", "peel", "grill", "bake", "season"]
INGREDIENTS = ["tomato", "onion", "garlic", "chicken", "beef", "noodles", "rice", "egg", "carrot", "potato",
               "cheese", "shrimp"]
UTENSILS = ["pan", "pot", "bowl", "wok", "oven"]
BACKGROUND = ["hand", "counter", "stove", "sink"]
LONG_TAIL = ("until it is golden brown and then serve it on a plate with some salt and pepper on top "
             "and a little oil")
SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
OUTPUTS = ("youcookii_annotations_trainval.json", "validation_youcook.csv", "youcook2.lmdb", "vocab.txt")
IMAGE_H, IMAGE_W = 360.0, 640.0
MAX_ACTIONS = 5
EXTREMES = ("one_second", "minutes", "overlap", "long", "same_bounds")


def step_sentence(verb, a, b, utensil):
    """The sentence of one step; ingredients a < b alphabetically when there are two."""
    things = f"the {a}" if b is None else f"the {a} and {b}"
    return f"{VERBS[verb]} {things}" + (f" in the {UTENSILS[utensil]}" if utensil is not None else "")


def demo_vocab():
    words = {"the", "and", "in", "then"} | set(VERBS) | set(INGREDIENTS) | set(UTENSILS) | set(LONG_TAIL.split())
    return SPECIAL + sorted(words)


class KitchenWorld:
    """Prototypes, steps and features; all randomness from one Generator."""

    def __init__(self, rng, feature_dim, noise):
        self.rng, self.noise = rng, noise
        self.things = INGREDIENTS + UTENSILS + BACKGROUND
        self.thing_proto = rng.normal(size=(len(self.things), feature_dim)).astype(np.float32)
        self.verb_proto = rng.normal(size=(len(VERBS), feature_dim)).astype(np.float32)

    def step(self):
        """(verb, a, b or None, utensil or None) with a < b."""
        verb = int(self.rng.integers(len(VERBS)))
        pair = sorted(int(i) for i in self.rng.choice(len(INGREDIENTS), size=2, replace=False))
        a, b = INGREDIENTS[pair[0]], INGREDIENTS[pair[1]] if self.rng.random() < 0.4 else None
        if b is None:
            a = INGREDIENTS[int(self.rng.integers(len(INGREDIENTS)))]
        utensil = int(self.rng.integers(len(UTENSILS))) if self.rng.random() < 0.6 else None
        return verb, a, b, utensil

    def record(self, steps, seconds):
        """MSR-VTT-style features of a segment of ``seconds`` showing ``steps``."""
        dim = self.thing_proto.shape[1]
        labels = []
        for _, a, b, utensil in steps:
            for name in (a, b, None if utensil is None else UTENSILS[utensil]):
                if name is not None:
                    labels += [self.things.index(name)] * int(self.rng.integers(1, 4))
        labels += list(len(INGREDIENTS) + len(UTENSILS) + self.rng.integers(len(BACKGROUND),
                                                                            size=int(self.rng.integers(0, 4))))
        labels = np.array(labels)[self.rng.permutation(len(labels))]
        feats = self.thing_proto[labels] + self.noise * self.rng.normal(size=(len(labels), dim))
        slots = int(min(MAX_ACTIONS, max(1, np.ceil(seconds / 6))))
        verbs = [steps[min(i * len(steps) // slots, len(steps) - 1)][0] for i in range(slots)]
        actions = self.verb_proto[verbs] + self.noise * self.rng.normal(size=(slots, dim))
        wh = self.rng.uniform(0.1, 0.5, size=(len(labels), 2)) * [IMAGE_W, IMAGE_H]
        x1y1 = self.rng.uniform(0, 1, size=(len(labels), 2)) * ([IMAGE_W, IMAGE_H] - wh)
        return {"image_h": IMAGE_H, "image_w": IMAGE_W, "features": feats.astype(np.float32),
                "boxes": np.concatenate([x1y1, x1y1 + wh], axis=1).astype(np.float32),
                "action_features": actions.astype(np.float32)}


def segment_bounds(rng, count, extreme, where):
    """``count`` integer [start, end] pairs in time order, 4-30 s with background gaps between,
    except segment ``where``: ``extreme`` = one_second (1 s), minutes (2-4 min), overlap
    (starts inside the previous segment) or same_bounds (the previous segment's span again)."""
    bounds, clock = [], int(rng.integers(0, 20))
    for i in range(count):
        kind = extreme if i == where else "plain"
        length = {"one_second": 1, "minutes": int(rng.integers(120, 241))}.get(kind, int(rng.integers(4, 31)))
        start = clock
        if kind == "overlap" and bounds:
            start = max(bounds[-1][0] + 1, bounds[-1][1] - int(rng.integers(1, 4)))
        if kind == "same_bounds" and bounds:  # one span annotated twice, as oJZUxU9szWA's [120, 252]
            start, length = bounds[-1][0], bounds[-1][1] - bounds[-1][0]
        bounds.append([start, start + length])
        clock = max(clock, start + length) + int(rng.integers(0, 15))
    return bounds


def video_annotations(world, rng, extreme):
    """(duration, annotations, [(segment, steps)]) of one video with one ``extreme`` segment
    (EXTREMES) and, rarely, more long sentences."""
    count = int(rng.integers(3, 9))
    where = int(rng.integers(1, count))
    annotations, shown = [], []
    for i, (start, end) in enumerate(segment_bounds(rng, count, extreme, where)):
        steps = [world.step()]
        sentence = step_sentence(*steps[0])
        if (extreme == "long" and i == where) or rng.random() < 0.03:
            steps.append(world.step())
            sentence = f"{sentence} and then {step_sentence(*steps[1])} {LONG_TAIL}"
        annotations.append({"segment": [start, end], "id": i, "sentence": sentence})
        shown.append(((start, end), steps))
    duration = float(max(a["segment"][1] for a in annotations) + rng.integers(5, 60)) + round(float(rng.random()), 2)
    return duration, annotations, shown


def make_youcook2_demo(out, seed=0, num_videos=120, feature_dim=32, noise=0.2):
    """The files of the module docstring in ``out``; returns the info dict (``demo_info.json``)."""
    prepare_out(out, "youcook2")
    with writer_lock(out, "demo corpus"):
        clear_previous(out, OUTPUTS)
        rng = np.random.default_rng(seed)
        world = KitchenWorld(rng, feature_dim, noise)
        database, records, rows = {}, {}, []
        for i in range(num_videos):
            vid = youtube_id(rng)
            extreme = EXTREMES[(i // 4) % len(EXTREMES)]  # every extreme in both subsets
            duration, annotations, shown = video_annotations(world, rng, extreme)
            subset = "validation" if i % 4 == 3 else "training"  # a quarter, as YouCook2's 457 of 1,790
            recipe = str(101 + int(rng.integers(6)))
            database[vid] = {"duration": duration, "subset": subset, "recipe_type": recipe,
                             "video_url": f"https://www.youtube.com/watch?v={vid}", "annotations": annotations}
            spans = {}
            for ((start, end), steps), ann in zip(shown, annotations):
                occurrence = spans[start, end] = spans.get((start, end), 0) + 1
                # A span annotated twice is one clip: the same features under both keys.
                records[segment_key(vid, start, end, occurrence)] = (
                    records[segment_key(vid, start, end)] if occurrence > 1 else world.record(steps, end - start))
                if subset == "validation" and i != 3:  # the first validation video: "in HowTo100M"
                    rows.append(f"{end},{start},{recipe},{ann['sentence']},{vid}")
        with open(os.path.join(out, OUTPUTS[0]), "w", encoding="utf-8") as f:
            json.dump({"database": database}, f)
        with open(os.path.join(out, OUTPUTS[1]), "w", encoding="utf-8") as f:
            f.write("end,start,task,text,video_id\n" + "\n".join(rows) + "\n")
        write_msrvtt_lmdb(os.path.join(out, OUTPUTS[2]), records)
        vocab = demo_vocab()
        with open(os.path.join(out, OUTPUTS[3]), "w", encoding="utf-8") as f:
            f.write("\n".join(vocab) + "\n")
        subsets = [v["subset"] for v in database.values()]
        return write_info(out, {
            "task": "youcook2", "seed": seed, "videos": num_videos, "training": subsets.count("training"),
            "validation": subsets.count("validation"), "segments": len(records), "retrieval_clips": len(rows),
            "vocab_size": len(vocab), "feature_dim": feature_dim, "v_feature_size": feature_dim,
            "a_feature_size": feature_dim})


def run(args):
    """``make_demo_data.py --task youcook2`` (``args``: its parsed flags): write and summarise."""
    if args.num_videos is not None and args.num_videos < 4:
        raise DataError(f"--num-videos must be at least 4 for --task youcook2 (one validation video in four), "
                        f"got {args.num_videos}")
    out = args.out or "data/demo_youcook2"
    start = time.perf_counter()
    info = make_youcook2_demo(out, args.seed, args.num_videos or 120, feature_dim=args.feature_dim, noise=args.noise)
    print(f"wrote {out}/: {info['videos']} YouCook2 videos ({info['training']} training, {info['validation']} "
          f"validation), {info['segments']} segments, {info['retrieval_clips']} retrieval clips, vocab "
          f"{info['vocab_size']}; features {info['feature_dim']}-d ({time.perf_counter() - start:.1f} s)")
