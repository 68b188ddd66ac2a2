"""YouCook2 datasets over segment features in an MSR-VTT-style LMDB (one record per segment,
key ``<video_id>_<start>_<end>``, see ``loader.youcook2``).

- ``YouCook2RetrievalDataset``: zero-shot text->video retrieval over MIL-NCE's
  ``validation_youcook.csv`` (3,350 clips): one query (the clip's sentence) per clip, the
  candidates are the clips; scored by the MSR-VTT path (same inputs, same quirks).
- ``YouCook2CaptionDataset``: the segments of one subset of
  ``youcookii_annotations_trainval.json``, each with its video input and caption ids
  ``[CLS] w_1 .. w_n [SEP] [PAD]..`` (the decoder's teacher-forcing input and target).
"""

import numpy as np

from ...fields import CAPTION_KEY
from ...utils.errors import ConfigError, DataError
from ...utils.registry import accepted_kwargs
from ..registry import DATASETS
from ..youcook2 import SUBSETS, read_annotations, read_retrieval_csv, subset_segments
from .msrvtt_dataset import MSRVTTDataset


@DATASETS.register()
class YouCook2RetrievalDataset(MSRVTTDataset):
    """``file_path``: ``validation_youcook.csv``; ``features_path``: the segment LMDB;
    ``annotation_file`` (optional): the annotation JSON, to check every row is an annotated
    segment and to know its index. Other keys as ``MSRVTTDataset``. ``clips``: the rows as
    ``loader.youcook2.Segment``. Evaluated by ``YouCook2RetrievalMetric`` (the MSR-VTT scoring
    path, with the clip count and the projected time printed first)."""

    default_metric = "YouCook2RetrievalMetric"
    config_keys = accepted_kwargs(MSRVTTDataset) + ["annotation_file"]

    def __init__(self, file_path, features_path, annotation_file=None, **kwargs):
        self.annotation_file = annotation_file
        super().__init__(file_path, features_path, **kwargs)

    def _read_queries(self):
        annotations = read_annotations(self.annotation_file) if self.annotation_file else None
        self.clips = read_retrieval_csv(self.file_path, annotations)
        return [c.key for c in self.clips], [c.sentence for c in self.clips]

    def __repr__(self):
        return (f"YouCook2RetrievalDataset({self.num_queries} clips of {len({c.video_id for c in self.clips})} "
                f"videos, file_path='{self.file_path}', features_path='{self.features_path}')")


@DATASETS.register()
class YouCook2CaptionDataset(MSRVTTDataset):
    """Captioned segments of ``subset`` (``training`` / ``validation``).

    file_path: ``youcookii_annotations_trainval.json``; features_path: the segment LMDB;
    max_seq_length: caption slots incl. [CLS]/[SEP] (longer captions are cut for training;
    the references the metrics read are the full sentences). ``action_mask_all_ones``
    defaults to False here (padded action slots masked). ``segments``: the Segments, in
    file order; ``__getitem__(i)``: the video input of segment i + ``caption_ids`` int64 [T]
    + ``index`` (i). Evaluated by ``YouCook2CaptionMetric``.
    """

    default_metric = "YouCook2CaptionMetric"
    config_keys = accepted_kwargs(MSRVTTDataset) + ["subset"]

    def __init__(self, file_path, features_path, subset="training", max_seq_length=40, action_mask_all_ones=False,
                 **kwargs):
        if subset not in SUBSETS[:2]:
            raise ConfigError(f"YouCook2CaptionDataset: subset must be 'training' or 'validation', got {subset!r}")
        self.subset = subset
        super().__init__(file_path, features_path, max_seq_length=max_seq_length,
                         action_mask_all_ones=action_mask_all_ones, **kwargs)

    def _read_queries(self):
        self._videos = read_annotations(self.file_path)
        self.segments = subset_segments(self._videos, self.subset)
        if not self.segments:
            raise DataError(f"{self.file_path}: no {self.subset} segments")
        return [s.key for s in self.segments], [s.sentence for s in self.segments]

    def __getitem__(self, i):
        sample = {**self.video(int(self.query_video_index[i])), CAPTION_KEY: self._text["text_ids"][i],
                  "index": np.int64(i)}
        return self.pipeline(sample) if self.pipeline is not None else sample

    def references(self):
        """{segment key: the annotation's own sentence} (the metrics' references)."""
        return {s.key: s.sentence for s in self.segments}

    def training_sentences(self):
        """The sentences of the training subset (for the most-frequent-sentence baseline)."""
        return [s.sentence for s in subset_segments(self._videos, "training")]

    def check_disjoint(self, train):
        """DataError when a training set of this kind shares videos with this (validation) set."""
        shared = {s.video_id for s in self.segments} & {s.video_id for s in getattr(train, "segments", ())}
        if shared and train is not self:
            raise DataError(f"DATASET.valid ({self.subset}) shares {len(shared)} videos with DATASET.train "
                            f"({getattr(train, 'subset', '?')}), e.g. {sorted(shared)[0]}")

    def __repr__(self):
        return (f"YouCook2CaptionDataset({len(self.segments)} {self.subset} segments, file_path='{self.file_path}', "
                f"features_path='{self.features_path}')")
