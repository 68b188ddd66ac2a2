"""Feature extractors that turn raw frames into ActBERT's region and action inputs."""

from .frcnn_vg import (
    FRCNNVG,
    FRCNNVGConfig,
    bench_detector,
    load_frcnn_vg,
    random_init,
    save_frcnn_vg,
    to_actbert_regions,
)
from .resnet3d import ResNet3D, load_resnet3d, preprocess_frames, resnet3d_config

__all__ = ["FRCNNVG", "FRCNNVGConfig", "ResNet3D", "bench_detector", "load_frcnn_vg", "load_resnet3d",
           "preprocess_frames", "random_init", "resnet3d_config", "save_frcnn_vg", "to_actbert_regions"]
