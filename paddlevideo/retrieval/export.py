"""The retrieval path as three static graphs for Paddle Inference (``tools/export_model.py``).

The split is the one of ``paddlevideo.retrieval.scoring.score_matrix``:

- ``text_encoder``: captions -> the text prefix and the first connection layer's text
  projections (``backbone.encode_text``), once per caption;
- ``video_encoder``: video features -> everything of a video that matching computes
  without the caption (``backbone.encode_video``), once per video;
- ``pair_scorer``: encoded captions and videos, the pairs to score (row indices into
  both) and the cut of trailing padding -> the matching logits of each pair, whose
  difference is the score (``backbone.match_paired`` after the row selection
  ``match_logits`` does).

Each wraps those backbone functions in a small Layer with flat tensor inputs/outputs
(the field tuples below), so the exported graphs compute exactly what the dygraph
path computes. Batch and sequence dimensions are dynamic (``InputSpec`` with None);
``export_info.json`` records the model's sizes and the maximal lengths of the config,
which the predictor checks inputs against.

The cut of padding (``kept_length``, ``TrimPlan``) needs the data-dependent lengths,
which a static graph cannot make into shapes, so the caller cuts the encoded tensors and
passes the resize positions of the action contexts (``text_positions``,
``region_positions``: ``TrimPlan``'s) as inputs.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os

import paddle
from paddle.static import InputSpec

from ..fields import TEXT_FIELDS, TEXT_KEYS, VIDEO_FIELDS, VIDEO_KEYS
from ..modeling.backbones.actbert import CONFIG_KEYS, TextPrefix, TrimPlan, VideoInputs
from ..utils.errors import ConfigError
from ..utils.outfile import atomic_output, check_output_file

INFO_FILE = "export_info.json"
FORMAT = "actbert-inference"
VERSION = 1
GRAPHS = ("text_encoder", "video_encoder", "pair_scorer")
GRAPH_FILES = tuple(g + ext for g in GRAPHS for ext in (".json", ".pdiparams"))

# The graphs' inputs are the batch fields; their outputs the encoded fields (``paddlevideo.fields``).
TEXT_INPUTS, VIDEO_INPUTS = TEXT_KEYS, VIDEO_KEYS
PAIR_INPUTS = ("text_index", "video_index", "text_positions", "region_positions")


def flatten_text(prefix):
    """TextPrefix (with ``qkv``) -> tuple of tensors in TEXT_FIELDS order."""
    return (prefix.hidden, prefix.mask, *prefix.qkv)


def text_from_fields(fields):
    """Tensors in TEXT_FIELDS order -> TextPrefix."""
    hidden, mask, q, k, v = fields
    return TextPrefix(hidden, mask, qkv=(q, k, v))


def flatten_video(video):
    """VideoInputs (with its scoring fields) -> tuple of tensors in VIDEO_FIELDS order."""
    return (video.region, video.region_mask, *video.region_qkv, *video.to_text,
            paddle.stack(list(video.action_queries), axis=1), video.pooled_action)


def video_from_fields(fields):
    """Tensors in VIDEO_FIELDS order -> VideoInputs (without ``action`` and ``action_mask``)."""
    region, region_mask, q, k, v, to_k, to_v, queries, pooled = fields
    return VideoInputs(region, region_mask, None, None, region_qkv=(q, k, v), to_text=(to_k, to_v),
                       action_queries=tuple(paddle.unbind(queries, axis=1)), pooled_action=pooled)


class TextEncoder(paddle.nn.Layer):
    """text_ids, token_type_ids, text_mask int64 [B, T] -> TEXT_FIELDS."""

    def __init__(self, backbone):
        super().__init__()
        self.backbone = backbone

    def forward(self, text_ids, token_type_ids, text_mask):
        return flatten_text(self.backbone.encode_text(text_ids, token_type_ids, text_mask))


class VideoEncoder(paddle.nn.Layer):
    """image_feat [B, V, Dv], image_loc [B, V, 5], image_mask [B, V], action_feat [B, A, Da],
    action_mask [B, A] -> ``video_fields``."""

    def __init__(self, backbone):
        super().__init__()
        self.backbone = backbone

    def forward(self, image_feat, image_loc, image_mask, action_feat, action_mask):
        return flatten_video(self.backbone.encode_video(image_feat, image_loc, image_mask, action_feat, action_mask))


class PairScorer(paddle.nn.Layer):
    """TEXT_FIELDS of n captions, VIDEO_FIELDS of m videos, then text_index, video_index
    int64 [P] (pair k = caption text_index[k], video video_index[k]) and the TrimPlan positions
    text_positions int64 [T'], region_positions int64 [V'] (T', V': the lengths of the given
    tensors) -> matching logits float32 [P, 2] (class 0 = match; the score is their difference)."""

    def __init__(self, backbone):
        super().__init__()
        self.backbone = backbone

    def forward(self, text_hidden, text_mask_f, text_q, text_k, text_v, region, region_mask, region_q, region_k,
                region_v, to_text_k, to_text_v, action_queries, pooled_action, text_index, video_index,
                text_positions, region_positions):
        text = text_from_fields((text_hidden, text_mask_f, text_q, text_k, text_v)).index_select(text_index)
        video = video_from_fields((region, region_mask, region_q, region_k, region_v, to_text_k, to_text_v,
                                   action_queries, pooled_action)).index_select(video_index)
        # The lengths of a TrimPlan are not read on this path, only its positions.
        trim = TrimPlan(None, None, text_positions, region_positions)
        return self.backbone.match_paired(text, video, trim).astype("float32")


def input_specs(cfg):
    """InputSpecs of the three graphs for an ActBertConfig: {graph: [InputSpec]}."""
    hb, n = cfg.bi_hidden_size, cfg.num_connections
    text_out = {"text_hidden": [None, None, cfg.hidden_size], "text_mask_f": [None, None]}
    text_out.update({f"text_{x}": [None, None, hb] for x in "qkv"})
    video_out = {"region": [None, None, cfg.v_hidden_size], "region_mask": [None, None],
                 "pooled_action": [None, hb]}
    video_out.update({f"region_{x}": [None, None, hb] for x in "qkv"})
    video_out.update({f"to_text_{x}": [None, None, hb] for x in "kv"})
    video_out["action_queries"] = [None, n, None, hb]
    return {
        "text_encoder": [InputSpec([None, None], "int64", name) for name in TEXT_INPUTS],
        "video_encoder": [
            InputSpec([None, None, cfg.v_feature_size], "float32", "image_feat"),
            InputSpec([None, None, 5], "float32", "image_loc"),
            InputSpec([None, None], "int64", "image_mask"),
            InputSpec([None, None, cfg.a_feature_size], "float32", "action_feat"),
            InputSpec([None, None], "int64", "action_mask"),
        ],
        "pair_scorer": [InputSpec(text_out[name], "float32", name) for name in TEXT_FIELDS]
        + [InputSpec(video_out[name], "float32", name) for name in VIDEO_FIELDS]
        + [InputSpec([None], "int64", name) for name in PAIR_INPUTS],
    }


def backbone_settings(backbone):
    """The backbone's sizes and switches (ActBertConfig as a plain dict)."""
    return {key: getattr(backbone.config, key) for key in CONFIG_KEYS}


def file_digest(path, chunk=1 << 20):
    """SHA-256 of a file (hex)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


def check_export_target(out_dir, flag="-o"):
    """ConfigError unless ``out_dir`` can take an export without overwriting a file this tool did
    not write: a new or empty folder, or an earlier export (its ``export_info.json`` is ours).
    Creates nothing (``export_retrieval`` then checks that the folder can be written)."""
    out_dir = os.fspath(out_dir)
    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        raise ConfigError(f"{flag} {out_dir}: is a file; give a folder for the exported model")
    if os.path.isdir(out_dir):
        clash = [n for n in (*GRAPH_FILES, INFO_FILE) if os.path.lexists(os.path.join(out_dir, n))]
        if clash and not _is_our_export(out_dir):
            raise ConfigError(f"{flag} {out_dir}: holds {clash[0]} but no export_info.json of an ActBERT export; "
                              "it is left untouched: give a new or empty folder")


def _is_our_export(out_dir):
    try:
        with open(os.path.join(out_dir, INFO_FILE), encoding="utf-8") as f:
            info = json.load(f)
    except (OSError, ValueError):
        return False
    return isinstance(info, dict) and info.get("format") == FORMAT


def _write_info(out_dir, info):
    with atomic_output(os.path.join(out_dir, INFO_FILE), "-o") as f:
        f.write(json.dumps(info, indent=1).encode("utf-8"))


def export_retrieval(backbone, out_dir, limits, weights=None):
    """Save the three graphs of ``backbone`` (eval mode, weights loaded) to ``out_dir``.

    limits: {max_seq_length, max_region_num, max_action_num}, the longest inputs the
    exported model is meant for (from the config; recorded, and checked by the predictor).
    Writes ``<graph>.json`` + ``<graph>.pdiparams`` per graph and ``export_info.json``:
    first marked ``complete: false`` (an interrupted export is then refused by the
    predictor, and a rerun may overwrite it), at the end with each file's size, which the
    predictor checks (a truncated copy). Returns the info dict.
    """
    if int(limits["max_seq_length"]) > backbone.config.max_position_embeddings:
        raise ConfigError(f"max_seq_length={limits['max_seq_length']} is more than the model's "
                          f"max_position_embeddings={backbone.config.max_position_embeddings}")
    check_export_target(out_dir)
    check_output_file(os.path.join(out_dir, INFO_FILE), "-o")
    info = {
        "format": FORMAT, "version": VERSION, "graphs": list(GRAPHS), "complete": False,
        "backbone": backbone_settings(backbone),
        "limits": {k: int(v) for k, v in limits.items()},
        "weights": os.path.basename(weights) if weights else None,
        "weights_sha256": file_digest(weights) if weights else None,
        "paddle_version": paddle.__version__,
    }
    _write_info(out_dir, info)
    backbone.eval()
    specs = input_specs(backbone.config)
    for name, layer in zip(GRAPHS, (TextEncoder(backbone), VideoEncoder(backbone), PairScorer(backbone))):
        layer.eval()
        static = paddle.jit.to_static(layer, input_spec=specs[name], full_graph=True)
        try:
            paddle.jit.save(static, os.path.join(out_dir, name))
        except OSError as exc:
            raise ConfigError(f"-o {out_dir}: cannot write {name} ({exc.strerror or exc})") from None
    info["file_sizes"] = {n: os.path.getsize(os.path.join(out_dir, n)) for n in GRAPH_FILES}
    info["complete"] = True
    _write_info(out_dir, info)
    return info


def read_export_info(model_dir):
    """The ``export_info.json`` of an inference directory; ConfigError if it is not one."""
    path = os.path.join(model_dir, INFO_FILE)
    if not os.path.isfile(path):
        raise ConfigError(f"--inference-dir {model_dir}: no {INFO_FILE}; export a model there with "
                          "tools/export_model.py")
    try:
        with open(path, encoding="utf-8") as f:
            info = json.load(f)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: unreadable ({type(exc).__name__}: {exc})") from None
    if not isinstance(info, dict) or info.get("format") != FORMAT:
        raise ConfigError(f"{path}: not an ActBERT inference export (format {FORMAT!r} expected)")
    if info.get("complete") is False:
        raise ConfigError(f"--inference-dir {model_dir}: the export was interrupted; export the model again")
    missing = [n for n in GRAPH_FILES if not os.path.isfile(os.path.join(model_dir, n))]
    if missing:
        raise ConfigError(f"--inference-dir {model_dir}: graph file(s) missing: {', '.join(missing)}")
    for name, size in (info.get("file_sizes") or {}).items():  # absent in exports made before it was recorded
        got = os.path.getsize(os.path.join(model_dir, name))
        if got != size:
            raise ConfigError(f"--inference-dir {model_dir}: {name} is {got} bytes, the export wrote {size} "
                              "(truncated or replaced); copy or export it again")
    return info


def check_export_matches(info, backbone_cfg, model_dir):
    """ConfigError unless the config's MODEL.backbone equals the exported model's.

    backbone_cfg: the config's ``MODEL.backbone`` mapping (unset keys take the defaults)."""
    from ..modeling.backbones.actbert import ActBertConfig

    wanted = {k: v for k, v in backbone_cfg.items() if k in CONFIG_KEYS}
    expected = dataclasses.asdict(ActBertConfig(**wanted))
    exported = info.get("backbone", {})
    for key in CONFIG_KEYS:
        if "dropout" in key:  # no effect at inference
            continue
        if key in exported and _plain(exported[key]) != _plain(expected[key]):
            raise ConfigError(
                f"--inference-dir {model_dir} was exported from another config: MODEL.backbone.{key} is "
                f"{exported[key]!r} there, {expected[key]!r} in this config"
            )


def _plain(value):
    return list(value) if isinstance(value, (list, tuple)) else value
