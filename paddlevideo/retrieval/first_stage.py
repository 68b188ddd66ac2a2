"""The first stage of two-stage search: a dual encoder distilled from ActBERT's matching head.

ActBERT decides a match in its tangled layers, after caption and video meet, so scoring a
query is linear in the collection. The first stage gives each caption and each video one
vector, compared by inner product, so a vector index can pick the N videos worth
reranking by ActBERT.

Design (cheap on both sides; nothing of ActBERT is retrained):

- **Inputs are what retrieval computes anyway.** The caption side reads the text prefix
  (``encode_text``: the text stream up to the first connection layer, ``text_hidden``
  [Q, T, H] and ``text_mask_f``); the video side reads the video encoding the search caches
  (``encode_video``: ``region`` [V, R, Hv] with ``region_mask``, ``pooled_action`` [V, Hb],
  the first connection's ``to_text_k`` / ``to_text_v`` [V, A, Hb] and ``action_queries``).
  Feature set "pooled" (the default; ``FEATURES``): caption: the [CLS] row, the masked mean
  and the masked max of the rows (3H); video: the global region row, the masked mean of the
  region rows, the pooled action, the masked max of the box rows, the additions to the text
  keys and values per action slot, the mean of the first connection's action queries
  (3Hv + 2Hb + 2AHb). Set "basic" (format version 1's): [CLS] and mean; global row, mean,
  pooled action.
- **Two small towers**: standardise (training means and deviations), Linear(F, hidden),
  GELU, Linear(hidden, dim), L2 normalisation. The score is the cosine.
- **Trained by distillation** (``train_first_stage``): for each training caption, K candidate
  videos (its own video first, then the student's hardest ones from the second round on,
  then random ones) are scored by ActBERT (the teacher); the student learns their order by
  a listwise KL divergence, KL(softmax(teacher / T_t) || softmax(cos / T_s)) per caption,
  optionally plus an in-batch contrastive term (its own video against the batch's others;
  off by default: it pulls towards the right video, not towards the teacher's ranking).

The towers are saved with the SHA-256 of the teacher's weights file (``save_first_stage``):
the first stage only makes sense in front of the model it was distilled from, and
``load_first_stage`` refuses any other. Inference is NumPy only, so the same file serves
the dygraph model and the exported predictor.
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np
import paddle
import paddle.nn.functional as F

from ..utils.errors import ConfigError, DataError, WeightsError
from ..utils.logger import get_logger
from .marked_file import check_target, read_arrays, read_meta, write_marked

FORMAT = "actbert-first-stage"
# 2: the feature set the towers read is named in the file (``features``); a version-1 file
# (written before there was a choice) read the "basic" features and is still read so.
VERSION = 2
READABLE_VERSIONS = (1, 2)
FLAG = "first stage"
# What the caption and video towers read of the encodings (the names of retrieval's encoded fields).
TEXT_INPUT_FIELDS = ("text_hidden", "text_mask_f")
VIDEO_INPUT_FIELDS = ("region", "region_mask", "pooled_action", "to_text_k", "to_text_v", "action_queries")
# Target of the first stage: recall of the exhaustive top 10 among its top N (README, Search).
RECALL_TARGET = 0.95


@dataclasses.dataclass
class FirstStageSettings:
    """How the first stage is built and trained (``FIRST_STAGE`` of a config)."""

    dim: int = 128                  # vector size
    hidden: int = 256               # towers' hidden layer
    candidates: int = 64            # K videos per training caption, scored by the teacher
    hard_fraction: float = 0.8      # of the K - 1 others, the student's top ones (rounds after the first)
    rounds: int = 3                 # candidate mining rounds (each: teacher scores, then epochs of training)
    epochs: int = 20                # per round
    batch_size: int = 64            # captions per step (measured: 64 better than 256 or 32, README)
    learning_rate: float = 2e-3
    student_temperature: float = 0.05
    teacher_temperature: float = 3.0   # spreads the teacher's softmax over its top few, not only its first
    # The in-batch contrastive term pulls towards the right video, not towards the teacher's
    # ranking: measured, weight 0 gives the better recall of the teacher's top 10 (README).
    contrastive_weight: float = 0.0
    holdout: float = 0.1            # fraction of the videos (and their captions) kept for the recall check
    features: str = "pooled"        # what the towers read of the encodings (FEATURES)
    seed: int = 0

    @classmethod
    def from_config(cls, cfg):
        """From a dict (unknown keys and bad values are ConfigError naming the key)."""
        cfg = dict(cfg or {})
        names = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(cfg) - set(names))
        if unknown:
            raise ConfigError(f"FIRST_STAGE: unknown key(s) {unknown}; known: {sorted(names)}")
        out = cls(**cfg)
        out.check()
        return out

    def check(self):
        check_features(self.features)
        for name in ("dim", "hidden", "candidates", "rounds", "epochs", "batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"FIRST_STAGE.{name} must be a whole number >= 1, got {value!r}")
        if self.candidates < 2:
            raise ConfigError(f"FIRST_STAGE.candidates must be at least 2 (the caption's video and one other), "
                              f"got {self.candidates}")
        for name in ("learning_rate", "student_temperature", "teacher_temperature"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and np.isfinite(value) and value > 0):
                raise ConfigError(f"FIRST_STAGE.{name} must be a positive number, got {value!r}")
        for name in ("hard_fraction", "holdout", "contrastive_weight"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and 0 <= value <= (1 if name != "contrastive_weight" else 1e3)):
                raise ConfigError(f"FIRST_STAGE.{name} out of range: {value!r}")


# --------------------------------------------------------------------------- features


def _numpy(x):
    return x.numpy() if isinstance(x, paddle.Tensor) else np.asarray(x)


def text_arrays(encoded):
    """Encoded captions (a TextPrefix, or the predictor's dict of arrays) -> dict
    TEXT_INPUT_FIELDS -> NumPy arrays."""
    if isinstance(encoded, dict):
        return {k: _numpy(encoded[k]) for k in TEXT_INPUT_FIELDS}
    return {"text_hidden": _numpy(encoded.hidden), "text_mask_f": _numpy(encoded.mask)}


def _masked_mean(rows, mask):
    """rows [B, L, H], mask [B, L] (1 real) -> [B, H]; a row with no real position gives zeros."""
    mask = mask.astype(np.float32)[..., None]
    return (rows * mask).sum(1) / np.maximum(mask.sum(1), 1.0)


def _masked_max(rows, mask):
    """rows [B, L, H], mask [B, L] (1 real) -> [B, H]: the largest real value per column (zeros for none)."""
    real = np.asarray(mask).astype(bool)[..., None]
    return np.where(real.any(1), np.where(real, rows, -np.inf).max(1), 0.0).astype(np.float32)


def _text_basic(text):
    """dict text_hidden [Q, T, H], text_mask_f [Q, T] -> float32 [Q, 2H] ([CLS] row, masked mean)."""
    hidden = np.asarray(text["text_hidden"], np.float32)
    return np.concatenate([hidden[:, 0], _masked_mean(hidden, np.asarray(text["text_mask_f"]))], axis=1)


def _video_basic(videos):
    """dict region [V, R, Hv], region_mask [V, R], pooled_action [V, Hb] -> float32 [V, 2Hv + Hb]
    (global region row, masked mean of the region rows, pooled action)."""
    region = np.asarray(videos["region"], np.float32)
    return np.concatenate([region[:, 0], _masked_mean(region, np.asarray(videos["region_mask"])),
                           np.asarray(videos["pooled_action"], np.float32)], axis=1)


def _text_pooled(text):
    """``_text_basic`` and the masked max of the rows: float32 [Q, 3H]."""
    hidden = np.asarray(text["text_hidden"], np.float32)
    return np.concatenate([_text_basic(text), _masked_max(hidden, np.asarray(text["text_mask_f"]))], axis=1)


def _video_pooled(videos):
    """``_video_basic``, the masked max of the box rows (the global row left out), the first
    connection's additions to the text keys and values per action slot (``to_text_k``,
    ``to_text_v`` [V, A, Hb], flattened) and the mean of its action queries
    (``action_queries`` [V, C, A, Hb], connection 0): float32 [V, 3Hv + Hb + 2 A Hb + Hb].
    The additions are what the caption meets of the video first; measured, they and the
    max raised the held-out recall most (README, Two-stage search)."""
    region = np.asarray(videos["region"], np.float32)
    count = len(region)
    boxes = _masked_max(region[:, 1:], np.asarray(videos["region_mask"])[:, 1:])
    to_text = [np.asarray(videos[k], np.float32).reshape(count, -1) for k in ("to_text_k", "to_text_v")]
    queries = np.asarray(videos["action_queries"], np.float32)[:, 0].mean(1)
    return np.concatenate([_video_basic(videos), boxes, *to_text, queries], axis=1)


# What each tower reads, by name (saved in the file): "basic" is format version 1's.
FEATURES = {"basic": (_text_basic, _video_basic), "pooled": (_text_pooled, _video_pooled)}


def check_features(name, where="FIRST_STAGE.features"):
    if name not in FEATURES:
        raise ConfigError(f"{where} must be one of {sorted(FEATURES)}, got {name!r}")
    return name


def text_features(text, features):
    """dict TEXT_INPUT_FIELDS -> float32 [Q, F]: the caption tower's input (feature set ``features``)."""
    return FEATURES[check_features(features)][0](text)


def video_features(videos, features):
    """dict VIDEO_INPUT_FIELDS (more keys are ignored) -> float32 [V, F]: the video tower's input."""
    return FEATURES[check_features(features)][1](videos)


# --------------------------------------------------------------------------- towers


class Tower(paddle.nn.Layer):
    """Standardise, Linear(F, hidden), GELU, Linear(hidden, dim), L2 normalise: [B, F] -> [B, dim]."""

    def __init__(self, mean, std, hidden, dim):
        super().__init__()
        self.register_buffer("mean", paddle.to_tensor(np.asarray(mean, np.float32)))
        self.register_buffer("std", paddle.to_tensor(np.asarray(std, np.float32)))
        self.fc1 = paddle.nn.Linear(len(mean), hidden)
        self.fc2 = paddle.nn.Linear(hidden, dim)

    def forward(self, x):
        hidden = F.gelu(self.fc1((x - self.mean) / self.std), approximate=True)
        return F.normalize(self.fc2(hidden), axis=-1)

    def arrays(self, prefix):
        return {f"{prefix}{k}": v.numpy() for k, v in self.state_dict().items()}


def _tower_numpy(arrays, prefix, x):
    """Tower.forward in NumPy from its saved arrays ``{prefix}{name}``: [B, F] -> float32 [B, dim]."""
    a = {k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)}
    if np.shape(x)[1] != a["mean"].shape[0]:  # e.g. a collection read with other max_action_num than training's
        raise DataError(f"first stage: its {prefix.rstrip('.')} tower reads {a['mean'].shape[0]} features, the "
                        f"encodings give {np.shape(x)[1]}: were they made with the input settings it was trained "
                        "with (max_action_num, max_region_num)?")
    h = ((np.asarray(x, np.float32) - a["mean"]) / a["std"]) @ a["fc1.weight"] + a["fc1.bias"]
    h = 0.5 * h * (1.0 + np.tanh(np.sqrt(2.0 / np.pi) * (h + 0.044715 * h**3)))  # GELU, tanh form as trained
    out = h @ a["fc2.weight"] + a["fc2.bias"]
    return (out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)).astype(np.float32)


def _standardisation(x):
    std = x.std(0)
    return x.mean(0), np.where(std > 1e-6, std, 1.0).astype(np.float32)


class FirstStage:
    """The trained towers (NumPy arrays) and their metadata (``meta``: teacher hash, settings,
    held-out recall). ``text_vectors`` / ``video_vectors``: encodings -> float32 [B, dim]."""

    def __init__(self, arrays, meta):
        self.arrays, self.meta = arrays, meta

    @property
    def dim(self):
        return int(self.arrays["text.fc2.bias"].shape[0])

    @property
    def features(self):
        """The feature set the towers read (a version-1 file: "basic", the only one then)."""
        return self.meta.get("features", "basic") if self.meta.get("version", 1) >= 2 else "basic"

    def text_vectors(self, encoded_text):
        return self.text_vectors_from_features(text_features(text_arrays(encoded_text), self.features))

    def text_vectors_from_features(self, features):
        """Caption features [Q, F] (``text_features``) -> float32 [Q, dim]."""
        return _tower_numpy(self.arrays, "text.", features)

    def video_vectors(self, videos):
        return _tower_numpy(self.arrays, "video.", video_features(videos, self.features))

    def describe(self):
        """One line for logs and result files: what ranked the candidates."""
        recall = self.meta.get("holdout_recall")
        measured = "" if recall is None else (f", held-out recall of the teacher's top 10 among its top "
                                              f"{self.meta.get('holdout_n')} of {self.meta.get('holdout_videos')}: "
                                              f"{recall:.3f}")
        return (f"first stage (dual encoder, dim {self.dim}) distilled from teacher "
                f"{str(self.meta.get('teacher_sha256'))[:12]}{measured}")


# --------------------------------------------------------------------------- objectives


def listwise_kl(student, teacher, student_temperature, teacher_temperature):
    """Mean over captions of KL(softmax(teacher / T_t) || softmax(student / T_s)).

    student, teacher: [B, K] scores of each caption's K candidates (paddle Tensors)."""
    target = F.softmax(teacher / teacher_temperature, axis=-1)
    log_student = F.log_softmax(student / student_temperature, axis=-1)
    log_target = F.log_softmax(teacher / teacher_temperature, axis=-1)
    return (target * (log_target - log_student)).sum(-1).mean()


def in_batch_contrastive(text, video, video_ids, temperature):
    """Cross-entropy of each caption's own video among the batch's videos.

    text, video: [B, D] unit vectors (caption b's video is row b); video_ids int64 [B]: rows
    with the same id are the same video, so only the caption's own row counts as right and
    its copies are left out of the negatives."""
    logits = paddle.matmul(text, video, transpose_y=True) / temperature
    ids = np.asarray(video_ids)
    copy = paddle.to_tensor((ids[:, None] == ids[None, :]) & ~np.eye(len(ids), dtype=bool))
    logits = paddle.where(copy, paddle.full_like(logits, -1e4), logits)
    return F.cross_entropy(logits, paddle.arange(len(video_ids), dtype="int64"))


# --------------------------------------------------------------------------- training


def holdout_split(num_videos, fraction, rng):
    """(train videos, held-out videos): int64 index arrays; at least 10 held out when asked for any."""
    order = rng.permutation(num_videos)
    held = 0 if fraction <= 0 else min(num_videos - 2, max(10, int(round(fraction * num_videos))))
    return np.sort(order[held:]), np.sort(order[:held])


def mine_candidates(positives, student_scores, pool, settings, rng, hard):
    """K candidate videos per caption: int64 [Q, K], its own video first.

    positives int64 [Q]; student_scores [Q, len(pool)] or None; pool: the video indices to
    draw from; ``hard``: take ``hard_fraction`` of the others from the student's top."""
    k = min(settings.candidates, len(pool))
    out = np.zeros((len(positives), k), dtype=np.int64)
    n_hard = int(round(settings.hard_fraction * (k - 1))) if hard and student_scores is not None else 0
    for q, pos in enumerate(positives):
        others = pool[pool != pos]
        picked = []
        if n_hard:
            order = np.argsort(-student_scores[q], kind="stable")
            picked = [v for v in pool[order] if v != pos][:n_hard]
        rest = np.setdiff1d(others, picked, assume_unique=True)
        picked += list(rng.choice(rest, size=k - 1 - len(picked), replace=False))
        out[q] = [pos, *picked]
    return out


def train_first_stage(text_feats, video_feats, positives, teacher, settings=None, teacher_sha256="", log=None):
    """Distil the first stage from ``teacher`` on the training captions and videos.

    text_feats [Q, Ft] (``text_features``), video_feats [V, Fv] (``video_features``),
    positives int64 [Q]: each caption's video. teacher(query int64 [B], videos int64 [B, K])
    -> float32 [B, K]: ActBERT's scores (matching logit difference) of those pairs.
    A held-out fraction of the videos (and their captions) is never trained on: the recall
    of the teacher's top 10 among the student's top 10 % is measured there (the teacher
    scores every held-out caption against every held-out video). Returns a FirstStage.
    """
    settings = settings or FirstStageSettings()
    settings.check()
    log = log or get_logger().info
    rng = np.random.default_rng(settings.seed)
    paddle.seed(settings.seed)
    positives = np.asarray(positives, dtype=np.int64)
    train_v, held_v = holdout_split(len(video_feats), settings.holdout, rng)
    train_q = np.flatnonzero(np.isin(positives, train_v))
    towers = {"text": Tower(*_standardisation(text_feats[train_q]), settings.hidden, settings.dim),
              "video": Tower(*_standardisation(video_feats[train_v]), settings.hidden, settings.dim)}
    params = towers["text"].parameters() + towers["video"].parameters()
    optimizer = paddle.optimizer.Adam(learning_rate=settings.learning_rate, parameters=params)
    tensors = (paddle.to_tensor(text_feats.astype(np.float32)), paddle.to_tensor(video_feats.astype(np.float32)))
    student = None
    for round_ in range(settings.rounds):
        start = time.perf_counter()
        cand = mine_candidates(positives[train_q], student, train_v, settings, rng, hard=round_ > 0)
        target = np.asarray(teacher(train_q, cand), np.float32)
        teacher_s = time.perf_counter() - start
        loss = _train_round(towers, optimizer, tensors, train_q, cand, target, settings, rng)
        student = _student_scores(towers, tensors, train_q, train_v)
        log(f"first stage round {round_ + 1}/{settings.rounds}: teacher scored {cand.size} pairs in "
            f"{teacher_s:.1f} s; loss {loss:.4f}")
    arrays = {**towers["text"].arrays("text."), **towers["video"].arrays("video.")}
    meta = {"version": VERSION, "features": settings.features, "teacher_sha256": teacher_sha256,
            "settings": dataclasses.asdict(settings),
            "train_captions": int(len(train_q)), "train_videos": int(len(train_v))}
    stage = FirstStage(arrays, meta)
    meta.update(_holdout_recall(stage, text_feats, video_feats, positives, held_v, teacher, log))
    return stage


def _train_round(towers, optimizer, tensors, queries, cand, target, settings, rng):
    """Epochs over the captions ``queries`` with their candidates [Q, K] and teacher scores [Q, K];
    the mean loss of the last epoch."""
    text_t, video_t = tensors
    for tower in towers.values():
        tower.train()
    for _ in range(settings.epochs):
        losses, order = [], rng.permutation(len(queries))
        for start in range(0, len(queries), settings.batch_size):
            rows = order[start : start + settings.batch_size]
            loss = _step_loss(towers, text_t, video_t, queries[rows], cand[rows], target[rows], settings)
            loss.backward()
            optimizer.step()
            optimizer.clear_grad()
            losses.append(float(loss))
    return float(np.mean(losses))


def _step_loss(towers, text_t, video_t, queries, cand, target, settings):
    """Listwise KL over each caption's candidates + weighted in-batch contrastive loss."""
    q = towers["text"](paddle.gather(text_t, paddle.to_tensor(queries)))  # [B, D]
    b, k = cand.shape
    # Each distinct video through the tower once (a batch's B x K candidates repeat many videos).
    used, inverse = np.unique(cand.reshape(-1), return_inverse=True)
    v = paddle.gather(towers["video"](paddle.gather(video_t, paddle.to_tensor(used))), paddle.to_tensor(inverse))
    v = v.reshape([b, k, -1])
    student = (q[:, None, :] * v).sum(-1)  # [B, K]
    loss = listwise_kl(student, paddle.to_tensor(target), settings.student_temperature, settings.teacher_temperature)
    if settings.contrastive_weight > 0 and b > 1:
        loss = loss + settings.contrastive_weight * in_batch_contrastive(q, v[:, 0], cand[:, 0],
                                                                         settings.student_temperature)
    return loss


def _student_scores(towers, tensors, queries, videos):
    """Cosines of captions ``queries`` against videos ``videos``: NumPy [Q, V]."""
    with paddle.no_grad():
        for tower in towers.values():
            tower.eval()
        q = towers["text"](paddle.gather(tensors[0], paddle.to_tensor(queries)))
        v = towers["video"](paddle.gather(tensors[1], paddle.to_tensor(videos)))
        return paddle.matmul(q, v, transpose_y=True).numpy()


def recall_of_top(exact, approx, n, top=10):
    """Mean over rows of |exhaustive top ``top``  ∩  first-stage top ``n``| / top.

    exact, approx: scores [Q, V] of the teacher and of the first stage."""
    top = min(top, exact.shape[1])
    best = np.argsort(-exact, axis=1, kind="stable")[:, :top]
    picked = np.argsort(-approx, axis=1, kind="stable")[:, :n]
    return float(np.mean([len(np.intersect1d(best[i], picked[i])) / top for i in range(len(exact))]))


def _holdout_recall(stage, text_feats, video_feats, positives, held_v, teacher, log):
    """Recall of the teacher's top 10 among the first stage's top 10 % (at least 10) of the held-out videos."""
    held_q = np.flatnonzero(np.isin(positives, held_v))
    if len(held_q) == 0:
        return {"holdout_recall": None}
    exact = np.asarray(teacher(held_q, np.tile(held_v, (len(held_q), 1))), np.float32)
    approx = (_tower_numpy(stage.arrays, "text.", text_feats[held_q])
              @ _tower_numpy(stage.arrays, "video.", video_feats[held_v]).T)
    n = min(len(held_v), max(10, int(round(0.1 * len(held_v)))))  # below 100 videos, 10 % could not hold a top 10
    recall = recall_of_top(exact, approx, n)
    log(f"first stage: held-out recall of the teacher's top 10 among its top {n} of {len(held_v)} videos: "
        f"{recall:.3f} (target {RECALL_TARGET})")
    if recall < RECALL_TARGET:
        get_logger().warning("first stage held-out recall %.3f is below %.2f: two-stage search with N = 10%% will "
                             "miss some of ActBERT's top 10; use a larger rerank_top", recall, RECALL_TARGET)
    return {"holdout_recall": recall, "holdout_n": n, "holdout_videos": int(len(held_v)),
            "holdout_captions": int(len(held_q))}


# --------------------------------------------------------------------------- files


def check_first_stage_target(path):
    """Before training: ``path`` is missing (and writable there) or a first stage of ours."""
    check_target(path, FORMAT, FLAG)


def save_first_stage(path, stage):
    """Write the towers with their metadata (teacher hash included) atomically; a file at
    ``path`` that is not a first stage of ours is refused and left as it was."""
    write_marked(path, FORMAT, FLAG, stage.meta, stage.arrays)


def load_first_stage(path, teacher_sha256):
    """The first stage at ``path``, refused (WeightsError) unless it was distilled from the
    teacher whose weights file has SHA-256 ``teacher_sha256``."""
    meta = read_meta(path, FORMAT, FLAG)
    made_for = meta.get("teacher_sha256")
    if made_for != teacher_sha256:
        raise WeightsError(f"{FLAG} {path}: distilled from the ActBERT weights with SHA-256 {str(made_for)[:16]}..., "
                           f"not from the ones given ({str(teacher_sha256)[:16]}...): its ranking does not fit "
                           "this model; train a first stage for these weights (tools/train_first_stage.py)")
    if meta.get("version") not in READABLE_VERSIONS:
        raise WeightsError(f"{FLAG} {path}: format version {meta.get('version')}, this code reads "
                           f"{' and '.join(map(str, READABLE_VERSIONS))}")
    if meta["version"] >= 2 and meta.get("features") not in FEATURES:
        raise WeightsError(f"{FLAG} {path}: its towers read the features {meta.get('features')!r}, which this code "
                           f"does not compute (it knows {sorted(FEATURES)}); retrain it (tools/train_first_stage.py)")
    names = [f"{side}.{k}" for side in ("text", "video") for k in ("mean", "std", "fc1.weight", "fc1.bias",
                                                                     "fc2.weight", "fc2.bias")]
    return FirstStage(read_arrays(path, names, FLAG), meta)
