"""Every config under configs/ loads, passes the key checks, and its model builds."""

from pathlib import Path

import paddle
import pytest

import paddlevideo  # noqa: F401  (fills the registries)
from paddlevideo.modeling.builder import build_model
from paddlevideo.utils.config import get_config
from paddlevideo.utils.errors import ConfigError

CONFIGS = sorted((Path(__file__).resolve().parents[1] / "configs").rglob("*.yaml"))


def test_there_are_configs():
    names = {p.name for p in CONFIGS}
    assert {"actbert.yaml", "actbert_msrvtt.yaml", "actbert_demo.yaml", "actbert_msrvtt_demo.yaml"} <= names


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_config_validates_and_builds_its_model(path):
    cfg = get_config(path, ["MODEL.backbone.pretrained=null"] if "pretrained" in get_config(
        path, validate=False).MODEL.backbone else [])
    # The full-size model is large: check its construction without allocating weights.
    with paddle.LazyGuard():
        model = build_model(cfg.MODEL)
    assert type(model).__name__ == cfg.MODEL.framework
    assert type(model.backbone).__name__ == cfg.MODEL.backbone.name


def test_paddlevideo_config_overrides_and_typos():
    path = next(p for p in CONFIGS if p.name == "actbert.yaml")
    cfg = get_config(path, ["DATASET.batch_size=16", "OPTIMIZER.learning_rate.values=[1e-4, 1e-5]"])
    assert cfg.DATASET.batch_size == 16 and cfg.OPTIMIZER.learning_rate["values"] == [1e-4, 1e-5]
    assert cfg.OPTIMIZER.weight_decay.value == pytest.approx(1e-4)  # '1e-4' in the YAML is a number
    with pytest.raises(ConfigError, match="did you mean 'hidden_size'"):
        get_config(path, ["MODEL.backbone.hiden_size=64"])
    with pytest.raises(ConfigError, match="did you mean 'caption_path'"):
        get_config(path, ["PIPELINE.train.transform.1.caption_pth=x.json"])
    with pytest.raises(ConfigError, match="registered: .*ActBertDataset"):
        get_config(path, ["DATASET.train.format=ActBertDatset"])
