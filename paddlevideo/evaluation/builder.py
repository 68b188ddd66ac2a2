"""The evaluator of a dataset: the one ``METRIC`` names, else the dataset's own default."""

from ..utils.errors import ConfigError
from .loss import LOSS_METRIC
from .registry import EVALUATORS


def default_metric(dataset):
    """The METRIC name a dataset is evaluated by without a METRIC section: its class's
    ``default_metric`` (e.g. MSRVTTDataset: MSRVTTMetric); a dataset naming none is
    validated by the loss."""
    return getattr(dataset, "default_metric", None) or LOSS_METRIC


def build_evaluator(metric_cfg, dataset, settings):
    """The evaluator for ``dataset`` (checked) under ``settings`` (an EvalSettings).

    metric_cfg: the config's ``METRIC`` mapping or None. A METRIC that does not evaluate this
    kind of set (whose evaluator is not the one of the dataset's default) is refused, naming
    the one it needs.
    """
    own = default_metric(dataset)
    metric_cfg = dict(metric_cfg or {"name": own})
    name = metric_cfg.get("name")
    if EVALUATORS.get(name) is not EVALUATORS.get(own):
        raise ConfigError(f"METRIC {name} does not evaluate {settings.where} ({type(dataset).__name__}); "
                          f"this set needs METRIC: {{name: {own}}}")
    evaluator = EVALUATORS.get(name)(metric_cfg, settings)
    evaluator.check(dataset)
    return evaluator
