"""COIN action segmentation: windows of per-second features with a class per second.

A video's T seconds (the rows of its per-second record) are cut into windows of
``window_size`` seconds (``loader/steps/windows.py``); a window is one ActBERT input whose
action slots are its seconds (``loader/steps/seconds.py``, ``window_inputs``) and whose
text is ``[CLS] [SEP]`` (COIN's test videos come without text). The class of second
start + i (``loader/steps/coin.py``: 0 background, the global step ids numbered from 1) is
the label of action slot i; slots past the video's end are labelled -1 (ignored).
"""

import numpy as np

from ...utils.errors import ConfigError, DataError
from ...utils.logger import get_logger
from ..registry import DATASETS
from ..steps import coin
from ..steps.seconds import SecondFeatures, stack_windows, window_inputs
from ..steps.windows import window_starts
from ..tokenizer import load_tokenizer

IGNORE = -1
NAMES_SHOWN = 10


def check_positive(where, **values):
    """ConfigError naming ``where.key`` for a value that is not a whole number >= 1."""
    for key, value in values.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"{where}.{key} must be a whole number >= 1, got {value!r}")


def report_missing(what, missing, total):
    """Log the videos of a set that have no per-second record (count and first names)."""
    if missing:
        shown = ", ".join(missing[:NAMES_SHOWN]) + (", ..." if len(missing) > NAMES_SHOWN else "")
        get_logger().warning("%s: %d of %d videos have no per-second features and are left out: %s", what,
                             len(missing), total, shown)


def check_disjoint_videos(valid, train):
    """DataError naming the videos of ``valid`` that are also in ``train`` (ids)."""
    shared = sorted(set(valid) & set(train))
    if shared:
        raise DataError(f"DATASET.valid shares {len(shared)} videos with DATASET.train (e.g. {', '.join(shared[:3])}): "
                        "validate on the test subset / part")


def empty_text(tokenizer, length):
    """``[CLS] [SEP]`` padded to ``length``: dict of int64 [length] arrays (the text of a video-only input)."""
    ids, mask, types = tokenizer.build_input_ids([], length)
    return {"text_ids": ids, "text_mask": mask, "token_type_ids": types}


@DATASETS.register()
class COINDataset:
    """Windows of the COIN videos of one subset that have per-second features.

    Args:
        file_path: the official ``COIN.json``.
        features_dir: folder of per-second records ``<video_id>.npz``.
        vocab_file: the BERT vocabulary (for the ids of [CLS] and [SEP]).
        subset: ``training`` or ``testing``.
        window_size: seconds per window (ActBERT's action slots, 5 as in pretraining).
        stride: seconds between window starts (training: ``window_size``; test: smaller,
            the logits of overlapping windows are averaged).
        boxes_per_second: boxes of each second kept in a window (window_size * this + 1
            region slots).
        max_seq_length: text slots (2: ``[CLS] [SEP]``).
        vision_feature_dim, action_feature_dim: expected feature sizes (None: the first record's).

    ``__getitem__(i)``: window i: the ActBERT inputs, ``region_second`` [V-1] and ``labels``
    int64 [window_size]. ``video(j)``: every window of video j stacked, its starts and the
    labels of its T seconds. Videos without a record are counted, named in the log and kept
    in ``missing``: the evaluation reports them.
    """

    default_metric = "COINMetric"

    def __init__(self, file_path, features_dir, vocab_file, subset="training", window_size=5, stride=None,
                 boxes_per_second=7, max_seq_length=2, vision_feature_dim=None, action_feature_dim=None,
                 pipeline=None):
        where = f"DATASET ({subset})"
        check_positive(where, window_size=window_size, boxes_per_second=boxes_per_second)
        stride = window_size if stride is None else stride
        check_positive(where, stride=stride)
        if stride > window_size:
            raise ConfigError(f"{where}.stride {stride} is larger than window_size {window_size}: seconds "
                              "between windows would have no prediction")
        if subset not in coin.SUBSETS:
            raise ConfigError(f"{where}.subset must be one of {', '.join(coin.SUBSETS)}, got {subset!r}")
        self.window_size, self.stride, self.boxes_per_second = window_size, stride, boxes_per_second
        self.pipeline = pipeline or None
        videos = coin.read_coin(file_path)
        self.classes = coin.step_classes(videos)
        self.class_names = coin.class_names(videos, self.classes)
        self.num_classes = len(self.classes) + 1
        self.features = SecondFeatures(features_dir, vision_feature_dim, action_feature_dim)
        wanted = [v for v in videos.values() if v.subset == subset]
        self.videos = [v for v in wanted if self.features.has(v.video_id)]
        self.missing = [v.video_id for v in wanted if not self.features.has(v.video_id)]
        report_missing(f"COIN {subset} ({file_path})", self.missing, len(wanted))
        if not self.videos:
            raise DataError(f"{file_path}: no {subset} video has per-second features in {features_dir}")
        self.text = empty_text(load_tokenizer(vocab_file), max_seq_length)
        self._index = self._windows()

    @property
    def video_ids(self):
        return [v.video_id for v in self.videos]

    def check(self):
        """Read the first video's record whole (its sizes and values checked) before any work."""
        self.features.get(self.videos[0].video_id)

    def check_disjoint(self, train):
        """DataError when this (validation) set shares videos with the training set ``train``."""
        check_disjoint_videos(self.video_ids, getattr(train, "video_ids", []))

    def seconds(self, j):
        """T of video j (its record's rows)."""
        return self.features.num_seconds(self.videos[j].video_id)

    def _windows(self):
        """(video, start) of every window: int64 [N, 2]."""
        rows = [(j, s) for j in range(len(self.videos))
                for s in window_starts(self.seconds(j), self.window_size, self.stride)]
        return np.array(rows, dtype=np.int64).reshape(-1, 2)

    def __len__(self):
        return len(self._index)

    def labels(self, j):
        """Class of each second of video j: int64 [T]."""
        return coin.second_labels(self.videos[j], self.classes, self.seconds(j))

    def __getitem__(self, i):
        j, start = (int(x) for x in self._index[i])
        record = self.features.get(self.videos[j].video_id)
        sample = {**self.text, **window_inputs(record, start, self.window_size, self.boxes_per_second)}
        labels = np.full(self.window_size, IGNORE, dtype=np.int64)
        seconds = self.labels(j)[start:start + self.window_size]
        labels[:len(seconds)] = seconds
        sample["labels"] = labels
        return self.pipeline(sample) if self.pipeline is not None else sample

    def video(self, j):
        """(inputs of every window of video j, dict of arrays [W, ...]; starts int64 [W]; labels int64 [T])."""
        record = self.features.get(self.videos[j].video_id)
        starts = window_starts(len(record["action"]), self.window_size, self.stride)
        inputs = stack_windows(record, starts, self.window_size, self.boxes_per_second)
        inputs.update({k: np.repeat(v[None], len(starts), axis=0) for k, v in self.text.items()})
        return inputs, starts, self.labels(j)
