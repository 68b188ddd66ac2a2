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


def check_training_data(model, dataset, batch_size, valid=None):
    """Before training: the framework's ``check_training_data(dataset, batch_size)`` when it
    has one (e.g. ActBertRetrieval: enough negatives per batch), raising ConfigError; then its
    ``tell_dataset(d)``, when it has one, for the training set and the validation set ``valid``
    (e.g. ActBert: the action class count each sample is checked against as it is built)."""
    check = getattr(model, "check_training_data", None)
    if check is not None:
        check(dataset, batch_size)
    tell = getattr(model, "tell_dataset", None)
    for data in (dataset, valid):
        if tell is not None and data is not None:
            tell(data)
