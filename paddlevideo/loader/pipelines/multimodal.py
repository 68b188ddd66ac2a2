"""Pretraining pipeline steps, under PaddleVideo's names and YAML arguments.

    - FeaturePadding: {max_region_num: 36, max_action_num: 5}
    - RandomCap:      {caption_path: optional caption JSON}
    - Tokenize:       {vocab_file: optional, bert_model: accepted, see below}
    - RandomMask:     {max_seq_length: 36, max_action_length: 5, max_region_length: 36}

The steps pass a ``results`` dict along. ``ActBertDataset`` starts it with
``clip`` (a ``Clip``), ``vocab_file`` and ``other_caption`` (a function returning the
caption of a random other clip); ``RandomMask`` leaves the sample keys of the
contract (``SAMPLE_KEYS``) in it.

Randomness comes from NumPy's global generator, which Paddle's DataLoader seeds
differently in each worker (Python's ``random`` would repeat across forked workers
unless reseeded too).

Differences from PaddleVideo's steps (bugs fixed, same YAML):
- the random replacement token is drawn from ``[0, vocab_size)`` (PaddleVideo's
  ``randint(0, vocab_size)`` may return ``vocab_size``, past the vocabulary);
- the caption JSON is read once per process, not once per sample;
- without ``caption_path`` the mismatched caption is that of a random *other* clip of
  the dataset (O(1) from the store);
- clips with more than ``max_region_num`` boxes / ``max_action_num`` actions keep the
  first ones instead of failing;
- masking is vectorised (one random draw per token / region / action, same rules).
"""

import functools
import json
import os

import numpy as np

from ...fields import MAX_ACTION_NUM, MAX_REGION_NUM, MAX_SEQ_LENGTH
from ...utils.boxes import normalised_locations
from ...utils.errors import ConfigError, DataError
from ..registry import PIPELINES
from ..store.npy_source import split_captions
from ..tokenizer import load_tokenizer

SAMPLE_KEYS = (
    "text_ids", "token_type_ids", "text_mask", "text_labels",
    "image_feat", "image_loc", "image_mask", "image_label", "image_target",
    "action_feat", "action_mask", "action_label", "next_sentence_label",
)
MASK_PROB = 0.15  # share of tokens / regions / actions chosen for prediction
GLOBAL_LOC = np.array([0, 0, 1, 1, 1], dtype=np.float32)


@PIPELINES.register()
class FeaturePadding:
    """Pad (or cut) a clip's regions and actions to fixed sizes, as float32.

    Adds to ``results``: ``image_feat`` [R, Df], ``image_target`` [R, C] (dense
    class distributions), ``image_loc`` [R, 5], ``num_boxes``, ``action_feat``
    [A, Da], ``action_target`` int64 [A], ``num_actions``, ``captions`` (list[str]);
    R = ``max_region_num``, A = ``max_action_num``, padding rows are zero.
    """

    def __init__(self, max_region_num=MAX_REGION_NUM, max_action_num=MAX_ACTION_NUM):
        self.max_region_num = int(max_region_num)
        self.max_action_num = int(max_action_num)

    def __call__(self, results):
        clip = results["clip"]
        n = min(clip.n_boxes, self.max_region_num)
        a = min(clip.n_actions, self.max_action_num)
        image_feat = np.zeros((self.max_region_num, clip.image_feature.shape[1]), dtype=np.float32)
        image_feat[:n] = clip.image_feature[:n]
        image_loc = np.zeros((self.max_region_num, 5), dtype=np.float32)
        image_loc[:n] = normalised_locations(clip.boxes[:n], clip.image_h, clip.image_w)
        action_feat = np.zeros((self.max_action_num, clip.action_feature.shape[1]), dtype=np.float32)
        action_feat[:a] = clip.action_feature[:a]
        action_target = np.zeros(self.max_action_num, dtype=np.int64)
        action_target[:a] = clip.action_target[:a]
        results.update(
            image_feat=image_feat, image_target=self._dense_target(clip, n), image_loc=image_loc, num_boxes=n,
            action_feat=action_feat, action_target=action_target, num_actions=a, captions=list(clip.captions),
        )
        return results

    def _dense_target(self, clip, n):
        """Class distributions [R, C] float32, scattered from top-k storage when sparse."""
        if clip.image_target is not None:
            target = np.zeros((self.max_region_num, clip.image_target.shape[1]), dtype=np.float32)
            target[:n] = clip.image_target[:n]
            return target
        target = np.zeros((self.max_region_num, clip.num_classes), dtype=np.float32)
        np.put_along_axis(target[:n], clip.target_index[:n].astype(np.int64),
                          clip.target_value[:n].astype(np.float32), axis=1)
        return target


@functools.lru_cache(maxsize=4)
def _caption_pool(path, mtime_ns):
    try:
        with open(path, encoding="utf-8") as f:
            pool = json.load(f)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"{path}: cannot read the caption JSON ({exc})") from None
    if not isinstance(pool, list) or not any(isinstance(c, str) and split_captions(c) for c in pool):
        raise DataError(f"{path}: expected a JSON list of caption strings with at least one caption")
    return pool


def caption_pool(path):
    """The caption list of a caption JSON, read once per process (and again if the file changes)."""
    if not os.path.isfile(path):
        raise ConfigError(f"RandomCap.caption_path: file not found: '{path}'")
    return _caption_pool(os.path.abspath(path), os.stat(path).st_mtime_ns)


@PIPELINES.register()
class RandomCap:
    """Choose the caption and the matching label.

    One of the clip's captions is drawn; with p=0.5 it is kept (``is_next`` = 0),
    otherwise replaced by a random caption (``is_next`` = 1) from ``caption_path``
    (a JSON list of ``!``-joined captions, as PaddleVideo ships) or, without it, from a
    random other clip of the dataset. Sets ``caption`` (str) and ``is_next``.
    """

    def __init__(self, caption_path=None):
        self.caption_path = caption_path

    def check(self):
        """Read and check the caption JSON now (a sample reads it only when it draws a negative)."""
        if self.caption_path:
            caption_pool(self.caption_path)

    def __call__(self, results):
        caption = _choice(results["captions"])
        label = 0
        if np.random.random() >= 0.5:
            caption, label = self._negative(results), 1
        results["caption"], results["is_next"] = caption, label
        return results

    def _negative(self, results):
        if not self.caption_path:
            return results["other_caption"]()
        pool = caption_pool(self.caption_path)
        # Entries may be blank or not strings; the pool holds at least one caption.
        while True:
            captions = split_captions(pool[np.random.randint(len(pool))])
            if captions:
                return _choice(captions)


def _choice(items):
    return items[np.random.randint(len(items))]


@PIPELINES.register()
class Tokenize:
    """Turn ``caption`` into WordPiece ids (``caption_ids``, no [CLS]/[SEP]).

    The vocabulary is the dataset's ``vocab_file`` (``DATASET.<split>.vocab_file``, the
    one place to set it, shared with MSR-VTT); ``vocab_file`` here is accepted for
    pipelines used without the dataset and must then agree with it.
    ``bert_model: bert-base-uncased`` (PaddleVideo's key) only names that vocabulary:
    nothing is downloaded, so ``vocab_file`` must point at its ``vocab.txt``.
    """

    def __init__(self, vocab_file=None, bert_model=None):
        self.vocab_file = vocab_file
        self.bert_model = bert_model
        self._cached = (None, None)  # (vocab path, tokenizer): spares a stat of the file per sample

    def __getstate__(self):  # a DataLoader worker loads its own tokenizer
        return {**self.__dict__, "_cached": (None, None)}

    def resolve_vocab(self, dataset_vocab_file, where="DATASET.train"):
        """The vocabulary path to use; ConfigError when none or two different are given."""
        if self.vocab_file and dataset_vocab_file and str(self.vocab_file) != str(dataset_vocab_file):
            raise ConfigError(f"Tokenize.vocab_file '{self.vocab_file}' differs from {where}.vocab_file "
                              f"'{dataset_vocab_file}'; set it once, in {where}.vocab_file")
        vocab_file = self.vocab_file or dataset_vocab_file
        if not vocab_file:
            model = self.bert_model or "bert-base-uncased"
            raise ConfigError(f"no vocab_file: set {where}.vocab_file to the vocab.txt of {model} "
                              f"(bert_model only names it; nothing is downloaded)")
        return vocab_file

    def __call__(self, results):
        vocab_file = self.resolve_vocab(results.get("vocab_file"))
        if self._cached[0] != vocab_file:
            self._cached = (vocab_file, load_tokenizer(vocab_file))
        tokenizer = self._cached[1]
        results["caption_ids"] = tokenizer.encode(results["caption"])
        results["tokenizer"] = tokenizer
        return results


@PIPELINES.register()
class RandomMask:
    """BERT-style masking of text, regions and actions; builds the model inputs.

    Text: ``[CLS] ids[:T-2] [SEP]`` padded to T = ``max_seq_length``; each token is
    chosen with p=0.15 (label = its id, else -1), a chosen token becomes [MASK] (80%),
    a random vocabulary id (10%) or stays (10%).
    Regions: each real box chosen with p=0.15 (label 1, else -1); 90% of the chosen have
    their feature zeroed. A global region (sum of the region features after masking /
    number of boxes, location [0, 0, 1, 1, 1]) is put first, so V = R + 1.
    Actions: chosen with p=0.15 (label = class id, else -1); 90% of those zeroed.
    Leaves ``SAMPLE_KEYS`` in ``results`` (shapes in the contract).
    """

    def __init__(self, max_seq_length=MAX_SEQ_LENGTH, max_action_length=MAX_ACTION_NUM,
                 max_region_length=MAX_REGION_NUM):
        self.max_seq_length = int(max_seq_length)
        self.max_action_length = int(max_action_length)
        self.max_region_length = int(max_region_length)
        if self.max_seq_length < 2:
            raise ConfigError(f"RandomMask.max_seq_length must be at least 2, got {max_seq_length}")

    def __call__(self, results):
        self._check_sizes(results)
        tok = results["tokenizer"]
        text = self.mask_text(results["caption_ids"], tok)
        image_feat, image_label = self.mask_units(results["image_feat"], results["num_boxes"])
        action_feat, chosen = self.mask_units(results["action_feat"], results["num_actions"])
        action_label = np.where(chosen == 1, results["action_target"], -1).astype(np.int64)
        image_feat, image_loc, image_mask = self.add_global_region(image_feat, results["image_loc"],
                                                                   results["num_boxes"])
        action_mask = (np.arange(self.max_action_length) < results["num_actions"]).astype(np.int64)
        results.update(text)
        results.update(
            image_feat=image_feat, image_loc=image_loc, image_mask=image_mask, image_label=image_label,
            action_feat=action_feat, action_mask=action_mask, action_label=action_label,
            next_sentence_label=np.array(results["is_next"], dtype=np.int64),
        )
        return results

    def _check_sizes(self, results):
        if results["image_feat"].shape[0] != self.max_region_length:
            raise ConfigError(f"FeaturePadding.max_region_num ({results['image_feat'].shape[0]}) must equal "
                              f"RandomMask.max_region_length ({self.max_region_length})")
        if results["action_feat"].shape[0] != self.max_action_length:
            raise ConfigError(f"FeaturePadding.max_action_num ({results['action_feat'].shape[0]}) must equal "
                              f"RandomMask.max_action_length ({self.max_action_length})")

    def mask_text(self, token_ids, tok):
        """``text_ids``, ``text_labels``, ``text_mask``, ``token_type_ids``: int64 [T] each."""
        ids = np.asarray(token_ids[: self.max_seq_length - 2], dtype=np.int64)
        draw = np.random.random(len(ids))
        chosen = draw < MASK_PROB
        labels = np.where(chosen, ids, -1)
        share = draw / MASK_PROB  # uniform in [0, 1) among the chosen
        ids = ids.copy()
        ids[chosen & (share < 0.8)] = tok.mask_id
        swap = chosen & (share >= 0.8) & (share < 0.9)
        ids[swap] = np.random.randint(0, tok.vocab_size, size=int(swap.sum()))
        n = len(ids) + 2
        text_ids = np.full(self.max_seq_length, tok.pad_id, dtype=np.int64)
        text_ids[:n] = np.concatenate([[tok.cls_id], ids, [tok.sep_id]])
        text_labels = np.full(self.max_seq_length, -1, dtype=np.int64)
        text_labels[1 : n - 1] = labels
        text_mask = (np.arange(self.max_seq_length) < n).astype(np.int64)
        return dict(text_ids=text_ids, text_labels=text_labels, text_mask=text_mask,
                    token_type_ids=np.zeros(self.max_seq_length, dtype=np.int64))

    @staticmethod
    def mask_units(feat, count):
        """Choose among the first ``count`` rows of ``feat`` [S, D] (zeroed in place: 90% of the chosen).

        Returns (feat, label int64 [S]: 1 chosen, -1 otherwise).
        """
        draw = np.random.random(count)
        chosen = draw < MASK_PROB
        feat[:count][chosen & (draw / MASK_PROB < 0.9)] = 0
        label = np.full(len(feat), -1, dtype=np.int64)
        label[:count][chosen] = 1
        return feat, label

    @staticmethod
    def add_global_region(image_feat, image_loc, count):
        """Prepend the global region.

        Args: image_feat [R, Df], image_loc [R, 5], count real boxes.
        Returns: image_feat [R+1, Df], image_loc [R+1, 5], image_mask int64 [R+1].
        """
        # The mean uses the features after masking (as the reference does), so a masked
        # region does not leak through the global one. No box: a zero global feature.
        mean = image_feat[:count].sum(axis=0) / max(count, 1)
        feat = np.concatenate([mean[None], image_feat]).astype(np.float32, copy=False)
        loc = np.concatenate([GLOBAL_LOC[None], image_loc])
        mask = (np.arange(len(image_feat) + 1) <= count).astype(np.int64)
        return feat, loc, mask
