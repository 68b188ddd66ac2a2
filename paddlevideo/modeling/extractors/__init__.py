"""Feature extractors that turn raw frames into ActBERT's region and action inputs."""

from .frcnn_vg import FRCNNVG, bench_detector, load_frcnn_vg, to_actbert_regions  # noqa: F401
