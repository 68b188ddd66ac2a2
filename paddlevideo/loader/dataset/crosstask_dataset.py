"""CrossTask step localization: (second, step text) pairs of the primary tasks.

Second t of a video is seen through the ``window_size``-second window centred on it
(``centred_start``); a step is its text from ``tasks_primary.txt`` as a caption
(``[CLS] text [SEP]``). The split (``loader/steps/crosstask.py``: videos_val.csv dropped,
``n_train`` videos per task drawn with ``seed``, the rest tested) is read from
``split_file`` when it exists, else drawn and written there (the record of which videos
were tested).

- ``part: train``: one item per annotated second of the training videos: its window, the
  texts of its task's steps (padded to ``max_steps`` with ``step_mask`` 0) and ``label``,
  the index of the step it shows (the first in task order when intervals overlap).
  Background seconds carry no label under the metric's per-second normalisation over
  steps, so they are not items.
- ``part: test``: ``video(j)`` gives every second's window, the task's step texts and the
  ground truth [T, K] of test video j.
"""

import os

import numpy as np

from ...utils.errors import ConfigError, DataError
from ..registry import DATASETS
from ..steps import crosstask
from ..steps.seconds import SecondFeatures, centred_start, stack_windows, window_inputs
from ..tokenizer import load_tokenizer
from .coin_dataset import check_disjoint_videos, check_positive, report_missing

PARTS = ("train", "test")


def load_split(root, split_file, seed, n_train):
    """The split recorded in ``split_file``, or a new one drawn and written there."""
    if split_file and os.path.exists(split_file):
        split = crosstask.read_split(split_file)
        if split["seed"] != seed or split["n_train"] != n_train:
            raise ConfigError(f"{split_file}: records the split of seed {split['seed']}, n_train {split['n_train']}, "
                              f"not seed {seed}, n_train {n_train}; remove it or give its settings")
        return split
    split = crosstask.draw_split(root, seed=seed, n_train=n_train)
    if split_file:
        crosstask.write_split(split, split_file)
    return split


@DATASETS.register()
class CrossTaskDataset:
    """Per-second windows and step texts of the CrossTask primary tasks.

    Args:
        root: ``crosstask_release/`` (tasks_primary.txt, videos.csv, videos_val.csv, annotations/).
        features_dir: folder of per-second records ``<vid>.npz``.
        vocab_file: the BERT vocabulary.
        part: ``train`` or ``test``.
        split_file: where the split is recorded (read if it exists, else written).
        seed, n_train: the split's draw.
        window_size, boxes_per_second: the window of each second (as COINDataset).
        max_seq_length: text slots of a step text.
        max_steps: step slots of a training item (default: the most steps of a task).
        vision_feature_dim, action_feature_dim: expected feature sizes.
    """

    default_metric = "CrossTaskMetric"

    def __init__(self, root, features_dir, vocab_file, part="test", split_file=None, seed=0,
                 n_train=crosstask.N_TRAIN, window_size=5, boxes_per_second=7, max_seq_length=16, max_steps=None,
                 vision_feature_dim=None, action_feature_dim=None, pipeline=None):
        where = f"DATASET ({part})"
        if part not in PARTS:
            raise ConfigError(f"{where}.part must be one of {', '.join(PARTS)}, got {part!r}")
        check_positive(where, window_size=window_size, boxes_per_second=boxes_per_second, n_train=n_train)
        self.root, self.part, self.pipeline = str(root), part, pipeline or None
        self.window_size, self.boxes_per_second = window_size, boxes_per_second
        self.split = load_split(self.root, split_file, seed, n_train)
        tasks = crosstask.read_tasks(os.path.join(self.root, "tasks_primary.txt"))
        self.tasks = {t: tasks[t] for t in self.split["tasks"]}
        most = max(len(t.steps) for t in self.tasks.values())
        self.max_steps = most if max_steps is None else max_steps
        check_positive(where, max_steps=self.max_steps)
        if self.max_steps < most:
            raise ConfigError(f"{where}.max_steps {self.max_steps} is below a task's {most} steps")
        tokenizer = load_tokenizer(vocab_file)
        self.step_text = {t: self._texts(tokenizer, task.steps, max_seq_length) for t, task in self.tasks.items()}
        self.features = SecondFeatures(features_dir, vision_feature_dim, action_feature_dim)
        wanted = [(t, v) for t, vids in self.split[part].items() for v in vids]
        self.videos = [(t, v) for t, v in wanted if self.features.has(v)]
        self.missing = [f"{t}_{v}" for t, v in wanted if not self.features.has(v)]
        report_missing(f"CrossTask {part} ({self.root})", self.missing, len(wanted))
        if not self.videos:
            raise DataError(f"{self.root}: no {part} video has per-second features in {features_dir}")
        self._truth = {}
        self._items = self._annotated_seconds() if part == "train" else None

    @staticmethod
    def _texts(tokenizer, steps, length):
        built = [tokenizer.build_input_ids(ids, length) for ids in tokenizer.encode_batch(steps)]
        return {"text_ids": np.stack([b[0] for b in built]), "text_mask": np.stack([b[1] for b in built]),
                "token_type_ids": np.stack([b[2] for b in built])}

    @property
    def video_ids(self):
        return [v for _, v in self.videos]

    def check(self):
        """Read the first video's record and annotation before any work."""
        self.features.get(self.videos[0][1])
        self.truth(0)

    def check_disjoint(self, train):
        """DataError when this (validation) set shares videos with the training set ``train``."""
        check_disjoint_videos(self.video_ids, getattr(train, "video_ids", []))

    def truth(self, j):
        """Ground truth of video j: bool [T, K] (``step_matrix`` on its record's seconds)."""
        if j not in self._truth:
            task, vid = self.videos[j]
            steps = len(self.tasks[task].steps)
            annotation = crosstask.read_annotation(crosstask.annotation_path(self.root, task, vid), steps)
            self._truth[j] = crosstask.step_matrix(annotation, steps, self.features.num_seconds(vid))
        return self._truth[j]

    def _annotated_seconds(self):
        """(video, second, step index) of every second inside some step's interval: int64 [N, 3]."""
        rows = []
        for j in range(len(self.videos)):
            truth = self.truth(j)
            for t in np.flatnonzero(truth.any(axis=1)):
                rows.append((j, t, int(truth[t].argmax())))
        if not rows:
            raise DataError(f"{self.root}: the training videos have no annotated second")
        return np.array(rows, dtype=np.int64)

    def __len__(self):
        return len(self._items) if self._items is not None else len(self.videos)

    def __getitem__(self, i):
        if self._items is None:
            raise DataError("a CrossTask test set is read per video (video(j)), not per item")
        j, t, label = (int(x) for x in self._items[i])
        task, vid = self.videos[j]
        record = self.features.get(vid)
        start = centred_start(t, len(record["action"]), self.window_size)
        sample = window_inputs(record, start, self.window_size, self.boxes_per_second)
        texts = self.step_text[task]
        K = len(texts["text_ids"])
        for key, value in texts.items():
            padded = np.zeros((self.max_steps, value.shape[1]), dtype=np.int64)
            padded[:K] = value
            sample[f"step_{key}"] = padded
        sample["step_mask"] = (np.arange(self.max_steps) < K).astype(np.int64)
        sample["label"] = np.int64(label)
        return self.pipeline(sample) if self.pipeline is not None else sample

    def video(self, j):
        """(windows of every second of video j, dict of arrays [T, ...]; step texts, dict of int64
        [K, L]; ground truth bool [T, K]; task id)."""
        task, vid = self.videos[j]
        record = self.features.get(vid)
        T = len(record["action"])
        starts = [centred_start(t, T, self.window_size) for t in range(T)]
        windows = stack_windows(record, starts, self.window_size, self.boxes_per_second) if T else {}
        return windows, self.step_text[task], self.truth(j), task
