"""Convert the public VG Faster R-CNN checkpoint (LXMERT demo's ``unc-nlp/frcnn-vg-finetuned``)
into the Paddle region extractor's weights.

    python tools/convert_frcnn_vg.py path/to/frcnn-vg-finetuned/ frcnn_vg.pdparams
    python tools/convert_frcnn_vg.py weights.npz frcnn_vg.pdparams --config config.yaml

SOURCE is ``pytorch_model.bin`` (read without torch and without running its pickle), an
``.npz`` of the same tensor names, or a folder holding ``pytorch_model.bin`` and
``config.yaml``. The config (``--config``, default ``config.yaml`` beside the checkpoint) gives
the depth and widths; the checkpoint must fit it exactly. Writes OUTPUT (.pdparams) and
OUTPUT's ``.yaml`` (the config in the public schema), which ``load_frcnn_vg(OUTPUT)`` reads;
the config is also recorded inside OUTPUT, and loading refuses a config whose anchors, pixel
statistics, pooler or box coding (``TRAINED_SETTINGS``: the tensors do not reveal them)
differ from it. Mapping: BatchNorm ``running_mean``/``running_var`` -> ``_mean``/``_variance``,
Linear weights transposed to [in, out], ``num_batches_tracked`` dropped, the RPN anchor table
(derived from the config) checked and dropped.
"""

import argparse
import os
import sys

import numpy as np

if not __package__:  # run as python tools/<tool>.py: the checkout importable (tools/_path.py)
    import _path  # noqa: F401

from paddlevideo.modeling.extractors.frcnn_vg import (  # noqa: E402
    BLOCKS_PER_DEPTH,
    FRCNNVG,
    FRCNNVGConfig,
    cell_anchors,
    check_state,
    config_path_for,
    expected_state,
    read_config,
)
from paddlevideo.utils.conversion import check_outputs  # noqa: E402
from paddlevideo.utils.errors import WeightsError, exit_status  # noqa: E402
from tools.bert_to_actbert import read_checkpoint  # noqa: E402

CHECKPOINT = "pytorch_model.bin"
CONFIG = "config.yaml"
ANCHORS = "proposal_generator.anchor_generator.cell_anchors.0"
STEM = "backbone.stem.conv1.weight"
EMBEDDING = "roi_heads.box_predictor.cls_embedding.weight"


def find_inputs(source, config=None):
    """(checkpoint path, config path) for SOURCE (a file or a folder) and an optional --config."""
    source = os.fspath(source)
    if os.path.isdir(source):
        checkpoint = os.path.join(source, CHECKPOINT)
        if not os.path.isfile(checkpoint):
            raise WeightsError(f"{source} holds no {CHECKPOINT}")
    elif os.path.isfile(source):
        checkpoint = source
    else:
        raise WeightsError(f"checkpoint not found: {source}")
    config = config or os.path.join(os.path.dirname(checkpoint), CONFIG)
    if not os.path.isfile(config):
        raise WeightsError(f"config not found: {config} (give the checkpoint's config.yaml with --config)")
    return checkpoint, config


def read_tensors(path):
    """{torch name: np.ndarray} from a .bin (PyTorch, read without torch) / .safetensors / .npz
    file; every floating-point tensor checked finite."""
    from paddlevideo.utils.conversion import check_finite, read_npz

    return check_finite(read_npz(path) if path.endswith(".npz") else read_checkpoint(path), path)


def _blocks(state, stage):
    prefix = f"backbone.{stage}."
    return len({k[len(prefix):].split(".")[0] for k in state if k.startswith(prefix)})


def convert(state, cfg: FRCNNVGConfig, source="checkpoint"):
    """PyTorch state dict {name: array} -> Paddle state dict for FRCNNVG(cfg); WeightsError
    (one line, naming a key and both shapes) when it is another model, depth or width."""
    model = FRCNNVG(cfg)
    expected = expected_state(model)
    if STEM not in state:
        first = next(iter(state), None)
        found = f"its first key is '{first}' {list(np.shape(state[first]))}" if first else "it is empty"
        raise WeightsError(f"{source}: not a VG Faster R-CNN checkpoint: no '{STEM}' (expected "
                           f"{list(expected[STEM])}); {found}")
    found = tuple(_blocks(state, s) for s in ("res2", "res3", "res4"))
    if found != cfg.blocks_per_stage[:3]:
        depth = {v[:3]: k for k, v in BLOCKS_PER_DEPTH.items()}
        stage = ("res2", "res3", "res4")[[a != b for a, b in zip(found, cfg.blocks_per_stage)].index(True)]
        index = min(found[int(stage[-1]) - 2], cfg.blocks_per_stage[int(stage[-1]) - 2])
        key = f"backbone.{stage}.{index}.conv1.weight"
        have = list(np.shape(state[key])) if key in state else "absent"
        want = list(expected[key]) if key in expected else "absent"
        raise WeightsError(f"{source}: the checkpoint has depth {depth.get(found, '?')} (blocks {list(found)}), the "
                           f"config depth {cfg.depth}: '{key}' is {have} in the checkpoint, {want} in the model")
    out = {}
    for name, array in state.items():
        if name.endswith(".num_batches_tracked"):
            continue
        if name == ANCHORS:
            derived = cell_anchors(cfg.anchor_sizes, cfg.anchor_aspect_ratios)
            if np.shape(array) != derived.shape or not np.allclose(array, derived, atol=1e-3):
                raise WeightsError(f"{source}: '{ANCHORS}' {list(np.shape(array))} differs from the anchors the "
                                   f"config derives {list(derived.shape)} (anchor_generator sizes/aspect_ratios)")
            continue
        target = name.replace(".running_mean", "._mean").replace(".running_var", "._variance")
        array = np.asarray(array, dtype=np.float32)
        if target.endswith(".weight") and array.ndim == 2 and target != EMBEDDING:
            array = array.T  # Linear: torch [out, in] -> Paddle [in, out]
        out[target] = np.ascontiguousarray(array)
    check_state(expected, out, source)
    return out


def write(state, cfg, output):
    """OUTPUT.pdparams and OUTPUT.yaml, each written atomically."""
    import paddle
    import yaml

    from paddlevideo.modeling.extractors import recorded
    from paddlevideo.utils.conversion import write_atomically

    def write_yaml(tmp):
        with open(tmp, "w", encoding="utf-8") as f:
            yaml.safe_dump(cfg.to_yaml_dict(), f, sort_keys=False)

    tensors = recorded.record({k: paddle.to_tensor(v) for k, v in state.items()}, "frcnn_vg", cfg.to_yaml_dict())
    write_atomically(output, lambda tmp: paddle.save(tensors, tmp))
    write_atomically(config_path_for(output), write_yaml)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", help="pytorch_model.bin, an .npz of the same names, or a folder with both files")
    parser.add_argument("output", help="the .pdparams to write (its config goes beside it as .yaml)")
    parser.add_argument("--config", help="the checkpoint's config.yaml (default: beside the checkpoint)")
    return exit_status(run, parser.parse_args(argv))


def run(args):
    checkpoint, config = find_inputs(args.source, args.config)
    check_outputs([args.output, config_path_for(args.output)], [checkpoint, config])
    cfg = read_config(config)
    state = convert(read_tensors(checkpoint), cfg, checkpoint)
    write(state, cfg, args.output)
    print(f"wrote {len(state)} tensors (ResNet-{cfg.depth}, {cfg.roi_feature_dim}-d regions, "
          f"{cfg.num_classes} + 1 classes) from {checkpoint} to {args.output} and {config_path_for(args.output)}")


if __name__ == "__main__":
    sys.exit(main())
