"""Export ActBERT's retrieval path for Paddle Inference (PaddleVideo's ``tools/export_model.py``).

    python tools/export_model.py -c configs/multimodal/actbert/actbert_msrvtt.yaml \\
        -p ActBERT.pdparams -o inference/

Writes three static graphs in Paddle 3's format (``<name>.json`` program +
``<name>.pdiparams`` weights): ``text_encoder`` (once per caption), ``video_encoder``
(once per video) and ``pair_scorer`` (matching logits of caption-video pairs), the
three-stage split of ``main.py --test``; and ``export_info.json`` (the model's sizes, the
longest inputs, from ``DATASET.test``: max_seq_length, max_region_num, max_action_num,
and the weights' SHA-256). Batch and sequence dimensions are dynamic.
Run them with ``tools/predict.py`` or ``tools/search.py --inference-dir``.
"""

import argparse
import os
import sys
import time

if not __package__:  # run as python tools/<tool>.py: the checkout importable (tools/_path.py)
    import _path  # noqa: F401



def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-c", "--config", required=True, help="YAML config (its MODEL and DATASET.test lengths)")
    p.add_argument("-p", "--params", "-w", "--weights", dest="weights", required=True,
                   help="full-model checkpoint (ActBERT.pdparams, <model_name>_best.pdparams)")
    p.add_argument("-o", "--output_path", default="inference", help="directory to write (default inference/)")
    p.add_argument("--override", action="append", default=[], metavar="KEY.PATH=VALUE",
                   help="override a config value (repeatable; main.py's -o)")
    return p.parse_args(argv)


def limits_of(cfg):
    """The longest inputs: DATASET.test's lengths, else the datasets' defaults."""
    from paddlevideo.fields import DEFAULT_LIMITS

    test = (cfg.get("DATASET") or {}).get("test") or {}
    return {key: int(test.get(key, default)) for key, default in DEFAULT_LIMITS.items()}


def run(args):
    from paddlevideo.retrieval.export import check_export_target, export_retrieval
    from paddlevideo.tasks.test import build_test_model, check_weights_file
    from paddlevideo.utils.config import get_config

    cfg = get_config(args.config, args.override)
    check_weights_file(args.weights, flag="-p", task="export")
    check_export_target(args.output_path)  # before the model is built: never over files that are not ours
    model = build_test_model(cfg.MODEL, args.weights, flag="-p")
    start = time.perf_counter()
    info = export_retrieval(model.backbone, args.output_path, limits_of(cfg), weights=args.weights)
    sizes = ", ".join(f"{g} {os.path.getsize(os.path.join(args.output_path, g + '.pdiparams')) / 2**20:.1f} MB"
                      for g in info["graphs"])
    print(f"exported to {args.output_path}/ in {time.perf_counter() - start:.1f} s: {sizes}; limits "
          + ", ".join(f"{k}={v}" for k, v in info["limits"].items()))


def main(argv=None):
    args = parse_args(argv)
    import paddlevideo  # noqa: F401  (fills the registries)
    from paddlevideo.utils.errors import exit_status

    return exit_status(run, args)


if __name__ == "__main__":
    sys.exit(main())
