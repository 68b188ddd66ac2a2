"""MSR-VTT captions and features for fine-tuning retrieval (and a held-out validation list).

Inputs, as the MSR-VTT release and the usual split lists have them:

- ``captions_path``: ``MSRVTT_data.json``; its ``sentences`` list holds one entry per
  caption, ``{"video_id": "video0", "caption": "...", "sen_id": 0}`` (20 per video);
  other top-level keys (``videos``, ``info``) are not read.
- ``split_path``: ``MSRVTT_train.9k.csv`` / ``MSRVTT_train.7k.csv``, a CSV with a
  ``video_id`` column (other columns ignored), one training video per row.
- ``features_path``: an LMDB of pickled feature dicts keyed by video id, in the format of
  the released ``msrvtt_test.lmdb`` (read exactly as ``MSRVTTDataset`` reads it, same
  test-time input construction; see ``msrvtt_dataset.py``), or the project's store
  (``tools/howto100m_to_lmdb.py``; a directory of ``shard-*``), whose clip ids are the
  MSR-VTT video ids; its features then go through the same input construction.

``part: train`` gives every caption of every split video (except the last
``holdout_videos`` videos of the list) as one training sample; ``part: holdout`` gives
those last ``holdout_videos`` videos with ``captions_per_video`` captions each (default 1,
the lowest ``sen_id``), as a retrieval set that ``score_matrix`` scores (``--validate``).
The two parts of one list never share a video: training with ``--validate`` refuses a
``holdout`` part whose ``holdout_videos`` differs from the ``train`` part's, or any validation
video that is also a training video (``check_disjoint``).

A training sample is the caption's text input, its video's input and ``video_index``
(int64, the video's position in ``video_ids``), so that a batch knows which of its
captions share a video. ``negatives_per_sample`` N > 0 also draws N other videos of the
set and one caption of each (``neg_*`` keys, [N, ...]): negatives "from the set".
``mask_text: true`` adds ``masked_text_ids`` and ``text_labels`` (pretraining's word
masking, for the optional masked-word term).
"""

import csv
import json
import os
import re

import numpy as np

from ...fields import MAX_ACTION_NUM, MAX_REGION_NUM, MAX_SEQ_LENGTH, TEXT_KEYS, VIDEO_KEYS
from ...utils.errors import ConfigError, DataError
from ...utils.logger import get_logger
from ..pipelines.multimodal import RandomMask
from ..registry import DATASETS
from ..store.lmdb_store import HEADER_KEY, ID_PREFIX, PretrainStore, reader_env, shard_paths
from .msrvtt_dataset import MSRVTTDataset

EXAMPLES = 3  # how many missing videos an error names


def read_split(path):
    """Video ids of a split list (a CSV with a ``video_id`` column), in order, without repeats."""
    if not os.path.isfile(path):
        raise DataError(f"split_path (the MSR-VTT split list) not found: '{path}'")
    with open(path, encoding="utf-8-sig", newline="") as f:
        reader = csv.DictReader(f)
        fields = [c.strip() for c in (reader.fieldnames or [])]
        if "video_id" not in fields:
            raise DataError(f"{path}: no 'video_id' column in the header (got {fields}); expected a split list "
                            "such as MSRVTT_train.9k.csv")
        column = reader.fieldnames[fields.index("video_id")]
        ids = [(row.get(column) or "").strip() for row in reader]
    ids = [v for v in ids if v]
    if not ids:
        raise DataError(f"{path}: the split list names no video")
    return list(dict.fromkeys(ids))


def read_sentences(path):
    """video id -> [(sen_id int, caption), ...] sorted by sen_id, from ``MSRVTT_data.json``."""
    if not os.path.isfile(path):
        raise DataError(f"captions_path (MSRVTT_data.json) not found: '{path}'")
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(data, dict) or "sentences" not in data:
        keys = ", ".join(map(str, data)) if isinstance(data, dict) else type(data).__name__
        raise DataError(f"{path}: expected MSRVTT_data.json with a 'sentences' list, got {keys or 'nothing'}")
    if not isinstance(data["sentences"], list):
        raise DataError(f"{path}: 'sentences' must be a list of {{video_id, caption}} records, got "
                        f"{type(data['sentences']).__name__}")
    by_video = {}
    for n, entry in enumerate(data["sentences"]):
        video, sen_id, caption = _sentence(path, n, entry)
        by_video.setdefault(video, []).append((sen_id, caption))
    for captions in by_video.values():
        captions.sort(key=lambda item: item[0])
    return by_video


def _sen_id(path, n, video, entry):
    """The record's ``sen_id`` as an int (its position ``n`` when absent). MSR-VTT's are ints; a
    string of digits ("7", as some converted copies write them) means the same number, so a file
    mixing the two sorts by number. Anything else is a DataError naming the record."""
    value = entry.get("sen_id", n)
    if isinstance(value, str) and re.fullmatch(r"-?[0-9]+", value.strip()):
        return int(value)
    if not isinstance(value, int) or isinstance(value, bool):
        raise DataError(f"{path}: sentences[{n}] (video '{video}'): 'sen_id' must be an integer (or a string of "
                        f"digits), got {type(value).__name__} {value!r:.60}")
    return value


def _sentence(path, n, entry):
    """(video id, sen_id, caption) of record ``n`` of ``sentences``; DataError naming the record
    when it is not an object with a video id, an integer sen_id and a non-empty caption string."""
    if not isinstance(entry, dict):
        raise DataError(f"{path}: sentences[{n}] must be an object with 'video_id' and 'caption', got "
                        f"{type(entry).__name__} {entry!r:.60}")
    if not {"video_id", "caption"} <= set(entry):
        raise DataError(f"{path}: sentences[{n}] must have 'video_id' and 'caption', got keys "
                        f"{', '.join(map(str, entry)) or 'none'}")
    video, caption = str(entry["video_id"]).strip(), entry["caption"]
    named = f"{path}: sentences[{n}] (video '{video}', sen_id {entry.get('sen_id', n)})"
    if not isinstance(caption, str):
        raise DataError(f"{named}: the caption must be a string, got {type(caption).__name__} {caption!r:.60}")
    if not caption.strip():
        raise DataError(f"{named}: empty caption")
    return video, _sen_id(path, n, video, entry), caption.strip()


@DATASETS.register()
class MSRVTTTrainDataset(MSRVTTDataset):
    """MSR-VTT training captions (or a held-out retrieval list) with their video features.

    Args (beyond ``MSRVTTDataset``'s input sizes and switches, which mean the same here):
        captions_path: ``MSRVTT_data.json``.
        split_path: the split list CSV (``video_id`` column).
        features_path: the MSR-VTT-format features LMDB holding the split's videos.
        part: ``train`` (all captions of the list minus the held-out videos) or
            ``holdout`` (the held-out videos only, for ``--validate``).
        holdout_videos: how many videos at the end of the list are held out (0: none).
        captions_per_video: captions taken per video (None: all for ``train``, 1 for ``holdout``).
        negatives_per_sample: N other videos (and a caption of each) drawn per sample (0: none).
        mask_text: also return pretraining-style masked text and its labels.
        skip_bad_records: train without the split's videos that are missing from the
            features or from the captions (logged) instead of stopping.
    """

    def __init__(self, captions_path, split_path, features_path, vocab_file=None, part="train", holdout_videos=0,
                 captions_per_video=None, negatives_per_sample=0, mask_text=False, skip_bad_records=False,
                 max_seq_length=MAX_SEQ_LENGTH, max_region_num=MAX_REGION_NUM, max_action_num=MAX_ACTION_NUM,
                 global_region_from_all_boxes=True,
                 action_mask_all_ones=True, vision_feature_dim=None, action_feature_dim=None,
                 bert_model="bert-base-uncased", padding_index=None, pipeline=None):
        if part not in ("train", "holdout"):
            raise ConfigError(f"MSRVTTTrainDataset.part must be 'train' or 'holdout', got {part!r}")
        for key, value in (("holdout_videos", holdout_videos), ("negatives_per_sample", negatives_per_sample)):
            if not isinstance(value, int) or value < 0:
                raise ConfigError(f"MSRVTTTrainDataset.{key} must be an integer >= 0, got {value!r}")
        if captions_per_video is not None and (not isinstance(captions_per_video, int) or captions_per_video < 1):
            raise ConfigError(f"MSRVTTTrainDataset.captions_per_video must be >= 1 or null, got {captions_per_video!r}")
        if part == "holdout" and holdout_videos < 1:
            raise ConfigError("MSRVTTTrainDataset part 'holdout' needs holdout_videos >= 1")
        self.captions_path, self.split_path, self.part = str(captions_path), str(split_path), part
        # holdout: scored as a retrieval set; the training part validates by the loss
        self.default_metric = "MSRVTTMetric" if part == "holdout" else None
        self.holdout_videos, self.skip_bad_records = holdout_videos, bool(skip_bad_records)
        self.captions_per_video = captions_per_video or (1 if part == "holdout" else None)
        self.negatives_per_sample, self.mask_text = negatives_per_sample, bool(mask_text)
        super().__init__(self.captions_path, features_path, vocab_file, max_seq_length, max_region_num,
                         max_action_num, global_region_from_all_boxes, action_mask_all_ones, vision_feature_dim,
                         action_feature_dim, bert_model, padding_index, pipeline)
        if negatives_per_sample > self.num_videos - 1:
            raise ConfigError(
                f"negatives_per_sample {negatives_per_sample} is larger than the {self.num_videos - 1} other videos "
                f"of {self.split_path} ({part})")
        self._captions_of = [np.flatnonzero(self.query_video_index == j) for j in range(self.num_videos)]
        self._masker = RandomMask(max_seq_length=max_seq_length) if self.mask_text else None

    def check_disjoint(self, train):
        """ConfigError unless this validation set shares no video with the training set ``train``:
        the two parts of one split list must hold out the same number of videos."""
        same_list = os.path.realpath(getattr(train, "split_path", "")) == os.path.realpath(self.split_path)
        if same_list and getattr(train, "holdout_videos", None) != self.holdout_videos:
            raise ConfigError(
                f"DATASET.train.holdout_videos is {train.holdout_videos} but DATASET.valid.holdout_videos is "
                f"{self.holdout_videos} for the same list {self.split_path}: they must be equal, or validation "
                f"videos are trained on (or held out unused)")
        trained = set(getattr(train, "video_ids", ()))
        shared = [v for v in self.video_ids if v in trained]
        if shared:
            names = ", ".join(shared[:EXAMPLES]) + (", ..." if len(shared) > EXAMPLES else "")
            raise ConfigError(f"{len(shared)} of the {self.num_videos} validation videos of DATASET.valid "
                              f"({self.split_path}) are also training videos of DATASET.train ({names})")

    # ---- reading (replaces MSRVTTDataset's query CSV)
    def _read_queries(self):
        videos = read_split(self.split_path)
        if self.holdout_videos >= len(videos):
            raise ConfigError(f"holdout_videos {self.holdout_videos} leaves no training video of the "
                              f"{len(videos)} in {self.split_path}")
        cut = len(videos) - self.holdout_videos
        videos = videos[:cut] if self.part == "train" else videos[cut:]
        sentences = read_sentences(self.captions_path)
        videos = self._drop_missing(videos, [v for v in videos if v not in sentences],
                                    f"have no caption in {self.captions_path}")
        self._store, self._store_index = self._open_store()
        if self._store is not None:
            absent = [v for v in videos if v not in self._store_index]
        else:
            with self._open().begin(buffers=True) as txn:
                absent = [v for v in videos if txn.get(v.encode("utf-8")) is None]
        videos = self._drop_missing(videos, absent, f"are not in the features LMDB '{self.features_path}'")
        query_videos, captions = [], []
        for vid in videos:
            for _, caption in sentences[vid][: self.captions_per_video]:
                query_videos.append(vid)
                captions.append(caption)
        return query_videos, captions

    def _drop_missing(self, videos, missing, problem):
        if not missing:
            return videos
        names = ", ".join(missing[:EXAMPLES]) + (", ..." if len(missing) > EXAMPLES else "")
        message = f"{self.split_path}: {len(missing)} of {len(videos)} videos {problem} ({names})"
        if not self.skip_bad_records or len(missing) == len(videos):
            raise DataError(message + ("" if self.skip_bad_records else "; set skip_bad_records: true to train "
                                       "without them"))
        get_logger().warning("%s; skipped (skip_bad_records)", message)
        gone = set(missing)
        return [v for v in videos if v not in gone]

    def _open_store(self):
        """(PretrainStore, clip id -> global index) when ``features_path`` is the project's store,
        else (None, None)."""
        path = self.features_path
        single = os.path.isfile(os.path.join(path, "data.mdb"))
        if single:
            with reader_env(path).begin() as txn:
                if txn.get(HEADER_KEY) is None:
                    return None, None  # a plain MSR-VTT LMDB
        elif not os.path.isdir(path):
            return None, None  # let the LMDB reader report it
        store = PretrainStore(shard_paths(path))
        index = {}
        for shard, offset in zip(store.paths, store.offsets):
            with reader_env(shard).begin() as txn:
                cursor = txn.cursor()
                if cursor.set_range(ID_PREFIX):
                    for key, value in cursor:
                        if not key.startswith(ID_PREFIX):
                            break
                        index[key[len(ID_PREFIX):].decode("utf-8")] = offset + int(value)
        return store, index

    def read_record(self, video_id):
        """The video's arrays (see ``parse_record``), from the MSR-VTT LMDB or the store."""
        if self._store is None:
            return super().read_record(video_id)
        clip = self._store.get(self._store_index[video_id])
        return {"features": np.asarray(clip.image_feature, np.float32), "boxes": clip.boxes,
                "action": np.asarray(clip.action_feature, np.float32), "image_h": clip.image_h,
                "image_w": clip.image_w}

    def _check_videos_present(self, query_videos):
        pass  # done while reading, with the count and skip_bad_records

    # ---- samples
    def __getitem__(self, i):
        j = int(self.query_video_index[i])
        sample = {**self.query(i), **self.video(j), "video_index": np.int64(j)}
        if self._masker is not None:
            masked = self._masker.mask_text(self.tokenizer.encode(self.captions[i]), self.tokenizer)
            sample.update(masked_text_ids=masked["text_ids"], text_labels=masked["text_labels"])
        if self.negatives_per_sample:
            sample.update(self._set_negatives(j))
        return sample

    def _set_negatives(self, j):
        """N random other videos and one random caption of each: ``neg_*`` arrays [N, ...]."""
        others = np.random.choice(self.num_videos - 1, size=self.negatives_per_sample, replace=False)
        others = others + (others >= j)  # skip the positive video
        captions = [int(np.random.choice(self._captions_of[v])) for v in others]
        out = {"neg_video_index": others.astype(np.int64)}
        texts = [self.query(q) for q in captions]
        videos = [self.video(int(v)) for v in others]
        out.update({f"neg_{k}": np.stack([t[k] for t in texts]) for k in TEXT_KEYS})
        out.update({f"neg_{k}": np.stack([v[k] for v in videos]) for k in VIDEO_KEYS})
        return out

    def __repr__(self):
        return (f"MSRVTTTrainDataset({self.part}: {self.num_queries} captions, {self.num_videos} videos, "
                f"split_path='{self.split_path}', features_path='{self.features_path}')")
