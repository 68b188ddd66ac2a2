"""Paddle Inference predictors of an exported ActBERT (``tools/export_model.py``).

``InferenceEngine`` runs the three exported graphs behind the scoring interface
(``scoring.Scorer``) the dygraph backbone implements too (``DygraphScorer``), so
``score_matrix`` and the search run on either unchanged. Encoded captions and videos
are ``TextPrefix`` / ``VideoInputs`` holding NumPy arrays.

The trailing text and region positions that are padding in every pair of a pass are cut
here, as ``match_logits`` does in dygraph (``kept_length``, ``TrimPlan``): the graphs
get the cut tensors and the resize positions of the action contexts.
"""

from __future__ import annotations

import argparse
import functools
import os

import numpy as np
import paddle

from ..modeling.backbones.actbert import kept_length, resize_index
from ..utils.errors import ConfigError, DataError
from .export import (
    PAIR_INPUTS,
    TEXT_FIELDS,
    TEXT_INPUTS,
    VIDEO_FIELDS,
    VIDEO_INPUTS,
    read_export_info,
)
from .scoring import Scorer

# The largest calls TensorRT is prepared for (dynamic shape ranges).
MAX_TEXTS, MAX_VIDEOS, MAX_PAIRS = 64, 256, 4096
# The fields of an encoded video that run along its regions (region, mask, q, k, v).
REGION_FIELDS = VIDEO_FIELDS[:5]


def _numpy(x):
    return x.numpy() if isinstance(x, paddle.Tensor) else np.asarray(x)


@functools.lru_cache(maxsize=64)
def _positions(action_len, nominal, keep):
    """TrimPlan positions: the action index of each of the first ``keep`` of ``nominal`` positions."""
    return resize_index(action_len, nominal).numpy()[:keep]


# --------------------------------------------------------------------------- command-line options


def parse_bool(text):
    """An argparse type: true/false, 1/0, yes/no."""
    value = str(text).strip().lower()
    if value not in ("true", "false", "1", "0", "yes", "no"):
        raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")
    return value in ("true", "1", "yes")


def add_engine_args(p):
    """The predictor options of tools/predict.py and tools/search.py (PaddleVideo's flag names)."""
    p.add_argument("--use_gpu", type=parse_bool, default=False, help="run on GPU 0 (default false)")
    p.add_argument("--gpu_id", type=int, default=0, help="GPU to use with --use_gpu true")
    p.add_argument("--use_tensorrt", type=parse_bool, default=False, help="TensorRT on GPU (default false)")
    p.add_argument("--precision", choices=["fp32", "fp16"], default="fp32", help="TensorRT precision")
    p.add_argument("--enable_mkldnn", type=parse_bool, default=False,
                   help="oneDNN on CPU (default false, as PaddleVideo; measured slower here, see README)")
    p.add_argument("--cpu_threads", type=int, default=None, help="CPU math threads (default: Paddle's)")


def engine_options(args):
    """``InferenceEngine`` keyword arguments of the parsed ``add_engine_args`` flags; ConfigError for a
    thread count or GPU id below its range."""
    if args.cpu_threads is not None and args.cpu_threads < 1:
        raise ConfigError(f"--cpu_threads must be at least 1 (leave it out for Paddle's default), "
                          f"got {args.cpu_threads}")
    if args.gpu_id < 0:
        raise ConfigError(f"--gpu_id must be 0 or more, got {args.gpu_id}")
    if args.use_gpu:
        return {"device": "gpu", "gpu_id": args.gpu_id, "tensorrt": args.use_tensorrt, "precision": args.precision}
    return {"device": "cpu", "mkldnn": args.enable_mkldnn, "cpu_threads": args.cpu_threads}


# --------------------------------------------------------------------------- predictors


def predictor_config(model_file, params_file, device="cpu", cpu_threads=None, mkldnn=True, tensorrt=False,
                     precision="fp32", gpu_id=0, gpu_memory_mb=1000, trt_shapes=None):
    """A ``paddle.inference.Config`` for one graph.

    CPU: ``cpu_threads`` math threads (None: Paddle's default), oneDNN on or off.
    GPU (Paddle built with CUDA): ``gpu_memory_mb`` initial pool on ``gpu_id``; with
    ``tensorrt`` the graph runs in TensorRT at ``precision`` (fp32 / fp16) with the dynamic
    shape ranges ``trt_shapes`` = (min, max, opt) dicts of input name -> shape.
    """
    config = paddle.inference.Config(model_file, params_file)
    if device == "gpu":
        if not paddle.is_compiled_with_cuda():
            raise ConfigError("--device gpu: this Paddle is built without CUDA (install paddlepaddle-gpu)")
        config.enable_use_gpu(int(gpu_memory_mb), int(gpu_id))
        if tensorrt:
            mode = {"fp32": paddle.inference.PrecisionType.Float32,
                    "fp16": paddle.inference.PrecisionType.Half}[precision]
            config.enable_tensorrt_engine(workspace_size=1 << 30, max_batch_size=1, min_subgraph_size=3,
                                          precision_mode=mode, use_static=False, use_calib_mode=False)
            if trt_shapes:
                config.set_trt_dynamic_shape_info(*trt_shapes)
    elif device == "cpu":
        config.disable_gpu()
        if cpu_threads:
            config.set_cpu_math_library_num_threads(int(cpu_threads))
        if mkldnn:
            config.enable_mkldnn()
        else:
            config.disable_mkldnn()
    else:
        raise ConfigError(f"device must be 'cpu' or 'gpu', got {device!r}")
    config.disable_glog_info()
    return config


class InferenceEngine(Scorer):
    """The three exported graphs of ``model_dir`` as Paddle Inference predictors.

    Keyword arguments go to ``predictor_config`` (device, cpu_threads, mkldnn, tensorrt,
    precision, gpu_id, gpu_memory_mb). ``info``: the export's ``export_info.json``.
    """

    kind = "exported"

    def __init__(self, model_dir, **options):
        self.model_dir = model_dir
        self.info = read_export_info(model_dir)
        self.limits = self.info["limits"]
        self._predictors = {}
        for graph in self.info["graphs"]:
            path = os.path.join(model_dir, graph)
            config = predictor_config(path + ".json", path + ".pdiparams", trt_shapes=self._trt_shapes(graph),
                                      **options)
            try:
                self._predictors[graph] = paddle.inference.create_predictor(config)
            except (RuntimeError, ValueError) as exc:  # Paddle's parse errors of a damaged graph or weights file
                reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                raise ConfigError(f"--inference-dir {model_dir}: cannot load {graph} (.json/.pdiparams): {reason}; "
                                  "copy or export the model again") from None

    def video_arrays(self, encoded):
        return encoded  # already a dict VIDEO_FIELDS -> NumPy arrays

    def video_from_arrays(self, arrays):
        return arrays

    def _trt_shapes(self, graph):
        """(min, max, opt) shapes of a graph's inputs up to the export's limits, for TensorRT:
        up to MAX_TEXTS captions and MAX_VIDEOS videos per call, MAX_PAIRS pairs per pass."""
        cfg, lim = self.info["backbone"], self.limits
        t, v, a = lim["max_seq_length"], lim["max_region_num"], lim["max_action_num"]
        h, hv, hb = cfg["hidden_size"], cfg["v_hidden_size"], cfg["bi_hidden_size"]
        # name: (most rows, the shape after the rows with its sequence length at its longest)
        # The sequence dimension is the first after the rows (action_queries: the second).
        if graph == "text_encoder":
            inputs = {name: (MAX_TEXTS, [t]) for name in TEXT_INPUTS}
        elif graph == "video_encoder":
            inputs = {"image_feat": (MAX_VIDEOS, [v, cfg["v_feature_size"]]), "image_loc": (MAX_VIDEOS, [v, 5]),
                      "image_mask": (MAX_VIDEOS, [v]), "action_feat": (MAX_VIDEOS, [a, cfg["a_feature_size"]]),
                      "action_mask": (MAX_VIDEOS, [a])}
        else:
            inputs = {"text_hidden": (MAX_TEXTS, [t, h]), "text_mask_f": (MAX_TEXTS, [t]),
                      **{f"text_{x}": (MAX_TEXTS, [t, hb]) for x in "qkv"},
                      "region": (MAX_VIDEOS, [v, hv]), "region_mask": (MAX_VIDEOS, [v]),
                      **{f"region_{x}": (MAX_VIDEOS, [v, hb]) for x in "qkv"},
                      "to_text_k": (MAX_VIDEOS, [a, hb]), "to_text_v": (MAX_VIDEOS, [a, hb]),
                      "action_queries": (MAX_VIDEOS, [len(cfg["t_ent_attention_id"]), a, hb]),
                      "pooled_action": (MAX_VIDEOS, [hb]), "text_index": (MAX_PAIRS, []),
                      "video_index": (MAX_PAIRS, []), "text_positions": (t, []), "region_positions": (v, [])}
        low, high, opt = {}, {}, {}
        for name, (rows, dims) in inputs.items():
            seq = 1 if name == "action_queries" else 0
            low[name] = [1, *(1 if i == seq and name != "pooled_action" else d for i, d in enumerate(dims))]
            high[name] = [rows, *dims]
            opt[name] = [max(1, rows // 4), *dims]
        return low, high, opt

    def _run(self, graph, names, arrays):
        """Feed ``arrays`` (in ``names`` order) to a graph; its outputs as NumPy arrays."""
        predictor = self._predictors[graph]
        for name, array in zip(names, arrays):
            handle = predictor.get_input_handle(name)
            array = np.ascontiguousarray(array)
            handle.reshape(list(array.shape))
            handle.copy_from_cpu(array)
        predictor.run()
        return [predictor.get_output_handle(n).copy_to_cpu() for n in predictor.get_output_names()]

    def _check_length(self, what, length, key):
        if length > self.limits[key]:
            raise DataError(f"{what} has {length} positions, more than the exported model's {key}="
                            f"{self.limits[key]} ({self.model_dir}/export_info.json)")

    def encode_text(self, text_ids, token_type_ids=None, text_mask=None):
        """int64 [B, T] each -> encoded captions: dict TEXT_FIELDS -> NumPy arrays [B, ...]."""
        text_ids = _numpy(text_ids).astype(np.int64)
        self._check_length("text_ids", text_ids.shape[1], "max_seq_length")
        token_type_ids = np.zeros_like(text_ids) if token_type_ids is None else _numpy(token_type_ids)
        text_mask = np.ones_like(text_ids) if text_mask is None else _numpy(text_mask)
        arrays = (text_ids, token_type_ids.astype(np.int64), text_mask.astype(np.int64))
        return dict(zip(TEXT_FIELDS, self._run("text_encoder", TEXT_INPUTS, arrays)))

    def encode_video(self, image_feat, image_loc, image_mask=None, action_feat=None, action_mask=None):
        """Video arrays [B, ...] -> encoded videos: dict VIDEO_FIELDS -> NumPy arrays [B, ...]."""
        image_feat, action_feat = _numpy(image_feat).astype(np.float32), _numpy(action_feat).astype(np.float32)
        self._check_length("image_feat", image_feat.shape[1], "max_region_num")
        self._check_length("action_feat", action_feat.shape[1], "max_action_num")
        image_mask = np.ones(image_feat.shape[:2], np.int64) if image_mask is None else _numpy(image_mask)
        action_mask = np.ones(action_feat.shape[:2], np.int64) if action_mask is None else _numpy(action_mask)
        arrays = (image_feat, _numpy(image_loc).astype(np.float32), image_mask.astype(np.int64), action_feat,
                  action_mask.astype(np.int64))
        return dict(zip(VIDEO_FIELDS, self._run("video_encoder", VIDEO_INPUTS, arrays)))

    def match_logits(self, text, video, text_index, video_index):
        """Matching logits float32 [P, 2] (a paddle Tensor, as ``backbone.match_logits``) of the
        pairs (text_index[k], video_index[k]) of encoded captions and videos."""
        text_index, video_index = _numpy(text_index).astype(np.int64), _numpy(video_index).astype(np.int64)
        nominal_text, nominal_region = text["text_mask_f"].shape[1], video["region_mask"].shape[1]
        action_len = video["action_queries"].shape[2]
        # The padding cut of match_logits: the positions real in some pair of this pass.
        text_keep = kept_length(paddle.to_tensor(text["text_mask_f"][np.unique(text_index)]))
        region_keep = kept_length(paddle.to_tensor(video["region_mask"][np.unique(video_index)]))
        arrays = [text[name][:, :text_keep] for name in TEXT_FIELDS]
        arrays += [video[name][:, :region_keep] if name in REGION_FIELDS else video[name] for name in VIDEO_FIELDS]
        arrays += [text_index, video_index, _positions(action_len, nominal_text, text_keep),
                   _positions(action_len, nominal_region, region_keep)]
        (logits,) = self._run("pair_scorer", (*TEXT_FIELDS, *VIDEO_FIELDS, *PAIR_INPUTS), arrays)
        return paddle.to_tensor(logits)


def engine_for_config(model_dir, cfg, **options):
    """An InferenceEngine for ``model_dir``, checked against the config it will serve:
    the same MODEL.backbone, and DATASET.test lengths within the export's limits."""
    from .export import check_export_matches

    info = read_export_info(model_dir)
    check_export_matches(info, dict(cfg.MODEL.get("backbone") or {}), model_dir)
    test = (cfg.get("DATASET") or {}).get("test") or {}
    for key, limit in info["limits"].items():
        if key in test and int(test[key]) > int(limit):
            raise ConfigError(f"DATASET.test.{key}={test[key]} is longer than --inference-dir {model_dir} was "
                              f"exported for ({key}={limit}); export it again with this config")
    return InferenceEngine(model_dir, **options)
