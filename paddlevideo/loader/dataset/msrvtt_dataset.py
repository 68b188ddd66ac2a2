"""MSR-VTT text-to-video retrieval test set, read from PaddleVideo's released files.

Inputs (unchanged from the PaddleVideo release, see ``data/README.md``):

- ``features_path``: ``msrvtt_test.lmdb``, key = video id (ASCII), value = a pickle of
  ``{video_id, image_h, image_w, features [n_boxes, Dv], boxes [n_boxes, 4],
  action_features [n_actions, Da]}`` (arrays possibly flattened). Pickles can run code,
  so they are read by ``SafeUnpickler``, which admits NumPy arrays/scalars/dtypes and
  a few plain builtins only.
- ``file_path``: the query list, either the JSFusion CSV (header
  ``key,vid_key,video_id,sentence``) or PaddleVideo's headerless ``video_id,caption``.

Each query row is one caption; the candidate videos are the distinct videos of the
query list, in order of first appearance (the 1k-A list has 1000 of each). A video may
have several captions.

Test-time video input, by default as the reference builds it (each quirk switchable):
the global region (mean of *all* box features, before truncation) goes first with
location ``[0, 0, 1, 1, 1]``, then the boxes in stored order; the sequence is cut to
``max_region_num`` slots and zero-padded, image mask 1 on kept slots; up to
``max_action_num`` action features, zero-padded, with an all-ones action mask.
"""

import csv
import os
import pickle

import lmdb
import numpy as np

from ...fields import MAX_ACTION_NUM, MAX_REGION_NUM, MAX_SEQ_LENGTH
from ...utils.errors import ConfigError, DataError
from ...utils.safe_pickle import safe_loads
from ..registry import DATASETS
from ..store.lmdb_store import reader_env
from ..tokenizer import first_non_utf8, load_tokenizer

JSFUSION_HEADER = ("key", "vid_key", "video_id", "sentence")
GLOBAL_LOCATION = (0.0, 0.0, 1.0, 1.0, 1.0)
# Slack (pixels) for detector boxes that touch or barely cross the image border.
BOX_TOLERANCE = 1.0


# --------------------------------------------------------------------------- pickle


def msrvtt_record_bytes(video_id, record, protocol=4):
    """The LMDB value of one video: the pickled dict ``{"video_id": video_id, **record}``."""
    return pickle.dumps({"video_id": video_id, **record}, protocol=protocol)


def write_msrvtt_lmdb(path, records, protocol=4):
    """Write PaddleVideo-style MSR-VTT features: an LMDB of pickled dicts.

    path: the LMDB directory to create. records: mapping video id -> dict with
    ``image_h``, ``image_w``, ``features [n_boxes, Dv]``, ``boxes [n_boxes, 4]``,
    ``action_features [n_actions, Da]`` (``video_id`` is filled in). Protocol 4 keeps
    the file readable by older Pythons, as the released file is.
    """
    values = {vid: msrvtt_record_bytes(vid, rec, protocol) for vid, rec in records.items()}
    map_size = max(1 << 20, 2 * sum(len(v) + len(k) + 64 for k, v in values.items()))
    env = lmdb.open(str(path), map_size=map_size, subdir=True)
    try:
        with env.begin(write=True) as txn:
            for vid, value in values.items():
                txn.put(str(vid).encode("ascii"), value)
    finally:
        env.close()


# --------------------------------------------------------------------------- queries


def _is_header(row):
    """Whether ``row`` is a header (it names a ``video_id`` column; data rows hold ids like video7020)."""
    return "video_id" in [c.strip().lower() for c in row]


def read_queries(path):
    """(video_ids, captions) of a query CSV, one entry per caption row.

    Layouts: JSFusion (a header naming ``video_id`` and ``sentence`` (or ``caption``)
    columns) or headerless ``video_id,caption``. Commas in a caption survive whether the
    caption is quoted or not: when the caption is the last column, any extra fields
    are joined back with commas.
    """
    if not os.path.isfile(path):
        raise DataError(f"file_path (the MSR-VTT query list) not found: '{path}'")
    try:
        with open(path, encoding="utf-8-sig", newline="") as f:
            rows = [(n, r) for n, r in enumerate(csv.reader(f), start=1) if any(c.strip() for c in r)]
    except UnicodeDecodeError:
        raise DataError(f"{path}: not UTF-8 text ({first_non_utf8(path)}); save the query list as UTF-8") from None
    vid_col, cap_col, width = 0, 1, 2
    if rows and _is_header(rows[0][1]):
        names = [c.strip().lower() for c in rows[0][1]]
        if "sentence" not in names and "caption" not in names:
            raise DataError(f"{path}:{rows[0][0]}: the header {','.join(rows[0][1])} has no 'sentence' (or "
                            f"'caption') column; expected JSFusion's key,vid_key,video_id,sentence")
        vid_col = names.index("video_id")
        cap_col = names.index("sentence") if "sentence" in names else names.index("caption")
        width, rows = len(names), rows[1:]
    if not rows:
        raise DataError(f"{path}: no query rows")
    video_ids, captions = [], []
    for line, row in rows:
        if len(row) < width or (cap_col < width - 1 and len(row) != width):
            raise DataError(f"{path}:{line}: expected {width} fields (video id and caption), got {len(row)}: {row!r}")
        caption = ",".join(row[cap_col:]) if cap_col == width - 1 else row[cap_col]
        video_id = row[vid_col].strip()
        if not video_id:
            raise DataError(f"{path}:{line}: empty video id")
        if not caption.strip():
            raise DataError(f"{path}:{line}: empty caption for video '{video_id}'")
        video_ids.append(video_id)
        captions.append(caption.strip())
    return video_ids, captions


# --------------------------------------------------------------------------- records


def _as_float_array(record, field, where):
    if field not in record:
        raise DataError(f"{where}: record has no '{field}' (keys: {', '.join(map(str, record))})")
    arr = np.asarray(record[field])
    if arr.dtype.kind not in "fiu":
        raise DataError(f"{where}: '{field}' must be numeric, got dtype {arr.dtype}")
    arr = arr.astype(np.float32, copy=False)
    if not np.isfinite(arr).all():
        raise DataError(f"{where}: '{field}' holds non-finite values (NaN or inf)")
    return arr


def _rows(arr, dim, field, where):
    """``arr`` as [n, dim]: a flattened vector is reshaped, a matrix must have ``dim`` columns."""
    if arr.ndim == 2 and arr.shape[1] == dim:
        return arr
    if arr.ndim == 1 and arr.size % dim == 0:
        return arr.reshape(-1, dim)
    raise DataError(f"{where}: '{field}' has shape {list(arr.shape)}, expected [n, {dim}] or a flattened [n*{dim}]")


def parse_record(record, where, vision_dim=None, action_dim=None):
    """Validate one LMDB record and return its arrays.

    vision_dim / action_dim: feature sizes to expect, or None to take them from the
    record (a flattened ``features`` vector gets its size from the box count; a
    flattened ``action_features`` one from ``vision_dim``).
    Returns dict(features [n_boxes, Dv], boxes [n_boxes, 4], action [n_actions, Da],
    image_h, image_w) as float32 arrays and floats.
    """
    if not isinstance(record, dict):
        raise DataError(f"{where}: expected a pickled dict, got {type(record).__name__}")
    boxes = _rows(_as_float_array(record, "boxes", where), 4, "boxes", where)
    features = _as_float_array(record, "features", where)
    n_boxes = boxes.shape[0]
    if n_boxes == 0:
        raise DataError(f"{where}: the video has no boxes (the global region is their mean)")
    if vision_dim is None:
        vision_dim = features.shape[1] if features.ndim == 2 else features.size // n_boxes
    features = _rows(features, vision_dim, "features", where)
    if features.shape[0] != n_boxes:
        raise DataError(f"{where}: {features.shape[0]} feature rows for {n_boxes} boxes; expected one row per box")
    action = _as_float_array(record, "action_features", where)
    if action_dim is None:
        action_dim = action.shape[1] if action.ndim == 2 else vision_dim
    action = _rows(action, action_dim, "action_features", where)
    size = {}
    for key in ("image_h", "image_w"):
        try:
            size[key] = float(record[key])
        except (KeyError, TypeError, ValueError):
            raise DataError(f"{where}: '{key}' missing or not a number (got {record.get(key)!r})") from None
        if not size[key] > 0:
            raise DataError(f"{where}: '{key}' must be positive, got {size[key]}")
    h, w = size["image_h"], size["image_w"]
    lo, hi = -BOX_TOLERANCE, np.array([w, h, w, h]) + BOX_TOLERANCE
    outside = np.flatnonzero(((boxes < lo) | (boxes > hi)).any(axis=1))
    if outside.size:
        i = int(outside[0])
        raise DataError(f"{where}: box {i} {boxes[i].tolist()} lies outside the {w:g}x{h:g} image")
    return {"features": features, "boxes": boxes, "action": action, "image_h": h, "image_w": w}


def box_locations(boxes, image_w, image_h):
    """Pretraining's 5-d location of each box: [x1/w, y1/h, x2/w, y2/h, area/(w h)].

    boxes: [n, 4] pixels (x1, y1, x2, y2) -> float32 [n, 5].
    """
    loc = np.zeros((len(boxes), 5), dtype=np.float32)
    loc[:, :4] = boxes / np.array([image_w, image_h, image_w, image_h], dtype=np.float32)
    loc[:, 4] = (boxes[:, 3] - boxes[:, 1]) * (boxes[:, 2] - boxes[:, 0]) / (image_w * image_h)
    return loc


# --------------------------------------------------------------------------- dataset

@DATASETS.register()
class MSRVTTDataset:
    """MSR-VTT retrieval queries and videos (PaddleVideo's ``MSRVTTDataset`` files).

    Attributes: ``video_ids`` list[str] (V), ``captions`` list[str] (Q),
    ``query_video_index`` int64 [Q] (index in ``video_ids`` of each query's video),
    ``num_queries``, ``num_videos``. ``query(i)`` / ``__getitem__(i)`` gives the text
    input of caption i, ``video(j)`` the video input of video j (read from the LMDB
    on demand). Shapes: T = max_seq_length, R = max_region_num, A = max_action_num.

    Args:
        file_path: query CSV (JSFusion with header, or headerless video_id,caption);
            None: no queries, the videos are every video of ``features_path``.
        features_path: the ``msrvtt_test.lmdb`` directory (or LMDB file).
        vocab_file: bert-base-uncased ``vocab.txt`` (never downloaded).
        max_seq_length: T, text slots incl. [CLS]/[SEP] (longer captions are cut).
        max_region_num: R, region slots incl. the global region.
        max_action_num: A, action slots.
        global_region_from_all_boxes: the global region averages all boxes (reference);
            False averages only the boxes that fit in the R-1 kept slots.
        action_mask_all_ones: mask 1 on every action slot, padding included
            (reference); False masks only the real actions.
        vision_feature_dim, action_feature_dim: expected feature sizes; None takes
            them from the first record (needed only to reshape flattened vectors of
            unusual sizes, or to check them).
        bert_model: PaddleVideo's key; only ``bert-base-uncased`` (uncased WordPiece)
            is meant, and its vocabulary must be given as ``vocab_file``.
        padding_index: text padding id (PaddleVideo's key); None = the vocab's [PAD].
        pipeline: optional callable applied to each ``__getitem__`` sample.
    """

    default_metric = "MSRVTTMetric"  # how --test / --validate evaluate it without a METRIC section

    def __init__(
        self,
        file_path,
        features_path,
        vocab_file=None,
        max_seq_length=MAX_SEQ_LENGTH,
        max_region_num=MAX_REGION_NUM,
        max_action_num=MAX_ACTION_NUM,
        global_region_from_all_boxes=True,
        action_mask_all_ones=True,
        vision_feature_dim=None,
        action_feature_dim=None,
        bert_model="bert-base-uncased",
        padding_index=None,
        pipeline=None,
    ):
        if vocab_file is None:
            raise ConfigError(
                f"DATASET.test.vocab_file is not set: 'bert_model: {bert_model}' means that model's vocabulary; "
                "point `vocab_file` at bert-base-uncased's vocab.txt; nothing is downloaded"
            )
        for key, value, least in (("max_seq_length", max_seq_length, 2), ("max_region_num", max_region_num, 1),
                                  ("max_action_num", max_action_num, 1)):
            if not isinstance(value, int) or value < least:
                raise ConfigError(f"DATASET.test.{key} must be an integer >= {least}, got {value!r}")
        self.file_path = None if file_path is None else str(file_path)
        self.features_path = str(features_path)
        self._features_key = os.path.realpath(self.features_path)
        self.max_seq_length, self.max_region_num, self.max_action_num = max_seq_length, max_region_num, max_action_num
        self.global_region_from_all_boxes = bool(global_region_from_all_boxes)
        self.action_mask_all_ones = bool(action_mask_all_ones)
        self.vision_feature_dim, self.action_feature_dim = vision_feature_dim, action_feature_dim
        self.pipeline = pipeline or None
        self.tokenizer = load_tokenizer(vocab_file)
        self._pad = self.tokenizer.pad_id if padding_index is None else int(padding_index)

        if file_path is None:  # a collection to search: every video of the features, no queries
            query_videos, self.captions = [], []
            self.video_ids = self._all_video_ids()
        else:
            query_videos, self.captions = self._read_queries()
            self.video_ids = list(dict.fromkeys(query_videos))
        position = {vid: j for j, vid in enumerate(self.video_ids)}
        self.query_video_index = np.array([position[v] for v in query_videos], dtype=np.int64)
        self._text = self._tokenize(self.captions)
        if query_videos:
            self._check_videos_present(query_videos)

    def _read_queries(self):
        """(video id, caption) of every query, in order (subclasses read other layouts)."""
        return read_queries(self.file_path)

    # ---- sizes
    @property
    def num_queries(self):
        return len(self.captions)

    @property
    def num_videos(self):
        return len(self.video_ids)

    def __len__(self):
        return self.num_queries

    # ---- text
    def _tokenize(self, captions):
        """ids, mask, type ids of every caption: int64 [Q, T] each."""
        encoded = self.tokenizer.encode_batch(captions)
        built = [self.tokenizer.build_input_ids(ids, self.max_seq_length) for ids in encoded]
        ids = np.stack([b[0] for b in built]) if built else np.zeros((0, self.max_seq_length), np.int64)
        mask = np.stack([b[1] for b in built]) if built else np.zeros_like(ids)
        ids[mask == 0] = self._pad
        return {"text_ids": ids, "text_mask": mask, "token_type_ids": np.zeros_like(ids)}

    def query(self, i):
        """Text input of caption ``i``: dict(text_ids, token_type_ids, text_mask), int64 [T]."""
        return {k: v[i] for k, v in self._text.items()}

    def __getitem__(self, i):
        sample = self.query(i)
        return self.pipeline(sample) if self.pipeline is not None else sample

    # ---- video features
    def _open(self):
        """This process's read-only handle of the features LMDB, looked up on every use: a
        DataLoader worker forked from the main process gets its own, never the inherited one."""
        return reader_env(self.features_path, key=self._features_key, what="features_path (the MSR-VTT LMDB)")

    def _all_video_ids(self):
        """Every key of the features LMDB (the video ids), in key order."""
        with self._open().begin() as txn:
            ids = [bytes(key).decode("utf-8", "replace") for key in txn.cursor().iternext(keys=True, values=False)]
        if not ids:
            raise DataError(f"features_path (the MSR-VTT LMDB) '{self.features_path}': holds no videos")
        return ids

    def _check_videos_present(self, query_videos):
        with self._open().begin(buffers=True) as txn:
            for line, vid in enumerate(query_videos):
                if txn.get(vid.encode("utf-8")) is None:
                    raise DataError(
                        f"{self.file_path}: query {line} ({self.captions[line]!r}) names video '{vid}', "
                        f"which is not in the features LMDB '{self.features_path}'"
                    )

    def read_record(self, video_id):
        """The validated arrays of ``video_id`` (see ``parse_record``)."""
        where = f"{self.features_path} key '{video_id}'"
        with self._open().begin() as txn:
            value = txn.get(str(video_id).encode("utf-8"))
        if value is None:
            raise DataError(f"{where}: no such video in the features LMDB")
        rec = parse_record(safe_loads(value, where), where, self.vision_feature_dim, self.action_feature_dim)
        # Every video must share the first one's feature sizes: the model has one input size.
        if self.vision_feature_dim is None:
            self.vision_feature_dim = rec["features"].shape[1]
        if self.action_feature_dim is None:
            self.action_feature_dim = rec["action"].shape[1]
        return rec

    def video(self, j):
        """Video input of video ``j``.

        Returns dict(image_feat float32 [R, Dv], image_loc float32 [R, 5],
        image_mask int64 [R], action_feat float32 [A, Da], action_mask int64 [A]).
        """
        rec = self.read_record(self.video_ids[j])
        return {**self._regions(rec), **self._actions(rec["action"])}

    def _regions(self, rec):
        features, R = rec["features"], self.max_region_num
        kept = min(len(features), R - 1)
        pool = features if self.global_region_from_all_boxes else features[:kept]
        feat = np.zeros((R, features.shape[1]), dtype=np.float32)
        loc = np.zeros((R, 5), dtype=np.float32)
        mask = np.zeros(R, dtype=np.int64)
        feat[0] = pool.sum(axis=0) / len(pool)
        loc[0] = GLOBAL_LOCATION
        feat[1 : kept + 1] = features[:kept]
        loc[1 : kept + 1] = box_locations(rec["boxes"][:kept], rec["image_w"], rec["image_h"])
        mask[: kept + 1] = 1
        return {"image_feat": feat, "image_loc": loc, "image_mask": mask}

    def _actions(self, action):
        A = self.max_action_num
        n = min(len(action), A)
        feat = np.zeros((A, action.shape[1]), dtype=np.float32)
        feat[:n] = action[:n]
        mask = np.ones(A, dtype=np.int64)
        if not self.action_mask_all_ones:
            mask[n:] = 0
        return {"action_feat": feat, "action_mask": mask}

    def __repr__(self):
        return (f"MSRVTTDataset({self.num_queries} queries, {self.num_videos} videos, "
                f"file_path='{self.file_path}', features_path='{self.features_path}')")
