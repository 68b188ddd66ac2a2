"""How ActBertRetrieval draws the negatives of each positive (caption, video) pair.

The policy is configured under ``MODEL.loss`` (``num_negatives``, ``negative_source``,
``hard_negatives``: the YAML keys of the released configs) but carried out by the
framework, which owns the sampler; the loss only sees the scored pairs.
"""

from dataclasses import dataclass, fields

import numpy as np

from ..utils.errors import ConfigError, DataError

SOURCES = ("batch", "set")


def pick(candidates, k, scores=None):
    """``k`` of ``candidates`` (int array): the top-``k`` by ``scores`` if given, else at random
    (without replacement while there are enough, with replacement otherwise)."""
    if scores is not None:
        order = candidates[np.argsort(-scores, kind="stable")]
        return np.resize(order, k)  # fewer than k candidates: the best ones repeat
    return np.random.choice(candidates, size=k, replace=len(candidates) < k)


@dataclass
class NegativeSampler:
    """K negatives per direction and positive, from the batch or from the set, random or hardest.

    num_negatives: K. negative_source: ``batch`` (other samples of the batch whose video
    differs) or ``set`` (the N videos and captions the training set draws per sample,
    ``negatives_per_sample``). hard_negatives: the K best-scoring candidates under the
    current model instead of K random ones.
    """

    num_negatives: int = 7
    negative_source: str = "batch"
    hard_negatives: bool = False

    def __post_init__(self):
        if self.negative_source not in SOURCES:
            raise ConfigError(
                f"MODEL.loss.negative_source must be one of {', '.join(SOURCES)}, got {self.negative_source!r}")
        if not isinstance(self.num_negatives, int) or self.num_negatives < 1:
            raise ConfigError(f"MODEL.loss.num_negatives must be an integer >= 1, got {self.num_negatives!r}")
        self.hard_negatives = bool(self.hard_negatives)

    @classmethod
    def split_cfg(cls, loss_cfg):
        """(sampler built from the SAMPLER_KEYS of ``loss_cfg``, the rest of ``loss_cfg``)."""
        loss_cfg = dict(loss_cfg)
        sampler = cls(**{k: loss_cfg.pop(k) for k in SAMPLER_KEYS if k in loss_cfg})
        return sampler, loss_cfg

    @property
    def from_set(self):
        return self.negative_source == "set"

    def check(self, dataset, batch_size, where="DATASET.train"):
        """Raise ConfigError before training when the data cannot supply K negatives."""
        K = self.num_negatives
        if K > dataset.num_videos - 1:
            raise ConfigError(f"MODEL.loss.num_negatives {K} is larger than the {dataset.num_videos - 1} other videos "
                              f"of {where}")
        if not self.from_set and K > batch_size - 1:
            raise ConfigError(f"MODEL.loss.num_negatives {K} is larger than the {batch_size - 1} other samples of a "
                              f"batch of {batch_size} (negative_source: batch); raise DATASET.batch_size or lower K")
        drawn = getattr(dataset, "negatives_per_sample", 0)
        if self.from_set and drawn < K:
            raise ConfigError(f"negative_source: set needs {where}.negatives_per_sample >= num_negatives {K} "
                              f"(got {drawn})")

    def candidates(self, video_index, drawn):
        """Per positive i: (first, inverse, candidate video rows, candidate caption rows).

        Rows index the encoded videos / captions: batch videos are de-duplicated (row
        ``inverse[i]`` is positive i's, ``first`` the batch row of each distinct video), set
        negatives (``drawn`` N per sample) follow after the batch rows.
        """
        B = len(video_index)
        unique, first, inverse = np.unique(video_index, return_index=True, return_inverse=True)
        if self.from_set:
            vids = [len(unique) + i * drawn + np.arange(drawn) for i in range(B)]
            caps = [B + i * drawn + np.arange(drawn) for i in range(B)]
        else:
            vids = [np.flatnonzero(np.arange(len(unique)) != inverse[i]) for i in range(B)]
            caps = [np.flatnonzero(video_index != video_index[i]) for i in range(B)]
        for i in range(B):
            if len(vids[i]) == 0 or len(caps[i]) == 0:
                raise DataError("a training batch holds captions of one video only: no negative to draw "
                                "(raise DATASET.batch_size)")
        return first, inverse, vids, caps

    def choose(self, vids, caps, video_scores=None, caption_scores=None):
        """(negative video rows int [B, K], negative caption rows int [B, K]); the hardest by the
        scores when given (one array per positive), else random."""
        B, K = len(vids), self.num_negatives
        video_scores = video_scores or [None] * B
        caption_scores = caption_scores or [None] * B
        return (np.stack([pick(vids[i], K, video_scores[i]) for i in range(B)]),
                np.stack([pick(caps[i], K, caption_scores[i]) for i in range(B)]))


# The MODEL.loss keys the sampler is built from: its fields.
SAMPLER_KEYS = tuple(f.name for f in fields(NegativeSampler))
