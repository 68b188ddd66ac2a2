"""ActBERT pretraining dataset: the LMDB store, or PaddleVideo's ``.npy`` unchanged."""

import multiprocessing
import os

import numpy as np
from paddle.io import Dataset

from ...utils.errors import ConfigError, DataError
from ...utils.logger import get_logger
from ..builder import Compose
from ..pipelines.multimodal import SAMPLE_KEYS, RandomCap, Tokenize
from ..registry import DATASETS
from ..store import NpyClips, PretrainStore

# A run of this many bad records in a row is not bad luck but bad data: stop.
MAX_CONSECUTIVE_BAD = 100


def open_source(file_path, check_crc=True):
    """A clip source for ``file_path``: ``NpyClips`` for a ``.npy`` file, else ``PretrainStore``."""
    if isinstance(file_path, (str, os.PathLike)) and str(file_path).endswith(".npy"):
        return NpyClips(file_path)
    if isinstance(file_path, (list, tuple)) and any(str(p).endswith(".npy") for p in file_path):
        raise ConfigError("file_path: a list must name store shards or directories; convert .npy files with "
                          "tools/howto100m_to_lmdb.py to use several")
    return PretrainStore(file_path, check_crc=check_crc)


@DATASETS.register()
class ActBertDataset(Dataset):
    """Pretraining samples (the dict of ``SAMPLE_KEYS``, shapes in the contract).

    Args:
        file_path: the store (a directory of shards, one shard, or a list of them), or
            PaddleVideo's ``actbert_train_data.npy``.
        pipeline: the steps (``PIPELINE.<split>``: FeaturePadding, RandomCap, Tokenize,
            RandomMask); a Compose or its YAML list.
        vocab_file: bert-base-uncased ``vocab.txt`` — the place to set the vocabulary.
        bert_model: PaddleVideo's name of that vocabulary; only used in the message
            asking for ``vocab_file`` (nothing is downloaded).
        skip_bad_records: instead of raising on a bad record, log its file and key,
            use the next record, and count it (``end_epoch`` logs the count).
        check_crc: verify the CRC-32 of store records as they are read.
        data_prefix, test_mode: accepted for PaddleVideo configs; unused.

    The source is opened lazily in each process: a DataLoader worker opens its own
    read-only LMDB handles. Negative captions come from a random other clip.
    ``expect_action_classes`` (called by the framework before training) makes every sample's
    action class ids checked against the model's action head.
    """

    action_classes, action_classes_key = None, None  # the model's action class count and its config key

    def __init__(self, file_path, pipeline=None, vocab_file=None, bert_model="bert-base-uncased", data_prefix=None,
                 test_mode=False, skip_bad_records=False, check_crc=True):
        super().__init__()
        self.file_path = file_path
        self.pipeline = pipeline if isinstance(pipeline, Compose) else Compose(pipeline)
        self.vocab_file = self._resolve_vocab(vocab_file, bert_model)
        self.skip_bad_records = bool(skip_bad_records)
        self.source = open_source(file_path, check_crc)
        # Shared with forked DataLoader workers, so the epoch summary counts their skips.
        self._skipped = multiprocessing.Value("q", 0)

    def _resolve_vocab(self, vocab_file, bert_model):
        """Check the vocabulary in the main process, before any worker starts."""
        for step in self.pipeline:
            if isinstance(step, Tokenize):
                step.bert_model = step.bert_model or bert_model
                vocab_file = step.resolve_vocab(vocab_file, "DATASET.train")
        return vocab_file

    def __len__(self):
        return len(self.source)

    def check(self):
        """Open every file a sample needs (vocabulary, caption JSON) and build the first sample
        (its record, or the first good one with ``skip_bad_records``): run before training,
        so that bad input fails at once rather than in a DataLoader worker."""
        for step in self.pipeline:
            if isinstance(step, RandomCap):
                step.check()
        self[0]
        with self._skipped.get_lock():  # counted again when training reads them
            self._skipped.value = 0

    def __getitem__(self, index):
        index = int(index)
        for attempt in range(MAX_CONSECUTIVE_BAD):
            i = (index + attempt) % len(self)
            try:
                return self.sample(i)
            except DataError as exc:
                if not self.skip_bad_records:
                    raise
                self._note_skip(exc)
        raise DataError(f"{self.source.where(index)}: {MAX_CONSECUTIVE_BAD} consecutive bad records from here; "
                        f"check the data with tools/howto100m_to_lmdb.py --verify")

    def sample(self, index):
        """The sample of record ``index`` (no skipping): dict name -> numpy array."""
        results = {
            "clip": self.source.get(index),
            "index": index,
            "vocab_file": self.vocab_file,
            "other_caption": lambda: self.other_caption(index),
        }
        results = self.pipeline(results)
        missing = [k for k in SAMPLE_KEYS if k not in results]
        if missing:
            raise ConfigError(f"the ActBertDataset pipeline did not produce {', '.join(missing)}; it must be "
                              f"FeaturePadding, RandomCap, Tokenize, RandomMask")
        self._check_action_ids(index, results)
        return {k: results[k] for k in SAMPLE_KEYS}

    def expect_action_classes(self, count, key):
        """From now on (and in the loader workers started later) every sample's action class ids
        must be < ``count``, the model's action class count, set by the config key ``key``."""
        self.action_classes, self.action_classes_key = int(count), key

    def _check_action_ids(self, index, results):
        """ConfigError when the clip (``action_target`` [A], its first ``num_actions`` real) holds
        an action class id the model has no class for. Not a DataError: the model and the data
        disagree, so ``skip_bad_records`` does not skip it."""
        if self.action_classes is None:
            return
        ids = results["action_target"][: results["num_actions"]]
        top = int(ids.max()) if ids.size else -1
        if top >= self.action_classes:
            raise ConfigError(f"the data holds action class id {top} (at least {top + 1} action classes), but "
                              f"{self.action_classes_key} is {self.action_classes}; set it to the data's number "
                              f"of action classes ({self.source.where(index)} holds id {top})")

    def other_caption(self, index):
        """A caption (str) of a clip drawn uniformly among all clips but ``index``: O(1)."""
        n = len(self)
        if n < 2:
            raise ConfigError(f"{self.file_path}: a mismatched caption needs at least two clips; "
                              f"set RandomCap.caption_path to a caption JSON")
        other = np.random.randint(n - 1)
        other += other >= index
        captions = [c for c in self.source.captions(other) if isinstance(c, str) and c.strip()]
        if not captions:
            raise DataError(f"{self.source.where(other)}: empty caption list")
        return captions[np.random.randint(len(captions))]

    def _note_skip(self, exc):
        with self._skipped.get_lock():
            self._skipped.value += 1
            count = self._skipped.value
        get_logger().warning("skipping bad record (%d this epoch): %s", count, exc)

    def end_epoch(self, epoch=None):
        """Log how many bad records were skipped since the last call (all workers); return the count."""
        with self._skipped.get_lock():
            count, self._skipped.value = self._skipped.value, 0
        if count:
            label = f"epoch {epoch}: " if epoch is not None else ""
            get_logger().warning("%sskipped %d bad record(s) of %s (keys logged above)", label, count, self.file_path)
        return count
