"""CrossTask (Zhukov et al., CVPR 2019) step annotations, read from ``crosstask_release/``,
and the seeded train/test split of the primary tasks.

Layout::

    tasks_primary.txt          blocks of 5 lines and a blank one: task id, title, url,
                               number of steps, the steps comma-separated
    videos.csv, videos_val.csv task,vid,url (no header)
    annotations/<task>_<vid>.csv  step,start,end (steps from 1, seconds)

The split (``draw_split``): the 18 primary tasks; every video of ``videos_val.csv`` dropped;
videos without an annotation file dropped (named in the split); per task, ``n_train``
videos drawn for training with ``numpy.random.default_rng(seed)`` from the task's videos in
sorted order, tasks in the order given; the rest tested. ``write_split`` records it.
"""

import json
import math
import os
from dataclasses import dataclass

import numpy as np

from ...utils.errors import DataError
from ...utils.outfile import atomic_file
from ...utils.textfile import read_text

PRIMARY_TASKS = ("16815", "23521", "40567", "44047", "44789", "53193", "59684", "71781", "76400", "77721",
                 "87706", "91515", "94276", "95603", "105222", "105253", "109972", "113766")
N_TRAIN = 30


@dataclass(frozen=True)
class Task:
    """One task of ``tasks_primary.txt``; ``steps`` in the task's canonical order."""

    task_id: str
    title: str
    url: str
    steps: tuple


def _lines(path, what):
    """The lines of a text file, newlines stripped; DataError naming ``path`` if unreadable."""
    return read_text(path, what).splitlines()


def read_tasks(path):
    """The tasks of ``tasks_primary.txt`` (or ``tasks_related.txt``): {task id: Task}, file order."""
    lines, tasks, block, first = _lines(path, "task list"), {}, [], 0
    for number, line in enumerate([*lines, ""], start=1):
        if line.strip():
            block, first = block + [line.strip()], first or number
            continue
        if block:
            task = _task(path, first, block)
            if task.task_id in tasks:
                raise DataError(f"{path}:{first}: task {task.task_id} is listed twice")
            tasks[task.task_id] = task
        block, first = [], 0
    if not tasks:
        raise DataError(f"{path}: no task blocks")
    return tasks


def _task(path, line, block):
    if len(block) != 5:
        raise DataError(f"{path}:{line}: a task block has 5 lines (id, title, url, number of steps, steps), "
                        f"this one has {len(block)}")
    task_id, title, url, count, steps = block
    steps = tuple(s.strip() for s in steps.split(","))
    if not count.isdigit() or int(count) != len(steps) or not all(steps):
        raise DataError(f"{path}:{line}: task {task_id}: says {count!r} steps but lists {len(steps)} "
                        f"non-empty comma-separated ones")
    return Task(task_id, title, url, steps)


def read_videos(path):
    """Rows of ``videos.csv`` / ``videos_val.csv``: [(task, vid, url)], file order, blank lines skipped."""
    rows = []
    for number, line in enumerate(_lines(path, "video list"), start=1):
        if not line.strip():
            continue
        fields = [f.strip() for f in line.split(",", 2)]
        if len(fields) != 3 or not fields[0] or not fields[1]:
            raise DataError(f"{path}:{number}: expected task,vid,url, got {line!r}")
        rows.append(tuple(fields))
    return rows


def annotation_path(root, task, vid):
    """``root/annotations/<task>_<vid>.csv``."""
    return os.path.join(root, "annotations", f"{task}_{vid}.csv")


def read_annotation(path, num_steps):
    """Steps of one video: float64 [N, 3] rows (step from 1, start s, end s), file order.

    DataError naming the file and line for a malformed row, a step outside 1..num_steps or
    an interval that is not 0 <= start <= end.
    """
    rows = []
    for number, line in enumerate(_lines(path, "annotation file"), start=1):
        if not line.strip():
            continue
        try:
            step, start, end = (float(x) for x in line.split(","))
        except ValueError:
            raise DataError(f"{path}:{number}: expected step,start,end numbers, got {line!r}") from None
        if not (step.is_integer() and 1 <= step <= num_steps):
            raise DataError(f"{path}:{number}: step {line.split(',')[0].strip()} is not one of 1..{num_steps}")
        if not (math.isfinite(start) and math.isfinite(end) and 0 <= start <= end):
            raise DataError(f"{path}:{number}: interval must satisfy 0 <= start <= end seconds, got {line!r}")
        rows.append((step, start, end))
    return np.array(rows, dtype=np.float64).reshape(-1, 3)


def step_matrix(annotation, num_steps, num_seconds):
    """Ground truth on the second grid: bool [T, K], True where second t lies in an interval of
    step k (seconds floor(start) <= t < ceil(end), cut at T = ``num_seconds``)."""
    y = np.zeros((num_seconds, num_steps), dtype=bool)
    for step, start, end in annotation:
        y[math.floor(start):min(num_seconds, math.ceil(end)), int(step) - 1] = True
    return y


def draw_split(root, seed=0, n_train=N_TRAIN, tasks=PRIMARY_TASKS):
    """The train/test split of ``tasks`` from ``root`` (``crosstask_release/``), as a dict:
    ``{"seed", "n_train", "tasks", "train": {task: [vid]}, "test": {task: [vid]},
    "dropped_validation": [vid], "no_annotation": ["task_vid"]}`` (lists sorted).

    DataError if a task is not in ``tasks_primary.txt`` or has no more than ``n_train``
    usable videos (it would have no test video, and the mean over tasks would silently change).
    """
    known = read_tasks(os.path.join(root, "tasks_primary.txt"))
    absent = [t for t in tasks if t not in known]
    if absent:
        raise DataError(f"{os.path.join(root, 'tasks_primary.txt')}: no task {', '.join(absent)}")
    validation = {vid for _, vid, _ in read_videos(os.path.join(root, "videos_val.csv"))}
    wanted, per_task, dropped, unannotated = set(tasks), {t: set() for t in tasks}, set(), set()
    for task, vid, _ in read_videos(os.path.join(root, "videos.csv")):
        if task not in wanted:
            continue
        if vid in validation:
            dropped.add(vid)
        elif not os.path.isfile(annotation_path(root, task, vid)):
            unannotated.add(f"{task}_{vid}")
        else:
            per_task[task].add(vid)
    rng, train, test = np.random.default_rng(seed), {}, {}
    for task in tasks:
        vids = sorted(per_task[task])
        if len(vids) <= n_train:
            raise DataError(f"{os.path.join(root, 'videos.csv')}: task {task} has {len(vids)} annotated videos "
                            f"outside videos_val.csv, not more than the {n_train} to train on")
        picked = set(rng.choice(len(vids), size=n_train, replace=False).tolist())
        train[task] = [v for i, v in enumerate(vids) if i in picked]
        test[task] = [v for i, v in enumerate(vids) if i not in picked]
    return {"seed": seed, "n_train": n_train, "tasks": list(tasks), "train": train, "test": test,
            "dropped_validation": sorted(dropped), "no_annotation": sorted(unannotated)}


def write_split(split, path):
    """Write ``split`` as JSON at ``path`` (atomically). An existing file with the same split is
    left as it is; one with another content is refused (DataError), never overwritten."""
    text = json.dumps(split, indent=1) + "\n"
    if os.path.exists(path):
        try:
            with open(path, encoding="utf-8") as f:
                same = f.read() == text
        except (OSError, UnicodeDecodeError) as exc:
            raise DataError(f"{path}: exists and cannot be read ({exc}); not overwritten") from None
        if not same:
            raise DataError(f"{path}: exists with another split; remove it or write elsewhere")
        return
    try:
        with atomic_file(path, "w", encoding="utf-8") as f:
            f.write(text)
    except OSError as exc:
        raise DataError(f"{path}: cannot write the split ({exc.strerror or exc})") from None


def read_split(path):
    """A split written by ``write_split``; DataError naming the file if it is not one."""
    text = "\n".join(_lines(path, "split file"))
    try:
        split = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: not a JSON split file ({exc})") from None
    keys = ("seed", "n_train", "tasks", "train", "test")
    if not isinstance(split, dict) or any(k not in split for k in keys):
        raise DataError(f"{path}: a split file holds {', '.join(keys)}")
    return split
