"""Build the model a config's ``MODEL`` section describes."""

from ..utils.registry import build_from_cfg
from .registry import FRAMEWORKS
from .weights import load_backbone_weights


def build_model(cfg):
    """``cfg.MODEL`` -> framework Layer; loads ``MODEL.backbone.pretrained`` when set."""
    model = build_from_cfg(cfg, FRAMEWORKS, key="framework", where="MODEL")
    pretrained = (cfg.get("backbone") or {}).get("pretrained")
    if pretrained:
        load_backbone_weights(model.backbone, pretrained)
    return model


def check_training_data(model, dataset, batch_size):
    """Before training: the framework's ``check_training_data(dataset, batch_size)`` when it
    has one (e.g. ActBertRetrieval: enough negatives per batch), raising ConfigError."""
    check = getattr(model, "check_training_data", None)
    if check is not None:
        check(dataset, batch_size)
