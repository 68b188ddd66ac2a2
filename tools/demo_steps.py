"""Synthetic COIN and CrossTask corpora in the official layouts, with per-second features
(seconds, CPU). Run through ``tools/make_demo_data.py --task coin|crosstask``.

The world: a task is an ordered list of steps; a step is a verb on an object ("crack
egg"). Every second of a video shows one step or background, and its features say which:
the action feature is the prototype of the second's class plus noise, its 1-3 regions the
prototypes of the step's object (or of background things) plus noise. Labels come from the
readers' own rules (``paddlevideo.loader.steps``), so features and labels always agree.

Extremes, as in the real data: videos shorter than their number of steps, overlapping and
out-of-order annotations, a step repeated, annotations past the end, a zero-length one,
videos without annotations, seconds with no frame (no regions; the action feature, taken
from a window around the second, is still there), videos without a feature file,
validation videos and unannotated videos in CrossTask's lists, and a related task.

Feature files (provisional, until the per-second extraction mode exists):
``features/<video_id>.npz`` with ``action`` float32 [T, D], ``regions`` float32 [T, R, D] and
``boxes`` float32 [T, R, 4] (x1, y1, x2, y2 pixels; zero-padded), ``region_count`` int64 [T]
(0: no frame at that second), ``image_h``, ``image_w``.
"""

import json
import math
import os
import shutil
import string
import time

import numpy as np

from paddlevideo.loader.steps import coin, crosstask
from paddlevideo.utils.errors import DataError
from paddlevideo.utils.writer_lock import LOCK_SUFFIX, writer_lock

OUTPUTS = ("COIN.json", "crosstask_release", "features", "demo_info.json", "vocab.txt")  # what a rerun replaces

VERBS = ["add", "pour", "stir", "cut", "crack", "whisk", "fry", "boil", "spread", "lift", "loosen", "tighten"]
OBJECTS = ["egg", "milk", "sugar", "bread", "butter", "steak", "rice", "wheel", "nut", "jack", "oil", "cup"]
SCENERY = ["hand", "table", "wall"]  # regions of background seconds
MAX_REGIONS = 3
IMAGE_WH = np.array([640.0, 360.0])
PRIMARY_TITLES = ["Jack Up a Car", "Make Jello Shots", "Change a Tire", "Make Lemonade", "Add Oil to Your Car",
                  "Make a Latte", "Build Simple Floating Shelves", "Make Taco Salad", "Make French Toast",
                  "Make Irish Coffee", "Make French Strawberry Cake", "Make Pancakes", "Make Meringue",
                  "Make Kerala Fish Curry", "Make Kimchi Fried Rice", "Make Bread and Butter Pickles",
                  "Make Banana Ice Cream", "Grill Steak"]  # of crosstask.PRIMARY_TASKS, in order
RELATED_TASK = "99999"


class StepWorld:
    """Step texts, prototypes and per-second features; all randomness from one Generator."""

    def __init__(self, rng, feature_dim, noise):
        self.rng, self.noise = rng, noise
        self.steps = [(v, o) for v in VERBS for o in OBJECTS]
        self.things = OBJECTS + SCENERY
        self.step_proto = rng.normal(size=(len(self.steps) + 1, feature_dim)).astype(np.float32)  # row 0: background
        self.thing_proto = rng.normal(size=(len(self.things), feature_dim)).astype(np.float32)

    def task_steps(self, count):
        """``count`` distinct step indices (into ``steps``) in a random order: a task."""
        return [int(i) for i in self.rng.choice(len(self.steps), size=count, replace=False)]

    def text(self, step):
        return " ".join(self.steps[step])

    def features(self, seconds, no_frame=0.05):
        """``seconds``: step index + 1 per second (0 background), int [T] -> the npz arrays."""
        seconds = np.asarray(seconds, dtype=np.int64)
        dim = self.step_proto.shape[1]
        action = self.step_proto[seconds] + self.noise * self.rng.normal(size=(len(seconds), dim))
        count = self.rng.integers(1, MAX_REGIONS + 1, size=len(seconds))
        count[self.rng.random(len(seconds)) < no_frame] = 0
        regions = np.zeros((len(seconds), MAX_REGIONS, dim), dtype=np.float32)
        for t, (label, n) in enumerate(zip(seconds, count)):
            things = [self.things.index(self.steps[label - 1][1])] * n if label else \
                self.rng.integers(len(OBJECTS), len(self.things), size=n)
            regions[t, :n] = self.thing_proto[things] + self.noise * self.rng.normal(size=(n, dim))
        boxes = np.zeros((len(seconds), MAX_REGIONS, 4), dtype=np.float32)
        for t, n in enumerate(count):
            wh = self.rng.uniform(0.1, 0.5, size=(n, 2)) * IMAGE_WH
            x1y1 = self.rng.uniform(0, 1, size=(n, 2)) * (IMAGE_WH - wh)
            boxes[t, :n] = np.concatenate([x1y1, x1y1 + wh], axis=1)
        return {"action": action.astype(np.float32), "regions": regions, "boxes": boxes,
                "region_count": count.astype(np.int64), "image_h": np.float32(IMAGE_WH[1]),
                "image_w": np.float32(IMAGE_WH[0])}


def prepare_out(out, task):
    """Create ``out``; refuse a non-empty folder that is not a demo corpus of ``task`` (never
    overwrite files this tool did not write)."""
    info = os.path.join(out, "demo_info.json")
    if os.path.isdir(out) and set(os.listdir(out)) - {LOCK_SUFFIX}:  # a killed run leaves its lock file
        try:
            with open(info, encoding="utf-8") as f:
                ours = json.load(f).get("task") == task
        except (OSError, ValueError, AttributeError):
            ours = False
        if not ours:
            raise DataError(f"{out}: not empty and not a {task} demo corpus; choose a new or empty folder")
    try:
        os.makedirs(out, exist_ok=True)
    except OSError as exc:
        raise DataError(f"{out}: cannot create the output folder ({exc.strerror or exc})") from None


def clear_previous(out, outputs=OUTPUTS):
    """Remove the files ``outputs`` of an earlier corpus in ``out`` (``prepare_out`` checked they are
    ours), so that no stale video outlives a rerun with another seed or size."""
    for name in outputs:
        path = os.path.join(out, name)
        if os.path.isdir(path):
            shutil.rmtree(path)
        elif os.path.exists(path):
            os.remove(path)


def write_features(world, out, video_id, seconds):
    os.makedirs(os.path.join(out, "features"), exist_ok=True)
    np.savez(os.path.join(out, "features", f"{video_id}.npz"), **world.features(seconds))


def segments_in_order(rng, count, duration):
    """``count`` consecutive [start, end] intervals inside ``duration``, background gaps between: [count, 2]."""
    cuts = np.sort(rng.uniform(0, duration, size=2 * count))
    return np.round(cuts.reshape(count, 2), 2)


def youtube_id(rng):
    alphabet = string.ascii_letters + string.digits + "-_"
    return "".join(alphabet[i] for i in rng.integers(len(alphabet), size=11))


def write_vocab(out):
    """``out/vocab.txt``: BERT's five special tokens (ids 0-4), then every word of the step texts."""
    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *sorted(set(VERBS + OBJECTS))]
    with open(os.path.join(out, "vocab.txt"), "w", encoding="utf-8") as f:
        f.write("\n".join(words) + "\n")


def write_info(out, info):
    """``out/demo_info.json`` (the sizes a config needs); returns ``info``."""
    with open(os.path.join(out, "demo_info.json"), "w", encoding="utf-8") as f:
        json.dump(info, f, indent=1)
    return info


# --- COIN ----------------------------------------------------------------------------------

COIN_KINDS = ("plain", "overlap", "shuffled", "short", "past_end", "zero_length", "unannotated", "plain")


def coin_annotation(world, rng, steps, kind):
    """(duration, annotation list) of one COIN video of a task whose steps are ``steps``
    [(global id, world step)], shaped by ``kind`` (one of COIN_KINDS)."""
    n = len(steps) if kind == "short" else int(rng.integers(1, len(steps) + 1))
    chosen = [steps[i] for i in sorted(rng.choice(len(steps), size=n, replace=False))]
    duration = float(rng.uniform(1.0, n - 1)) if kind == "short" else float(rng.uniform(8, 40))
    segs = segments_in_order(rng, n, duration)
    if kind == "overlap" and n > 1:
        segs[0, 1] = min(segs[1, 0] + 1.5, segs[1, 1])
    if kind == "past_end":
        segs[-1, 1] = round(duration + 3.0, 2)
    if kind == "zero_length":
        segs[0] = math.floor(segs[0, 0])
    annotation = [{"id": gid, "segment": [float(a), float(b)], "label": world.text(ws)}
                  for (gid, ws), (a, b) in zip(chosen, segs)]
    if kind == "shuffled":
        annotation = annotation[::-1]
    return round(duration, 2), ([] if kind == "unannotated" else annotation)


def coin_tasks(world, rng, num_tasks):
    """Tasks as lists of (global step id, world step); ids distinct, not contiguous, from 1..999."""
    sizes = rng.integers(3, 6, size=num_tasks)
    world_steps = world.task_steps(int(sizes.sum()))
    ids = [str(i) for i in rng.choice(np.arange(1, 1000), size=len(world_steps), replace=False)]
    pairs, tasks = list(zip(ids, world_steps)), []
    for size in sizes:
        tasks.append(pairs[:size])
        pairs = pairs[size:]
    return tasks


def make_coin_demo(out, seed=0, num_videos=120, num_tasks=6, feature_dim=32, noise=0.2, test_share=0.25):
    """``out/COIN.json`` and ``out/features/<vid>.npz``; returns the info dict (``demo_info.json``)."""
    prepare_out(out, "coin")
    with writer_lock(out, "demo corpus"):
        clear_previous(out)
        rng = np.random.default_rng(seed)
        world = StepWorld(rng, feature_dim, noise)
        tasks, database, kinds = coin_tasks(world, rng, num_tasks), {}, {}
        for i in range(num_videos):
            vid, task, kind = youtube_id(rng), int(rng.integers(num_tasks)), COIN_KINDS[i % len(COIN_KINDS)]
            duration, annotation = coin_annotation(world, rng, tasks[task], kind)
            database[vid] = {"duration": duration, "class": f"Task{task}", "recipe_type": task,
                             "subset": "testing" if rng.random() < test_share else "training",
                             "video_url": f"https://www.youtube.com/embed/{vid}", "start": 0.0, "end": duration,
                             "annotation": annotation}
            kinds.setdefault(kind, []).append(vid)
        path = os.path.join(out, "COIN.json")
        with open(path, "w", encoding="utf-8") as f:
            json.dump({"database": database}, f)
        world_of = {gid: ws for steps in tasks for gid, ws in steps}
        write_vocab(out)
        return write_info(out, {"task": "coin", "seed": seed, **coin_features(world, path, world_of), "kinds": kinds,
                                "feature_dim": feature_dim, "max_regions": MAX_REGIONS})


def coin_features(world, path, world_of):
    """Write every video's features but each 13th (named in ``no_features``) from the labels
    the reader gives; T = ceil(duration), or floor(duration) for each 5th video (its last
    partial second not extracted)."""
    videos = coin.read_coin(path)
    classes = coin.step_classes(videos)
    world_step = np.zeros(len(classes) + 1, dtype=np.int64)
    for gid, c in classes.items():
        world_step[c] = world_of[gid] + 1
    missing = []
    for i, (vid, video) in enumerate(videos.items()):
        if i % 13 == 12:
            missing.append(vid)
            continue
        seconds = (math.floor if i % 5 == 4 else math.ceil)(video.duration)
        write_features(world, os.path.dirname(path), vid, world_step[coin.second_labels(video, classes, seconds)])
    subsets = [v.subset for v in videos.values()]
    return {"videos": len(videos), "training": subsets.count("training"), "testing": subsets.count("testing"),
            "num_classes": len(classes) + 1, "no_features": missing}


# --- CrossTask -----------------------------------------------------------------------------

CROSSTASK_KINDS = ("plain", "overlap", "shuffled", "repeated", "short", "past_end", "plain")


def crosstask_rows(rng, num_steps, kind):
    """(duration, annotation rows [step from 1, start, end]) of one CrossTask video."""
    present = [k for k in range(num_steps) if rng.random() < 0.8] or [int(rng.integers(num_steps))]
    if kind == "repeated":
        present.append(present[-1])
    duration = float(rng.uniform(1.0, num_steps - 1)) if kind == "short" else float(rng.uniform(15, 60))
    segs = segments_in_order(rng, len(present), duration)
    if kind == "overlap" and len(present) > 1:
        segs[0, 1] = min(segs[1, 0] + 2.0, segs[1, 1])
    if kind == "past_end":
        segs[-1, 1] = round(duration + 4.0, 2)
    rows = [(k + 1, float(a), float(b)) for k, (a, b) in zip(present, segs)]
    if kind == "shuffled":
        rows = [rows[i] for i in rng.permutation(len(rows))]
    return round(duration, 2), rows


def write_crosstask_task(world, root, task_id, steps, count, kinds, rng):
    """Annotated videos of one task (each 17th of the corpus without features); ``videos.csv`` rows."""
    rows = []
    for i in range(count):
        vid, kind = youtube_id(rng), CROSSTASK_KINDS[i % len(CROSSTASK_KINDS)]
        duration, ann = crosstask_rows(rng, len(steps), kind)
        with open(crosstask.annotation_path(root, task_id, vid), "w", encoding="utf-8") as f:
            f.writelines(f"{k},{a:.2f},{b:.2f}\n" for k, a, b in ann)
        kinds.setdefault(kind, []).append(f"{task_id}_{vid}")
        rows.append(f"{task_id},{vid},https://www.youtube.com/watch?v={vid}")
        if sum(len(kinds.get(k, ())) for k in set(CROSSTASK_KINDS)) % 17 == 16:  # videos so far
            kinds.setdefault("no_features", []).append(f"{task_id}_{vid}")
            continue
        truth = crosstask.step_matrix(np.array(ann).reshape(-1, 3), len(steps), math.ceil(duration))
        # a second in several steps' intervals shows the first of them
        labels = np.where(truth.any(1), np.asarray(steps)[truth.argmax(1)] + 1, 0)
        write_features(world, os.path.dirname(root), vid, labels)
    return rows


def make_crosstask_demo(out, seed=0, videos_per_task=40, feature_dim=32, noise=0.2):
    """``out/crosstask_release/`` (the 18 primary task ids) and ``out/features/<vid>.npz``;
    returns the info dict (``demo_info.json``)."""
    prepare_out(out, "crosstask")
    root = os.path.join(out, "crosstask_release")
    with writer_lock(out, "demo corpus"):
        clear_previous(out)
        os.makedirs(os.path.join(root, "annotations"), exist_ok=True)
        rng = np.random.default_rng(seed)
        world = StepWorld(rng, feature_dim, noise)
        blocks, videos, validation, kinds = [], [], [], {}
        for task_id, title in zip(crosstask.PRIMARY_TASKS, PRIMARY_TITLES):
            steps = world.task_steps(int(rng.integers(3, 7)))
            blocks.append(f"{task_id}\n{title}\nhttp://www.wikihow.com/{title.replace(' ', '-')}\n{len(steps)}\n"
                          + ",".join(world.text(s) for s in steps) + "\n")
            rows = write_crosstask_task(world, root, task_id, steps, videos_per_task + 1, kinds, rng)
            validation.append(rows[-1])  # the last one: a validation video, dropped by the split
            unannotated = youtube_id(rng)
            videos += rows + [f"{task_id},{unannotated},https://www.youtube.com/watch?v={unannotated}"]
            kinds.setdefault("no_annotation", []).append(f"{task_id}_{unannotated}")
        videos.append(f"{RELATED_TASK},{youtube_id(rng)},https://www.youtube.com/watch?v=related")
        texts = {"tasks_primary.txt": "\n".join(blocks), "videos.csv": "\n".join(videos) + "\n",
                 "videos_val.csv": "\n".join(validation) + "\n"}
        for name, text in texts.items():
            with open(os.path.join(root, name), "w", encoding="utf-8") as f:
                f.write(text)
        write_vocab(out)
        return write_info(out, {"task": "crosstask", "seed": seed, "videos_per_task": videos_per_task,
                                "validation": [r.split(",")[1] for r in validation], "kinds": kinds,
                                "feature_dim": feature_dim, "max_regions": MAX_REGIONS})


def run(args):
    """``make_demo_data.py --task coin|crosstask`` (``args``: its parsed flags): write and summarise."""
    if args.num_videos is not None and args.num_videos < 1:
        raise DataError(f"--num-videos must be at least 1, got {args.num_videos}")
    out = args.out or f"data/demo_{args.task}"
    start = time.perf_counter()
    if args.task == "coin":
        info = make_coin_demo(out, args.seed, args.num_videos or 120, feature_dim=args.feature_dim, noise=args.noise)
        summary = (f"{info['videos']} COIN videos ({info['training']} training, {info['testing']} testing), "
                   f"{info['num_classes']} classes, {len(info['no_features'])} without features")
    else:
        info = make_crosstask_demo(out, args.seed, args.num_videos or 40, feature_dim=args.feature_dim,
                                   noise=args.noise)
        summary = (f"{len(crosstask.PRIMARY_TASKS)} CrossTask tasks, {info['videos_per_task']} annotated videos each "
                   f"(+1 validation, +1 unannotated), {len(info['kinds']['no_features'])} without features")
    print(f"wrote {out}/: {summary}; features {info['feature_dim']}-d ({time.perf_counter() - start:.1f} s)")
