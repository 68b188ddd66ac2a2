"""Feature extractors that turn raw frames into ActBERT's region and action inputs."""

from .frcnn_vg import (  # noqa: F401
    FRCNNVG,
    FRCNNVGConfig,
    bench_detector,
    load_frcnn_vg,
    random_init,
    save_frcnn_vg,
    to_actbert_regions,
)
