"""Tiny random-init extractors for trying the pipeline without the public checkpoints.

Their features are meaningless (64-d regions and actions from random weights): they exist
so that ``tools/extract_features.py --smoke`` and the tests run the whole path from raw
videos to a store, an MSR-VTT LMDB and ``main.py`` in seconds on a CPU.
"""

import functools
from pathlib import Path

from ..utils.outfile import atomic_path

SMOKE_FEATURE_DIM = 64  # the tiny detector's RoI features (res2 8 x 8) and the tiny 3D ResNet's (512 x 0.125)
SMOKE_LABEL = "SMOKE RUN: tiny random-init extractors, features are meaningless"


@functools.lru_cache(maxsize=1)
def tiny_extractors(seed=0):
    """(detector, action model) in eval mode: a depth-50 bottom-up-attention Faster R-CNN at 1/8
    width with small test sizes, and a 3D ResNet-10 at 1/8 width, seeded random weights (built
    once per process: inference does not change them)."""
    import paddle

    from ..modeling.extractors.frcnn_vg import FRCNNVG, FRCNNVGConfig, random_init
    from ..modeling.extractors.resnet3d import ResNet3D

    paddle.seed(seed)
    cfg = FRCNNVGConfig(depth=50, width_per_group=4, stem_out_channels=4, res2_out_channels=8,
                        rpn_hidden_channels=8, min_size_test=96, max_size_test=160, pre_nms_topk_test=300,
                        post_nms_topk_test=60)
    detector = random_init(FRCNNVG(cfg), seed=seed)
    action_model = ResNet3D(depth=10, widen_factor=0.125, conv1_t_size=3)
    detector.eval()
    action_model.eval()
    return detector, action_model


def save_tiny_extractors(folder, seed=0):
    """Write the tiny extractors as the converters write real ones; returns (detector .pdparams
    with its .yaml beside it, action model .pdparams)."""
    import paddle

    from ..modeling.extractors.frcnn_vg import save_frcnn_vg

    detector, action_model = tiny_extractors(seed)
    det_path, act_path = Path(folder) / "frcnn_tiny.pdparams", Path(folder) / "r3d10_tiny.pdparams"
    save_frcnn_vg(detector, det_path)
    with atomic_path(act_path) as tmp:
        paddle.save(action_model.state_dict(), tmp)
    return det_path, act_path
