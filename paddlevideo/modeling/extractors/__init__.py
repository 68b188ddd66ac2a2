"""Feature extractors that turn raw video into ActBERT's inputs (tools/extract_features.py)."""

from .resnet3d import ResNet3D, load_resnet3d, preprocess_frames, resnet3d_config

__all__ = ["ResNet3D", "load_resnet3d", "preprocess_frames", "resnet3d_config"]
